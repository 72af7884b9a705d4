package oracle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
)

// TestCheckersNeverPassOnEmptyInput runs every checker's own Check (not
// through the completeness guard) on an input with nothing in it: no
// events, no trace, no database. A checker that passes there passes
// vacuously.
func TestCheckersNeverPassOnEmptyInput(t *testing.T) {
	for _, c := range Checkers() {
		in := &Input{Dir: t.TempDir(), Files: filepath.Join(t.TempDir(), FilesDir)}
		if r := c.Check(in); r.Verdict == Pass {
			t.Errorf("%s passes on empty input: %s", c.Name, r.Summary)
		}
	}
}

// TestMissingInputIsInconclusive judges a complete run directory with one
// input removed at a time, and an empty directory: no checker passes.
func TestMissingInputIsInconclusive(t *testing.T) {
	src := filepath.Join(fixtureRoot, "silent", "good")
	full := buildRun(t, src)
	in, err := Load(full)
	if err != nil {
		t.Fatal(err)
	}
	if m := in.Missing(); len(m) != 0 {
		t.Fatalf("the complete run misses %q", m)
	}
	passed := 0
	for _, r := range Judge(in) {
		if r.Verdict == Pass {
			passed++
		}
	}
	in.Close()
	if passed == 0 {
		t.Fatal("the complete run passes no checker: the test below would prove nothing")
	}
	cases := map[string]func(dir string){
		"empty directory": func(dir string) {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		},
		"no meta.json": func(dir string) { os.Remove(filepath.Join(dir, MetaFile)) },
		"no histories": func(dir string) { os.RemoveAll(filepath.Join(dir, HistoriesDir)) },
		"empty histories": func(dir string) {
			ps, _ := filepath.Glob(filepath.Join(dir, HistoriesDir, "*.jsonl"))
			for _, p := range ps {
				os.WriteFile(p, nil, 0o644)
			}
		},
		"no trace":    func(dir string) { os.Remove(filepath.Join(dir, TraceFile)) },
		"empty trace": func(dir string) { os.WriteFile(filepath.Join(dir, TraceFile), nil, 0o644) },
		"no database": func(dir string) { os.RemoveAll(filepath.Join(dir, FilesDir)) },
	}
	for name, remove := range cases {
		t.Run(name, func(t *testing.T) {
			dir := buildRun(t, src)
			remove(dir)
			in, err := Load(dir)
			if err != nil {
				t.Fatalf("Load: %v (a missing input must be a note, not an error)", err)
			}
			defer in.Close()
			if len(in.Missing()) == 0 {
				t.Fatalf("Load did not notice: notes %q", in.Notes)
			}
			for _, r := range Judge(in) {
				if r.Verdict != Inconclusive {
					t.Errorf("%s: %s (%s), want inconclusive", r.Checker, r.Verdict, r.Summary)
				}
			}
		})
	}
}

// TestSilentBusyNeverSurfaces: the silent known-bad fixture with a "database
// is locked" error from the faulting process right after the fault is still
// silent: BUSY says nothing about the fault.
func TestSilentBusyNeverSurfaces(t *testing.T) {
	for _, c := range []struct {
		class string
		code  int
		want  Verdict
	}{{"BUSY", 5, Fail}, {"LOCKED", 6, Fail}, {"OTHER", 1, Fail}, {"", 5, Fail}, {"IOERR", 778, Pass}, {"", 11, Pass}} {
		in, _ := loadFixture(t, "silent", "bad")
		in.Events = append(in.Events, history.Event{T: 2_401_000_000, Proc: "cli-3", Pid: 300, Type: history.TypeError,
			Op: "complete_task", Class: c.class, Code: c.code, Err: "some error"})
		if r, _ := Run(in, Silent); r.Verdict != c.want {
			t.Errorf("class %q code %d from the faulting pid: silent %s (%s), want %s", c.class, c.code, r.Verdict, r.Summary, c.want)
		}
	}
}

