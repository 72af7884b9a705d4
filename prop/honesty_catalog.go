package prop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/leanovate/gopter"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/scenarios"
)

// Detector honesty over the catalog: for every scenario whose legacy
// expectation names failing checkers, single-fault variants of the
// scenario's own plan rule (nth/after/count/keep/errno/p changed, the
// rule's target — path, ops, offsets, minlen, pid, bit — kept) run under
// legacy and hardened through scenarios.Execute, several times each
// (cross-process timing is not seeded), and the checkers are held to the
// catalog: hardened never fails them, and legacy fails them at least once
// in K runs of every variant the catalog predicts. The rules are held as
// the catalog writes them, templates ({pid:PROC}, {dbsize}): the runner
// binds them when it loads the variant.

// HonestyTarget is one catalog scenario under detector honesty: the
// checkers its legacy expectation names as failing (and its hardened one
// does not), and the rules of its main plan.
type HonestyTarget struct {
	Scenario string
	Checkers []string
	Rules    []plan.Rule // the main plan, placeholders kept (a template)
	// Excluded, per profile and driver, says why a cell is not asserted:
	// the catalog pins a finding there (measurement contradicts the
	// story, so the story's checker is not the one that tells the
	// profiles apart).
	Excluded map[string]string // key profile/driver
}

// Skip returns why the cell (profile, driver) is not asserted, "" if it is.
func (t HonestyTarget) Skip(profile, driver string) string {
	return t.Excluded[profile+"/"+driver]
}

func powercut(rules []plan.Rule) bool {
	for _, r := range rules {
		if r.Kind == plan.KindPowercut {
			return true
		}
	}
	return false
}

// HonestyTargets returns the catalog's detector-honesty targets in catalog
// order, and for every scenario left out why.
func HonestyTargets() (targets []HonestyTarget, skipped map[string]string) {
	skipped = map[string]string{}
	for _, sc := range scenarios.All() {
		legacy, ok := sc.Expect[kanbancore.ProfileLegacy]
		hardened, okH := sc.Expect[kanbancore.ProfileHardened]
		if !ok || len(legacy.Fail) == 0 || !okH {
			skipped[sc.Name] = "the legacy expectation names no failing checker"
			continue
		}
		var checkers []string
		for _, c := range legacy.Fail {
			if !slices.Contains(hardened.Fail, c) {
				checkers = append(checkers, c)
			}
		}
		if len(checkers) == 0 {
			skipped[sc.Name] = "hardened is expected to fail the same checkers as legacy"
			continue
		}
		p, err := plan.Parse(sc.Plan)
		if err != nil {
			skipped[sc.Name] = "main plan does not parse: " + err.Error()
			continue
		}
		if len(p.Rules) == 0 {
			skipped[sc.Name] = "no fault plan (the class comes from process timing or from the code, not from a fault): no rule for a single-fault variant to change (the matrix runs the cell itself)"
			continue
		}
		if powercut(p.Rules) {
			skipped[sc.Name] = "its plan cuts the power: the cut is the whole run, not a fault to vary (the matrix runs the cell itself)"
			continue
		}
		t := HonestyTarget{Scenario: sc.Name, Checkers: checkers, Rules: p.Rules, Excluded: map[string]string{}}
		for _, prof := range []string{kanbancore.ProfileLegacy, kanbancore.ProfileHardened} {
			for _, drv := range []string{"modernc", "mattn"} {
				if f := sc.Cell(prof, drv).Finding; f != nil {
					t.Excluded[prof+"/"+drv] = "pinned finding: " + f.What
				}
			}
		}
		if len(t.Excluded) == 4 {
			skipped[sc.Name] = "every cell excluded: " + t.Excluded["legacy/modernc"]
			continue
		}
		targets = append(targets, t)
	}
	return targets, skipped
}

// CatalogCase is one single-fault variant of a target's main rule on one
// driver.
type CatalogCase struct {
	Scenario string
	Driver   string
	Index    int       // which rule of the main plan it varies
	Rule     plan.Rule // the variant, placeholders kept
}

// Template is the case's plan as a runner template (one rule): the text
// `chaosrun run --plan` and scenarios.Config.PlanOverride take.
func (c CatalogCase) Template() string {
	return (&plan.Plan{Rules: []plan.Rule{c.Rule}}).String()
}

