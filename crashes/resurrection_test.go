package crashes

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sqlchaos/sqlchaos/history"
)

const ledgerSchema = `CREATE TABLE chaos_counter (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT INTO chaos_counter VALUES (1, 0);
CREATE TABLE chaos_ledger (seq INTEGER PRIMARY KEY, proc TEXT NOT NULL, op TEXT NOT NULL, t INTEGER NOT NULL);`

// commitLedger bumps the counter and appends the ledger row inside tx, as
// the scenarios' observer does, and returns the seq.
func commitLedger(t testing.TB, tx *sql.Tx, proc, op string) int64 {
	t.Helper()
	var seq int64
	if err := tx.QueryRow(`UPDATE chaos_counter SET n = n + 1 WHERE id = 1 RETURNING n`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO chaos_ledger(seq, proc, op, t) VALUES (?,?,?,?)`, seq, proc, op, history.Now()); err != nil {
		t.Fatal(err)
	}
	return seq
}

func openDB(t testing.TB, path string, pragmas ...string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	for _, p := range pragmas {
		if _, err := db.Exec(p); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	return db
}

// rowKeys returns refs for t rows lo..hi.
func rowKeys(lo, hi int) []history.RowRef {
	var out []history.RowRef
	for i := lo; i <= hi; i++ {
		out = append(out, history.RowRef{Table: "t", Key: strconv.Itoa(i)})
	}
	return out
}

// TestLostSyncedLeafWriteResurrects is issue 9's hand experiment, found by
// the explorer: a rollback-journal board of 400 rows, DELETE of rows
// 100..250, and the database's pages recorded as the commit wrote them
// (each page that changed is one write, then the database fsync). Losing
// one changed leaf page's write after the fsync reported it durable brings
// deleted rows back with integrity_check ok — with secure_delete OFF and
// ON. Without FUSE: the recording is built from the real database before
// and after the commit (no journal, so only the lost-synced class, whose
// crash point follows the commit, is faithful here; TestCaptureFUSE runs
// every class on a real capture).
func TestLostSyncedLeafWriteResurrects(t *testing.T) {
	for _, sd := range []string{"OFF", "ON"} {
		t.Run("secure_delete="+sd, func(t *testing.T) {
			work := t.TempDir()
			path := filepath.Join(work, "kanban.db")
			pragmas := []string{"PRAGMA journal_mode=DELETE", "PRAGMA synchronous=FULL", "PRAGMA secure_delete=" + sd}
			db := openDB(t, path, pragmas...)
			if _, err := db.Exec(ledgerSchema + `CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL);`); err != nil {
				t.Fatal(err)
			}
			tx, _ := db.Begin()
			if _, err := tx.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 400)
				INSERT INTO t SELECT i, printf('row %d %040d', i, i) FROM n`); err != nil {
				t.Fatal(err)
			}
			s1 := commitLedger(t, tx, "writer", "insert")
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			db.Close()
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			db = openDB(t, path, pragmas...)
			tx, _ = db.Begin()
			if _, err := tx.Exec(`DELETE FROM t WHERE id BETWEEN 100 AND 250`); err != nil {
				t.Fatal(err)
			}
			s2 := commitLedger(t, tx, "writer", "delete")
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			db.Close()
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ps := int(before[16])<<8 | int(before[17])
			var ops []Op
			tm := int64(1000)
			for off := 0; off < len(after); off += ps {
				end := min(off+ps, len(after))
				if off+ps <= len(before) && bytes.Equal(before[off:end], after[off:end]) {
					continue
				}
				tm++
				ops = append(ops, Op{T: tm, Kind: OpWrite, Path: "kanban.db", Off: int64(off), Data: after[off:end]})
			}
			if len(ops) < 3 {
				t.Fatalf("the delete changed only %d pages", len(ops))
			}
			ops = append(ops, Op{T: tm + 1, Kind: OpSync, Path: "kanban.db"})
			events := []history.Event{
				commitEv(s1, "writer", 500, "insert", history.Commit{Inserted: rowKeys(1, 400)}),
				commitEv(s2, "writer", tm+10, "delete", history.Commit{Deleted: rowKeys(100, 250)}),
			}
			run := t.TempDir()
			writeRunDir(t, run, map[string][]byte{"kanban.db": before}, ops, events, map[string]string{"journal_mode": "delete", "synchronous": "FULL"})

			e, err := Open(Options{RunDir: run, Classes: []Class{ClassLostSynced}, Jobs: 2, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := e.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			logReport(t, rep)
			f := rep.MinimalByKind[KindResurrected]
			if f == nil {
				t.Fatalf("no resurrection among %d lost-synced states (%d pages written)", rep.States, len(ops)-1)
			}
			if f.Judgement.Integrity != "ok" || len(f.Alts) != 1 || f.Alts[0].What != "lost" || !f.Alts[0].Synced || f.Class != ClassLostSynced {
				t.Fatalf("minimal resurrection: %+v", f)
			}
			// Saved, and rebuilt from its ID with the same verdict.
			found := t.TempDir()
			paths, _, err := e.Save(rep, found)
			if err != nil {
				t.Fatal(err)
			}
			var saved SavedState
			b, err := os.ReadFile(filepath.Join(run, OutDir, "minimal-state.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &saved); err != nil || saved.State == nil || saved.State.ID != rep.Minimal.ID {
				t.Fatalf("minimal-state.json: %v %+v", err, saved.State)
			}
			if len(paths) != 3 {
				t.Fatalf("saved %v", paths)
			}
			out := t.TempDir()
			rf, err := e.Rebuild(context.Background(), f.ID, out)
			if err != nil {
				t.Fatal(err)
			}
			if rf.Judgement.Verdict != Fail || !shares(rf.Judgement.Kinds(), []string{KindResurrected}) {
				t.Fatalf("rebuilt %s: %s", f.ID, rf.Judgement.Summary())
			}
			// The rebuilt file really holds deleted rows, read by a plain
			// connection.
			n := countRows(t, filepath.Join(out, "kanban.db"), `SELECT count(*) FROM t WHERE id BETWEEN 100 AND 250`)
			if n == 0 || n != f.Judgement.Problems[0].Count {
				t.Fatalf("rebuilt image has %d deleted rows, the judgement says %d", n, f.Judgement.Problems[0].Count)
			}
			t.Logf("secure_delete=%s: %s brings back %d deleted rows (page %d), integrity_check ok; rebuild: %s", sd, f.ID, n, f.Alts[0].Page, f.Rebuild)
		})
	}
}

func countRows(t testing.TB, path, q string) int {
	t.Helper()
	db := openDB(t, path)
	defer db.Close()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func logReport(t testing.TB, rep *Report) {
	t.Helper()
	t.Logf("%d states in %s (%.0f/s, %.0f per minute per core by wall clock, %.0f per CPU-minute), %d failing, kinds %v",
		rep.States, rep.Elapsed, rep.PerSecond, rep.PerMinuteCore, rep.PerCPUMinute, rep.Failing, rep.Kinds)
	for _, c := range rep.Classes {
		t.Logf("  %-12s candidates %5d run %5d pass %5d fail %4d detected %4d inconclusive %4d error %d", c.Class, c.Candidates, c.Run, c.Pass, c.Fail, c.Detected, c.Unsure, c.Errors)
	}
	for k, f := range rep.MinimalByKind {
		t.Logf("  minimal %s: %s %s", k, f.ID, fmt.Sprint(f.Judgement.Summary()))
	}
}
