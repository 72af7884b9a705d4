package prop

import (
	"context"
	"fmt"
	"os"
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
func fidelityCheck(ctx context.Context, driver, template string, seed int64, p plan.Plan, covered *int) Evaluation {
	run := func(wt string) (*HonestyRun, error) {
		return RunHonesty(ctx, HonestyConfig{Driver: driver, Sets: []string{"write_txn=" + wt}, Plan: p, Seed: seed, Template: template})
	}
	l, err := run("legacy")
	if err != nil {
		return Evaluation{Err: err}
	}
	h, err := run("hardened")
	if err != nil {
		return Evaluation{Err: err}
	}
	var bad []string
	for _, r := range []*HonestyRun{l, h} {
		if r.Hung != "" {
			bad = append(bad, "hung: "+r.Hung)
		}
	}
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
		return Evaluation{Fail: true, Why: strings.Join(bad, "; ") + " [" + why + "]"}
	}
	return Evaluation{Why: why}
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
				Check: func(ctx context.Context, v interface{}) Evaluation {
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

var fuzzTemplates = map[string]string{}

// FuzzDetectorHonesty maps a seed to one generated fault aimed at
// error-fidelity's target and checks detector honesty on it (go test
// -fuzz=FuzzDetectorHonesty ./prop; every input is a seed, so a crasher
// replays with -seed). The driver is the seed's parity.
func FuzzDetectorHonesty(f *testing.F) {
	for _, s := range []int64{1, 2, 3, 4} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed int64) {
		fusetest.Require(t)
		driver := []string{"modernc", "mattn"}[seed&1]
		tmpl, ok := fuzzTemplates[driver]
		if !ok {
			dir, err := os.MkdirTemp("", "prop-fuzz-board-")
			if err != nil {
				t.Fatal(err)
			}
			if err := MakeHonestyBoard(context.Background(), dir, driver); err != nil {
				t.Fatal(err)
			}
			fuzzTemplates[driver], tmpl = dir, dir
		}
		v, _ := Sample(GenPlan(FidelitySpace()), seed)
		p := v.(plan.Plan)
		covered := 0
		if o := fidelityCheck(context.Background(), driver, tmpl, seed, p, &covered); o.Err != nil {
			t.Fatal(o.Err)
		} else if o.Fail {
			t.Fatalf("seed %d (%s): %s\n%s", seed, driver, o.Why, p.String())
		}
	})
}

// PageCountSpace is single torn writes aimed at page-count's target: a
// page write to the database, past the header page, that keeps only part
// of the page and reports success (a torn extend when it lands past the end
// of the file, as a checkpoint's writes do). Left out on purpose, because
// they make the file shorter than its header's page count without any torn
// extend (so the ground truth below would call them one): a torn write of
// page 1, and a torn write that fails (then=ERRNO), which aborts the
// checkpoint after page 1 already carries the new page count — harmless in
// WAL mode, where the WAL still holds every frame, yet raw-read reports it
// as TORN_EXTEND.
func PageCountSpace() PlanSpace {
	s := DefaultSpace()
	s.Kinds = map[plan.Kind]int{plan.KindTorn: 1}
	s.Paths = []string{"*.db"}
	s.Keeps = []int64{0, 512, 1024, 2048}
	s.TornThenOK, s.TornOnlyOK = true, true
	s.MinOff = 4096
	s.MinRules, s.MaxRules = 1, 1
	s.MaxNth, s.MaxCount, s.PersistentWeight = 12, 1, 0
	s.Probabilistic, s.HeaderOff = false, false
	return s
}