// String prints the case on one line.
func (c CatalogCase) String() string {
	return fmt.Sprintf("%s driver=%s rule %d: %s", c.Scenario, c.Driver, c.Index+1, strings.TrimSpace(c.Template()))
}

// sameTarget reports whether v aims where r does: kind, path, ops,
// offsets, minlen, pid (placeholders included), bit and then= unchanged.
func sameTarget(r, v plan.Rule) bool {
	return (r.Kind == v.Kind || (isErrnoKind(r.Kind) && isErrnoKind(v.Kind))) &&
		r.Path == v.Path && reflect.DeepEqual(r.Ops, v.Ops) && r.HasOff == v.HasOff && r.OffLo == v.OffLo &&
		r.OffHi == v.OffHi && r.OffLoVar == v.OffLoVar && r.OffHiVar == v.OffHiVar && r.MinLen == v.MinLen &&
		r.Pid == v.Pid && r.PidVar == v.PidVar && r.HasBit == v.HasBit && r.Bit == v.Bit && r.ThenOK == v.ThenOK
}

func isErrnoKind(k plan.Kind) bool { return k == plan.KindEIO || k == plan.KindErrno }

// Predicted reports whether the catalog's legacy expectation covers the
// variant v of rule i of the main plan rules. The catalog states its
// expectation for its own plan, and firing more often is not monotone
// (a second page-1 EIO also fails the legacy downgrade's own pragma, so
// the header stays WAL), so it predicts: the main rule itself, and a
// change of keep alone on a torn or short rule with minlen when both keeps
// stay below minlen (every op the rule hits is still cut short). Every
// other variant's legacy rate is reported, not asserted. A multi-rule main
// plan predicts nothing for one of its rules alone.
func Predicted(rules []plan.Rule, i int, v plan.Rule) (bool, string) {
	if len(rules) != 1 {
		return false, fmt.Sprintf("the catalog's prediction is for its %d-rule plan together", len(rules))
	}
	r := Canon(rules[i])
	if reflect.DeepEqual(r, v) {
		return true, "the main rule itself"
	}
	x := v
	x.Keep = r.Keep
	if reflect.DeepEqual(Canon(x), r) && (r.Kind == plan.KindTorn || r.Kind == plan.KindShort) && r.MinLen > 0 &&
		r.Keep < r.MinLen && v.Keep < r.MinLen {
		return true, "the main rule with another keep below minlen"
	}
	return false, "a variant the catalog states nothing about"
}

var keepChoices = []int64{0, 1, 100, 512, 1024, 2048, 4095}

// mutateRule draws a variant of r inside r's target: one or two of its
// firing fields (count, nth/after, keep, errno, p) redrawn; with
// probability 1/5 r itself.
func mutateRule(rng interface{ Intn(int) int }, r plan.Rule) plan.Rule {
	if rng.Intn(5) == 0 {
		return Canon(r)
	}
	type field func(x *plan.Rule)
	var fields []field
	fields = append(fields, func(x *plan.Rule) { // count: persistent or 1..2n+2
		if rng.Intn(4) == 0 {
			x.Count = 0
		} else {
			x.Count = 1 + rng.Intn(2*r.Count+2)
		}
	})
	fields = append(fields, func(x *plan.Rule) { // where it first fires
		switch {
		case r.After > 0 || (r.Nth == 0 && rng.Intn(2) == 0):
			x.Nth, x.After = 0, rng.Intn(2*r.After+3)
		default:
			x.Nth, x.After = rng.Intn(2*r.Nth+3), 0
		}
	})
	if r.Kind == plan.KindShort || r.Kind == plan.KindTorn {
		fields = append(fields, func(x *plan.Rule) { x.Keep = keepChoices[rng.Intn(len(keepChoices))] })
	}
	if isErrnoKind(r.Kind) || (r.Kind == plan.KindTorn && !r.ThenOK) {
		errnos := defaultErrnos()
		fields = append(fields, func(x *plan.Rule) {
			x.Errno = errnos[rng.Intn(len(errnos))]
			if isErrnoKind(r.Kind) {
				x.Kind = plan.KindErrno
			}
		})
	}
	if r.P > 0 {
		fields = append(fields, func(x *plan.Rule) { x.P = []float64{0, 0.25, 0.5, 0.75}[rng.Intn(4)] })
	}
	x := r
	x.Ops = append([]plan.Op(nil), r.Ops...)
	n := 1 + rng.Intn(2)
	for k := 0; k < n; k++ {
		fields[rng.Intn(len(fields))](&x)
	}
	if x.Kind == plan.KindErrno && x.Errno == syscall.EIO {
		x.Kind = plan.KindEIO
	}
	return Canon(x)
}

