package prop

import (
	"context"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/gen"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/scenarios"
)

// ScenarioCase is one generated case of a scenario property: a fault plan
// that replaces the scenario's main plan, the driver it runs on and the
// length of the load phase.
type ScenarioCase struct {
	Plan   plan.Plan
	Driver string
	// Duration is the load phase (--duration) of this case; 0 means the
	// property's (ScenarioProperty.Duration). Shrinking halves it once the
	// plan is minimal: the shortest workload that still fails.
	Duration time.Duration
}

// String prints the case on one line.
func (c ScenarioCase) String() string {
	if c.Duration > 0 {
		return fmt.Sprintf("driver=%s duration=%v plan=%q", c.Driver, c.Duration, c.Plan.String())
	}
	return fmt.Sprintf("driver=%s plan=%q", c.Driver, c.Plan.String())
}

// DefaultMinDuration is the floor ShrinkScenarioCase halves durations to.
const DefaultMinDuration = 250 * time.Millisecond

// ShrinkScenarioCase returns the shrinker of scenario cases: first the
// plan (ShrinkPlan; the driver stays: a failure on one driver is not a
// failure on the other), then, when Duration is set and above floor, the
// duration halved (not below floor). The search driver takes the first
// failing candidate, so the duration shrinks only once no plan candidate
// fails any more: the plan is minimal, and then the workload is made
// shorter.
func ShrinkScenarioCase(floor time.Duration) gopter.Shrinker {
	return func(v interface{}) gopter.Shrink {
		c := v.(ScenarioCase)
		plans := ShrinkPlan(c.Plan).Map(func(p plan.Plan) ScenarioCase {
			return ScenarioCase{Plan: p, Driver: c.Driver, Duration: c.Duration}
		})
		var shorter []interface{}
		if c.Duration > floor {
			shorter = append(shorter, ScenarioCase{Plan: c.Plan, Driver: c.Driver, Duration: max(floor, c.Duration/2)})
		}
		return gopter.ConcatShrinks(plans, sliceShrink(shorter))
	}
}

// GenScenarioCase generates cases: a plan from space and a driver (one of
// drivers; both when none are given), Duration 0. Its shrinker shrinks the
// plan (see ShrinkScenarioCase); the plan space's sieve applies to cases.
func GenScenarioCase(space PlanSpace, drivers ...string) gopter.Gen {
	return genScenarioCase(space, 0, DefaultMinDuration, drivers...)
}

// genScenarioCase is GenScenarioCase with every case's Duration set to d,
// shrunk down to floor.
func genScenarioCase(space PlanSpace, d, floor time.Duration, drivers ...string) gopter.Gen {
	plans := GenPlan(space)
	ds := GenDriver()
	if len(drivers) > 0 {
		vs := make([]interface{}, len(drivers))
		for i, d := range drivers {
			vs[i] = d
		}
		ds = gen.OneConstOf(vs...)
	}
	return func(gp *gopter.GenParameters) *gopter.GenResult {
		pr := plans(gp)
		drv, _ := ds(gp).Retrieve()
		p, _ := pr.Retrieve()
		c := ScenarioCase{Plan: p.(plan.Plan), Driver: drv.(string), Duration: d}
		res := gopter.NewGenResult(c, ShrinkScenarioCase(floor))
		res.ResultType = reflect.TypeOf(ScenarioCase{})
		if pr.Sieve != nil {
			res.Sieve = func(v interface{}) bool { return pr.Sieve(v.(ScenarioCase).Plan) }
		}
		return res
	}
}

// NeverFail are the checkers property "hardened never silent" holds the
// hardened profile to under honest faults: no silent fault (oracle rule
// 11), no lost acknowledged commit, and no error that shadows the injected
// cause (a "cannot rollback" in place of the I/O error does not surface the
// fault, it hides it; fix 3 is part of the hardened profile).
var NeverFail = []string{oracle.Silent, oracle.Durability, oracle.ErrorFidelity}

// ScenarioProperty runs generated plans through the scenario runner
// (scenarios.Execute, the engine of `chaosrun run`) and fails when one of
// the Checkers fails.
type ScenarioProperty struct {
	Name     string // property name for found files
	Scenario string
	Profile  string
	Sets     []string      // switch overrides (a planted bug)
	Duration time.Duration // load phase, wall clock (0 = the scenario's)
	// MinDuration is the floor the shrinker halves Duration to once the
	// plan is minimal (default DefaultMinDuration; shrinking of the
	// duration is off when Duration is 0, the scenario's own).
	MinDuration time.Duration
	Seed        int64     // the run seed (faultfs draws, role choices)
	Checkers    []string  // default NeverFail
	Stderr      io.Writer // role processes' stderr (default: discarded)
	// Keep keeps passing runs' directories (failing ones are always kept).
	Keep bool
	// OutRoot, if set, holds every run directory (a test's TempDir, say);
	// otherwise the runner makes them under the system temp directory.
	OutRoot string
}

