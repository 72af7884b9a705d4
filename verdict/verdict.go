// Package verdict is the one judge of a matrix cell: from the oracle's
// results, the cell's expectation (as data) and the facts of the run (faults
// fired, the scenario's precondition, a script error or deadline, hung
// processes) it decides the cell's outcome. The runner, `chaosrun check`,
// `chaosrun replay`, the matrix and the properties all call Judge, so a saved
// cell re-judged from its report.json gets the verdict the run gave.
//
// The rule it serves is the oracle's: every injected fault is tolerated or
// detected, never silent wrong data. A verdict that can be wrong is worse
// than none, so whenever the run did not give the judge what it needs — the
// fault never fired, the script failed or ran out of time, a checker the
// expectation relies on could not decide — the verdict is Inconclusive, never
// held and never reproduced.
//
// # Where each idea lives
//
// An expectation is data: Expect (a profile's story), Pinned (a finding
// measured instead) and Rate, gathered per cell into Cell; the scenarios
// declare them (scenarios/scn_*.go) and report.json carries them, so
// `chaosrun check` re-judges a saved run without the catalog. Judge decides
// one run; Aggregate decides a cell over --repeat runs. The checkers
// themselves are package oracle's, named by its constants.
package verdict

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sqlchaos/sqlchaos/oracle"
)

// Verdict is a cell's outcome.
type Verdict string

// The verdicts of a cell.
const (
	// Reproduced: the profile broke exactly where the story says it does.
	Reproduced Verdict = "reproduced"
	// Held: the profile held as the story says (or detected the damage,
	// for a fix that detects rather than prevents).
	Held Verdict = "held"
	// Finding: the run shows what was measured where measurement
	// contradicts the story, as the scenario records it for this cell.
	Finding Verdict = "finding"
	// Unexpected: nothing predicted this; the evidence says how it differs.
	Unexpected Verdict = "unexpected"
	// Inconclusive: the run could not decide (precondition not met, script
	// failed or hit its deadline, a needed checker undecided).
	Inconclusive Verdict = "inconclusive"
	// Hung: a process of the run had to be killed at its deadline: a
	// liveness finding with the plan that caused it.
	Hung Verdict = "hung"
	// Observed: the scenario states no expectation for this profile; the
	// results are reported as they are.
	Observed Verdict = "observed"
)

// All lists the verdicts in report order.
var All = []Verdict{Reproduced, Held, Finding, Unexpected, Inconclusive, Hung, Observed}

// OK reports whether v lets a gate pass: reproduced, held, finding, and
// observed (a cell run under a profile its scenario states nothing for).
func (v Verdict) OK() bool {
	switch v {
	case Reproduced, Held, Finding, Observed:
		return true
	}
	return false
}

// Expect is what a scenario claims for one profile (the story), or, inside
// a Finding, what was measured instead.
type Expect struct {
	// Fail lists the checkers that must fail. Empty means the profile must
	// hold: no checker may fail.
	Fail []string `json:"fail,omitempty"`
	// Pass lists checkers that must pass outright (inconclusive is not
	// enough): the ones that prove the fix worked.
	Pass []string `json:"pass,omitempty"`
	// Evidence narrows a listed checker's verdict to the story's class: the
	// checker matches only when one of its evidence lines contains one of
	// the substrings (a resurrection checker failing only on missing rows
	// has not shown a deleted row coming back).
	Evidence map[string][]string `json:"evidence,omitempty"`
	// Detects marks a fix that detects the damage rather than preventing
	// it: Fail lists the damage, Pass the detection, and a met expectation
	// is Held. Detection must then name, per checker, the evidence that
	// shows the detection happened (a TORN_EXTEND report); without it the
	// cell is inconclusive, and any failing checker outside the expectation
	// makes it unexpected.
	Detects   bool                `json:"detects,omitempty"`
	Detection map[string][]string `json:"detection,omitempty"`
	// Allow lists checkers outside Fail and Pass that may fail without
	// contradicting the expectation (another class the same run shows).
	// Besides these, a story that expects something to fail (and does not
	// claim detection) tolerates any other failure, noted as collateral;
	// a hold, a detection and a finding tolerate none.
	Allow []string `json:"allow,omitempty"`
	// Why says, in one line, what is predicted.
	Why string `json:"why,omitempty"`
}

// Pinned is a known finding pinned to a cell: where measurement
// contradicts the story, what the runs show instead and why.
type Pinned struct {
	// Measured restates what the runs show, as an expectation over the
	// checkers (what must fail, what must pass, the evidence it must show).
	Measured Expect `json:"measured"`
	// What says what was measured, in a sentence.
	What string `json:"what"`
	// Why explains the contradiction (the mechanism).
	Why string `json:"why"`
}

