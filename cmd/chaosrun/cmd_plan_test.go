package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runPlanT(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runPlan(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestPlanCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.plan")
	writePlanFile(t, good, "# header\ntorn  op=write path=*.db minlen=4K keep=512 count=3 # pages\n\neio op=write path=*-wal nth=1 count=1\n")
	code, out, errOut := runPlanT(t, "", "check", good)
	want := "torn op=write path=*.db minlen=4096 keep=512 then=ok count=3\neio op=write path=*-wal nth=1 count=1\nok: 2 rules\n"
	if code != 0 || out != want || errOut != "" {
		t.Fatalf("check good: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, _ = runPlanT(t, "", "fmt", good)
	if code != 0 || out != strings.TrimSuffix(want, "ok: 2 rules\n") {
		t.Fatalf("fmt good: code %d\n%s", code, out)
	}

	bad := filepath.Join(dir, "bad.plan")
	writePlanFile(t, bad, "eio\neio op=write nht=1\ntron\n")
	code, out, errOut = runPlanT(t, "", "check", bad)
	wantErr := bad + `:2:14: unknown key "nht" (expected one of: op, path, off, minlen, pid, nth, after, every, p, errno, drop, keep, from, sectors, sector, then, bit, delay, jitter, count, state)` + "\n" +
		bad + `:3:1: unknown fault kind "tron" (expected one of: errno, eio, torn, lost, short, flip, delay, powercut)` + "\n"
	if code != 1 || out != "" || errOut != wantErr {
		t.Fatalf("check bad: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	code, out, _ = runPlanT(t, "eio op=write path=*-wal nth=1 count=1\n", "check", "-")
	if code != 0 || out != "eio op=write path=*-wal nth=1 count=1\nok: 1 rules\n" {
		t.Fatalf("check stdin: code %d\n%s", code, out)
	}
	code, _, errOut = runPlanT(t, "eio nth=0", "check", "-")
	if code != 1 || !strings.HasPrefix(errOut, "<stdin>:1:5: bad value for nth") {
		t.Fatalf("check bad stdin: code %d %s", code, errOut)
	}
}

func TestPlanUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"check", "--help"}, 0},
		{[]string{"--help"}, 0},
		{nil, 2},
		{[]string{"check"}, 2},
		{[]string{"check", "a", "b"}, 2},
		{[]string{"check", "--bogus", "a"}, 2},
		{[]string{"lint", "a"}, 2},
		{[]string{"check", filepath.Join(t.TempDir(), "missing.plan")}, 2},
	} {
		code, out, errOut := runPlanT(t, "", tc.args...)
		if code != tc.code {
			t.Errorf("plan %q: exit %d, want %d (stderr %s)", tc.args, code, tc.code, errOut)
		}
		if tc.code == 0 && !strings.Contains(out, "Examples:\n  chaosrun plan check") {
			t.Errorf("plan %q: help lacks examples:\n%s", tc.args, out)
		}
	}
}

func writePlanFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPlanCheckTemplate: a template checks as written, placeholders
// printed back; a placeholder where none is allowed is an error.
func TestPlanCheckTemplate(t *testing.T) {
	src := "short op=read path=kanban.db-wal pid={pid:writer-1} keep=0 p=0.1 count=16 # the catalog's\n" +
		"torn op=write path=kanban.db off={dbsize}..1099511627776 minlen=4096 keep=512 then=ok count=1\n"
	code, out, errOut := runPlanT(t, src, "check", "-")
	want := "short op=read path=kanban.db-wal pid={pid:writer-1} p=0.1 keep=0 count=16\n" +
		"torn op=write path=kanban.db off={dbsize}..1099511627776 minlen=4096 keep=512 then=ok count=1\nok: 2 rules\n"
	if code != 0 || out != want || errOut != "" {
		t.Fatalf("check template: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, _, errOut = runPlanT(t, "eio pid={dbsize}", "check", "-")
	if code != 1 || !strings.HasPrefix(errOut, `<stdin>:1:5: bad value for pid: "{dbsize}"`) {
		t.Fatalf("check bad template: code %d %s", code, errOut)
	}
}