// TestSurfaceWindowIsBoardTime: the window is 30 s of board time; at 100×
// an I/O error 1 s of wall time (100 s of board time) after the fault is
// too late, 0.2 s is in time; at 1× both are.
func TestSurfaceWindowIsBoardTime(t *testing.T) {
	for _, c := range []struct {
		scale float64
		delay int64
		want  Verdict
	}{{100, 1_000_000_000, Fail}, {100, 200_000_000, Pass}, {1, 1_000_000_000, Pass}, {1, 31_000_000_000, Fail}} {
		in, _ := loadFixture(t, "silent", "bad")
		in.Meta.Scale = c.scale
		in.Events = append(in.Events, history.Event{T: 2_400_000_000 + c.delay, Proc: "cli-3", Pid: 300, Type: history.TypeError,
			Class: "IOERR", Code: 266, Err: "disk I/O error"})
		if r, _ := Run(in, Silent); r.Verdict != c.want {
			t.Errorf("scale %v, error %v ns after: silent %s (%s), want %s", c.scale, c.delay, r.Verdict, r.Summary, c.want)
		}
	}
}

// TestSurfacedByOpenerOfTheFile: an I/O error in another process counts
// only if that process had opened the faulted file by the time of the
// fault.
func TestSurfacedByOpenerOfTheFile(t *testing.T) {
	for _, opened := range []bool{false, true} {
		in, _ := loadFixture(t, "silent", "bad")
		if opened {
			in.Trace = append([]trace.Record{{Seq: 3, T: 1_500_000_000, Kind: trace.KindOp, Pid: 400, Op: "open", Path: "kanban.db-wal", Result: "ok"}}, in.Trace...)
		}
		in.Events = append(in.Events, history.Event{T: 2_410_000_000, Proc: "watcher", Pid: 400, Type: history.TypeError, Class: "CORRUPT", Code: 11, Err: "malformed"})
		want := Fail
		if opened {
			want = Pass
		}
		if r, _ := Run(in, Silent); r.Verdict != want {
			t.Errorf("opened=%v: silent %s (%s), want %s", opened, r.Verdict, r.Summary, want)
		}
	}
}

func TestExplains(t *testing.T) {
	rec := func(op trace.OpName, fault string) trace.Record { return trace.Record{Op: op, Fault: fault, Rule: 1} }
	for _, c := range []struct {
		r     trace.Record
		class string
		want  bool
	}{
		{rec("write", "eio"), "IOERR", true},
		{rec("write", "eio"), "CORRUPT", false},
		{rec("fsync", "eio"), "IOERR", true},
		{rec("fsync", "eio"), "NOTADB", false},
		{rec("read", "eio"), "CORRUPT", true},
		{rec("read", "eio"), "NOTADB", true},
		{rec("read", "eio"), "FULL", false},
		{rec("write", "errno errno=ENOSPC"), "FULL", true},
		{rec("write", "errno errno=ENOSPC"), "CORRUPT", false},
		{rec("open", "errno errno=EIO"), "CANTOPEN", true},
		{rec("open", "errno errno=EIO"), "CORRUPT", false},
		{rec("write", "torn keep=512 then=ok"), "CORRUPT", true},
		{rec("write", "torn keep=512 then=ok"), "TORN_EXTEND", true},
		{rec("write", "torn keep=512 then=EIO"), "IOERR", true},
		{rec("write", "torn keep=512 then=EIO"), "CORRUPT", false},
		{rec("read", "short keep=0"), "IOERR", true},
		{rec("write", "eio"), "", false},
	} {
		if got := Explains(c.r, c.class); got != c.want {
			t.Errorf("Explains(%s %q, %q) = %v, want %v", c.r.Op, c.r.Fault, c.class, got, c.want)
		}
	}
}

