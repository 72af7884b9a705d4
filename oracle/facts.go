package oracle

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
)

// facts are derived once from the histories and the trace.
type facts struct {
	t0     int64 // earliest timestamp in the run
	tEnd   int64 // latest
	bounds Bounds
	fired  []trace.Record // faults that fired (delay faults excluded)
	errs   []history.Event
	// acks holds every acknowledged commit, sorted by (seq, T, proc). One
	// seq may be acknowledged by several processes: when a -wal is
	// unlinked under a live writer, processes that open the board later
	// continue the counter from the main file while the writer continues
	// it in its deleted WAL (a forked history). Nothing here keeps one
	// commit per seq.
	acks  []commitEv
	bySeq map[int64][]commitEv // acks by seq, in acks order
	procs map[int]string       // pid -> proc
	// clearT is when the faults were last cleared (trace mark
	// "faults-cleared", or an empty plan loaded over a plan with rules),
	// 0 if never. The mount's initial empty plan is no clearing.
	clearT int64
	clearE Evidence
	armed  bool // a plan with rules was loaded at some point
	// scale is board seconds per wall second (Meta.Scale; 0 = 1).
	scale float64
	// opened maps a path to the processes that opened or created it, with
	// the first time each did.
	opened map[string]map[int]int64
}

// commitEv is an acknowledged commit: its event and what it changed.
type commitEv struct {
	history.Event
	history.Commit
}

// The rows and transitions of a commit are the history's own types.
type (
	transitionRef = history.Transition
	rowRef        = history.RowRef
)

// MarkFaultsCleared is the trace mark a runner writes when it clears the
// fault plan for good.
const MarkFaultsCleared = "faults-cleared"

func (in *Input) facts() *facts {
	in.once.Do(func() { in.f = buildFacts(in) })
	return in.f
}

func buildFacts(in *Input) *facts {
	f := &facts{bySeq: map[int64][]commitEv{}, procs: map[int]string{}, bounds: in.Meta.Bounds.withDefaults(),
		scale: in.Meta.Scale, opened: map[string]map[int]int64{}}
	see := func(t int64) {
		if t == 0 {
			return
		}
		if f.t0 == 0 || t < f.t0 {
			f.t0 = t
		}
		if t > f.tEnd {
			f.tEnd = t
		}
	}
	for _, e := range in.Events {
		see(e.T)
		if e.Pid != 0 && e.Proc != "" {
			if _, ok := f.procs[e.Pid]; !ok {
				f.procs[e.Pid] = e.Proc
			}
		}
		if e.Err != "" {
			f.errs = append(f.errs, e)
		}
	}
	for _, e := range history.Acknowledged(in.Events) {
		c := commitEv{Event: e, Commit: e.Facts().Commit}
		f.acks = append(f.acks, c)
		f.bySeq[c.Seq] = append(f.bySeq[c.Seq], c)
	}
	armed := false // the last plan loaded had rules
	for _, r := range in.Trace {
		see(r.T)
		switch r.Kind {
		case trace.KindOp:
			if (r.Op == trace.OpOpen || r.Op == trace.OpCreate) && r.Result == "ok" && r.Pid != 0 {
				m := f.opened[r.Path]
				if m == nil {
					m = map[int]int64{}
					f.opened[r.Path] = m
				}
				if _, ok := m[int(r.Pid)]; !ok {
					m[int(r.Pid)] = r.T
				}
			}
			if r.Rule > 0 && !strings.HasPrefix(r.Fault, "delay") {
				f.fired = append(f.fired, r)
			}
		case trace.KindMark:
			if r.Mark == MarkFaultsCleared {
				f.clearT, f.clearE = r.T, traceEv(r, "mark "+r.Mark)
			}
		case trace.KindPlan:
			rules := planRules(r.Plan)
			if rules == 0 && armed {
				f.clearT, f.clearE = r.T, traceEv(r, "empty plan loaded over a plan with rules")
			}
			armed = rules > 0
			f.armed = f.armed || armed
		}
	}
	return f
}

// planRules counts the rules of a canonical plan text (non-blank lines
// that are not comments).
func planRules(p string) int {
	n := 0
	for _, l := range strings.Split(p, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			n++
		}
	}
	return n
}

