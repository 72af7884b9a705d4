package prop

import (
	"math/rand"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/prop"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/kanbancore"
)

// params returns gopter parameters seeded from the run's seed.
func params(t *testing.T, cases int) *gopter.TestParameters {
	t.Helper()
	p := gopter.DefaultTestParametersWithSeed(testSeed(t))
	p.MinSuccessfulTests = cases
	return p
}

// roundTrips reports whether Parse(p.String()) is deep-equal to p and
// printing is idempotent.
func roundTrips(p plan.Plan) (bool, string) {
	text := p.String()
	q, err := plan.Parse(text)
	if err != nil {
		return false, "parse: " + err.Error() + "\n" + text
	}
	if len(p.Rules) == 0 && len(q.Rules) == 0 {
		return true, ""
	}
	if !reflect.DeepEqual(*q, p) {
		return false, "not deep-equal after Parse(String()):\n" + text + "\n" + q.String()
	}
	if q.String() != text {
		return false, "printing is not idempotent:\n" + text + "\n" + q.String()
	}
	return true, ""
}

// planScore is a size measure every shrink step must decrease: it makes
// shrinking terminate and "smaller" mean something.
func planScore(p plan.Plan) int64 {
	var n int64
	for _, r := range p.Rules {
		n += 1 << 20
		n += ruleScore(r)
	}
	return n
}

func ruleScore(r plan.Rule) int64 {
	var n int64
	if r.Count == 0 {
		n += 1000
	} else {
		n += int64(r.Count)
	}
	n += int64(r.Nth + r.After + r.Every)
	if r.P != 0 {
		n += 100
	}
	if r.Off {
		n++
	}
	if r.HasOff {
		n++
	}
	if r.MinLen != 0 {
		n++
	}
	n += r.Keep + int64(len(r.Ops)) + r.Bit
	if r.Kind == plan.KindErrno {
		n++
		if r.Errno != syscall.EIO {
			n++
		}
	}
	if r.Kind == plan.KindTorn && !r.ThenOK && r.Errno != syscall.EIO {
		n++
	}
	n += int64(r.Delay/1000) + int64(r.Jitter/1000)
	return n
}

func TestPropPlanRoundTrip(t *testing.T) {
	for name, space := range map[string]PlanSpace{"default": DefaultSpace(), "honest": HonestSpace()} {
		t.Run(name, func(t *testing.T) {
			p := prop.ForAll(func(p plan.Plan) (bool, error) {
				ok, why := roundTrips(p)
				if !ok {
					t.Log(why)
				}
				return ok, nil
			}, GenPlan(space))
			res := p.Check(params(t, 500))
			if !res.Passed() {
				t.Fatalf("generated plan does not round-trip: %+v", res.Args)
			}
		})
	}
}

// TestPropShrinkCandidates checks every shrink candidate of generated plans:
// it round-trips, is strictly smaller, never empty, and (honest space)
// stays honest.
func TestPropShrinkCandidates(t *testing.T) {
	space := HonestSpace()
	p := prop.ForAll(func(p plan.Plan) string {
		if !Honest(p) {
			return "generated plan is not honest:\n" + p.String()
		}
		shrink := ShrinkPlan(p)
		for v, ok := shrink(); ok; v, ok = shrink() {
			q := v.(plan.Plan)
			if ok, why := roundTrips(q); !ok {
				return "candidate does not round-trip: " + why
			}
			if len(q.Rules) == 0 {
				return "empty candidate of\n" + p.String()
			}
			if planScore(q) >= planScore(p) {
				return "candidate not smaller:\n" + q.String() + "of\n" + p.String()
			}
			if !Honest(q) && Honest(p) {
				return "candidate left the honest space:\n" + q.String()
			}
		}
		return ""
	}, GenPlan(space))
	res := p.Check(params(t, 300))
	if !res.Passed() {
		t.Fatalf("%v", res.Args)
	}
}

// TestShrinkToFixpoint shrinks generated plans against a predicate that
// holds for plans with an eio rule on a WAL file and checks the result is
// the smallest such plan: one rule, eio on the WAL, first match, once.
func TestShrinkToFixpoint(t *testing.T) {
	isWALEIO := func(r plan.Rule) bool {
		return r.Errno == syscall.EIO && r.Path == "*-wal" && !r.Off &&
			(r.Kind == plan.KindEIO || r.Kind == plan.KindErrno) && (r.P == 0 || r.P >= 0.5)
	}
	fails := func(p plan.Plan) bool {
		for _, r := range p.Rules {
			if isWALEIO(r) {
				return true
			}
		}
		return false
	}
	rng := rand.New(rand.NewSource(testSeed(t)))
	space := DefaultSpace()
	space.MinRules, space.MaxRules = 3, 6
	found := 0
	for i := 0; i < 2000 && found < 20; i++ {
		p := plan.Plan{}
		for k := 0; k < 3+rng.Intn(4); k++ {
			p.Rules = append(p.Rules, space.drawRule(rng))
		}
		if !fails(p) {
			continue
		}
		found++
		steps := 0
		for {
			next, ok := firstShrink(p, fails)
			if !ok {
				break
			}
			p = next
			steps++
		}
		if len(p.Rules) != 1 {
			t.Fatalf("shrunk to %d rules:\n%s", len(p.Rules), p.String())
		}
		r := p.Rules[0]
		if r.Count > 1 || r.Count == 0 && !(r.Nth == 0 && r.After == 0) || r.Nth > 1 || r.After > 0 || r.P != 0 || r.Every != 0 || r.MinLen != 0 || len(r.Ops) != 1 {
			t.Fatalf("not minimal after %d steps: %s", steps, p.String())
		}
	}
	if found == 0 {
		t.Fatal("no generated plan had an eio rule on the WAL: generator too narrow")
	}
}