// pageCountCheck runs the harness with the page-count check off (legacy)
// and raw-read (the PR-era check, the one that looks at the file in WAL
// mode), with a checkpoint after every commit so the database file grows
// at commit time, and checks the detector and the check against ground
// truth (the trace's fired faults, and the backing file read after every
// op, never through the mount):
//   - the checker never fails on either switch unless a torn write to the
//     database fired (no false fire);
//   - raw-read never reports TORN_EXTEND while the file is whole (no
//     false alarm of the check), and when the file becomes shorter than
//     its header's page count after op k, op k reported TORN_EXTEND.
//
// stats counts the torn extends the checker saw and how many of them the
// check reported: in WAL mode SQLite sizes the database with ftruncate at
// the end of a checkpoint, so a torn page write past the end leaves a torn
// page inside a full-size file, which no page-count check can see.
func pageCountCheck(ctx context.Context, driver, template string, seed int64, p plan.Plan, stats *pageCountStats) Evaluation {
	run := func(check string) (*HonestyRun, error) {
		return RunHonesty(ctx, HonestyConfig{Driver: driver, Sets: []string{"page_count_check=" + check, "wal_autocheckpoint=1"},
			Plan: p, Seed: seed, Template: template, Ops: 8})
	}
	off, err := run("off")
	if err != nil {
		return Evaluation{Err: err}
	}
	raw, err := run("raw-read")
	if err != nil {
		return Evaluation{Err: err}
	}
	var bad []string
	for _, h := range []struct {
		name string
		run  *HonestyRun
	}{{"off", off}, {"raw-read", raw}} {
		if v := h.run.Results["page-count"]; v.Verdict == oracle.Fail && h.run.Fired == 0 {
			bad = append(bad, h.name+": page-count failed with no fault fired: "+v.Summary)
		}
	}
	wasShort := false
	for _, o := range raw.Ops {
		if o.Class == "TORN_EXTEND" && !o.Short && !wasShort {
			bad = append(bad, fmt.Sprintf("raw-read: op %d (%s) reported TORN_EXTEND while the file was whole: %s", o.Index, o.Op, o.Err))
		}
		if o.Short && !wasShort {
			stats.short++
			if o.Class != "TORN_EXTEND" {
				bad = append(bad, fmt.Sprintf("raw-read: the file became shorter than its page count after op %d (%s), which returned %q (class %q), not TORN_EXTEND", o.Index, o.Op, o.Err, o.Class))
			}
		}
		wasShort = wasShort || o.Short
	}
	offV, rawV := off.Results["page-count"], raw.Results["page-count"]
	if off.Fired > 0 {
		stats.fired++
	}
	if offV.Verdict == oracle.Fail {
		stats.offFail++
	}
	if rawV.Verdict == oracle.Fail {
		stats.rawFail++
	}
	why := fmt.Sprintf("off: page-count=%s fired=%d; raw-read: page-count=%s (%s) fired=%d", offV.Verdict, off.Fired, rawV.Verdict, rawV.Summary, raw.Fired)
	if len(bad) > 0 {
		return Evaluation{Fail: true, Why: strings.Join(bad, "; ") + " [" + why + "]"}
	}
	return Evaluation{Why: why}
}

type pageCountStats struct{ fired, short, offFail, rawFail int }

// TestPropDetectorHonestyPageCount is property 3 of issue 5 for page-count
// (fix 6): see pageCountCheck.
func TestPropDetectorHonestyPageCount(t *testing.T) {
	fusetest.Require(t)
	seed := testSeed(t)
	b := budget(t,
		Budget{Cases: 10, ShrinkRuns: 10, ShrinkTime: 30 * time.Second},
		Budget{Cases: 30, ShrinkRuns: 30, ShrinkTime: 2 * time.Minute},
		Budget{Cases: 400, ShrinkRuns: 100, ShrinkTime: 10 * time.Minute})
	for _, driver := range []string{"modernc", "mattn"} {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			template := t.TempDir()
			if err := MakeHonestyBoard(ctx, template, driver); err != nil {
				t.Fatal(err)
			}
			var stats pageCountStats
			s := &Search{Name: "detector-honesty-pagecount-" + driver, Gen: GenPlan(PageCountSpace()), Seed: seed, Budget: b, Logf: t.Logf,
				Key: func(v interface{}) string { p := v.(plan.Plan); return p.String() },
				Check: func(ctx context.Context, v interface{}) Evaluation {
					return pageCountCheck(ctx, driver, template, seed, v.(plan.Plan), &stats)
				}}
			f, st, err := s.Run(ctx)
			t.Logf("%d cases, %d harness pairs, %v; a torn write fired in %d, left the file short in %d; page-count failed on off in %d, on raw-read in %d",
				st.Cases, st.Evals, st.Wall.Round(time.Millisecond), stats.fired, stats.short, stats.offFail, stats.rawFail)
			if err != nil {
				t.Fatalf("setup: %v", err)
			}
			if f != nil {
				p := f.Shrunk.(plan.Plan)
				t.Fatalf("page-count honesty violated: %s\n  seed %d case %d; shrunk in %d steps / %d runs / %v to:\n%s  replay: go test ./prop -run '^%s$' -seed %d",
					f.Last.Why, f.Seed, f.Case, f.Shrinks, f.ShrinkRuns, f.ShrinkTime.Round(time.Millisecond), p.String(), t.Name(), f.Seed)
			}
			if stats.fired == 0 {
				t.Errorf("no generated torn write fired in %d cases: the property was vacuous (raise -cases)", st.Cases)
			}
		})
	}
}
