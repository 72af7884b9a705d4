package oracle

import (
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
)

const fixtureRoot = "../testdata/oracle"

// buildRun materialises the fixture src as a run directory in a temp dir:
// it copies meta, histories and trace, and builds files/kanban.db from
// base.sql + db.sql, then applies db.patch.
func buildRun(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		switch rel {
		case "db.sql", "db.patch", "expect.json":
			return nil
		}
		return copyFile(p, filepath.Join(dst, rel))
	})
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dst, HistoriesDir), 0o755)
	script, err := os.ReadFile(filepath.Join(src, "db.sql"))
	if errors.Is(err, fs.ErrNotExist) {
		return dst
	} else if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(filepath.Join(fixtureRoot, "base.sql"))
	if err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dst, FilesDir, DBName)
	os.MkdirAll(filepath.Dir(dbPath), 0o755)
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	for _, s := range []string{string(base), string(script)} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if patch, err := os.ReadFile(filepath.Join(src, "db.patch")); err == nil {
		applyPatch(t, dbPath, string(patch))
	}
	return dst
}

func applyPatch(t *testing.T, path, patch string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(patch, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) != 2 {
			t.Fatalf("db.patch: bad line %q", line)
		}
		if fields[0] == "truncate" {
			n, err := strconv.Atoi(fields[1])
			if err != nil || n > len(b) {
				t.Fatalf("db.patch: bad truncate %q", line)
			}
			b = b[:n]
			continue
		}
		off, err := strconv.ParseInt(fields[0], 0, 64)
		if err != nil {
			t.Fatalf("db.patch: bad offset in %q", line)
		}
		data, err := hex.DecodeString(fields[1])
		if err != nil || int(off)+len(data) > len(b) {
			t.Fatalf("db.patch: bad bytes in %q", line)
		}
		copy(b[off:], data)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

type expectation struct {
	Verdict  Verdict `json:"verdict"`
	Summary  string  `json:"summary"` // substring
	Evidence []struct {
		Source string `json:"source"`
		Seq    uint64 `json:"seq"`
		Proc   string `json:"proc"`
		Pid    int    `json:"pid"`
		Text   string `json:"text"`
	} `json:"evidence"`
}

func loadFixture(t *testing.T, checker, kind string) (*Input, expectation) {
	t.Helper()
	src := filepath.Join(fixtureRoot, checker, kind)
	dir := buildRun(t, src)
	in, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	// A fixture holds only what its checker reads (no trace for durability,
	// no database for sidecars): it tests the checker's own logic, so the
	// whole-run completeness rule (TestMissingInputIsInconclusive) is
	// lifted here.
	in.missing = nil
	exp := expectation{Verdict: Pass}
	if isBad(kind) {
		exp.Verdict = Fail
	}
	if b, err := os.ReadFile(filepath.Join(src, "expect.json")); err == nil {
		if err := json.Unmarshal(b, &exp); err != nil {
			t.Fatalf("%s/expect.json: %v", src, err)
		}
	}
	return in, exp
}

func dump(r Result) string {
	var b strings.Builder
	b.WriteString(string(r.Verdict) + ": " + r.Summary + "\n")
	for _, e := range r.Evidence {
		b.WriteString("  " + e.Source + " seq=" + strconv.FormatUint(e.Seq, 10) + " proc=" + e.Proc + " pid=" + strconv.Itoa(e.Pid) + ": " + e.Text + "\n")
	}
	return b.String()
}

// isBad reports whether a fixture directory name is a known-bad one
// ("bad" or "*-bad").
func isBad(kind string) bool { return kind == "bad" || strings.HasSuffix(kind, "-bad") }

// fixtureKinds lists a checker's fixture directories: "good" and "bad"
// first (every checker must have both), then variants such as
// "cascade-good" or "cascade-unknown-owner" (verdict from expect.json, else
// by the name's -good/-bad suffix).
func fixtureKinds(t *testing.T, checker string) []string {
	kinds := []string{"good", "bad"}
	ents, err := os.ReadDir(filepath.Join(fixtureRoot, checker))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() && e.Name() != "good" && e.Name() != "bad" {
			kinds = append(kinds, e.Name())
		}
	}
	return kinds
}

