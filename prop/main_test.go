package prop

import (
	"flag"
	"os"
	"sync"
	"testing"

	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

var (
	seedFlag     = flag.Int64("seed", 0, "seed of every generator (default $"+SeedEnv+", else drawn from the clock)")
	casesFlag    = flag.Int("cases", 0, "generated cases per property (default by mode; $"+CasesEnv+")")
	rerunsFlag   = flag.Int("reruns", -1, "re-runs of a shrunk failure (default by mode; $"+RerunsEnv+")")
	scenarioFlag = flag.String("scenario", "rollback-shadow", "scenario the scenario properties run generated plans in")
	durationFlag = flag.Duration("duration", 0, "load phase of each scenario run, wall clock (default by mode)")
)

// budget scales a property's budget by mode and applies the flags.
func budget(t testing.TB, short, ci, soak Budget) Budget {
	m := CurrentMode(testing.Short())
	b := Scale(m, short, ci, soak)
	if *casesFlag > 0 {
		b.Cases = *casesFlag
	}
	if *rerunsFlag >= 0 {
		b.Reruns = *rerunsFlag
	}
	t.Logf("mode %s: %d cases, shrink ≤ %d runs / %v, %d re-runs", m, b.Cases, b.ShrinkRuns, b.ShrinkTime, b.Reruns)
	return b
}

func TestMain(m *testing.M) {
	reexec.Init()
	flag.Parse()
	code := m.Run()
	for _, d := range fuzzTemplates {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

var (
	seedOnce sync.Once
	theSeed  int64
	seedFrom string
	seedErr  error
)

// testSeed returns the run's seed and logs it; on failure the test prints
// how to replay it.
func testSeed(t testing.TB) int64 {
	t.Helper()
	seedOnce.Do(func() { theSeed, seedFrom, seedErr = ResolveSeed(*seedFlag) })
	if seedErr != nil {
		t.Fatal(seedErr)
	}
	t.Logf("seed %d (from %s)", theSeed, seedFrom)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay: go test ./prop -run '^%s$' -seed %d   (or %s=%d)", t.Name(), theSeed, SeedEnv, theSeed)
		}
	})
	return theSeed
}
