package prop

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/scenarios"
)

var updateFound = flag.Bool("update-found", false, "TestPlantedBugShrinks saves its found plan under testdata/found (default: a temporary directory)")

// runDuration is the load phase of each scenario run: -duration, else 1 s
// (short and CI), else the scenario's own (soak).
func runDuration() time.Duration {
	if *durationFlag > 0 {
		return *durationFlag
	}
	if CurrentMode(testing.Short()) == ModeSoak {
		return 0
	}
	return time.Second
}

// reportFailure saves a failure as a found file and fails t with the seed,
// the shrink facts and the replay commands.
func reportFailure(t *testing.T, sp ScenarioProperty, f *Failure, dir string) string {
	t.Helper()
	found := sp.FoundOf(f)
	path, err := found.Write(dir)
	if err != nil {
		t.Errorf("save found plan: %v", err)
	}
	t.Errorf("%s failed: %s\n  seed %d, case %d (case seed %d); first: %s\n  shrunk %d → %d rules in %d steps, %d runs, %v (budget exhausted: %v)\n  reproduced %d of %d re-runs (cross-process timing is not seeded)\n  saved: %s\n  replay: %s\n  or:     go test ./prop -run '^%s$' -seed %d\n  run dir: %s\n%s",
		sp.Name, f.Last.Why, f.Seed, f.Case, f.CaseSeed, f.First.Why,
		found.Original, len(found.Plan.Rules), f.Shrinks, f.ShrinkRuns, f.ShrinkTime.Round(time.Millisecond), !f.Exhausted,
		f.Reproduced, f.Reruns, path, found.ReplayCommand(path), t.Name(), f.Seed, f.Last.Dir, found.Plan.String())
	return path
}

// TestPropHardenedNeverSilent is property 1 of issue 5: under any generated
// plan of honest faults (see HonestSpace), the hardened profile gives no
// silent verdict, loses no acknowledged commit and shadows no injected
// cause, on both drivers. A failure is shrunk and saved under
// testdata/found/.
func TestPropHardenedNeverSilent(t *testing.T) {
	fusetest.Require(t)
	seed := testSeed(t)
	b := budget(t,
		Budget{Cases: 2, ShrinkRuns: 12, ShrinkTime: 40 * time.Second, Reruns: 2},
		Budget{Cases: 6, ShrinkRuns: 40, ShrinkTime: 3 * time.Minute, Reruns: 3, MinRepro: 0.5, MaxBack: 3},
		Budget{Cases: 100, ShrinkRuns: 150, ShrinkTime: 10 * time.Minute, Reruns: 10, MinRepro: 0.5, MaxBack: 6})
	for _, driver := range []string{"modernc", "mattn"} {
		t.Run(driver, func(t *testing.T) {
			sp := ScenarioProperty{Name: "hardened-never-silent", Scenario: *scenarioFlag, Profile: kanbancore.ProfileHardened,
				Duration: runDuration(), Seed: seed}
			s := sp.Search(HonestSpace(), seed, b, t.Logf, driver)
			s.Name = sp.Name + "-" + driver
			f, st, err := s.Run(context.Background())
			t.Logf("%d cases (%d conclusive), %d runs, %d faults fired, %v", st.Cases, st.Conclusive, st.Evals, st.Fired, st.Wall.Round(time.Millisecond))
			if err != nil {
				t.Fatalf("%v", err)
			}
			if f != nil {
				reportFailure(t, sp, f, FoundDir())
				return
			}
			if why := st.Vacuous(true); why != "" {
				t.Fatalf("vacuous: %s (seed %d)", why, seed)
			}
		})
	}
}

// plantedSpace is the honest space narrowed to reads and writes of the
// WAL and the database (the files a WAL-mode board touches inside write
// transactions), with 3–4 rules firing up to 12 times: the planted-bug test
// must find the bug within a CI budget, and start from plans big enough
// that shrinking has work to do.
func plantedSpace() PlanSpace {
	s := HonestSpace()
	s.Ops = map[plan.Op]int{plan.OpRead: 6, plan.OpWrite: 3, plan.OpFsync: 1}
	s.Kinds = map[plan.Kind]int{plan.KindShort: 3, plan.KindEIO: 2, plan.KindErrno: 1, plan.KindDelay: 1}
	s.Paths = []string{"*-wal", "*-wal", "*-wal", "*.db"}
	s.Keeps = []int64{0, 0, 100, 1024}
	s.MaxCount, s.PersistentWeight = 12, 2
	s.MinRules, s.MaxRules = 3, 4
	return s
}

