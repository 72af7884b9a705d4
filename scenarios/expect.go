package scenarios

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/verdict"
)

// Verdict is a cell's outcome (the verdict package's).
type Verdict = verdict.Verdict

// The verdicts of a cell (see package verdict).
const (
	Reproduced   = verdict.Reproduced
	Held         = verdict.Held
	Finding      = verdict.Finding
	Unexpected   = verdict.Unexpected
	Inconclusive = verdict.Inconclusive
	Hung         = verdict.Hung
	Observed     = verdict.Observed
)

// Expect is what a scenario claims for one profile (see verdict.Expect).
type Expect = verdict.Expect

// Outcome is a judged cell: its verdict and why (see verdict.Outcome).
type Outcome = verdict.Outcome

// Precondition says whether a finished run did what the scenario needs
// before its verdict means anything: "" when it did, else why not. It reads
// the run as the oracle does (histories, trace, checker results), so
// `chaosrun check` can re-evaluate it.
type Precondition func(in *oracle.Input, results []oracle.Result) string

// Cell returns the expectation of the (profile, driver) cell: the story
// for the profile, and the finding pinned for "profile/driver" (or for the
// profile on every driver), with the rate declared the same way.
func (sc *Scenario) Cell(profile, driver string) verdict.Cell {
	var c verdict.Cell
	if e, ok := sc.Expect[profile]; ok {
		c.Story = &e
	}
	for _, k := range []string{profile + "/" + driver, profile} {
		if p, ok := sc.Findings[k]; ok {
			c.Finding = &p
			break
		}
	}
	for _, k := range []string{profile + "/" + driver, profile} {
		if r, ok := sc.Rates[k]; ok {
			c.Rate = &r
			break
		}
	}
	if sc.unguardedRollback(profile) {
		if c.Story != nil {
			e := allowShadow(*c.Story)
			c.Story = &e
		}
		if c.Finding != nil {
			p := *c.Finding
			p.Measured = allowShadow(p.Measured)
			c.Finding = &p
		}
	}
	return c
}

// unguardedRollback reports whether the profile (with the scenario's own
// sets) runs write_txn=legacy: the unguarded ROLLBACK whose "cannot
// rollback" replaces the cause (fix 3's class). Such a profile shows that
// class wherever SQLite rolls a transaction back by itself, with or
// without an injected fault (measured under load, 1 mattn run in 5, in
// page-count-wal-false-alarm and header-peek-lock-drop), so error-fidelity
// may fail in every cell of it that does not judge error-fidelity itself;
// rollback-shadow and soak do. A run's own --set is not consulted: a
// planted write_txn=legacy under hardened stays a failure.
func (sc *Scenario) unguardedRollback(profile string) bool {
	sw, err := kanbancore.ProfileByName(profile)
	if err != nil || sw.ApplySets(sc.Sets) != nil {
		return false
	}
	return sw.WriteTxn == "legacy"
}

// allowShadow returns e with error-fidelity allowed to fail, unless e
// already names it.
func allowShadow(e Expect) Expect {
	if slices.Contains(e.Fail, oracle.ErrorFidelity) || slices.Contains(e.Pass, oracle.ErrorFidelity) || slices.Contains(e.Allow, oracle.ErrorFidelity) {
		return e
	}
	e.Allow = append(slices.Clone(e.Allow), oracle.ErrorFidelity)
	return e
}

// precondition evaluates the scenario's precondition, and the one every
// scenario with a main plan shares: some fault of it fired.
func (sc *Scenario) precondition(in *oracle.Input, results []oracle.Result, planUsed bool) string {
	if planUsed && firedRules(in) == 0 {
		return "no rule of the plan fired"
	}
	if sc.Pre != nil {
		return sc.Pre(in, results)
	}
	return ""
}

// firedRules counts the ops in the trace on which a rule fired (delays
// included: a scenario whose plan only slows the disk needs that to fire),
// and the power cuts (a timed cut fires on no op).
func firedRules(in *oracle.Input) int {
	n := 0
	for _, r := range in.Trace {
		if r.Kind == trace.KindOp && r.Rule > 0 || r.Kind == faultfs.TraceKindPowerCut {
			n++
		}
	}
	return n
}

// countEvents counts history events of type typ (and op, when not "") by
// processes whose name starts with proc ("" = any).
func countEvents(in *oracle.Input, proc, typ, op string) int {
	n := 0
	for _, e := range in.Events {
		if e.Type == typ && (op == "" || e.Op == op) && strings.HasPrefix(e.Proc, proc) {
			n++
		}
	}
	return n
}

// atLeast is a Precondition: at least n events of type typ (and op) by
// processes named proc*.
func atLeast(n int, proc, typ, op, what string) Precondition {
	return func(in *oracle.Input, _ []oracle.Result) string {
		if got := countEvents(in, proc, typ, op); got < n {
			return fmt.Sprintf("%s: %d, need at least %d", what, got, n)
		}
		return ""
	}
}

// all joins preconditions: the first that fails explains.
func allOf(ps ...Precondition) Precondition {
	return func(in *oracle.Input, rs []oracle.Result) string {
		for _, p := range ps {
			if why := p(in, rs); why != "" {
				return why
			}
		}
		return ""
	}
}

// resultOf finds a checker's result.
func resultOf(rs []oracle.Result, name string) (oracle.Result, bool) {
	for _, r := range rs {
		if r.Checker == name {
			return r, true
		}
	}
	return oracle.Result{}, false
}

// evidenceShows is a Precondition: the checker's evidence contains sub.
func evidenceShows(checker, sub, what string) Precondition {
	return func(_ *oracle.Input, rs []oracle.Result) string {
		r, ok := resultOf(rs, checker)
		if !ok {
			return checker + " did not run"
		}
		for _, e := range r.Evidence {
			if strings.Contains(e.Text, sub) {
				return ""
			}
		}
		return what + " (" + checker + ": " + r.Summary + ")"
	}
}