// Cell is the expectation of one (scenario, profile, driver) cell.
type Cell struct {
	// Story is the scenario's claim for the profile; nil when it states
	// none.
	Story *Expect `json:"story,omitempty"`
	// Finding, when set, replaces the story as what the cell must show.
	Finding *Pinned `json:"finding,omitempty"`
	// Rate, when set, makes this a rate cell: across repeated runs the
	// target verdict must come out at least Rate.Min of Rate.Of times.
	Rate *Rate `json:"rate,omitempty"`
}

// Rate is the reproduction rate a rate cell must reach.
type Rate struct {
	Min int `json:"min"`
	Of  int `json:"of"`
}

func (r Rate) String() string { return fmt.Sprintf("≥ %d of %d", r.Min, r.Of) }

// Target is the verdict a run of the cell is meant to give.
func (c Cell) Target() Verdict {
	switch {
	case c.Finding != nil:
		return Finding
	case c.Story == nil:
		return Observed
	case len(c.Story.Fail) > 0 && !c.Story.Detects:
		return Reproduced
	default:
		return Held
	}
}

// held is the expectation a run of the cell is held to: the finding's
// measurement when one is pinned, else the story (nil when none).
func (c Cell) held() *Expect {
	if c.Finding != nil {
		return &c.Finding.Measured
	}
	return c.Story
}

// Wants maps each checker the cell names to the verdict it must get: the
// finding's when one is pinned, else the story's.
func (c Cell) Wants() map[string]oracle.Verdict {
	e := c.held()
	m := map[string]oracle.Verdict{}
	if e == nil {
		return m
	}
	for _, n := range e.Pass {
		m[n] = oracle.Pass
	}
	for _, n := range e.Fail {
		m[n] = oracle.Fail
	}
	return m
}

// Facts are what the run itself tells the judge, beyond the checkers.
type Facts struct {
	// Fired counts the faults that fired (delays excluded).
	Fired int `json:"fired"`
	// Precondition is "" when the scenario's precondition held, else why
	// it did not (the main rule never fired, the flip never happened).
	Precondition string `json:"precondition,omitempty"`
	// ScriptErr is the scenario script's error, if any.
	ScriptErr string `json:"script_err,omitempty"`
	// Deadline is set when the script was cut by its wall-time limit.
	Deadline bool `json:"deadline,omitempty"`
	// Hung names the processes killed at their deadline.
	Hung []string `json:"hung,omitempty"`
	// Incomplete lists run inputs the oracle could not read.
	Incomplete []string `json:"incomplete,omitempty"`
}

// Outcome is a judged cell.
type Outcome struct {
	Verdict Verdict `json:"verdict"`
	Why     string  `json:"why"`
}

// Judge decides one run of a cell. The order of the rules is the order of
// trust: a hung or unfinished run, or one whose precondition failed, proves
// nothing about the data, whatever the checkers say.
func Judge(results []oracle.Result, c Cell, f Facts) Outcome {
	o := judge(results, c, f)
	if c.Rate != nil && o.Verdict == Unexpected && missed(results, c) {
		return Outcome{Inconclusive, fmt.Sprintf("rate cell (%s): the class did not show in this run, and nothing else went wrong (%s)", c.Rate, o.Why)}
	}
	return o
}

// missed reports whether a run of a rate cell differs from its target only
// in that the checkers the target needs to fail passed: the class did not
// show this time, and no checker failed that the target does not allow.
func missed(results []oracle.Result, c Cell) bool {
	e := c.held()
	if e == nil || len(e.Fail) == 0 {
		return false
	}
	for _, r := range results {
		switch {
		case slices.Contains(e.Fail, r.Checker):
			if r.Verdict == oracle.Fail {
				return false // it did show (the run differs some other way)
			}
		case r.Verdict == oracle.Fail && !slices.Contains(e.Allow, r.Checker):
			return false
		case r.Verdict != oracle.Pass && slices.Contains(e.Pass, r.Checker):
			return false
		}
	}
	return true
}

