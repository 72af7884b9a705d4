package prop

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
	"github.com/sqlchaos/sqlchaos/oracle"
)

// FidelitySpace is single faults aimed at error-fidelity's target: reads
// inside write transactions failing (short reads, EIO, other errnos) on the
// WAL, the shm and the database, at varying points.
func FidelitySpace() PlanSpace {
	s := HonestSpace()
	s.Kinds = map[plan.Kind]int{plan.KindShort: 4, plan.KindEIO: 1, plan.KindErrno: 1}
	s.Paths = []string{"*-wal", "*-wal", "*-shm", "*.db"}
	s.Ops = map[plan.Op]int{plan.OpRead: 1}
	s.Keeps = []int64{0, 100, 1024}
	s.MinRules, s.MaxRules = 1, 1
	s.MaxNth, s.MaxCount, s.PersistentWeight = 15, 3, 0
	s.Probabilistic, s.HeaderOff = false, false
	return s
}

// fidelityCheck runs the harness twice, write_txn=legacy and
// write_txn=hardened on the hardened profile, and checks the detector
// against the library's own ground truth:
//   - the hardened switch never makes error-fidelity fire;
//   - on the legacy switch it fires exactly when some op returned a
//     *kanbancore.RollbackError (a cause really was shadowed);
//   - at every op where legacy shadowed a cause, the hardened switch
//     surfaced an error of the cause's class.
func fidelityCheck(ctx context.Context, driver, template string, seed int64, p plan.Plan, covered *int) Outcome {
	run := func(wt string) (*HonestyRun, error) {
		return RunHonesty(ctx, HonestyConfig{Driver: driver, Sets: []string{"write_txn=" + wt}, Plan: p, Seed: seed, Template: template})
	}
	l, err := run("legacy")
	if err != nil {
		return Outcome{Err: err}
	}
	h, err := run("hardened")
	if err != nil {
		return Outcome{Err: err}
	}
	var bad []string
	lv, hv := l.Results["error-fidelity"], h.Results["error-fidelity"]
	if hv.Verdict == oracle.Fail {
		bad = append(bad, "error-fidelity fired on write_txn=hardened: "+hv.Summary)
	}
	shadowed := l.Shadowed()
	if (lv.Verdict == oracle.Fail) != (len(shadowed) > 0) {
		bad = append(bad, fmt.Sprintf("on write_txn=legacy error-fidelity=%s (%s) but the library shadowed %d causes", lv.Verdict, lv.Summary, len(shadowed)))
	}
	for _, k := range shadowed {
		if k >= len(h.Ops) {
			bad = append(bad, fmt.Sprintf("op %d shadowed on legacy, hardened run has only %d ops", k, len(h.Ops)))
			continue
		}
		if want, got := l.Ops[k].CauseClass, h.Ops[k]; got.Err == "" || got.Class != want {
			bad = append(bad, fmt.Sprintf("op %d (%s): legacy shadowed a %s cause, hardened surfaced %q (class %s)", k, got.Op, want, got.Err, got.Class))
		}
	}
	if len(shadowed) > 0 {
		*covered++
	}
	why := fmt.Sprintf("legacy: fidelity=%s shadowed=%d fired=%d; hardened: fidelity=%s fired=%d", lv.Verdict, len(shadowed), l.Fired, hv.Verdict, h.Fired)
	if l.Crashed != "" || h.Crashed != "" {
		why += fmt.Sprintf("; workload crashed: legacy %q hardened %q", l.Crashed, h.Crashed)
	}
	if len(bad) > 0 {
		return Outcome{Fail: true, Why: strings.Join(bad, "; ") + " [" + why + "]"}
	}
	return Outcome{Why: why}
}

// TestPropDetectorHonesty is property 3 of issue 5 for error-fidelity:
// generated single faults aimed at its target make the checker fire on the
// legacy write_txn switch exactly when the library really shadowed a cause,
// and never on the fixed switch, which surfaces the cause instead. The
// catalog says so in rollback-shadow (legacy fails error-fidelity, hardened
// passes it).
func TestPropDetectorHonesty(t *testing.T) {
	fusetest.Require(t)
	seed := testSeed(t)
	b := budget(t,
		Budget{Cases: 24, ShrinkRuns: 10, ShrinkTime: 30 * time.Second, Reruns: 0},
		Budget{Cases: 40, ShrinkRuns: 30, ShrinkTime: 2 * time.Minute, Reruns: 0},
		Budget{Cases: 500, ShrinkRuns: 100, ShrinkTime: 10 * time.Minute, Reruns: 0})
	for _, driver := range []string{"modernc", "mattn"} {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			template := t.TempDir()
			if err := MakeHonestyBoard(ctx, template, driver); err != nil {
				t.Fatal(err)
			}
			covered := 0
			s := &Search{Name: "detector-honesty-fidelity-" + driver, Gen: GenPlan(FidelitySpace()), Seed: seed, Budget: b, Logf: t.Logf,
				Key: func(v interface{}) string { p := v.(plan.Plan); return p.String() },
				Check: func(ctx context.Context, v interface{}) Outcome {
					return fidelityCheck(ctx, driver, template, seed, v.(plan.Plan), &covered)
				}}
			f, st, err := s.Run(ctx)
			t.Logf("%d cases, %d harness pairs, %v; %d cases shadowed a cause on legacy", st.Cases, st.Evals, st.Wall.Round(time.Millisecond), covered)
			if err != nil {
				t.Fatalf("setup: %v", err)
			}
			if f != nil {
				p := f.Shrunk.(plan.Plan)
				t.Fatalf("detector honesty violated: %s\n  seed %d case %d; shrunk in %d steps / %d runs / %v to:\n%s  replay: go test ./prop -run '^%s$' -seed %d",
					f.Last.Why, f.Seed, f.Case, f.Shrinks, f.ShrinkRuns, f.ShrinkTime.Round(time.Millisecond), p.String(), t.Name(), f.Seed)
			}
			if covered == 0 {
				t.Errorf("no generated fault made the legacy switch shadow a cause in %d cases: the property was vacuous (raise -cases)", st.Cases)
			}
		})
	}
}
