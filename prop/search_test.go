package prop

import (
	"context"
	"math/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/leanovate/gopter"
	"github.com/sqlchaos/sqlchaos/faultfs/plan"
)

// TestSearchShrinksAndWalksBack runs the search driver on a fake flaky
// property: a plan fails when it has a short read of the WAL, with
// probability count/4 (persistent: always). The driver must find it, shrink
// to that one rule, and, with MinRepro, give back shrink steps until the
// reported plan reproduces reliably (count >= 3).
func TestSearchShrinksAndWalksBack(t *testing.T) {
	rng := rand.New(rand.NewSource(testSeed(t)))
	space := DefaultSpace()
	space.MinRules, space.MaxRules = 3, 5
	space.Kinds = map[plan.Kind]int{plan.KindShort: 1, plan.KindEIO: 1}
	space.Paths = []string{"*-wal", "*.db"}
	space.PersistentWeight = 10 // every rule persistent at first: count 0
	check := func(_ context.Context, v interface{}) Evaluation {
		for _, r := range v.(plan.Plan).Rules {
			if r.Kind == plan.KindShort && r.Path == "*-wal" {
				if r.Count == 0 || rng.Intn(4) < r.Count {
					return Evaluation{Fail: true, Why: "short WAL read"}
				}
			}
		}
		return Evaluation{Why: "ok"}
	}
	s := &Search{Name: "fake", Gen: GenPlan(space), Seed: testSeed(t), Check: check,
		Key:    func(v interface{}) string { p := v.(plan.Plan); return p.String() },
		Budget: Budget{Cases: 50, ShrinkRuns: 100, Reruns: 20, MinRepro: 0.6, MaxBack: 10}}
	f, st, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f == nil {
		t.Fatalf("no failure found in %d cases", st.Cases)
	}
	p := f.Shrunk.(plan.Plan)
	t.Logf("shrunk in %d steps (%d given back), %d runs; reproduced %d/%d:\n%s", f.Shrinks, f.StepsBack, f.ShrinkRuns, f.Reproduced, f.Reruns, p.String())
	if len(p.Rules) != 1 || p.Rules[0].Kind != plan.KindShort || p.Rules[0].Path != "*-wal" {
		t.Fatalf("not shrunk to the one failing rule:\n%s", p.String())
	}
	if c := p.Rules[0].Count; c != 0 && c < 3 {
		t.Errorf("reported count=%d reproduces in about %d%% of runs, below MinRepro", c, c*25)
	}
	if float64(f.Reproduced) < 0.6*float64(f.Reruns) {
		t.Errorf("reported plan reproduced %d of %d", f.Reproduced, f.Reruns)
	}
}

// TestScenarioShrinkShortensDuration runs the search driver with the
// scenario-case generator on a fake property: a case fails when its plan
// has a short read of the WAL and its load phase is at least 500 ms. The
// plan must shrink to that one rule first, then the duration from 4 s down
// to 500 ms (250 ms passes), and the found file must record both.
func TestScenarioShrinkShortensDuration(t *testing.T) {
	space := DefaultSpace()
	space.MinRules, space.MaxRules = 3, 5
	space.Kinds = map[plan.Kind]int{plan.KindShort: 1, plan.KindEIO: 1}
	space.Paths = []string{"*-wal", "*.db"}
	check := func(_ context.Context, v interface{}) Evaluation {
		c := v.(ScenarioCase)
		if c.Duration < 500*time.Millisecond {
			return Evaluation{Why: "too short"}
		}
		for _, r := range c.Plan.Rules {
			if r.Kind == plan.KindShort && r.Path == "*-wal" {
				return Evaluation{Fail: true, Why: "short WAL read"}
			}
		}
		return Evaluation{Why: "ok"}
	}
	sp := ScenarioProperty{Name: "fake", Scenario: "rollback-shadow", Profile: "hardened", Duration: 4 * time.Second}
	s := sp.Search(space, testSeed(t), Budget{Cases: 50, ShrinkRuns: 200}, nil, "modernc")
	s.Check = check
	f, st, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f == nil {
		t.Fatalf("no failure found in %d cases", st.Cases)
	}
	c := f.Shrunk.(ScenarioCase)
	t.Logf("shrunk in %d steps, %d runs: %s", f.Shrinks, f.ShrinkRuns, c)
	if len(c.Plan.Rules) != 1 || c.Duration != 500*time.Millisecond || !f.Exhausted {
		t.Fatalf("want one rule at 500ms (a local minimum), got %s (exhausted %v)", c, f.Exhausted)
	}
	// The duration is shrunk only after the plan: no evaluated case with a
	// shorter duration than 4s has more than one rule.
	for _, v := range f.Chain {
		if x := v.(ScenarioCase); x.Duration < 4*time.Second && len(x.Plan.Rules) > 1 {
			t.Errorf("duration shrunk before the plan was minimal: %s", x)
		}
	}
	fd := sp.FoundOf(f)
	path, err := fd.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadFound(path)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(path)
	if back.Duration != 500*time.Millisecond || !strings.Contains(string(text), "duration 4s -> 500ms") ||
		!strings.Contains(string(text), "--duration 500ms") {
		t.Errorf("found file does not record the shrunk duration:\n%s", text)
	}
}

