package prop

import (
	"context"
	"fmt"
	"time"

	"github.com/leanovate/gopter"
)

// Evaluation is the result of evaluating a property on one value.
type Evaluation struct {
	Fail bool   // the property is violated
	Why  string // what was violated (or, passing, what was seen)
	// Err is a setup error (no FUSE, a mount that failed): the search
	// stops and reports it; it is never a verdict.
	Err error
	// Dir is the run directory an evaluation left behind, if any.
	Dir string
	// Fired counts the faults that fired in the evaluation (scenario
	// runs); Inconclusive marks an evaluation that could not observe the
	// property (its script failed or was cut): the tests require that some
	// cases were conclusive and that faults fired, so a property cannot
	// pass vacuously.
	Fired        int
	Inconclusive bool
}

// Search runs a property over generated values within a budget, shrinks
// the first failure with the generator's shrinker and re-runs the shrunk
// failure to count how often it reproduces.
//
// Shrinking evaluates the shrinker's candidates in order and moves to the
// first one that fails, as gopter's own ForAll does, but under a budget of
// evaluations and wall time (an evaluation may be a whole multi-process
// scenario run), remembering every candidate already evaluated. A candidate
// is accepted on one observed failure: a violation seen once is real even if
// cross-process timing does not repeat it, and Reruns says how repeatable it
// is.
type Search struct {
	Name   string     // property name, for logs and found files
	Gen    gopter.Gen // the generator (its GenResult carries the shrinker)
	Seed   int64
	Budget Budget
	// Check evaluates the property on v. attempt counts evaluations.
	Check func(ctx context.Context, v interface{}) Evaluation
	// Key identifies a value for the memo (e.g. the canonical plan text);
	// nil uses fmt's %v.
	Key  func(v interface{}) string
	Logf func(format string, args ...any)
}

// searchOf is a Search over values of type C: check judges one, and its
// String keys the memo.
func searchOf[C fmt.Stringer](name string, gen gopter.Gen, seed int64, b Budget, check func(context.Context, C) Evaluation, logf func(string, ...any)) *Search {
	return &Search{
		Name:   name,
		Gen:    gen,
		Seed:   seed,
		Budget: b,
		Check:  func(ctx context.Context, v interface{}) Evaluation { return check(ctx, v.(C)) },
		Key:    func(v interface{}) string { return v.(C).String() },
		Logf:   logf,
	}
}

// Failure is what a Search found.
type Failure struct {
	Property   string
	Seed       int64 // the run's seed
	Case       int   // index of the failing case
	CaseSeed   int64 // the seed that regenerates it (Sample(Gen, CaseSeed))
	Original   interface{}
	First      Evaluation
	Shrunk     interface{}
	Last       Evaluation    // the shrunk value's failing evaluation
	Shrinks    int           // accepted shrink steps
	ShrinkRuns int           // evaluations spent shrinking
	ShrinkTime time.Duration // wall time spent shrinking
	Exhausted  bool          // the shrinker ran out of candidates (a local minimum), not the budget
	Reruns     int           // re-runs of the shrunk value
	Reproduced int           // how many of them failed again
	// Chain holds every accepted value, the original first; StepsBack
	// counts the steps given up because they did not reproduce reliably
	// (Budget.MinRepro).
	Chain     []interface{}
	StepsBack int
}

// Stats counts a search's work.
type Stats struct {
	Cases      int           // cases generated and evaluated
	Conclusive int           // cases whose evaluation was conclusive
	Fired      int           // faults fired over the cases (not the shrinks)
	Evals      int           // evaluations in all
	Wall       time.Duration // total wall time
	// Flaky counts failing cases set aside because neither they nor any
	// shrink step reproduced reliably in their re-runs; the search went on
	// to look for a reproducible failure (and returns the first flaky one
	// when it finds none: a property that failed once has failed).
	Flaky int
}

// Vacuous says why a finished search proved nothing (no case ran, none was
// conclusive, or, when faults must fire, none did), or "".
func (st Stats) Vacuous(needFaults bool) string {
	switch {
	case st.Cases == 0:
		return "no case ran"
	case st.Conclusive == 0:
		return fmt.Sprintf("none of %d cases was conclusive", st.Cases)
	case needFaults && st.Fired == 0:
		return fmt.Sprintf("no fault fired in %d cases", st.Cases)
	}
	return ""
}

