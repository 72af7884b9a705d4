package prop

import (
	"context"
	"math/rand"
	"testing"

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
	check := func(_ context.Context, v interface{}) Outcome {
		for _, r := range v.(plan.Plan).Rules {
			if r.Kind == plan.KindShort && r.Path == "*-wal" {
				if r.Count == 0 || rng.Intn(4) < r.Count {
					return Outcome{Fail: true, Why: "short WAL read"}
				}
			}
		}
		return Outcome{Why: "ok"}
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
