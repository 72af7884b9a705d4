package reports

import (
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/oracle"
)

// Mark kinds on a timeline.
const (
	MarkOp       = "op"       // an operation returned successfully
	MarkCommit   = "commit"   // a write transaction committed
	MarkError    = "error"    // an error surfaced (a detection)
	MarkFault    = "fault"    // faultfs injected a fault
	MarkClear    = "clear"    // the faults were cleared
	MarkSpawn    = "spawn"    // a worker was spawned
	MarkEvidence = "evidence" // a failing checker's evidence
)

// Timeline is a run drawn over time: one lane per process, one for
// faultfs and one for the oracle's evidence.
type Timeline struct {
	Duration time.Duration `json:"duration"`
	Lanes    []string      `json:"lanes"`
	Marks    []Mark        `json:"marks"`
	Dropped  int           `json:"dropped,omitempty"` // op marks thinned out
}

// Mark is one point on a timeline.
type Mark struct {
	At   time.Duration `json:"at"` // since the start of the run
	Kind string        `json:"kind"`
	Lane int           `json:"lane"`
	Text string        `json:"text"`
}

const (
	laneFaults = 0
	laneOracle = 1
	maxOps     = 2000 // op and commit marks kept per run
	maxOther   = 1000 // of each other kind
)

// BuildTimeline draws in and its results: one mark per history event,
// injected fault and failing evidence, the op marks thinned to maxOps.
func BuildTimeline(in *oracle.Input, results []oracle.Result) *Timeline {
	t0, tEnd := timeSpan(in)
	tl := &Timeline{Lanes: []string{"faultfs", "oracle"}, Duration: time.Duration(tEnd - t0)}
	d := &drawing{tl: tl, t0: t0, lane: map[string]int{}, counts: map[string]int{}}
	d.events(in.Events)
	d.trace(in.Trace)
	d.evidence(results)
	var ops []Mark
	ops, tl.Dropped = thin(d.ops, maxOps)
	tl.Marks = append(ops, d.other...)
	sort.SliceStable(tl.Marks, func(i, j int) bool { return tl.Marks[i].At < tl.Marks[j].At })
	return tl
}

// timeSpan returns the first and last non-zero times of the histories and
// the trace.
func timeSpan(in *oracle.Input) (t0, tEnd int64) {
	see := func(t int64) {
		if t == 0 {
			return
		}
		if t0 == 0 || t < t0 {
			t0 = t
		}
		if t > tEnd {
			tEnd = t
		}
	}
	for _, e := range in.Events {
		see(e.T)
	}
	for _, r := range in.Trace {
		see(r.T)
	}
	return t0, tEnd
}

// drawing collects a timeline's marks: op and commit marks all (thinned
// later), at most maxOther of each other kind.
type drawing struct {
	tl         *Timeline
	t0         int64
	lane       map[string]int
	ops, other []Mark
	counts     map[string]int
}

// laneOf returns the lane of a process, adding one the first time.
func (d *drawing) laneOf(proc string) int {
	if i, ok := d.lane[proc]; ok {
		return i
	}
	d.lane[proc] = len(d.tl.Lanes)
	d.tl.Lanes = append(d.tl.Lanes, proc)
	return d.lane[proc]
}

func (d *drawing) at(t int64) time.Duration { return time.Duration(t - d.t0) }

func (d *drawing) add(m Mark) {
	if m.Kind == MarkOp || m.Kind == MarkCommit {
		d.ops = append(d.ops, m)
		return
	}
	if d.counts[m.Kind] < maxOther {
		d.counts[m.Kind]++
		d.other = append(d.other, m)
	}
}

// events marks the histories: errors, commits, returns and spawns, each on
// its process's lane (every process gets a lane).
func (d *drawing) events(events []history.Event) {
	for _, e := range events {
		switch {
		case e.Err != "":
			d.add(Mark{d.at(e.T), MarkError, d.laneOf(e.Proc), strings.TrimSpace(e.Op + " " + e.Class + " " + e.Err)})
		case e.Type == history.TypeCommit:
			d.add(Mark{d.at(e.T), MarkCommit, d.laneOf(e.Proc), fmt.Sprintf("commit seq %d %s", e.Seq, e.Op)})
		case e.Type == history.TypeReturn:
			d.add(Mark{d.at(e.T), MarkOp, d.laneOf(e.Proc), e.Op + " " + e.Task})
		case e.Type == history.TypeSpawn:
			d.add(Mark{d.at(e.T), MarkSpawn, d.laneOf(e.Proc), fmt.Sprintf("spawn worker %d for %s", e.Facts().Pid, e.Task)})
		default:
			d.laneOf(e.Proc)
		}
	}
}

// trace marks the faults faultfs injected and the moments they were
// cleared, on the faultfs lane.
func (d *drawing) trace(recs []trace.Record) {
	for _, r := range recs {
		switch {
		case r.Kind == trace.KindOp && r.Rule > 0:
			d.add(Mark{d.at(r.T), MarkFault, laneFaults, fmt.Sprintf("seq %d pid %d: %s %s off=%d len=%d [%s] -> %s", r.Seq, r.Pid, r.Op, r.Path, r.Off, r.Len, r.Fault, r.Result)})
		case r.Kind == trace.KindMark && r.Mark == oracle.MarkFaultsCleared,
			r.Kind == trace.KindPlan && strings.TrimSpace(r.Plan) == "":
			d.add(Mark{d.at(r.T), MarkClear, laneFaults, "faults cleared"})
		}
	}
}