// GenCatalogCase generates variants of t's main rules on driver. Its
// shrinker shrinks the variant's counts, nth/after, keep, errno and p
// (ShrinkRule) and never leaves the rule's target.
func GenCatalogCase(t HonestyTarget, driver string) gopter.Gen {
	return func(gp *gopter.GenParameters) *gopter.GenResult {
		i := gp.Rng.Intn(len(t.Rules))
		c := CatalogCase{Scenario: t.Scenario, Driver: driver, Index: i, Rule: mutateRule(gp.Rng, t.Rules[i])}
		res := gopter.NewGenResult(c, func(v interface{}) gopter.Shrink {
			c := v.(CatalogCase)
			return ShrinkRule(c.Rule).Filter(func(v interface{}) bool {
				return sameTarget(t.Rules[c.Index], v.(plan.Rule))
			}).Map(func(r plan.Rule) CatalogCase {
				x := c
				x.Rule = r
				return x
			})
		})
		res.ResultType = reflect.TypeOf(CatalogCase{})
		return res
	}
}

// CatalogHonesty runs catalog variants and judges them.
type CatalogHonesty struct {
	Target   HonestyTarget
	Seed     int64
	Duration time.Duration // --duration of every run (0 = the scenario's)
	Legacy   int           // K: legacy runs per variant
	Hardened int           // hardened runs per variant
	OutRoot  string        // run directories (failing ones are kept)
	Stderr   io.Writer
	Stats    *CatalogStats
	// HardenedSets are switch overrides on the hardened side only: a
	// planted bug (write_txn=legacy) the property must catch.
	HardenedSets []string
}

// CatalogStats counts what a target's variants did.
type CatalogStats struct {
	Variants, Predicted          int
	LegacyRuns, LegacyFails      int // over every variant
	PredRuns, PredFails          int // over predicted variants
	HardenedRuns, HardenedFails  int
	LegacySkipped, HardSkipped   string
	Inconclusive, RunErrs, Fired int
	// PredConclusive and HardConclusive count runs where every target
	// checker decided (legacy on predicted variants; hardened): the test
	// requires some, so the property cannot pass on inconclusive runs.
	PredConclusive, HardConclusive int
}

func (s CatalogStats) String() string {
	out := fmt.Sprintf("%d variants (%d predicted); legacy failed the checker in %d of %d runs (%d of %d on predicted variants); hardened in %d of %d; %d inconclusive verdicts, %d run errors, %d faults fired",
		s.Variants, s.Predicted, s.LegacyFails, s.LegacyRuns, s.PredFails, s.PredRuns, s.HardenedFails, s.HardenedRuns, s.Inconclusive, s.RunErrs, s.Fired)
	if s.LegacySkipped != "" {
		out += "; legacy not asserted: " + s.LegacySkipped
	}
	if s.HardSkipped != "" {
		out += "; hardened not asserted: " + s.HardSkipped
	}
	return out
}

