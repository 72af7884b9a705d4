package prop

import (
	"context"
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/prop"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/scenarios"
)

var honestyScenarios = flag.String("honesty-scenarios", "", "comma-separated catalog scenarios TestPropDetectorHonestyCatalog runs (default by mode)")

// TestHonestyExclusionsCurrent checks that the cells the catalog
// detector-honesty property leaves out are exactly the cells the catalog
// pins a finding to, and prints what the property covers and leaves out.
func TestHonestyExclusionsCurrent(t *testing.T) {
	targets, skipped := HonestyTargets()
	for _, tg := range targets {
		sc, _ := scenarios.Lookup(tg.Scenario)
		for _, prof := range []string{kanbancore.ProfileLegacy, kanbancore.ProfileHardened} {
			for _, drv := range []string{"modernc", "mattn"} {
				if pinned := sc.Cell(prof, drv).Finding != nil; pinned != (tg.Skip(prof, drv) != "") {
					t.Errorf("%s %s/%s: finding pinned %v, excluded %q", tg.Scenario, prof, drv, pinned, tg.Skip(prof, drv))
				}
			}
		}
	}
	for _, tg := range targets {
		t.Logf("target %s: checkers %v, %d main rule(s), excluded cells %v", tg.Scenario, tg.Checkers, len(tg.Rules), tg.Excluded)
	}
	for n, why := range skipped {
		t.Logf("not a target: %s: %s", n, why)
	}
	if len(targets) < 4 {
		t.Errorf("only %d catalog targets", len(targets))
	}
}

// TestTemplateRoundTrip parses every catalog plan as a template and prints
// it back: the placeholders come back where they were.
func TestTemplateRoundTrip(t *testing.T) {
	for _, sc := range scenarios.All() {
		p, err := plan.Parse(sc.Plan)
		if err != nil {
			t.Errorf("%s: %v", sc.Name, err)
			continue
		}
		text := p.String()
		for _, m := range placeholders(sc.Plan) {
			if !strings.Contains(text, m) {
				t.Errorf("%s: %s lost: %q", sc.Name, m, text)
			}
		}
		q, err := plan.Parse(text)
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Errorf("%s: %q does not round-trip (%v)", sc.Name, text, err)
		}
		if len(p.Rules) == 0 {
			continue
		}
		// A found file keeps the template and reads back.
		fd := Found{Property: "x", Scenario: sc.Name, Profile: "legacy", Driver: "modernc", Seed: 1, Plan: *p}
		path, err := fd.Write(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		templated := len(placeholders(text)) > 0
		got, err := ReadFound(path)
		if err != nil || got.Plan.Templated() != templated || got.Plan.String() != p.String() || !reflect.DeepEqual(got.Plan, *p) {
			t.Errorf("%s: found file with template %q reads back as %q (%v)", sc.Name, text, got.Plan.String(), err)
		}
	}
}

// placeholders returns the {...} words of a plan text.
func placeholders(s string) []string {
	var out []string
	for {
		i := strings.Index(s, "{")
		j := strings.Index(s[max(i, 0):], "}")
		if i < 0 || j < 0 {
			return out
		}
		out = append(out, s[i:i+j+1])
		s = s[i+j+1:]
	}
}

// TestPropCatalogVariants: generated variants and their shrink candidates
// stay on the main rule's target, print as templates the runner accepts,
// and the main rule itself is predicted.
func TestPropCatalogVariants(t *testing.T) {
	seed := testSeed(t)
	targets, _ := HonestyTargets()
	for _, tg := range targets {
		tg := tg
		if ok, why := Predicted(tg.Rules, 0, Canon(tg.Rules[0])); len(tg.Rules) == 1 && !ok {
			t.Errorf("%s: the main rule is not predicted: %s", tg.Scenario, why)
		}
		p := prop.ForAll(func(c CatalogCase) string {
			orig := tg.Rules[c.Index]
			if !sameTarget(orig, c.Rule) {
				return "variant left the target: " + c.String()
			}
			if _, err := plan.Parse(c.Template()); err != nil {
				return err.Error()
			}
			return ""
		}, GenCatalogCase(tg, "modernc"))
		params := gopter.DefaultTestParametersWithSeed(seed)
		params.MinSuccessfulTests = 100
		res := p.Check(params)
		if !res.Passed() {
			t.Errorf("%s: %v %v", tg.Scenario, res.Status, res.Args)
		}
		// Every shrink candidate of a sample stays on target.
		for i := 0; i < 20; i++ {
			v, gr := Sample(GenCatalogCase(tg, "modernc"), CaseSeed(seed, tg.Scenario, i))
			c := v.(CatalogCase)
			sh := gr.Shrinker(c)
			for x, ok := sh(); ok; x, ok = sh() {
				y := x.(CatalogCase)
				if !sameTarget(tg.Rules[c.Index], y.Rule) || reflect.DeepEqual(y.Rule, c.Rule) {
					t.Errorf("%s: shrink candidate %s of %s leaves the target or does not change", tg.Scenario, y, c)
				}
			}
		}
	}
}