// TestFixtures judges every fixture with its checker: good must pass, bad
// must fail with evidence naming the expected seq/proc; variants give
// their verdict in expect.json.
func TestFixtures(t *testing.T) {
	for _, c := range Checkers() {
		for _, kind := range fixtureKinds(t, c.Name) {
			t.Run(c.Name+"/"+kind, func(t *testing.T) {
				in, exp := loadFixture(t, c.Name, kind)
				r, _ := Run(in, c.Name)
				if r.Verdict != exp.Verdict {
					t.Fatalf("verdict %s, want %s\n%s", r.Verdict, exp.Verdict, dump(r))
				}
				if !strings.Contains(r.Summary, exp.Summary) {
					t.Errorf("summary %q lacks %q", r.Summary, exp.Summary)
				}
				if exp.Verdict == Fail && len(exp.Evidence) == 0 {
					t.Fatalf("bad fixture has no evidence expectation in expect.json")
				}
				for _, want := range exp.Evidence {
					found := false
					for _, e := range r.Evidence {
						if (want.Source == "" || e.Source == want.Source) && (want.Seq == 0 || e.Seq == want.Seq) && (want.Proc == "" || e.Proc == want.Proc) &&
							(want.Pid == 0 || e.Pid == want.Pid) && strings.Contains(e.Text, want.Text) {
							found = true
						}
					}
					if !found {
						t.Errorf("no evidence with seq=%d proc=%q pid=%d text~%q\n%s", want.Seq, want.Proc, want.Pid, want.Text, dump(r))
					}
				}
				if testing.Verbose() {
					t.Log(dump(r))
				}
			})
		}
	}
}

func TestStructureDetectedIsStillFailButNotSilent(t *testing.T) {
	in, _ := loadFixture(t, "structure", "bad")
	in.Events = append(in.Events, history.Event{T: 2_100_000_000, Proc: "cli-3", Pid: 300, Type: history.TypeError,
		Op: "list_tasks", Class: history.ClassCorrupt, Err: "database disk image is malformed"})
	r, _ := Run(in, "structure")
	if r.Verdict != Fail || !strings.Contains(r.Summary, "detected by cli-3") || strings.Contains(r.Summary, "SILENT") {
		t.Fatalf("got %s", dump(r))
	}
}

func TestJournalDowngradeSurfacedAfterFlipPasses(t *testing.T) {
	// The IOERR logged before the flip (2.99 s) must not count; an I/O
	// error after it does; an OTHER error after it does not (strict
	// surfacing: only I/O classes bring a fault to light).
	for _, c := range []struct {
		class string
		want  Verdict
	}{{"OTHER", Fail}, {"BUSY", Fail}, {"IOERR", Pass}} {
		in, _ := loadFixture(t, "journal-mode", "bad")
		in.Events = append(in.Events, history.Event{T: 3_050_000_000, Proc: "cli-5", Pid: 205, Type: history.TypeError,
			Op: "connect", Class: c.class, Err: "journal_mode is delete, want wal"})
		r, _ := Run(in, "journal-mode")
		if r.Verdict != c.want || (c.want == Pass && !strings.Contains(r.Summary, "surfaced")) {
			t.Fatalf("%s after the flip: got %s, want %s", c.class, dump(r), c.want)
		}
	}
}