// judge is Judge without the rate-cell rule.
func judge(results []oracle.Result, c Cell, f Facts) Outcome {
	switch {
	case len(f.Hung) > 0:
		return Outcome{Hung, strings.Join(f.Hung, "; ") + " (the plan that caused it is the run's plan.txt)"}
	case f.ScriptErr != "":
		return Outcome{Inconclusive, "the scenario script failed: " + f.ScriptErr}
	case f.Deadline:
		return Outcome{Inconclusive, "the scenario script hit its wall-time limit; a cut run is not judged"}
	case len(f.Incomplete) > 0:
		return Outcome{Inconclusive, "the run directory is incomplete: " + strings.Join(f.Incomplete, "; ")}
	case f.Precondition != "":
		return Outcome{Inconclusive, "precondition not met: " + f.Precondition}
	}
	if c.Finding != nil {
		m := match(results, c.Finding.Measured, true)
		// A story of breakage met after all is news (the class reproduces
		// where the finding says it does not); a hold story met inside a
		// finding's broader shape is not.
		storyMet := c.Story != nil && len(c.Story.Fail) > 0 && !c.Story.Detects && match(results, *c.Story, false).met()
		switch {
		case storyMet:
			return Outcome{Unexpected, "finding pinned (" + c.Finding.What + "), but the story's expectation (" + c.Story.String() +
				") was met: re-measure and unpin the finding"}
		case m.met():
			return Outcome{Finding, "finding: " + c.Finding.What}
		case len(m.contra) == 0:
			return Outcome{Inconclusive, "finding pinned, but " + strings.Join(m.undecided, "; ")}
		}
		return Outcome{Unexpected, "finding pinned (" + c.Finding.What + ") but the run differs: " + strings.Join(m.contra, "; ")}
	}
	if c.Story == nil {
		why := "no expectation for this profile"
		if f := failing(results); len(f) > 0 {
			why += "; failed: " + strings.Join(f, ", ")
		}
		return Outcome{Observed, why}
	}
	e := *c.Story
	m := match(results, e, false)
	switch {
	case len(m.contra) > 0:
		return Outcome{Unexpected, strings.Join(m.contra, "; ")}
	case len(m.undecided) > 0:
		return Outcome{Inconclusive, strings.Join(m.undecided, "; ")}
	case len(e.Fail) > 0 && e.Detects:
		return Outcome{Held, "held by detection: the damage is there (" + strings.Join(e.Fail, ", ") + ") and was detected (" + strings.Join(keys(e.Detection), ", ") + ")"}
	case len(e.Fail) > 0:
		why := "failed as expected: " + strings.Join(e.Fail, ", ")
		if len(m.extra) > 0 {
			why += "; also failed: " + strings.Join(m.extra, ", ")
		}
		return Outcome{Reproduced, why}
	case len(m.extra) > 0:
		return Outcome{Held, fmt.Sprintf("held: %d expected passes met; failed, as the expectation allows: %s", len(e.Pass), strings.Join(m.extra, ", "))}
	default:
		return Outcome{Held, fmt.Sprintf("held: no checker failed, %d expected passes met", len(e.Pass))}
	}
}

// matched is how results compare with an expectation.
type matched struct {
	contra    []string // contradictions: the run shows something else
	undecided []string // a listed checker could not decide
	extra     []string // unlisted checkers that failed, where allowed
}

func (m matched) met() bool { return len(m.contra) == 0 && len(m.undecided) == 0 }

func match(results []oracle.Result, e Expect, finding bool) matched {
	var m matched
	got := map[string]oracle.Result{}
	for _, r := range results {
		got[r.Checker] = r
	}
	want := map[string]oracle.Verdict{}
	for _, n := range e.Pass {
		want[n] = oracle.Pass
	}
	for _, n := range e.Fail {
		want[n] = oracle.Fail
	}
	for _, n := range keys(want) {
		w := want[n]
		r, ok := got[n]
		switch {
		case !ok:
			m.contra = append(m.contra, fmt.Sprintf("%s: expected %s, not run", n, w))
		case r.Verdict == oracle.Inconclusive:
			m.undecided = append(m.undecided, fmt.Sprintf("%s: expected %s, inconclusive (%s)", n, w, r.Summary))
		case r.Verdict != w:
			m.contra = append(m.contra, fmt.Sprintf("%s: expected %s, got %s (%s)", n, w, r.Verdict, r.Summary))
		case !shows(r, e.Evidence[n]):
			m.contra = append(m.contra, fmt.Sprintf("%s %s, but not as predicted: none of its evidence shows %q (%s)",
				n, r.Verdict, strings.Join(e.Evidence[n], `" or "`), r.Summary))
		}
	}
	if e.Detects {
		for _, n := range keys(e.Detection) {
			if r, ok := got[n]; !ok || !shows(r, e.Detection[n]) {
				m.undecided = append(m.undecided, fmt.Sprintf("no detection in the evidence: %s shows none of %q", n, strings.Join(e.Detection[n], `" or "`)))
			}
		}
	}
	collateral := len(e.Fail) > 0 && !e.Detects && !finding
	for _, r := range results {
		if _, listed := want[r.Checker]; listed || r.Verdict != oracle.Fail {
			continue
		}
		if collateral || slices.Contains(e.Allow, r.Checker) {
			m.extra = append(m.extra, r.Checker)
			continue
		}
		m.contra = append(m.contra, fmt.Sprintf("%s: failed, outside the expectation (%s)", r.Checker, r.Summary))
	}
	return m
}