// rel renders t as an offset from the start of the run.
func (f *facts) rel(t int64) string {
	if t == 0 {
		return "?"
	}
	return fmt.Sprintf("+%v", time.Duration(t-f.t0).Round(time.Millisecond))
}

// forks returns the seqs acknowledged more than once, in order: a forked
// history. One process cannot commit twice under one counter value in a
// single history, and two processes cannot commit under the same one, so
// at most one of the acknowledgements can be the ledger's row for that seq.
// (The same event read twice, same proc, pid, op and time, counts once.)
func (f *facts) forks() []int64 {
	var out []int64
	prev := int64(-1)
	for _, c := range f.acks {
		if c.Seq == prev {
			continue
		}
		prev = c.Seq
		cs := f.bySeq[c.Seq]
		for _, d := range cs[1:] {
			if d.Proc != cs[0].Proc || d.Pid != cs[0].Pid || d.Op != cs[0].Op || d.T != cs[0].T {
				out = append(out, c.Seq)
				break
			}
		}
	}
	return out
}

// matches reports whether ledger row r can be the row acknowledged commit c
// wrote: it names c's process and, where both are recorded, c's operation,
// and it was written no later than c was acknowledged (the ledger's t is
// taken inside the transaction, on the same clock).
func (r ledgerRow) matches(c commitEv) bool {
	return r.Seq == c.Seq && r.Proc == c.Proc && (r.Op == "" || c.Op == "" || r.Op == c.Op) && (r.T == 0 || r.T <= c.T)
}

// confirmed returns, per acknowledged commit (f.acks index), whether the
// final ledger holds it: the ledger row with its seq matches it (see
// matches), and of several matching acknowledgements of one seq only the
// first acknowledged after the row was written. Every other acknowledged
// commit is lost.
func (f *facts) confirmed(fin *final) []bool {
	out := make([]bool, len(f.acks))
	best := map[int64]int{}
	for i, c := range f.acks {
		r, ok := fin.ledger[c.Seq]
		if !ok || !r.matches(c) {
			continue
		}
		if j, ok := best[c.Seq]; !ok || c.T < f.acks[j].T {
			best[c.Seq] = i
		}
	}
	for _, i := range best {
		out[i] = true
	}
	return out
}

// unlogged returns the final ledger's seqs whose row no acknowledged
// commit matches: commits that made it into the database unacknowledged.
func (f *facts) unlogged(fin *final) []int64 {
	var out []int64
	for s, r := range fin.ledger {
		found := false
		for _, c := range f.bySeq[s] {
			if r.matches(c) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func traceEv(r trace.Record, text string) Evidence {
	return Evidence{Source: "trace", Seq: r.Seq, Pid: int(r.Pid), T: r.T, Text: text}
}

func histEv(e history.Event, text string) Evidence {
	return Evidence{Source: "history", Seq: uint64(max(e.Seq, 0)), Proc: e.Proc, Pid: e.Pid, T: e.T, Text: text}
}

// describe renders a trace op record for evidence.
func describe(r trace.Record) string {
	s := fmt.Sprintf("%s %s", r.Op, r.Path)
	if r.Op == trace.OpWrite || r.Op == trace.OpRead {
		s += fmt.Sprintf(" off=%d len=%d n=%d", r.Off, r.Len, r.N)
	}
	if r.Result != "" && r.Result != "ok" {
		s += " -> " + r.Result
	}
	if r.Rule > 0 {
		s += fmt.Sprintf(" [rule %d: %s]", r.Rule, r.Fault)
	}
	return s
}

func errText(e history.Event) string {
	s := e.Op
	if s != "" {
		s += ": "
	}
	if e.Class != "" {
		s += e.Class + " "
	}
	if e.Code != 0 {
		s += fmt.Sprintf("(%d) ", e.Code)
	}
	return s + e.Err
}

func isDB(p string) bool      { return strings.HasSuffix(path.Base(p), ".db") }
func isSidecar(p string) bool { return strings.HasSuffix(p, "-wal") || strings.HasSuffix(p, "-shm") }
func plural(n int, s string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", s)
	}
	return fmt.Sprintf("%d %ss", n, s)
}

func fmtDur(ns int64) string { return time.Duration(ns).Round(time.Millisecond).String() }