func TestResurrectionLaterUnackedCommitIsInconclusive(t *testing.T) {
	dir := buildRun(t, filepath.Join(fixtureRoot, "resurrection", "bad"))
	db, err := sql.Open("sqlite", filepath.Join(dir, FilesDir, DBName))
	if err != nil {
		t.Fatal(err)
	}
	// Seq 5 committed but no history acknowledged it: it may have
	// re-created t2 and set t1 back to ready.
	if _, err := db.Exec(`INSERT INTO chaos_ledger VALUES(5, 'cli-9', 'create_task', 5000000000)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	in, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	in.missing = nil // the fixture has no trace
	r, _ := Run(in, "resurrection")
	if r.Verdict != Inconclusive || !strings.Contains(dump(r), "unacknowledged commit seq 5 came later") {
		t.Fatalf("got %s", dump(r))
	}
}

func TestSilentNeedsErrorInFaultingProcess(t *testing.T) {
	in, _ := loadFixture(t, "silent", "bad")
	// An error in another process does not surface cli-3's torn write.
	in.Events = append(in.Events, history.Event{T: 2_410_000_000, Proc: "cli-2", Pid: 200, Type: history.TypeError, Class: "IOERR", Err: "disk I/O error"})
	if r, _ := Run(in, "silent"); r.Verdict != Fail {
		t.Fatalf("error in another pid matched the fault: %s", dump(r))
	}
	in2, _ := loadFixture(t, "silent", "bad")
	in2.Events = append(in2.Events, history.Event{T: 2_410_000_000, Proc: "cli-3", Pid: 300, Type: history.TypeError, Class: "IOERR", Err: "disk I/O error"})
	if r, _ := Run(in2, "silent"); r.Verdict != Pass {
		t.Fatalf("error in the faulting pid did not match: %s", dump(r))
	}
}

func hashDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(p)
			b.WriteString(p + ":" + strconv.Itoa(len(data)) + ":" + string(data) + "\n")
		}
		return nil
	})
	return b.String()
}

func TestJudgeIsRepeatableAndLeavesRunUntouched(t *testing.T) {
	dir := buildRun(t, filepath.Join(fixtureRoot, "silent", "good"))
	// Leave an un-checkpointed WAL in files/, as a killed run would.
	db, err := sql.Open("sqlite", filepath.Join(dir, FilesDir, DBName))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`PRAGMA wal_autocheckpoint=0; INSERT INTO chaos_ledger VALUES(3,'x','y',1)`); err != nil {
		t.Fatal(err)
	}
	for _, sfx := range []string{"", "-wal", "-shm"} {
		if err := copyFile(filepath.Join(dir, FilesDir, DBName+sfx), filepath.Join(dir, "snap"+sfx)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close() // checkpoints and removes the WAL; put the snapshot back
	for _, sfx := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(filepath.Join(dir, "snap"+sfx), filepath.Join(dir, FilesDir, DBName+sfx)); err != nil {
			t.Fatal(err)
		}
	}
	before := hashDir(t, filepath.Join(dir, FilesDir))
	var verdicts [2]string
	for i := range verdicts {
		in, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		rs := Judge(in)
		in.Close()
		if len(rs) != len(Checkers()) {
			t.Fatalf("%d results for %d checkers", len(rs), len(Checkers()))
		}
		for _, r := range rs {
			verdicts[i] += r.Checker + "=" + string(r.Verdict) + " "
			if r.Checker == "durability" && !strings.Contains(r.Summary, "1 more unacknowledged") {
				t.Errorf("the WAL's commit 3 was not replayed: %s", r.Summary)
			}
		}
	}
	if verdicts[0] != verdicts[1] {
		t.Fatalf("judging twice differs:\n%s\n%s", verdicts[0], verdicts[1])
	}
	if hashDir(t, filepath.Join(dir, FilesDir)) != before {
		t.Fatal("judging changed the saved files")
	}
}

func TestLoadToleratesTruncatedTraceAndMissingPieces(t *testing.T) {
	dir := buildRun(t, filepath.Join(fixtureRoot, "sidecars", "bad"))
	f, err := os.OpenFile(filepath.Join(dir, TraceFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":43,"t":31000000`)
	f.Close()
	in, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	in.missing = nil // the fixture has no database; judge the trace's intact part
	if len(in.Trace) != 3 || !strings.Contains(strings.Join(in.Notes, ";"), "truncated") {
		t.Fatalf("trace %d records, notes %q", len(in.Trace), in.Notes)
	}
	if r, _ := Run(in, "sidecars"); r.Verdict != Fail {
		t.Fatalf("sidecars on the intact part: %s", dump(r))
	}
	os.Remove(filepath.Join(dir, TraceFile))
	in2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer in2.Close()
	for _, name := range []string{"sidecars", "durability", "structure", "silent"} {
		if r, _ := Run(in2, name); r.Verdict != Inconclusive {
			t.Errorf("%s with no trace/db/commits: %s, want inconclusive", name, dump(r))
		}
	}
}

// TestSilentPidZeroFault: a kernel-writeback fault (pid 0) on the -shm is
// surfaced only by an IOERR/CORRUPT error of a process that had the file
// open, within the window; any other error leaves it to the data checks
// (which fail in this fixture).
func TestSilentPidZeroFault(t *testing.T) {
	const faultT = 2_400_000_000
	cases := []struct {
		name string
		err  history.Event
		want Verdict
	}{
		{"IOERR in a process without the -shm open", history.Event{Proc: "cli-2", Pid: 200, Class: "IOERR", Code: 8714, Err: "disk I/O error"}, Fail},
		{"BUSY in the opener", history.Event{Proc: "cli-3", Pid: 300, Class: "BUSY", Code: 5, Err: "database is locked"}, Fail},
		{"IOERR_IN_PAGE in the opener", history.Event{Proc: "cli-3", Pid: 300, Class: "IOERR", Code: 8714, Err: "disk I/O error"}, Pass},
		{"CORRUPT by code in the opener", history.Event{Proc: "cli-3", Pid: 300, Code: 11, Err: "database disk image is malformed"}, Pass},
		{"IOERR in the opener after the window", history.Event{Proc: "cli-3", Pid: 300, Class: "IOERR", Code: 8714, Err: "disk I/O error", T: faultT + 4_000_000_000}, Fail},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, _ := loadFixture(t, "silent", "bad")
			in.Meta.Scale = 100 // the 30 s board-time window is 0.3 s of wall time
			var tr []trace.Record
			for _, r := range in.Trace {
				if r.Rule == 0 {
					tr = append(tr, r)
				}
			}
			tr = append(tr,
				trace.Record{Seq: 8, T: 1_500_000_000, Kind: trace.KindOp, Pid: 300, Op: "open", Path: "kanban.db-shm", Result: "ok"},
				trace.Record{Seq: 9, T: faultT, Kind: trace.KindOp, Pid: 0, Op: "write", Path: "kanban.db-shm", Off: 0, Len: 4096, N: 0, Result: "EIO", Rule: 2, Fault: "eio"})
			in.Trace = tr
			e := c.err
			e.Type = history.TypeError
			if e.T == 0 {
				e.T = faultT + 10_000_000
			}
			in.Events = append(in.Events, e)
			r, _ := Run(in, "silent")
			if r.Verdict != c.want {
				t.Fatalf("got %s, want %s", dump(r), c.want)
			}
		})
	}
}