// Config returns the scenarios.Config of one case.
func (sp ScenarioProperty) Config(c ScenarioCase) scenarios.Config {
	return scenarios.Config{Scenario: sp.Scenario, Profile: sp.Profile, Driver: c.Driver, Seed: sp.Seed,
		Duration: sp.duration(c), PlanOverride: c.Plan.String(), Sets: sp.Sets, Stderr: sp.Stderr}
}

// duration is the load phase of case c: its own, else the property's.
func (sp ScenarioProperty) duration(c ScenarioCase) time.Duration {
	if c.Duration > 0 {
		return c.Duration
	}
	return sp.Duration
}

// Eval runs one case and judges it.
func (sp ScenarioProperty) Eval(ctx context.Context, c ScenarioCase) Evaluation {
	cfg := sp.Config(c)
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if sp.OutRoot != "" {
		d, err := os.MkdirTemp(sp.OutRoot, "run-")
		if err != nil {
			return Evaluation{Err: err}
		}
		cfg.Out = d
	}
	res, err := scenarios.Execute(ctx, cfg)
	if err != nil {
		// A run that could not be judged is an error of the search, never
		// a pass.
		return Evaluation{Err: fmt.Errorf("run error (seed %d, %s): %w", cfg.Seed, cfg.Cell(), err)}
	}
	o := JudgeResults(res.Results, sp.checkers())
	o.Dir = res.Dir
	o.Fired = int(res.Fired)
	if res.Report != nil {
		f := res.Report.Facts
		o.Inconclusive = f.ScriptErr != "" || f.Deadline || len(f.Incomplete) > 0
		if res.Report.Verdict() == scenarios.Hung {
			o.Fail = true
			o.Why = res.Report.Why + "; " + o.Why
		}
	}
	if res.ScriptErr != nil {
		o.Why += fmt.Sprintf(" [script: %v]", res.ScriptErr)
	}
	o.Why += fmt.Sprintf(" [fired %d, %v]", res.Fired, res.Wall.Round(time.Millisecond))
	if !o.Fail && !sp.Keep {
		os.RemoveAll(res.Dir)
		o.Dir = ""
	}
	return o
}

func (sp ScenarioProperty) checkers() []string {
	if len(sp.Checkers) > 0 {
		return sp.Checkers
	}
	return NeverFail
}

// JudgeResults fails when any of the named checkers failed; Why lists the
// failures (or says what passed).
func JudgeResults(rs []oracle.Result, names []string) Evaluation {
	var bad, seen []string
	for _, r := range rs {
		for _, n := range names {
			if r.Checker != n {
				continue
			}
			seen = append(seen, fmt.Sprintf("%s=%s", n, r.Verdict))
			if r.Verdict == oracle.Fail {
				bad = append(bad, fmt.Sprintf("%s failed: %s", n, r.Summary))
			}
		}
	}
	if len(bad) > 0 {
		return Evaluation{Fail: true, Why: strings.Join(bad, "; ")}
	}
	return Evaluation{Why: strings.Join(seen, " ")}
}

// Search returns a Search of this property over cases from space on the
// given drivers (both when none). Cases start at the property's Duration;
// once a failing plan is minimal the shrinker halves it down to
// MinDuration.
func (sp ScenarioProperty) Search(space PlanSpace, seed int64, b Budget, logf func(string, ...any), drivers ...string) *Search {
	floor := sp.MinDuration
	if floor <= 0 {
		floor = DefaultMinDuration
	}
	return searchOf(sp.Name, genScenarioCase(space, sp.Duration, floor, drivers...), seed, b, sp.Eval, logf)
}

// FoundOf turns a failure of this property into a found file.
func (sp ScenarioProperty) FoundOf(f *Failure) Found {
	c := f.Shrunk.(ScenarioCase)
	return Found{Property: sp.Name, Scenario: sp.Scenario, Profile: sp.Profile, Driver: c.Driver, Seed: sp.Seed,
		Sets: sp.Sets, Duration: sp.duration(c), Date: time.Now(), Why: f.Last.Why,
		Original: len(f.Original.(ScenarioCase).Plan.Rules), Shrinks: f.Shrinks - f.StepsBack, ShrinkRuns: f.ShrinkRuns,
		ShrinkTime: f.ShrinkTime, Reruns: f.Reruns, Reproduced: f.Reproduced, Plan: c.Plan,
		OriginalDuration: sp.duration(f.Original.(ScenarioCase))}
}