// TestPropDetectorHonestyCatalog is property 3 of issue 5 over the
// catalog: for every scenario whose legacy expectation names failing
// checkers (HonestyTargets), single-fault variants of its main rule run
// under legacy (K times) and hardened through scenarios.Execute; hardened
// must never fail the checkers (a false alarm, or the fix not holding) and
// legacy must fail them at least once in K runs of every variant the
// catalog predicts (see Predicted). Cells the scenario's doc records as
// unexpected are excluded with the reason printed. Cross-process timing is
// not seeded: rates are reported, a violation is re-run and shrunk
// (counts, nth, keep, errno) and saved under testdata/found/.
func TestPropDetectorHonestyCatalog(t *testing.T) {
	fusetest.Require(t)
	seed := testSeed(t)
	mode := CurrentMode(testing.Short())
	b := budget(t,
		Budget{Cases: 2, ShrinkRuns: 3, ShrinkTime: 30 * time.Second, Reruns: 1},
		Budget{Cases: 2, ShrinkRuns: 8, ShrinkTime: 2 * time.Minute, Reruns: 2},
		Budget{Cases: 3, ShrinkRuns: 20, ShrinkTime: 5 * time.Minute, Reruns: 3})
	// Soak: 6 targets × 2 drivers × 3 cases × 6 runs of 2–12 s, about 20
	// minutes of make soak's 90.
	// CI (plain go test): every target on both drivers, 2 cases of 3 runs,
	// about 6 minutes (a run is 2–12 s).
	k, hn := [...]int{2, 2, 4}[mode], [...]int{1, 1, 2}[mode]
	drivers := []string{"modernc", "mattn"}
	names := map[string]bool{}
	switch {
	case *honestyScenarios != "":
		for _, n := range strings.Split(*honestyScenarios, ",") {
			names[strings.TrimSpace(n)] = true
		}
	case mode == ModeShort:
		// About 20 s: the two cheapest targets (connect-eio-zombies adds
		// 20 s more, see -honesty-scenarios).
		names = map[string]bool{"eio-wal-downgrade": true, "rollback-shadow": true}
		drivers = []string{"modernc"}
	}
	// -short runs the two scenarios above with a 1 s load phase (their
	// checkers see their targets in it); the other modes use each
	// scenario's own (transient-header-latch's liveness needs its 9 s).
	dur := *durationFlag
	if dur == 0 && mode == ModeShort && *honestyScenarios == "" {
		dur = time.Second
	}
	targets, skipped := HonestyTargets()
	for n, why := range skipped {
		t.Logf("not a target: %s: %s", n, why)
	}
	t.Logf("mode %s: %d legacy and %d hardened runs per variant, duration %v (0: the scenario's); case 0 of each target is its main rule", mode, k, hn, dur)
	start := time.Now()
	for _, tg := range targets {
		if len(names) > 0 && !names[tg.Scenario] {
			t.Logf("%s: not in this mode's list (-honesty-scenarios to add it)", tg.Scenario)
			continue
		}
		for _, driver := range drivers {
			tg, driver := tg, driver
			t.Run(tg.Scenario+"/"+driver, func(t *testing.T) {
				for _, prof := range []string{"legacy", "hardened"} {
					if why := tg.Skip(prof, driver); why != "" {
						t.Logf("EXCLUDED %s/%s/%s: %s", tg.Scenario, prof, driver, why)
					}
				}
				stats := &CatalogStats{}
				h := CatalogHonesty{Target: tg, Seed: seed, Duration: dur, Legacy: k, Hardened: hn,
					OutRoot: t.TempDir(), Stats: stats}
				s := h.Search(driver, b, t.Logf)
				f, st, err := s.Run(context.Background())
				t.Logf("%s/%s: checkers %v; %d cases, %d evaluations, %v; %s", tg.Scenario, driver, tg.Checkers, st.Cases, st.Evals,
					st.Wall.Round(time.Millisecond), stats)
				if err != nil {
					t.Fatalf("%v", err)
				}
				if why := st.Vacuous(true); why != "" {
					t.Fatalf("vacuous: %s", why)
				}
				if tg.Skip(kanbancore.ProfileLegacy, driver) == "" && h.Legacy > 0 && stats.PredConclusive == 0 {
					t.Errorf("vacuous: no legacy run of a predicted variant was conclusive (%s)", stats)
				}
				if tg.Skip(kanbancore.ProfileHardened, driver) == "" && h.Hardened > 0 && stats.HardConclusive == 0 {
					t.Errorf("vacuous: no hardened run was conclusive (%s)", stats)
				}
				if f == nil {
					return
				}
				found := h.FoundOf(f)
				path, werr := found.Write(FoundDir())
				if werr != nil {
					t.Errorf("save found plan: %v", werr)
				}
				t.Errorf("detector honesty violated: %s\n  seed %d, case %d (case seed %d); first: %s\n  %s → %s in %d steps, %d runs, %v\n  reproduced %d of %d re-runs (cross-process timing is not seeded)\n  saved: %s\n  replay: %s\n  or:     go test ./prop -run '^%s$' -seed %d -honesty-scenarios %s\n  run dir: %s",
					f.Last.Why, f.Seed, f.Case, f.CaseSeed, f.First.Why, f.Original.(CatalogCase), f.Shrunk.(CatalogCase),
					f.Shrinks, f.ShrinkRuns, f.ShrinkTime.Round(time.Millisecond), f.Reproduced, f.Reruns, path,
					found.ReplayCommand(path), strings.Split(t.Name(), "/")[0], f.Seed, tg.Scenario, f.Last.Dir)
			})
		}
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// TestCatalogHonestyCatchesPlantedBug plants the legacy write_txn under
// the hardened profile of rollback-shadow: the catalog honesty property
// must report hardened failing error-fidelity, and the saved found file
// must keep the plan and replay the cell (profile, sets) it failed in.
func TestCatalogHonestyCatchesPlantedBug(t *testing.T) {
	fusetest.Require(t)
	seed := testSeed(t)
	targets, _ := HonestyTargets()
	var tg HonestyTarget
	for _, x := range targets {
		if x.Scenario == "rollback-shadow" {
			tg = x
		}
	}
	if tg.Scenario == "" {
		t.Fatal("rollback-shadow is not a detector-honesty target")
	}
	h := CatalogHonesty{Target: tg, Seed: seed, Duration: time.Second, Legacy: 0, Hardened: 1, OutRoot: t.TempDir(),
		Stats: &CatalogStats{}, HardenedSets: []string{"write_txn=legacy"}}
	f, st, err := h.Search("modernc", Budget{Cases: 1, ShrinkRuns: 2, Reruns: 1}, t.Logf).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f == nil {
		t.Fatalf("planted write_txn=legacy under hardened not caught in %d cases: %s", st.Cases, h.Stats)
	}
	t.Logf("caught: %s; shrunk to %s; reproduced %d of %d", f.Last.Why, f.Shrunk.(CatalogCase), f.Reproduced, f.Reruns)
	found := h.FoundOf(f)
	path, err := found.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadFound(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Profile != "hardened" || strings.Join(back.Sets, " ") != "write_txn=legacy" || len(back.Plan.Rules) != 1 ||
		!strings.Contains(found.ReplayCommand(path), "--set write_txn=legacy") {
		t.Errorf("found file does not name the failing cell: %+v", back)
	}
}