// run executes one cell and returns the target checkers' results.
func (h CatalogHonesty) run(ctx context.Context, c CatalogCase, profile string) (map[string]oracle.Result, *scenarios.Result, error) {
	cfg := scenarios.Config{Scenario: c.Scenario, Profile: profile, Driver: c.Driver, Seed: h.Seed, Duration: h.Duration,
		PlanOverride: c.Template(), Stderr: h.Stderr}
	if profile == kanbancore.ProfileHardened {
		cfg.Sets = h.HardenedSets
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if h.OutRoot != "" {
		d, err := os.MkdirTemp(h.OutRoot, "run-")
		if err != nil {
			return nil, nil, err
		}
		cfg.Out = d
	}
	res, err := scenarios.Execute(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]oracle.Result{}
	for _, r := range res.Results {
		if slices.Contains(h.Target.Checkers, r.Checker) {
			out[r.Checker] = r
		}
	}
	return out, res, nil
}

// Eval runs a variant Legacy times under legacy and Hardened times under
// hardened (cells the target excludes are not run) and fails when hardened
// failed a target checker in any run, or when legacy failed none in its
// runs of a predicted variant.
func (h CatalogHonesty) Eval(ctx context.Context, c CatalogCase) Evaluation {
	if h.Stats == nil {
		h.Stats = &CatalogStats{}
	}
	before := h.Stats.Fired
	o := h.eval(ctx, c)
	o.Fired = h.Stats.Fired - before
	return o
}

// eval runs the variant on each side the target does not exclude and
// judges the sides (judgeHardened, judgeLegacy).
func (h CatalogHonesty) eval(ctx context.Context, c CatalogCase) Evaluation {
	st := h.Stats
	pred, predWhy := Predicted(h.Target.Rules, c.Index, c.Rule)
	st.Variants++
	if pred {
		st.Predicted++
	}
	var bad, why []string
	var keep string
	if skip := h.Target.Skip(kanbancore.ProfileHardened, c.Driver); skip == "" {
		s, err := h.side(ctx, c, kanbancore.ProfileHardened, h.Hardened, pred)
		if err != nil {
			return Evaluation{Err: err}
		}
		keep = s.keep
		bad, why = h.judgeHardened(s, bad, why)
	} else {
		st.HardSkipped = skip
	}
	if skip := h.Target.Skip(kanbancore.ProfileLegacy, c.Driver); skip == "" {
		s, err := h.side(ctx, c, kanbancore.ProfileLegacy, h.Legacy, pred)
		if err != nil {
			return Evaluation{Err: err}
		}
		bad, why = h.judgeLegacy(s, pred, predWhy, bad, why)
	} else {
		st.LegacySkipped = skip
	}
	w := strings.Join(why, ", ")
	if pred {
		w += " [predicted: " + predWhy + "]"
	} else {
		w += " [not predicted: " + predWhy + "]"
	}
	if len(bad) > 0 {
		return Evaluation{Fail: true, Why: strings.Join(bad, "; ") + " [" + w + "]", Dir: keep}
	}
	if keep != "" {
		os.RemoveAll(keep)
	}
	return Evaluation{Why: w}
}

// sideRuns is what one profile's runs of a variant gave: per target
// checker, the runs that failed it, the runs where it was conclusive (pass
// or fail) and the summary of a failing run (under "NAME inconclusive",
// of an inconclusive one); keep is the directory of a hardened run that
// failed a checker, kept for the report.
type sideRuns struct {
	runs         int
	fails, concl map[string]int
	sum          map[string]string
	keep         string
}

// side runs one profile n times. A run that could not be judged stops the
// side with an error: it never counts as either side's verdict.
func (h CatalogHonesty) side(ctx context.Context, c CatalogCase, profile string, n int, pred bool) (sideRuns, error) {
	st := h.Stats
	s := sideRuns{fails: map[string]int{}, concl: map[string]int{}, sum: map[string]string{}}
	for k := 0; k < n && ctx.Err() == nil; k++ {
		rs, res, err := h.run(ctx, c, profile)
		if err != nil {
			st.RunErrs++
			if errors.Is(err, scenarios.ErrSetup) || ctx.Err() != nil {
				return sideRuns{}, err
			}
			return sideRuns{}, fmt.Errorf("run error (%s/%s/%s seed %d): %w", c.Scenario, profile, c.Driver, h.Seed, err)
		}
		s.runs++
		st.Fired += int(res.Fired)
		if h.decided(rs) {
			if profile == kanbancore.ProfileHardened {
				st.HardConclusive++
			}
			if profile == kanbancore.ProfileLegacy && pred {
				st.PredConclusive++
			}
		}
		if s.tally(rs, h.Target.Checkers, st) && profile == kanbancore.ProfileHardened {
			s.keep = res.Dir
		} else {
			os.RemoveAll(res.Dir)
		}
	}
	return s, nil
}

// decided reports whether every target checker passed or failed in rs.
func (h CatalogHonesty) decided(rs map[string]oracle.Result) bool {
	for _, name := range h.Target.Checkers {
		if v := rs[name].Verdict; v != oracle.Pass && v != oracle.Fail {
			return false
		}
	}
	return true
}

// tally adds one run's verdicts of the checkers and reports whether the run
// failed any of them.
func (s *sideRuns) tally(rs map[string]oracle.Result, checkers []string, st *CatalogStats) (failed bool) {
	for _, name := range checkers {
		r := rs[name]
		switch r.Verdict {
		case oracle.Fail:
			s.fails[name]++
			s.concl[name]++
			s.sum[name] = r.Summary
			failed = true
		case oracle.Pass:
			s.concl[name]++
		default:
			st.Inconclusive++
			s.sum[name+" inconclusive"] = r.Summary
		}
	}
	return failed
}

// judgeHardened counts the hardened runs and adds a violation for every
// target checker hardened failed.
func (h CatalogHonesty) judgeHardened(s sideRuns, bad, why []string) ([]string, []string) {
	st := h.Stats
	st.HardenedRuns += s.runs
	for _, name := range h.Target.Checkers {
		st.HardenedFails += s.fails[name]
		why = append(why, fmt.Sprintf("hardened %s failed %d/%d", name, s.fails[name], s.runs))
		if s.fails[name] > 0 {
			bad = append(bad, fmt.Sprintf("hardened failed %s in %d of %d runs (the catalog says it holds): %s", name, s.fails[name], s.runs, s.sum[name]))
		}
	}
	return bad, why
}

// judgeLegacy counts the legacy runs and, for a predicted variant, adds a
// violation for every target checker legacy never failed in its conclusive
// runs.
func (h CatalogHonesty) judgeLegacy(s sideRuns, pred bool, predWhy string, bad, why []string) ([]string, []string) {
	st := h.Stats
	st.LegacyRuns += s.runs
	if pred {
		st.PredRuns += s.runs
	}
	for _, name := range h.Target.Checkers {
		st.LegacyFails += s.fails[name]
		if pred {
			st.PredFails += s.fails[name]
		}
		why = append(why, fmt.Sprintf("legacy %s failed %d/%d", name, s.fails[name], s.runs))
		if n := s.runs - s.concl[name]; n > 0 {
			why = append(why, fmt.Sprintf("%d inconclusive (%s)", n, s.sum[name+" inconclusive"]))
		}
		// An inconclusive verdict did not observe the checker's
		// target (the run was too short, say): it counts neither way.
		if pred && s.concl[name] > 0 && s.fails[name] == 0 {
			bad = append(bad, fmt.Sprintf("legacy never failed %s in %d conclusive runs although the catalog predicts it for this variant (%s)", name, s.concl[name], predWhy))
		}
	}
	return bad, why
}

// Search returns a Search over variants of the target on driver. Its first
// case is the main plan's first rule itself (the variant the catalog
// predicts), the others are generated.
func (h CatalogHonesty) Search(driver string, b Budget, logf func(string, ...any)) *Search {
	g := GenCatalogCase(h.Target, driver)
	first := true
	anchored := func(gp *gopter.GenParameters) *gopter.GenResult {
		res := g(gp)
		if first {
			first = false
			v, _ := res.Retrieve()
			c := v.(CatalogCase)
			c.Index, c.Rule = 0, Canon(h.Target.Rules[0])
			shrinker := res.Shrinker
			res = gopter.NewGenResult(c, shrinker)
			res.ResultType = reflect.TypeOf(CatalogCase{})
		}
		return res
	}
	return searchOf("detector-honesty-"+h.Target.Scenario+"-"+driver, anchored, h.Seed, b, h.Eval, logf)
}

// FoundOf turns a violation into a found file: the cell is hardened's when
// hardened failed, legacy's otherwise.
func (h CatalogHonesty) FoundOf(f *Failure) Found {
	c := f.Shrunk.(CatalogCase)
	profile := kanbancore.ProfileLegacy
	if strings.Contains(f.Last.Why, "hardened failed") {
		profile = kanbancore.ProfileHardened
	}
	var sets []string
	if profile == kanbancore.ProfileHardened {
		sets = h.HardenedSets
	}
	return Found{Property: "detector-honesty-" + strings.Join(h.Target.Checkers, "+"), Scenario: c.Scenario, Profile: profile, Sets: sets,
		Driver: c.Driver, Seed: h.Seed, Duration: h.Duration, Date: time.Now(), Why: f.Last.Why, Original: 1,
		Shrinks: f.Shrinks - f.StepsBack, ShrinkRuns: f.ShrinkRuns, ShrinkTime: f.ShrinkTime, Reruns: f.Reruns,
		Reproduced: f.Reproduced, Plan: plan.Plan{Rules: []plan.Rule{c.Rule}}}
}
