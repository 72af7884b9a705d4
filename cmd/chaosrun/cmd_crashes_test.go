package main

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const crashesFixture = "../../testdata/crashes/rollback-delete-400"

func runCrashesT(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runCrashes(args, &out, &errb)
	return code, out.String(), errb.String()
}

// fixtureCopy copies the recorded run (the explorer writes its report into
// the run directory).
func fixtureCopy(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(crashesFixture, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(crashesFixture, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestCrashesUsage(t *testing.T) {
	code, _, errOut := runCrashesT(t, "--help")
	if code != 0 || !strings.Contains(errOut, "Examples:") || !strings.Contains(errOut, "--state ID") {
		t.Fatalf("--help: code %d\n%s", code, errOut)
	}
	run := fixtureCopy(t)
	empty := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "want exactly one RUNDIR"},
		{[]string{run, run}, "want exactly one RUNDIR"},
		{[]string{run, "--classes", "lost,bogus"}, `unknown class "bogus"`},
		{[]string{run, "--sector", "100"}, "--sector must be a positive multiple of 512"},
		{[]string{run, "--out", empty}, "--out needs --state ID"},
		{[]string{run, "--sync", "sometimes"}, "--sync must be full, normal or off"},
		{[]string{filepath.Join(empty, "nope")}, "no such file or directory"},
		{[]string{empty}, "trace.jsonl"},
		{[]string{run, "--state", "end/x9"}, "bad alteration"},
		{[]string{run, "--state", "12345"}, "no barrier"},
		{[]string{run, "--budget"}, "flag needs an argument"},
	} {
		code, out, errOut := runCrashesT(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: code %d, want 2 and %q\nstdout:\n%s\nstderr:\n%s", c.args, code, c.want, out, errOut)
		}
	}
}

// TestCrashesFixture runs the CLI on the recorded rollback-journal run:
// the honest classes find nothing (exit 0); the lost-synced class finds
// deleted rows back (exit 1), saves the minimal state, and --state
// rebuilds its files, which a plain connection reads with the rows back.
func TestCrashesFixture(t *testing.T) {
	run := fixtureCopy(t)
	code, out, errOut := runCrashesT(t, run, "--classes", "clean,synced,lost,torn", "--budget", "0", "--progress", "0")
	if code != 0 || !strings.Contains(out, "no failing state") || !strings.Contains(out, "states per CPU-minute") {
		t.Fatalf("honest classes: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, errOut = runCrashesT(t, run, "--classes", "lost-synced", "--budget", "0", "--jobs", "1", "--progress", "0")
	if code != 1 || !strings.Contains(out, "FAILING:") || !strings.Contains(out, "resurrected") {
		t.Fatalf("lost-synced: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(run, "crashes", "minimal-state.json")); err != nil {
		t.Fatal(err)
	}
	// The smallest failing state with resurrected rows (not a detected one).
	m := regexp.MustCompile(`(?m)^smallest (?:[a-z-]+, )*resurrected(?:, [a-z-]+)*: (\S+) \(lost-synced\)\n.*\n.*\n  verdict: fail`).FindStringSubmatch(out)
	if m == nil {
		m = regexp.MustCompile(`(?m)^smallest failing state: (\S+) \(lost-synced\)\n.*\n.*\n  verdict: fail; \d+ resurrected`).FindStringSubmatch(out)
	}
	if m == nil {
		t.Fatalf("no resurrection state in:\n%s", out)
	}
	if !strings.Contains(out, "--state "+m[1]+" --out DIR") {
		t.Fatalf("no rebuild command for %s in:\n%s", m[1], out)
	}
	img := filepath.Join(t.TempDir(), "image")
	code, out, errOut = runCrashesT(t, run, "--state", m[1], "--out", img)
	if code != 1 || !strings.Contains(out, "files written to "+img) {
		t.Fatalf("--state %s: code %d\nstdout:\n%s\nstderr:\n%s", m[1], code, out, errOut)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(img, "kanban.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var back int
	if err := db.QueryRow(`SELECT count(*) FROM t WHERE id BETWEEN 100 AND 250`).Scan(&back); err != nil || back == 0 {
		t.Fatalf("rebuilt image: %d deleted rows back, %v", back, err)
	}
	// A clean state passes: exit 0.
	if code, out, _ := runCrashesT(t, run, "--state", "end"); code != 0 || !strings.Contains(out, "verdict: pass") {
		t.Fatalf("--state end: code %d\n%s", code, out)
	}
}
