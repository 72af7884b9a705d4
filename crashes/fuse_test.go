package crashes

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
)

// keepEnv, set, keeps the recorded run directories of TestCaptureFUSE
// (their paths are logged), e.g. to try chaosrun crashes on them.
const keepEnv = "SQLCHAOS_KEEP_RUNS"

// boardRun mounts faultfs in capture mode over a fresh backing directory,
// runs work against the mounted database (kanban.db) with a history
// writer, stops the mount and returns the run directory (run, emptied
// first, or a temporary one) and the backing directory.
func boardRun(t *testing.T, run string, switches map[string]string, work func(db string, h *history.Writer)) (string, string) {
	backing := t.TempDir()
	switch {
	case run != "":
		if err := os.RemoveAll(run); err != nil {
			t.Fatal(err)
		}
	case os.Getenv(keepEnv) == "":
		run = t.TempDir()
	default:
		var err error
		if run, err = os.MkdirTemp("", "sqlchaos-crashes-run-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: keeping the recorded run in %s", keepEnv, run)
	}
	if err := os.MkdirAll(filepath.Join(run, HistoriesDir), 0o755); err != nil {
		t.Fatal(err)
	}
	m := fusetest.Mount(t, faultfs.Config{Backing: backing, Trace: filepath.Join(run, TraceFile),
		CaptureDir: filepath.Join(run, "capture")})
	h, err := history.Create(filepath.Join(run, HistoriesDir, "writer.jsonl"), "writer")
	if err != nil {
		t.Fatal(err)
	}
	work(filepath.Join(m.Dir(), "kanban.db"), h)
	h.Close()
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	b := []byte(`{"scenario":"capture-test","switches":{"journal_mode":"` + switches["journal_mode"] + `","synchronous":"` + switches["synchronous"] + `"}}`)
	if err := os.WriteFile(filepath.Join(run, MetaFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return run, backing
}

// commitTx runs body in a transaction with the ledger row, commits, and
// records the acknowledged commit in the history.
func commitTx(t *testing.T, db *sql.DB, h *history.Writer, op string, c history.Commit, body ...string) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range body {
		if _, err := tx.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	seq := commitLedger(t, tx, h.Proc(), op)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := h.Write(history.Event{Type: history.TypeCommit, Op: op, Seq: seq, Data: &history.Data{Commit: c}}); err != nil {
		t.Fatal(err)
	}
}

// deleteWorkload is issue 9's experiment as a recorded run: a table of 400
// rows in one commit, then DELETE of rows 100..250 in another, both with
// the ledger and acknowledged in the history. In WAL mode the delete is
// checkpointed and one more commit restarts the WAL, so that a lost
// checkpoint write can no longer be repaired from the WAL.
func deleteWorkload(t *testing.T, journal, sync, secure string) func(string, *history.Writer) {
	return func(path string, h *history.Writer) {
		db := openDB(t, path, "PRAGMA journal_mode="+journal, "PRAGMA synchronous="+sync, "PRAGMA secure_delete="+secure,
			"PRAGMA wal_autocheckpoint=0")
		defer db.Close()
		if _, err := db.Exec(ledgerSchema + `CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL);`); err != nil {
			t.Fatal(err)
		}
		commitTx(t, db, h, "insert", history.Commit{Inserted: rowKeys(1, 400)},
			`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 400)
			 INSERT INTO t SELECT i, printf('row %d %040d', i, i) FROM n`)
		checkpoint := func() {
			if journal == "WAL" {
				if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
					t.Fatal(err)
				}
			}
		}
		checkpoint()
		commitTx(t, db, h, "delete", history.Commit{Deleted: rowKeys(100, 250)},
			`DELETE FROM t WHERE id BETWEEN 100 AND 250`)
		if journal == "WAL" {
			checkpoint()
			commitTx(t, db, h, "insert", history.Commit{Inserted: rowKeys(401, 401)},
				`INSERT INTO t VALUES (401, 'one more')`)
		}
	}
}

// TestCaptureFUSE records real runs through faultfs in capture mode and
// explores them: the clean image at the end is byte for byte the backing
// directory's files (the capture replays exactly); every honest power-cut
// state (clean, synced, lost, torn, random, and dir-lost except for a
// rollback journal below EXTRA) passes — SQLite's atomic commit holds, and
// at EXTRA the journal's unlink is directory-synced; and the lost-synced
// class finds issue 9's resurrection: a database page write a fsync
// reported durable, lost after a DELETE, brings deleted rows back with
// integrity_check ok, with secure_delete OFF and ON.
func TestCaptureFUSE(t *testing.T) {
	fusetest.Require(t)
	cases := []struct {
		name, journal, sync, secure string
	}{
		{"delete-full-secure_delete=OFF", "DELETE", "FULL", "OFF"},
		{"delete-full-secure_delete=ON", "DELETE", "FULL", "ON"},
		{"wal-full-secure_delete=ON", "WAL", "FULL", "ON"},
		{"delete-extra-secure_delete=ON", "DELETE", "EXTRA", "ON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sw := map[string]string{"journal_mode": strings.ToLower(c.journal), "synchronous": c.sync}
			run, backing := boardRun(t, "", sw, deleteWorkload(t, c.journal, c.sync, c.secure))

			e, err := Open(Options{RunDir: run, Budget: 0, Jobs: 2, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			if m, src := e.Mode(); m.Journal != sw["journal_mode"] || m.Sync != strings.ToLower(c.sync) || src != MetaFile {
				t.Fatalf("mode %v from %s", m, src)
			}
			// The clean end image is what the backing directory holds.
			end, err := e.Rebuild(context.Background(), "end", filepath.Join(t.TempDir(), "end"))
			if err != nil {
				t.Fatal(err)
			}
			if end.Judgement.Verdict != Pass {
				t.Fatalf("clean end state: %s", end.Judgement.Summary())
			}
			r := newReplayer(e.tl)
			last := len(e.tl.points) - 1
			r.advance(e.tl.points[last].idx)
			img, _ := r.build(last, nil, 0)
			for n, b := range img {
				disk, err := os.ReadFile(filepath.Join(backing, n))
				if err != nil {
					t.Fatalf("%s in the image, not in the backing dir: %v", n, err)
				}
				if !bytes.Equal(disk, b) {
					t.Fatalf("%s: the captured replay (%d bytes) differs from the backing file (%d bytes)", n, len(b), len(disk))
				}
			}

			e.opts.Budget = 3000 // every systematic state here, plus random ones
			rep, err := e.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			logReport(t, rep)
			if rep.Points < 3 {
				t.Fatalf("only %d crash points", rep.Points)
			}
			for _, cs := range rep.Classes {
				if cs.Class.Lying() || (cs.Class == ClassDirLost && c.journal == "DELETE" && c.sync != "EXTRA") {
					continue // a rollback journal's unlink is not dir-synced below EXTRA: see TestFixtureRollbackDelete
				}
				if cs.Fail > 0 || cs.Errors > 0 || cs.Detected > 0 {
					for _, f := range rep.Failures {
						t.Logf("%s %s: %s", f.Class, f.ID, f.Judgement.Summary())
					}
					t.Fatalf("honest power cut, class %s: %d failing, %d errors", cs.Class, cs.Fail, cs.Errors)
				}
				if cs.Candidates > 0 && cs.Run == 0 {
					t.Fatalf("class %s: %d candidates, none run", cs.Class, cs.Candidates)
				}
			}
			if _, _, err := e.Save(rep, ""); err != nil {
				t.Fatal(err)
			}
			e.opts.Classes = []Class{ClassLostSynced}
			if rep, err = e.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			f := rep.MinimalByKind[KindResurrected]
			if f == nil {
				t.Fatalf("no lost-synced state resurrects a deleted row (%d states)", rep.States)
			}
			if f.Class != ClassLostSynced || f.Judgement.Integrity != "ok" || len(f.Alts) != 1 || f.Alts[0].Path != "kanban.db" {
				t.Fatalf("minimal resurrection: %+v", f)
			}
			if _, _, err := e.Save(rep, ""); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(run, OutDir, "minimal-state.json")); err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			rf, err := e.Rebuild(context.Background(), f.ID, out)
			if err != nil {
				t.Fatal(err)
			}
			n := countRows(t, filepath.Join(out, "kanban.db"), `SELECT count(*) FROM t WHERE id BETWEEN 100 AND 250`)
			if n == 0 || rf.Judgement.Verdict != Fail {
				t.Fatalf("rebuilt %s: %d deleted rows, %s", f.ID, n, rf.Judgement.Summary())
			}
			t.Logf("%s: lost write %s (page %d) brings back %d deleted rows, integrity_check ok: %s", c.name, f.ID, f.Alts[0].Page, n, f.Rebuild)
		})
	}
}

// fixtureEnv, set, makes TestWriteFixtures re-record the captured runs
// under testdata/crashes/ (FUSE required).
const fixtureEnv = "SQLCHAOS_UPDATE_FIXTURES"

// fixtureDir is the recorded rollback-journal run the non-FUSE tests and
// the CLI tests explore.
const fixtureDir = "../testdata/crashes/rollback-delete-400"

// TestWriteFixtures re-records testdata/crashes/ with
// SQLCHAOS_UPDATE_FIXTURES=1: issue 9's experiment (400 rows, DELETE of
// 100..250) through faultfs in capture mode, DELETE journal, FULL,
// secure_delete ON.
func TestWriteFixtures(t *testing.T) {
	if os.Getenv(fixtureEnv) == "" {
		t.Skip("set " + fixtureEnv + "=1 to re-record testdata/crashes/")
	}
	fusetest.Require(t)
	run, _ := boardRun(t, fixtureDir, map[string]string{"journal_mode": "delete", "synchronous": "FULL"},
		deleteWorkload(t, "DELETE", "FULL", "ON"))
	t.Logf("recorded %s", run)
}
