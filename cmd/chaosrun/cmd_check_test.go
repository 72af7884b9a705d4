package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/reports"
	"github.com/sqlchaos/sqlchaos/verdict"
)

// copyFixture copies an oracle fixture that needs no database.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("../../testdata/oracle", name)
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
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

func checkT(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runCheck(args, &out, &errb)
	return code, out.String(), errb.String()
}

// writeExpect writes a report.json holding only an expectation for dir.
func writeExpect(t *testing.T, dir string, story verdict.Expect) {
	t.Helper()
	r := reports.Report{Scenario: "x", Expect: verdict.Cell{Story: &story}, Facts: verdict.Facts{Fired: 1}, Outcome: "unexpected"}
	b, _ := json.Marshal(r)
	if err := os.WriteFile(filepath.Join(dir, reports.ReportFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// completeFixture is an oracle fixture that has every input a run leaves
// (meta, histories, trace, a database built from its db.sql).
func completeFixture(t *testing.T) string {
	t.Helper()
	dir := copyFixture(t, "silent/bad")
	build := exec.Command("sqlite3", filepath.Join(dir, oracle.FilesDir, oracle.DBName))
	os.MkdirAll(filepath.Join(dir, oracle.FilesDir), 0o755)
	base, _ := os.ReadFile("../../testdata/oracle/base.sql")
	extra, _ := os.ReadFile(filepath.Join(dir, "db.sql"))
	build.Stdin = strings.NewReader(string(base) + "\n" + string(extra))
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("building the fixture database needs the sqlite3 shell: %v %s", err, out)
	}
	return dir
}

func TestCheckExitStatus(t *testing.T) {
	dir := completeFixture(t)
	writeExpect(t, dir, verdict.Expect{Fail: []string{oracle.Silent}})
	code, out, errOut := checkT(dir)
	if code != 0 || !strings.Contains(out, "reproduced") || !strings.Contains(out, "silent          fail") {
		t.Fatalf("expected fail reproduced: code %d\n%s%s", code, out, errOut)
	}
	r, err := reports.ReadReport(dir)
	if err != nil || r.Outcome != reports.Reproduced || r.Expect.Wants()[oracle.Silent] != oracle.Fail {
		t.Fatalf("rewritten report: %+v, %v", r, err)
	}
	if _, err := os.Stat(filepath.Join(dir, reports.SummaryFile)); err != nil {
		t.Fatal(err)
	}
	// Re-checking keeps the expectation it wrote.
	if code, out, _ := checkT("--quiet", dir); code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("second check: code %d\n%s", code, out)
	}

	writeExpect(t, dir, verdict.Expect{Pass: []string{oracle.Silent}})
	code, out, _ = checkT(dir)
	if code != 1 || !strings.Contains(out, "unexpected") || !strings.Contains(out, "replay: chaosrun replay") || !strings.Contains(out, "seed 1") {
		t.Fatalf("expected unexpected: code %d\n%s", code, out)
	}

	// An incomplete run directory (no trace) is inconclusive, exit 1.
	os.Remove(filepath.Join(dir, oracle.TraceFile))
	writeExpect(t, dir, verdict.Expect{Fail: []string{oracle.Silent}})
	if code, out, _ := checkT(dir); code != 1 || !strings.Contains(out, "inconclusive") {
		t.Fatalf("no trace: code %d\n%s", code, out)
	}
}

func TestCheckUsage(t *testing.T) {
	if code, out, _ := checkT("--help"); code != 0 || !strings.Contains(out, "Usage: chaosrun check") {
		t.Fatalf("--help: %d %s", code, out)
	}
	if code, _, _ := checkT(); code != 2 {
		t.Fatalf("no args: %d", code)
	}
	if code, _, errOut := checkT(filepath.Join(t.TempDir(), "nope")); code != 2 || !strings.Contains(errOut, "no such file") {
		t.Fatalf("missing dir: %d %s", code, errOut)
	}
	// An empty directory is a run with nothing in it: every checker
	// inconclusive, exit 1.
	if code, out, _ := checkT(t.TempDir()); code != 1 || !strings.Contains(out, "inconclusive") {
		t.Fatalf("empty dir: %d %s", code, out)
	}
}