// TestPlantedBugShrinks is issue 5's done-when: the legacy write_txn
// (unguarded ROLLBACK) planted under the hardened profile makes
// hardened-never-silent fail; the failure shrinks to at most two rules; the
// saved file replays the failure through the runner of `chaosrun run
// SCENARIO --plan FILE` (and, outside -short or with $CHAOSRUN_BIN, through
// the chaosrun binary itself).
func TestPlantedBugShrinks(t *testing.T) {
	fusetest.Require(t)
	seed := testSeed(t)
	b := budget(t,
		Budget{Cases: 12, ShrinkRuns: 25, ShrinkTime: 100 * time.Second, Reruns: 3, MinRepro: 0.6, MaxBack: 3},
		Budget{Cases: 12, ShrinkRuns: 60, ShrinkTime: 4 * time.Minute, Reruns: 5, MinRepro: 0.6, MaxBack: 4},
		Budget{Cases: 20, ShrinkRuns: 200, ShrinkTime: 20 * time.Minute, Reruns: 10, MinRepro: 0.6, MaxBack: 6})
	sp := ScenarioProperty{Name: "hardened-never-silent", Scenario: "rollback-shadow", Profile: kanbancore.ProfileHardened,
		Sets: []string{"write_txn=legacy"}, Duration: runDuration(), Seed: seed, OutRoot: t.TempDir()}
	s := sp.Search(plantedSpace(), seed, b, t.Logf, "modernc")
	f, st, err := s.Run(context.Background())
	if err != nil {
		t.Fatalf("%v", err)
	}
	if f == nil {
		t.Fatalf("planted bug (write_txn=legacy under hardened) not detected in %d cases (%d runs, %v)", st.Cases, st.Evals, st.Wall)
	}
	shrunk := f.Shrunk.(ScenarioCase)
	orig := f.Original.(ScenarioCase)
	t.Logf("found at case %d: %d rules\n%s", f.Case, len(orig.Plan.Rules), orig.Plan.String())
	t.Logf("SHRINK: %d → %d rules in %d steps (%d given back for reliability), %d runs, %v (exhausted: %v); reproduced %d of %d re-runs\n%s",
		len(orig.Plan.Rules), len(shrunk.Plan.Rules), f.Shrinks, f.StepsBack, f.ShrinkRuns, f.ShrinkTime.Round(time.Millisecond),
		f.Exhausted, f.Reproduced, f.Reruns, shrunk.Plan.String())
	if n := len(shrunk.Plan.Rules); n > 2 {
		t.Errorf("shrunk plan has %d rules, want ≤ 2", n)
	}
	dir := t.TempDir()
	if *updateFound {
		dir = FoundDir()
	}
	found := sp.FoundOf(f)
	path, err := found.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(path)
	t.Logf("saved %s:\n%s", path, text)

	// Replay from the file alone, as `chaosrun run --plan FILE` does.
	back, err := ReadFound(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := scenarios.Config{Scenario: back.Scenario, Profile: back.Profile, Driver: back.Driver, Seed: back.Seed,
		Duration: back.Duration, Sets: back.Sets, PlanOverride: string(text), Stderr: devNull(t)}
	replayRoot := t.TempDir()
	// Cross-process timing is not seeded: a replay reproduces with some
	// probability (the re-runs above measured it; a loaded CI machine
	// measured 0 of 6 once for a plan that reproduced 3 of 3 in the
	// re-runs), so try up to ten times.
	const maxReplays = 10
	attempts, hits := 0, 0
	for attempts < maxReplays && hits == 0 {
		attempts++
		cfg.Out = filepath.Join(replayRoot, fmt.Sprint(attempts))
		res, err := scenarios.Execute(context.Background(), cfg)
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		o := JudgeResults(res.Results, NeverFail)
		t.Logf("replay %d: fail=%v %s (%s)", attempts, o.Fail, o.Why, res.Dir)
		if o.Fail {
			hits++
		}
	}
	if hits == 0 {
		t.Errorf("the saved plan did not reproduce the failure in %d replays", attempts)
	}

	// The chaosrun binary, when there is one (or outside -short).
	bin := os.Getenv("CHAOSRUN_BIN")
	if bin == "" && !testing.Short() {
		bin = buildChaosrun(t)
	}
	if bin == "" {
		t.Logf("chaosrun binary replay skipped under -short (set CHAOSRUN_BIN=bin/chaosrun to run it)")
		return
	}
	args := strings.Fields(found.ReplayCommand(path))[1:]
	for i := 0; i < maxReplays; i++ {
		out, err := exec.Command(bin, append(args, "--out", filepath.Join(t.TempDir(), "run"))...).CombinedOutput()
		failed := neverFailRow.Match(out)
		t.Logf("chaosrun %s: exit %v, property failure seen: %v", strings.Join(args, " "), err, failed)
		if failed {
			return
		}
		if i == maxReplays-1 {
			t.Errorf("chaosrun run did not reproduce the failure in %d attempts; last output:\n%s", maxReplays, out)
		}
	}
}

// neverFailRow matches a failing NeverFail checker's row in chaosrun run's
// output (a tabwriter table: the name is padded to the widest).
var neverFailRow = regexp.MustCompile(`(?m)^\s*(silent|durability|error-fidelity)\s+fail\s`)

func devNull(t *testing.T) *os.File {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// buildChaosrun builds cmd/chaosrun into a temporary directory.
func buildChaosrun(t *testing.T) string {
	t.Helper()
	root := filepath.Dir(filepath.Dir(FoundDir()))
	if os.Getenv(FoundEnv) != "" {
		root = ".."
	}
	bin := filepath.Join(t.TempDir(), "chaosrun")
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(gobin, "build", "-o", bin, "./cmd/chaosrun")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build chaosrun: %v\n%s", err, out)
	}
	return bin
}

// TestNeverFailRowMatchesPaddedTable: chaosrun run prints the checkers as
// a tabwriter table, so a short name is padded; the row matcher must see a
// failing silent or durability row, and no passing one.
func TestNeverFailRowMatchesPaddedTable(t *testing.T) {
	for _, c := range []struct {
		checker, verdict string
		want             bool
	}{{"silent", "fail", true}, {"durability", "fail", true}, {"error-fidelity", "fail", true}, {"silent", "pass", false}, {"structure", "fail", false}} {
		var b strings.Builder
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", "error-fidelity", "pass", "x")
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.checker, c.verdict, "summary")
		tw.Flush()
		if got := neverFailRow.MatchString(b.String()); got != c.want {
			t.Errorf("%s %s: matched %v, want %v in\n%s", c.checker, c.verdict, got, c.want, b.String())
		}
	}
}
