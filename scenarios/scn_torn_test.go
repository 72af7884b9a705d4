package scenarios

import (
	"context"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
)

// TestScenarioSetsReachEveryRole: a scenario's Sets come first in every
// role's switch overrides, then the run's --set flags, then the role's own.
func TestScenarioSetsReachEveryRole(t *testing.T) {
	sc, ok := Lookup("torn-extend")
	if !ok {
		t.Fatal("torn-extend is not in the catalog")
	}
	if !reflect.DeepEqual(sc.Sets, []string{"journal_mode=delete"}) {
		t.Fatalf("torn-extend Sets = %q, want [journal_mode=delete]", sc.Sets)
	}
	r := &Script{sc: sc, cfg: Config{Sets: []string{"busy_timeout=1s"}}, clock: NewClock(DefaultScale)}
	got := r.spec(RoleSpec{Switches: []string{"crash_grace=0s"}}).Switches
	want := []string{"journal_mode=delete", "busy_timeout=1s", "crash_grace=0s"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("role switches %q, want %q", got, want)
	}
}

// TestTornExtendLeavesFileShort runs torn-extend (seed 1, modernc) under
// legacy and hardened and judges it from the raw evidence, not from the
// oracle: every connection reports journal_mode=delete; the one fired fault
// is a torn write starting at or past the file's size when the plan loaded,
// and when the committing process's COMMIT returned no write had extended
// the file past it, so the file was short (not page-aligned, one whole page
// fewer than the commit's pages); hardened (skip-in-wal, active because the
// file is not WAL) surfaces TORN_EXTEND in that process right after the
// commit, legacy (no check) surfaces none anywhere.
func TestTornExtendLeavesFileShort(t *testing.T) {
	fusetest.Require(t)
	for _, profile := range []string{kanbancore.ProfileLegacy, kanbancore.ProfileHardened} {
		t.Run(profile, func(t *testing.T) {
			cfg := Config{Scenario: "torn-extend", Profile: profile, Driver: "modernc", Seed: 1, Out: t.TempDir(), Stderr: testLog{t}}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := Execute(ctx, cfg)
			if err != nil {
				t.Fatalf("seed %d: %v\nreplay: %s", cfg.Seed, err, RunCommand(cfg, ""))
			}
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("seed %d: "+format+"\nrun dir %s; replay: %s", append(append([]any{cfg.Seed}, args...), res.Dir, RunCommand(cfg, ""))...)
			}
			recs, err := trace.ReadFile(filepath.Join(res.Dir, oracle.TraceFile))
			if err != nil {
				t.Fatal(err)
			}
			evs, err := history.ReadDir(filepath.Join(res.Dir, oracle.HistoriesDir))
			if err != nil {
				t.Fatal(err)
			}
			modes := 0
			for _, e := range evs {
				if e.Type == history.TypeMode {
					modes++
					if e.Mode != "delete" {
						fail("%s reports journal_mode=%s", e.Proc, e.Mode)
					}
				}
			}
			if modes == 0 {
				fail("no connection reported its journal mode")
			}
			var planSize int64 = -1
			var torn []trace.Record
			for _, r := range recs {
				if r.Kind == trace.KindPlan {
					if m := regexp.MustCompile(`off=(\d+)\.\.`).FindStringSubmatch(r.Plan); m != nil {
						planSize, _ = strconv.ParseInt(m[1], 10, 64)
					}
				}
				if r.Kind == trace.KindOp && r.Rule > 0 {
					torn = append(torn, r)
				}
			}
			if len(torn) != 1 || torn[0].Op != "write" || torn[0].Path != oracle.DBName || !strings.HasPrefix(torn[0].Fault, "torn") {
				fail("fired faults %+v, want one torn write of %s", torn, oracle.DBName)
			}
			f := torn[0]
			if planSize <= 0 || f.Off < planSize || f.N >= f.Len {
				fail("torn write off=%d len=%d n=%d, plan loaded at size %d: not a torn extend", f.Off, f.Len, f.N, planSize)
			}
			// The committing process's commit after the fault.
			var commit *history.Event
			for i, e := range evs {
				if e.Pid == int(f.Pid) && e.Type == history.TypeCommit && e.T > f.T && (commit == nil || e.T < commit.T) {
					commit = &evs[i]
				}
			}
			if commit == nil {
				fail("pid %d recorded no commit after the torn write", f.Pid)
			}
			end := planSize
			for _, r := range recs {
				if r.Kind == trace.KindOp && r.Op == "write" && r.Path == oracle.DBName && r.T <= commit.T && r.Off+r.N > end {
					end = r.Off + r.N
				}
			}
			if end != f.Off+f.N || end%4096 == 0 {
				fail("when %s's COMMIT returned the file was %d bytes; the torn write ended at %d: the file was not left short", commit.Proc, end, f.Off+f.N)
			}
			t.Logf("%s: torn write at %d kept %d of %d bytes; file %d bytes (%d whole pages, the commit wrote page %d) when %s's COMMIT returned",
				profile, f.Off, f.N, f.Len, end, end/4096, f.Off/4096+1, commit.Proc)
			var reports []history.Event
			for _, e := range evs {
				if e.Type == history.TypeError && e.Class == history.ClassTornExtend {
					reports = append(reports, e)
				}
			}
			switch profile {
			case kanbancore.ProfileLegacy:
				if len(reports) != 0 {
					fail("legacy has no page-count check, yet TORN_EXTEND surfaced: %+v", reports)
				}
			default:
				// The writer must report it right after its own commit.
				// Another process that commits while the file is still
				// short (before the writer's next commit restores its
				// length) rightly reports the same mismatch too.
				want := "header claims " + strconv.FormatInt(f.Off/4096+1, 10) + " pages, file has " + strconv.FormatInt(f.Off/4096, 10) + " pages"
				var own *history.Event
				for i, r := range reports {
					if !strings.Contains(r.Err, want) {
						fail("TORN_EXTEND %q, want it to say %q", r.Err, want)
					}
					if own == nil && r.Pid == int(f.Pid) && r.T >= commit.T && r.T-commit.T <= int64(time.Second) {
						own = &reports[i]
					}
				}
				if own == nil {
					fail("TORN_EXTEND reports %+v; want one from pid %d right after its commit", reports, f.Pid)
				}
			}
		})
	}
}