// TestErrorFidelityClassMismatch: a write EIO that surfaces only as
// CORRUPT is an error that does not name its cause.
func TestErrorFidelityClassMismatch(t *testing.T) {
	in, _ := loadFixture(t, "error-fidelity", "good")
	r, _ := Run(in, ErrorFidelity)
	if r.Verdict != Pass {
		t.Fatalf("good fixture: %s", dump(r))
	}
	var fault trace.Record
	for _, tr := range in.Trace {
		if tr.Rule > 0 {
			fault = tr
			break
		}
	}
	if fault.Rule == 0 {
		t.Fatal("fixture has no fired fault")
	}
	in2, _ := loadFixture(t, "error-fidelity", "good")
	var evs []history.Event
	for _, e := range in2.Events {
		if e.Err != "" && e.T >= fault.T {
			e.Class, e.Code = "CORRUPT", 11
		}
		evs = append(evs, e)
	}
	in2.Events = evs
	if fault.Op == "read" {
		t.Skip("fixture's fault is a read: CORRUPT explains it")
	}
	r2, _ := Run(in2, ErrorFidelity)
	if r2.Verdict != Fail || !strings.Contains(dump(r2), "cannot explain") {
		t.Fatalf("write fault surfaced as CORRUPT: %s", dump(r2))
	}
}

// TestErrorFidelityPrefersTheNamingError: a WAL fsync EIO whose window
// also holds another opener's unrelated CORRUPT is named by the faulting
// process's IOERR; with only the CORRUPT it is not — unless the CORRUPT is
// the other process's own read EIO coming to light (matrix --jobs 8 --repeat
// 5, soak/hardened/modernc: a worker's checkpoint fsync EIO, its commit
// acknowledged, was charged with a CLI's integrity-probe read EIO), which
// leaves the fsync fault unsurfaced, not misnamed.
func TestErrorFidelityPrefersTheNamingError(t *testing.T) {
	for _, c := range []struct {
		ownIOERR, otherOwnFault bool
		want                    Verdict
	}{{true, false, Pass}, {false, false, Fail}, {false, true, Pass}} {
		ownIOERR := c.ownIOERR
		in, _ := loadFixture(t, "silent", "bad")
		in.Meta.Scale = 100
		in.Trace = []trace.Record{
			{Seq: 1, T: 900_000_000, Kind: trace.KindMount},
			{Seq: 2, T: 1_000_000_000, Kind: trace.KindOp, Pid: 400, Op: "open", Path: "kanban.db-wal", Result: "ok"},
			{Seq: 3, T: 1_000_000_000, Kind: trace.KindOp, Pid: 300, Op: "open", Path: "kanban.db-wal", Result: "ok"},
			{Seq: 4, T: 2_000_000_000, Kind: trace.KindOp, Pid: 300, Op: "fsync", Path: "kanban.db-wal", Result: "EIO", Rule: 1, Fault: "eio"},
		}
		if c.otherOwnFault {
			in.Trace = append(in.Trace, trace.Record{Seq: 5, T: 2_000_500_000, Kind: trace.KindOp, Pid: 400, Op: "read", Path: "kanban.db", Off: 45056, Len: 4096, Result: "EIO", Rule: 4, Fault: "eio"})
		}
		in.Events = append(in.Events, history.Event{T: 2_001_000_000, Proc: "watcher", Pid: 400, Type: history.TypeError, Class: "CORRUPT", Code: 11, Err: "malformed"})
		if ownIOERR {
			in.Events = append(in.Events, history.Event{T: 2_002_000_000, Proc: "cli-3", Pid: 300, Type: history.TypeError, Class: "IOERR", Code: 1034, Err: "disk I/O error"})
		}
		if r, _ := Run(in, ErrorFidelity); r.Verdict != c.want {
			t.Errorf("own IOERR %v, other's own fault %v: %s, want %s", ownIOERR, c.otherOwnFault, dump(r), c.want)
		}
	}
}
