package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/reports"
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

func writeExpect(t *testing.T, dir string, expect map[string]oracle.Verdict) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"scenario": "x", "expect": expect, "outcome": "unexpected"})
	if err := os.WriteFile(filepath.Join(dir, reports.ReportFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckExitStatus(t *testing.T) {
	dir := copyFixture(t, "liveness/bad")
	writeExpect(t, dir, map[string]oracle.Verdict{"liveness": oracle.Fail})
	code, out, errOut := checkT(dir)
	if code != 0 || !strings.Contains(out, "reproduced") || !strings.Contains(out, "liveness        fail") {
		t.Fatalf("expected fail reproduced: code %d\n%s%s", code, out, errOut)
	}
	r, err := reports.ReadRun(dir)
	if err != nil || r.Outcome != reports.Reproduced || r.Expect["liveness"] != oracle.Fail {
		t.Fatalf("rewritten report: %+v, %v", r, err)
	}
	if _, err := os.Stat(filepath.Join(dir, reports.SummaryFile)); err != nil {
		t.Fatal(err)
	}
	// Re-checking keeps the expectation it wrote.
	if code, out, _ := checkT("--quiet", dir); code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("second check: code %d\n%s", code, out)
	}

	writeExpect(t, dir, map[string]oracle.Verdict{"liveness": oracle.Pass})
	code, out, _ = checkT(dir)
	if code != 1 || !strings.Contains(out, "unexpected") || !strings.Contains(out, "replay: chaosrun replay") || !strings.Contains(out, "seed 1") {
		t.Fatalf("expected unexpected: code %d\n%s", code, out)
	}
}

func TestCheckUsage(t *testing.T) {
	if code, out, _ := checkT("--help"); code != 0 || !strings.Contains(out, "Usage: chaosrun check") {
		t.Fatalf("--help: %d %s", code, out)
	}
	if code, _, _ := checkT(); code != 2 {
		t.Fatalf("no args: %d", code)
	}
	if code, _, errOut := checkT(t.TempDir()); code != 2 || !strings.Contains(errOut, "meta.json") {
		t.Fatalf("empty dir: %d %s", code, errOut)
	}
}