func firstShrink(p plan.Plan, fails func(plan.Plan) bool) (plan.Plan, bool) {
	s := ShrinkPlan(p)
	for v, ok := s(); ok; v, ok = s() {
		if q := v.(plan.Plan); fails(q) {
			return q, true
		}
	}
	return p, false
}

func TestPropEngineAcceptsGenerated(t *testing.T) {
	p := prop.ForAll(func(p plan.Plan) bool {
		e := plan.NewEngine(&p, 1)
		for i := 0; i < 50; i++ {
			e.Decide(plan.Call{Op: plan.OpWrite, Path: "/x/kanban.db-wal", Off: int64(i) * 4096, Len: 4096})
			e.Decide(plan.Call{Op: plan.OpRead, Path: "/x/kanban.db", Off: int64(i) * 4096, Len: 4096})
		}
		return len(e.Counters()) == len(p.Rules)
	}, GenPlan(DefaultSpace()))
	if res := p.Check(params(t, 200)); !res.Passed() {
		t.Fatalf("%v", res.Args)
	}
}

func TestPropSwitchSetsApply(t *testing.T) {
	p := prop.ForAll(func(profile string, set SwitchSet) string {
		sw, err := kanbancore.ProfileByName(profile)
		if err != nil {
			return err.Error()
		}
		if err := sw.ApplySets(set); err != nil {
			return err.Error()
		}
		if err := sw.Validate(); err != nil {
			return err.Error()
		}
		s := ShrinkSwitchSet(set)
		for v, ok := s(); ok; v, ok = s() {
			if len(v.(SwitchSet)) >= len(set) {
				return "switch-set shrink not smaller"
			}
		}
		return ""
	}, GenProfile(), GenSwitchSet(4))
	if res := p.Check(params(t, 200)); !res.Passed() {
		t.Fatalf("%v", res.Args)
	}
}

func TestPropWorkloadShape(t *testing.T) {
	for _, part := range []bool{false, true} {
		space := DefaultWorkloadSpace()
		space.Partitioned = part
		testWorkloadShape(t, space)
	}
}

func testWorkloadShape(t *testing.T, space WorkloadSpace) {
	p := prop.ForAll(func(w Workload) string {
		if w.Roles < space.MinRoles || w.Roles > space.MaxRoles || len(w.Steps) < space.MinSteps || len(w.Steps) > space.MaxSteps {
			return "out of space: " + w.String()
		}
		for _, s := range w.Steps {
			if s.Role < 0 || s.Role >= w.Roles || s.Task < 0 || s.Task >= w.Tasks || s.Parent < 0 || s.Parent >= w.Tasks {
				return "bad step " + s.String()
			}
			if w.Partitioned && (s.Task%w.Roles != s.Role || (s.Op == OpLink || s.WithParent) && s.Parent%w.Roles != s.Role) {
				return "step leaves its role's partition: " + s.String()
			}
		}
		s := ShrinkWorkload(w)
		for v, ok := s(); ok; v, ok = s() {
			x := v.(Workload)
			if len(x.Steps)+x.Roles >= len(w.Steps)+w.Roles {
				return "workload shrink not smaller"
			}
			for _, st := range x.Steps {
				if st.Role >= x.Roles {
					return "shrunk workload has a step of a missing role"
				}
			}
		}
		return ""
	}, GenWorkload(space))
	if res := p.Check(params(t, 200)); !res.Passed() {
		t.Fatalf("%v", res.Args)
	}
}

// FuzzPlanFromSeed maps a seed to a generated plan (go test -fuzz): the
// plan and all its shrink candidates round-trip through plan.Parse.
func FuzzPlanFromSeed(f *testing.F) {
	for _, s := range []int64{1, 2, 42, 1 << 40} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed int64) {
		v, _ := Sample(GenPlan(DefaultSpace()), seed)
		p := v.(plan.Plan)
		if ok, why := roundTrips(p); !ok {
			t.Fatal(why)
		}
		s := ShrinkPlan(p)
		for v, ok := s(); ok; v, ok = s() {
			if ok, why := roundTrips(v.(plan.Plan)); !ok {
				t.Fatal(why)
			}
		}
		// Same seed, same plan.
		w, _ := Sample(GenPlan(DefaultSpace()), seed)
		q := w.(plan.Plan)
		if q.String() != p.String() {
			t.Fatalf("seed %d gave two different plans", seed)
		}
	})
}

// TestFoundFilesParse reads every saved found plan back: each parses as a
// plan and names its scenario cell, so `chaosrun run` can replay it.
func TestFoundFilesParse(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(FoundDir(), "*.plan"))
	for _, f := range files {
		fd, err := ReadFound(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if len(fd.Plan.Rules) == 0 || fd.Property == "" || fd.Seed == 0 {
			t.Errorf("%s: incomplete (property %q, seed %d, %d rules)", f, fd.Property, fd.Seed, len(fd.Plan.Rules))
		}
	}
	t.Logf("%d found files", len(files))
}