// shows reports whether one of r's evidence lines (or its summary)
// contains one of subs; an empty subs always shows.
func shows(r oracle.Result, subs []string) bool {
	if len(subs) == 0 {
		return true
	}
	for _, s := range subs {
		if strings.Contains(r.Summary, s) {
			return true
		}
		for _, ev := range r.Evidence {
			if strings.Contains(ev.Text, s) {
				return true
			}
		}
	}
	return false
}

func failing(results []oracle.Result) []string {
	var out []string
	for _, r := range results {
		if r.Verdict == oracle.Fail {
			out = append(out, r.Checker)
		}
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// String renders an expectation in one line ("fail: a, b", "hold (pass:
// a)", "hold by detection (...)").
func (e Expect) String() string {
	switch {
	case len(e.Fail) > 0 && e.Detects:
		return "hold by detection (damage: " + strings.Join(e.Fail, ", ") + "; detected by: " + strings.Join(keys(e.Detection), ", ") + ")"
	case len(e.Fail) > 0:
		return "fail: " + strings.Join(e.Fail, ", ")
	case len(e.Pass) > 0:
		return "hold (pass: " + strings.Join(e.Pass, ", ") + ")"
	}
	return "hold"
}

// String renders the cell's expectation in one line.
func (c Cell) String() string {
	var s string
	switch {
	case c.Finding != nil:
		s = "finding: " + c.Finding.Measured.String()
	case c.Story == nil:
		s = "none"
	default:
		s = c.Story.String()
	}
	if c.Rate != nil {
		s += " (rate " + c.Rate.String() + ")"
	}
	return s
}

// Tally counts the verdicts of repeated runs of one cell.
type Tally map[Verdict]int

// Aggregate judges a cell from the verdicts of its repeated runs. A cell
// whose runs do not all agree is unexpected ("flips"), unless it is a rate
// cell: then its target verdict must come out at least Rate.Min of every
// Rate.Of runs (scaled to the runs made), and the other runs must be
// inconclusive (Judge makes a run in which only the class failed to show
// inconclusive) — never unexpected or hung. Fewer than Rate.Of runs that
// fall short cannot judge a rate: the cell is inconclusive.
func Aggregate(c Cell, runs []Verdict) Outcome {
	t := Tally{}
	for _, v := range runs {
		t[v]++
	}
	n := len(runs)
	if n == 0 {
		return Outcome{Inconclusive, "no run"}
	}
	target := c.Target()
	if c.Rate == nil {
		if len(t) == 1 {
			return Outcome{runs[0], fmt.Sprintf("%d of %d runs %s", n, n, runs[0])}
		}
		return Outcome{Unexpected, "flips: " + t.String() + " (not a declared rate cell)"}
	}
	for _, v := range []Verdict{Unexpected, Hung} {
		if t[v] > 0 {
			return Outcome{v, fmt.Sprintf("rate cell %s: %s", c.Rate, t)}
		}
	}
	need := (c.Rate.Min*n + c.Rate.Of - 1) / c.Rate.Of // ceil(min/of × n)
	if t[target] >= need {
		return Outcome{target, fmt.Sprintf("rate cell: %d of %d runs %s (needs %s)", t[target], n, target, c.Rate)}
	}
	if n < c.Rate.Of {
		return Outcome{Inconclusive, fmt.Sprintf("rate cell: %d of %d runs %s, too few runs to judge a rate of %s (run --repeat %d): %s",
			t[target], n, target, c.Rate, c.Rate.Of, t)}
	}
	return Outcome{Unexpected, fmt.Sprintf("rate cell: only %d of %d runs %s (needs %s): %s", t[target], n, target, c.Rate, t)}
}

// String renders a tally in verdict order ("4 reproduced, 1 inconclusive").
func (t Tally) String() string {
	var parts []string
	for _, v := range All {
		if t[v] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", t[v], v))
		}
	}
	return strings.Join(parts, ", ")
}