// Run runs the search. It returns the failure found (nil if every case
// passed), the stats, and a setup error if one stopped it. A failure that
// does not reproduce reliably even unshrunk is set aside (Stats.Flaky)
// while later cases may give one that does; if none does, the first flaky
// failure is returned.
func (s *Search) Run(ctx context.Context) (failure *Failure, st Stats, err error) {
	start := time.Now()
	defer func() { st.Wall = time.Since(start) }()
	key, logf := s.keyFunc(), s.logFunc()
	eval := s.memoised(ctx, key, &st)
	var flaky *Failure
	for i := 0; i < s.Budget.Cases; i++ {
		if ctx.Err() != nil {
			return nil, st, ctx.Err()
		}
		cs := CaseSeed(s.Seed, s.Name, i)
		v, res := Sample(s.Gen, cs)
		if v == nil || (res.Sieve != nil && !res.Sieve(v)) {
			continue
		}
		st.Cases++
		o, _ := eval(v)
		if o.Err != nil {
			return nil, st, o.Err
		}
		st.Fired += o.Fired
		if !o.Inconclusive {
			st.Conclusive++
		}
		logf("%s case %d (case seed %d): fail=%v %s\n  %s", s.Name, i, cs, o.Fail, o.Why, key(v))
		if !o.Fail {
			continue
		}
		f := &Failure{Property: s.Name, Seed: s.Seed, Case: i, CaseSeed: cs, Original: v, First: o, Shrunk: v, Last: o, Chain: []interface{}{v}}
		if err := s.shrink(ctx, res, f, eval, logf); err != nil {
			return f, st, err
		}
		reliable, err := s.confirm(ctx, f, &st, logf)
		if err != nil {
			return f, st, err
		}
		if !reliable && len(f.Chain) < 2 && ctx.Err() == nil {
			st.Flaky++
			if flaky == nil {
				flaky = f
			}
			logf("%s: case %d reproduced %d of %d even unshrunk: set aside as flaky, searching on", s.Name, i, f.Reproduced, f.Reruns)
			continue
		}
		return f, st, nil
	}
	return flaky, st, nil
}

// keyFunc returns s.Key, or fmt's %v.
func (s *Search) keyFunc() func(interface{}) string {
	if s.Key != nil {
		return s.Key
	}
	return func(v interface{}) string { return fmt.Sprintf("%v", v) }
}

// logFunc returns s.Logf, or a logger that drops everything.
func (s *Search) logFunc() func(string, ...any) {
	if s.Logf != nil {
		return s.Logf
	}
	return func(string, ...any) {}
}

// memoised returns Check with a memo by key: a value already evaluated
// (without a setup error) is not evaluated again, and fresh says whether
// it was. Evaluations are counted in st.
func (s *Search) memoised(ctx context.Context, key func(interface{}) string, st *Stats) func(interface{}) (o Evaluation, fresh bool) {
	memo := map[string]Evaluation{}
	return func(v interface{}) (Evaluation, bool) {
		k := key(v)
		if o, ok := memo[k]; ok {
			return o, false
		}
		st.Evals++
		o := s.Check(ctx, v)
		if o.Err == nil {
			memo[k] = o
		}
		return o, true
	}
}

// confirm re-runs the shrunk failure and, while it reproduces in fewer
// than Budget.MinRepro of its re-runs, steps back along the shrink chain
// (at most Budget.MaxBack steps). It reports whether the value it stopped
// at reproduced reliably.
func (s *Search) confirm(ctx context.Context, f *Failure, st *Stats, logf func(string, ...any)) (bool, error) {
	for {
		if err := s.rerun(ctx, f, st, logf); err != nil {
			return false, err
		}
		reliable := f.Reruns == 0 || float64(f.Reproduced) >= s.Budget.MinRepro*float64(f.Reruns)
		if reliable || len(f.Chain) < 2 || f.StepsBack >= s.Budget.MaxBack || ctx.Err() != nil {
			return reliable, nil
		}
		f.Chain = f.Chain[:len(f.Chain)-1]
		f.Shrunk = f.Chain[len(f.Chain)-1]
		f.StepsBack++
		logf("%s: reproduced %d of %d, below %.2f; back to shrink step %d: %v", s.Name, f.Reproduced, f.Reruns, s.Budget.MinRepro, len(f.Chain)-1, f.Shrunk)
	}
}

// rerun re-runs f.Shrunk Budget.Reruns times (never memoised: timing
// varies) and counts how often it failed again.
func (s *Search) rerun(ctx context.Context, f *Failure, st *Stats, logf func(string, ...any)) error {
	f.Reruns, f.Reproduced = 0, 0
	for r := 0; r < s.Budget.Reruns && ctx.Err() == nil; r++ {
		st.Evals++
		ro := s.Check(ctx, f.Shrunk)
		if ro.Err != nil {
			return ro.Err
		}
		f.Reruns++
		if ro.Fail {
			f.Reproduced++
			f.Last = ro
		}
		logf("%s rerun %d of the shrunk case: fail=%v %s", s.Name, r+1, ro.Fail, ro.Why)
	}
	return nil
}

func (s *Search) shrink(ctx context.Context, res *gopter.GenResult, f *Failure, eval func(interface{}) (Evaluation, bool), logf func(string, ...any)) error {
	start := time.Now()
	defer func() { f.ShrinkTime = time.Since(start) }()
	budgetLeft := func() bool {
		return ctx.Err() == nil && f.ShrinkRuns < s.Budget.ShrinkRuns &&
			(s.Budget.ShrinkTime <= 0 || time.Since(start) < s.Budget.ShrinkTime)
	}
	for budgetLeft() {
		shrink := res.Shrinker(f.Shrunk).Filter(res.Sieve)
		moved := false
		for v, ok := shrink(); ok && budgetLeft(); v, ok = shrink() {
			o, fresh := eval(v)
			if fresh {
				f.ShrinkRuns++
			}
			if o.Err != nil {
				return o.Err
			}
			if o.Fail {
				f.Shrunk, f.Last = v, o
				f.Chain = append(f.Chain, v)
				f.Shrinks++
				moved = true
				logf("%s shrink step %d: %v", s.Name, f.Shrinks, v)
				break
			}
		}
		if !moved {
			f.Exhausted = budgetLeft()
			return nil
		}
	}
	return nil
}