// evidence marks the timed evidence of the failing checkers on the oracle
// lane.
func (d *drawing) evidence(results []oracle.Result) {
	for _, res := range results {
		if res.Verdict != oracle.Fail {
			continue
		}
		for _, e := range res.Evidence {
			if e.T != 0 {
				d.add(Mark{d.at(e.T), MarkEvidence, laneOracle, res.Checker + ": " + e.Text})
			}
		}
	}
}

// thin keeps at most limit of marks, evenly spread, and says how many it
// dropped.
func thin(marks []Mark, limit int) (kept []Mark, dropped int) {
	if len(marks) <= limit {
		return marks, 0
	}
	step := float64(len(marks)) / float64(limit)
	for i := 0.0; int(i) < len(marks); i += step {
		kept = append(kept, marks[int(i)])
	}
	return kept, len(marks) - len(kept)
}

// SVG geometry.
const (
	svgWidth  = 1100
	svgLeft   = 150
	svgRight  = 20
	svgTop    = 24
	svgLaneH  = 20
	svgBottom = 28
)

var markColor = map[string]string{
	MarkOp: "#9aa0a6", MarkCommit: "#1e8e3e", MarkError: "#d93025", MarkFault: "#f29900",
	MarkClear: "#1a73e8", MarkSpawn: "#9334e6", MarkEvidence: "#202124",
}

// SVG writes the timeline as a self-contained <svg> element.
func (tl *Timeline) SVG(w io.Writer) error {
	h := svgTop + svgLaneH*len(tl.Lanes) + svgBottom
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n", svgWidth, h, svgWidth, h)
	dur := float64(tl.Duration)
	if dur <= 0 {
		dur = 1
	}
	plotW := float64(svgWidth - svgLeft - svgRight)
	x := func(d time.Duration) float64 { return svgLeft + float64(d)/dur*plotW }
	y := func(lane int) float64 { return float64(svgTop + lane*svgLaneH + svgLaneH/2) }
	for i, name := range tl.Lanes {
		fill := "#ffffff"
		if i%2 == 1 {
			fill = "#f4f6f8"
		}
		fmt.Fprintf(&b, `<rect x="0" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", svgTop+i*svgLaneH, svgWidth, svgLaneH, fill)
		fmt.Fprintf(&b, `<text x="6" y="%.1f" font-size="11" font-family="monospace" dominant-baseline="middle">%s</text>`+"\n", y(i), esc(name))
	}
	// Time axis with round ticks.
	axisY := svgTop + svgLaneH*len(tl.Lanes)
	step := niceStep(tl.Duration)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#5f6368"/>`+"\n", svgLeft, axisY, svgWidth-svgRight, axisY)
	for d := time.Duration(0); d <= tl.Duration; d += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#dadce0"/>`, x(d), svgTop, x(d), axisY+4)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle" font-family="sans-serif">%s</text>`+"\n", x(d), axisY+16, esc(d.String()))
	}
	for _, m := range tl.Marks {
		cx, cy, c := x(m.At), y(m.Lane), markColor[m.Kind]
		title := fmt.Sprintf("<title>+%s %s</title>", m.At.Round(time.Microsecond), esc(m.Text))
		switch m.Kind {
		case MarkOp:
			fmt.Fprintf(&b, `<rect class="op" x="%.1f" y="%.1f" width="1" height="8" fill="%s">%s</rect>`, cx, cy-4, c, title)
		case MarkCommit:
			fmt.Fprintf(&b, `<rect class="commit" x="%.1f" y="%.1f" width="2" height="12" fill="%s">%s</rect>`, cx-1, cy-6, c, title)
		case MarkError:
			fmt.Fprintf(&b, `<circle class="error" cx="%.1f" cy="%.1f" r="4" fill="%s">%s</circle>`, cx, cy, c, title)
		case MarkFault:
			fmt.Fprintf(&b, `<polygon class="fault" points="%.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="%s">%s</polygon>`, cx, cy-6, cx-5, cy+5, cx+5, cy+5, c, title)
		case MarkClear:
			fmt.Fprintf(&b, `<line class="clear" x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-dasharray="4 3">%s</line>`, cx, svgTop, cx, axisY, c, title)
		case MarkSpawn:
			fmt.Fprintf(&b, `<rect class="spawn" x="%.1f" y="%.1f" width="6" height="6" fill="%s">%s</rect>`, cx-3, cy-3, c, title)
		case MarkEvidence:
			fmt.Fprintf(&b, `<polygon class="evidence" points="%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="%s">%s</polygon>`, cx, cy-6, cx+5, cy, cx, cy+6, cx-5, cy, c, title)
		}
		b.WriteByte('\n')
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceStep picks an axis step giving 5-10 ticks.
func niceStep(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Second
	}
	raw := float64(d) / 8
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return time.Duration(m * p)
		}
	}
	return time.Duration(10 * p)
}

func esc(s string) string { return html.EscapeString(s) }