// TestModelWorkloadShrinks runs the search driver as
// TestPropModelAgreement does (GenWorkload and its shrinker) on a fake
// property: a workload fails when some role deletes a task that another
// role created earlier in generation order. It must shrink to the two
// steps and at most two roles: the model-agreement property hands back the
// shortest workload.
func TestModelWorkloadShrinks(t *testing.T) {
	check := func(_ context.Context, v interface{}) Evaluation {
		w := v.(Workload)
		for i, a := range w.Steps {
			for _, b := range w.Steps[i+1:] {
				if a.Op == OpCreate && b.Op == OpDelete && a.Task == b.Task && a.Role != b.Role {
					return Evaluation{Fail: true, Why: "cross-role delete"}
				}
			}
		}
		return Evaluation{Why: "ok"}
	}
	s := &Search{Name: "fake-model", Gen: GenWorkload(DefaultWorkloadSpace()), Seed: testSeed(t), Check: check,
		Key: func(v interface{}) string { return v.(Workload).String() }, Budget: Budget{Cases: 100, ShrinkRuns: 500}}
	f, st, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f == nil {
		t.Fatalf("no failing workload in %d cases", st.Cases)
	}
	o, w := f.Original.(Workload), f.Shrunk.(Workload)
	t.Logf("%d steps / %d roles → %s in %d steps, %d runs", len(o.Steps), o.Roles, w, f.Shrinks, f.ShrinkRuns)
	if len(w.Steps) != 2 || w.Roles > 2 {
		t.Fatalf("not shrunk to the two steps on two roles: %s", w)
	}
}

func TestStatsVacuous(t *testing.T) {
	for _, c := range []struct {
		st    Stats
		need  bool
		empty bool
	}{
		{Stats{}, false, false},
		{Stats{Cases: 3}, false, false},
		{Stats{Cases: 3, Conclusive: 1}, true, false},
		{Stats{Cases: 3, Conclusive: 1}, false, true},
		{Stats{Cases: 3, Conclusive: 1, Fired: 2}, true, true},
	} {
		if got := c.st.Vacuous(c.need); (got == "") != c.empty {
			t.Errorf("%+v.Vacuous(%v) = %q", c.st, c.need, got)
		}
	}
}

// TestSearchSetsAsideFlakyCases: a case that failed once and never again
// (not even unshrunk) is set aside and the search goes on to a case that
// fails reliably; with no such case the flaky failure is still returned
// (a property that failed once has failed).
func TestSearchSetsAsideFlakyCases(t *testing.T) {
	for _, c := range []struct {
		name     string
		reliable bool // does case 3 fail every time?
		wantCase int
	}{{"a reliable case follows", true, 3}, {"only the flaky case", false, 0}} {
		t.Run(c.name, func(t *testing.T) {
			n := 0 // cases are 0, 1, 2, ... in order, with no shrinker
			g := func(*gopter.GenParameters) *gopter.GenResult {
				v := n
				n++
				return gopter.NewGenResult(v, gopter.NoShrinker)
			}
			calls := map[int]int{}
			check := func(_ context.Context, v interface{}) Evaluation {
				k := v.(int)
				calls[k]++
				switch {
				case k == 0 && calls[k] == 1:
					return Evaluation{Fail: true, Why: "once"}
				case k == 3 && c.reliable:
					return Evaluation{Fail: true, Why: "always"}
				}
				return Evaluation{Why: "ok"}
			}
			s := &Search{Name: "flaky", Gen: g, Seed: 7, Check: check,
				Budget: Budget{Cases: 6, ShrinkRuns: 5, Reruns: 3, MinRepro: 0.6, MaxBack: 3}}
			f, st, err := s.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if f == nil {
				t.Fatalf("no failure returned (%+v)", st)
			}
			if st.Flaky != 1 || f.Case != c.wantCase {
				t.Errorf("Flaky = %d, returned case %d (%s); want 1 flaky and case %d", st.Flaky, f.Case, f.Last.Why, c.wantCase)
			}
		})
	}
}
