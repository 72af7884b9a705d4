package faultfs_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
)

// deleteCut runs n commits in rollback-journal (DELETE) mode at the given
// synchronous setting, cuts the power by control request right after the
// last acknowledgement (keep=none), and returns the surviving commits and
// integrity_check's answer.
func deleteCut(t *testing.T, shell, sync string, n int) ([]int, string, faultfs.RecoverResult) {
	t.Helper()
	backing := t.TempDir()
	db := filepath.Join(backing, "shell.db")
	out, err := exec.Command(shell, "-init", "/dev/null", db,
		"PRAGMA journal_mode=DELETE; CREATE TABLE t(n INTEGER PRIMARY KEY, pad BLOB);").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "delete" {
		t.Fatalf("preparing the database: %v: %q", err, out)
	}
	m := fusetest.Mount(t, faultfs.Config{Backing: backing, Seed: 1, Trace: filepath.Join(t.TempDir(), "trace.jsonl")})
	if err := m.Track(true); err != nil {
		t.Fatal(err)
	}
	sh := startLoadShell(t, shell, filepath.Join(m.Dir(), "shell.db"), "PRAGMA synchronous="+sync+";")
	for i := 1; i <= n; i++ {
		if !sh.commit(i, 5*time.Second) {
			t.Fatalf("commit %d not acknowledged; stderr: %s", i, sh.stderr.String())
		}
	}
	if err := m.PowerCut(faultfs.PowerCutOptions{}); err != nil {
		t.Fatal(err)
	}
	sh.kill(t)
	res, err := m.Recover()
	if err != nil || res.Errors != "" {
		t.Fatalf("recover: %+v %v", res, err)
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	ic, ns := inspect(t, shell, db)
	return ns, ic, res
}

// TestPowerCutSQLiteShellDelete: in rollback-journal mode SQLite commits by
// unlinking the journal, and with synchronous=FULL it does not fsync the
// directory after that unlink; only synchronous=EXTRA does ("EXTRA provides
// additional durability if the commit is followed closely by a power
// loss", SQLite's documentation). Under faultfs's model, where a directory
// op is durable only once its directory is fsynced, a power cut right after
// the last acknowledged commit brings its journal back as a hot journal,
// and the next opener rolls that acknowledged commit back: FULL loses
// exactly the last commit, EXTRA none.
func TestPowerCutSQLiteShellDelete(t *testing.T) {
	shell := sqliteShell(t)
	const n = 20
	for _, tc := range []struct {
		sync string
		want int // surviving commits
	}{
		{"FULL", n - 1},
		{"EXTRA", n},
	} {
		t.Run(tc.sync, func(t *testing.T) {
			ns, ic, res := deleteCut(t, shell, tc.sync, n)
			t.Logf("DELETE+%s: %d of %d acknowledged commits survive; recover %+v", tc.sync, len(ns), n, res)
			if ic != "ok" {
				t.Fatalf("integrity_check: %s", ic)
			}
			for i, v := range ns {
				if v != i+1 {
					t.Fatalf("not a prefix: %v", ns)
				}
			}
			if len(ns) != tc.want {
				t.Fatalf("DELETE+%s: %d commits survive, want %d", tc.sync, len(ns), tc.want)
			}
		})
	}
}
