package faultfs_test

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
	"github.com/sqlchaos/sqlchaos/internal/sqlitex"
)

// These tests observe each fault kind from above, through a real SQLite
// reader on both drivers: the SQLite client runs in the test process, the
// faultfs server in its own process (faultfs.Start re-executes the test
// binary; see TestMain).

// fsEnv is one mount for one test: the mount, its backing dir, and helpers.
type fsEnv struct {
	t       *testing.T
	m       *faultfs.Mount
	backing string
}

// mountFS mounts a fresh faultfs over a fresh backing dir with plan (may be
// empty) and seed, tracing every op.
func mountFS(t *testing.T, planText string, seed int64) *fsEnv {
	t.Helper()
	m := fusetest.Mount(t, faultfs.Config{
		Plan:  planText,
		Seed:  seed,
		Trace: filepath.Join(t.TempDir(), "trace.jsonl"),
	})
	return &fsEnv{t: t, m: m, backing: m.Backing()}
}

// path returns name's path through the mount.
func (e *fsEnv) path(name string) string { return filepath.Join(e.m.Dir(), name) }

// load replaces the mount's plan.
func (e *fsEnv) load(planText string) {
	e.t.Helper()
	if err := e.m.Client().LoadPlan(planText); err != nil {
		e.t.Fatalf("LoadPlan(%q): %v", planText, err)
	}
}

// clear removes every rule.
func (e *fsEnv) clear() {
	e.t.Helper()
	if err := e.m.Client().Clear(); err != nil {
		e.t.Fatalf("Clear: %v", err)
	}
}

// fired returns the trace's records of ops a rule fired on.
func (e *fsEnv) fired() []trace.Record {
	e.t.Helper()
	if err := e.m.Client().Flush(); err != nil {
		e.t.Fatalf("Flush: %v", err)
	}
	return firedRecords(e.t, e.m.TracePath())
}

func firedRecords(t *testing.T, tracePath string) []trace.Record {
	t.Helper()
	recs, err := trace.ReadFile(tracePath)
	if err != nil {
		t.Fatalf("reading trace %s: %v", tracePath, err)
	}
	var out []trace.Record
	for _, r := range recs {
		if r.Rule > 0 {
			out = append(out, r)
		}
	}
	return out
}

// firedCount sums the Fired counters of every loaded rule.
func (e *fsEnv) firedCount() uint64 {
	e.t.Helper()
	cs, err := e.m.Client().Counters()
	if err != nil {
		e.t.Fatalf("Counters: %v", err)
	}
	var n uint64
	for _, c := range cs {
		n += c.Fired
	}
	return n
}

// open opens a single-connection handle on driver and closes it at cleanup.
func openDB(t *testing.T, driver, path string, pragmas ...string) *sql.DB {
	t.Helper()
	db, err := sqlitex.Open(driver, path, pragmas...)
	if err != nil {
		t.Fatalf("open %s on %s: %v", path, driver, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func count(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatalf("count: %v (code %d)", err, sqlitex.Code(err))
	}
	return n
}

// integrity returns PRAGMA integrity_check's result lines joined, or the
// error the check failed with.
func integrity(db *sql.DB) (string, error) {
	rows, err := db.Query("PRAGMA integrity_check")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return "", err
		}
		lines = append(lines, s)
	}
	return strings.Join(lines, "; "), rows.Err()
}

// seedWAL creates a WAL database at path with table t and rows rows of
// 300-byte values (several pages), through driver.
func seedWAL(t *testing.T, driver, path string, rows int) *sql.DB {
	t.Helper()
	db := openDB(t, driver, path, "journal_mode=WAL", "synchronous=FULL")
	mustExec(t, db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	for i := 0; i < rows; i++ {
		mustExec(t, db, "INSERT INTO t(v) VALUES (?)", strings.Repeat(fmt.Sprint(i%10), 300))
	}
	return db
}

func forEachDriver(t *testing.T, f func(t *testing.T, driver string)) {
	for _, d := range sqlitex.Drivers() {
		t.Run(d, func(t *testing.T) { f(t, d) })
	}
}

// TestWALWriteEIO: EIO on one page write to the -wal surfaces as
// SQLITE_IOERR_WRITE (778); the next statement succeeds, the failed commit
// is not visible, and the trace holds the fault.
func TestWALWriteEIO(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		e := mountFS(t, "", 1)
		db := seedWAL(t, driver, e.path("eio.db"), 10)
		e.load("eio op=write path=*-wal minlen=4096 nth=1 count=1")

		_, err := db.Exec("INSERT INTO t(v) VALUES ('doomed')")
		if got := sqlitex.Code(err); got != sqlitex.IOERRWrite {
			t.Fatalf("insert under EIO: err %v, code %d, want %d (SQLITE_IOERR_WRITE)", err, got, sqlitex.IOERRWrite)
		}
		mustExec(t, db, "INSERT INTO t(v) VALUES ('retry')")
		if got := count(t, db); got != 11 {
			t.Fatalf("rows after failed insert and retry: %d, want 11", got)
		}
		var doomed int
		if err := db.QueryRow("SELECT count(*) FROM t WHERE v='doomed'").Scan(&doomed); err != nil || doomed != 0 {
			t.Fatalf("failed insert visible: %d rows (err %v)", doomed, err)
		}

		fired := e.fired()
		if len(fired) != 1 {
			t.Fatalf("trace has %d fired records, want 1: %+v", len(fired), fired)
		}
		r := fired[0]
		if r.Op != "write" || !strings.HasSuffix(r.Path, "eio.db-wal") || r.Result != "EIO" || r.Len < 4096 || r.Rule != 1 {
			t.Fatalf("fired record %+v: want rule 1, a >=4096-byte write to eio.db-wal failing with EIO", r)
		}
		if n := e.firedCount(); n != 1 {
			t.Fatalf("rule counters: %d fired, want 1", n)
		}
	})
}

// TestWALWriteENOSPC: ENOSPC on a -wal write surfaces as SQLITE_FULL (13).
func TestWALWriteENOSPC(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		e := mountFS(t, "", 1)
		db := seedWAL(t, driver, e.path("full.db"), 10)
		e.load("errno op=write path=*-wal errno=ENOSPC count=1")

		_, err := db.Exec("INSERT INTO t(v) VALUES ('doomed')")
		if got := sqlitex.Primary(err); got != sqlitex.FULL {
			t.Fatalf("insert under ENOSPC: err %v, code %d, want primary %d (SQLITE_FULL)", err, sqlitex.Code(err), sqlitex.FULL)
		}
		t.Logf("%s: ENOSPC on -wal write -> %v (extended code %d)", driver, err, sqlitex.Code(err))
		mustExec(t, db, "INSERT INTO t(v) VALUES ('retry')")
		if got := count(t, db); got != 11 {
			t.Fatalf("rows: %d, want 11", got)
		}
		fired := e.fired()
		if len(fired) != 1 || fired[0].Result != "ENOSPC" || !strings.HasSuffix(fired[0].Path, "-wal") {
			t.Fatalf("fired records %+v: want one ENOSPC on full.db-wal", fired)
		}
	})
}

// TestHeaderShortReadNotADB: a persistent 0-byte read of the database
// header makes a fresh connection fail with SQLITE_NOTADB (26); with the
// rule cleared the database reads normally again (nothing was damaged).
func TestHeaderShortReadNotADB(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		e := mountFS(t, "", 1)
		path := e.path("short.db")
		db := seedWAL(t, driver, path, 10)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		e.load("short op=read path=*.db off=0..100 keep=0")

		r, err := sqlitex.Open(driver, path)
		if err == nil {
			_, err = r.Exec("SELECT count(*) FROM t")
			r.Close()
		}
		if got := sqlitex.Code(err); got != sqlitex.NOTADB {
			t.Fatalf("fresh reader under 0-byte header reads: err %v, code %d, want %d (SQLITE_NOTADB)", err, got, sqlitex.NOTADB)
		}
		if !strings.Contains(err.Error(), "file is not a database") {
			t.Fatalf("error %q does not say %q", err, "file is not a database")
		}
		fired := e.fired()
		if len(fired) == 0 {
			t.Fatal("no short read in the trace")
		}
		for _, f := range fired {
			if f.Op != "read" || !strings.HasSuffix(f.Path, "short.db") || f.Off > 100 || f.N != 0 {
				t.Fatalf("fired record %+v: want a 0-byte read of short.db at off <= 100", f)
			}
		}

		e.clear()
		r2 := openDB(t, driver, path)
		if got := count(t, r2); got != 10 {
			t.Fatalf("rows after clearing the rule: %d, want 10", got)
		}
	})
}

// TestOpenEIOReadOnly: EIO on open(O_RDWR) of the database does not fail
// the connection: SQLite silently reopens the file read-only, reads work,
// and the first write fails with SQLITE_READONLY (8).
func TestOpenEIOReadOnly(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		e := mountFS(t, "", 1)
		path := e.path("ro.db")
		db := seedWAL(t, driver, path, 10)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		e.load("errno op=open path=*.db errno=EIO count=1")

		c := openDB(t, driver, path)
		if got := count(t, c); got != 10 {
			t.Fatalf("rows read on the connection whose open failed once: %d, want 10", got)
		}
		_, err := c.Exec("INSERT INTO t(v) VALUES ('ro')")
		if got := sqlitex.Primary(err); got != sqlitex.READONLY {
			t.Fatalf("first write: err %v, code %d, want primary %d (SQLITE_READONLY)", err, sqlitex.Code(err), sqlitex.READONLY)
		}
		t.Logf("%s: open EIO -> reads ok, first write %v (extended code %d)", driver, err, sqlitex.Code(err))
		fired := e.fired()
		if len(fired) != 1 || fired[0].Op != "open" || fired[0].Result != "EIO" || !strings.HasSuffix(fired[0].Path, "ro.db") {
			t.Fatalf("fired records %+v: want one EIO on open of ro.db", fired)
		}
		_, err = c.Exec("INSERT INTO t(v) VALUES ('ro again')")
		t.Logf("%s: second write on the same connection: %v (code %d)", driver, err, sqlitex.Code(err))
	})
}

// TestTornCheckpointWrite: page writes to the main database during a WAL
// checkpoint keep only their first 512 bytes and report success. The
// backing file then holds the new page's first 512 bytes followed by the
// old bytes (zeros for new pages), and a fresh reader finds the database
// corrupt.
func TestTornCheckpointWrite(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		e := mountFS(t, "", 1)
		path := e.path("torn.db")
		db := openDB(t, driver, path, "journal_mode=WAL", "synchronous=FULL", "wal_autocheckpoint=0")
		mustExec(t, db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
		mustExec(t, db, "PRAGMA wal_checkpoint(TRUNCATE)")
		for i := 0; i < 60; i++ {
			mustExec(t, db, "INSERT INTO t(v) VALUES (?)", strings.Repeat(fmt.Sprint(i%10), 300))
		}
		before := readFile(t, filepath.Join(e.backing, "torn.db"))
		pageSize, images := walPages(t, readFile(t, filepath.Join(e.backing, "torn.db-wal")))
		if pageSize != 4096 {
			t.Fatalf("page size %d, want 4096", pageSize)
		}

		e.load("torn op=write path=*.db minlen=4096 keep=512 then=ok")
		var busy, logFrames, ckpt int
		if err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &ckpt); err != nil {
			t.Fatalf("checkpoint under torn writes: %v", err)
		}
		if busy != 0 {
			t.Fatalf("checkpoint busy=%d", busy)
		}
		e.clear()
		fired := e.fired()
		if len(fired) < 2 {
			t.Fatalf("%d torn writes fired, want at least 2 (one per checkpointed page): %+v", len(fired), fired)
		}
		after := readFile(t, filepath.Join(e.backing, "torn.db"))
		visible := 0 // torn pages whose lost bytes differ from the old ones
		for _, f := range fired {
			if f.Op != "write" || f.N != 512 || f.Len != 4096 || f.Result != "ok" || f.Off%4096 != 0 {
				t.Fatalf("fired record %+v: want a 4096-byte page write that kept 512 bytes and reported ok", f)
			}
			pgno := uint32(f.Off/4096) + 1
			want, ok := images[pgno]
			if !ok {
				t.Fatalf("torn write at off %d: page %d is not in the WAL", f.Off, pgno)
			}
			got := after[f.Off : f.Off+4096]
			if !bytes.Equal(got[:512], want[:512]) {
				t.Fatalf("page %d: first 512 bytes differ from the page SQLite wrote", pgno)
			}
			old := make([]byte, 4096)
			if f.Off < int64(len(before)) {
				copy(old, before[f.Off:])
			}
			if !bytes.Equal(got[512:], old[512:]) {
				t.Fatalf("page %d: bytes 512..4096 are not the old bytes", pgno)
			}
			if !bytes.Equal(want[512:], old[512:]) {
				visible++
			}
		}
		if visible == 0 {
			t.Fatal("no torn page differs from its old bytes past byte 512; the tear would be invisible")
		}
		if err := db.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}

		fresh := openDB(t, driver, path)
		res, err := integrity(fresh)
		var n int
		cerr := fresh.QueryRow("SELECT count(*), sum(length(v)) FROM t").Scan(&n, new(sql.NullInt64))
		t.Logf("%s: %d torn page writes; fresh reader: integrity_check=%q err=%v; count(*)=%d err=%v (code %d)",
			driver, len(fired), trim(res, 200), err, n, cerr, sqlitex.Code(cerr))
		if err == nil && res == "ok" {
			t.Fatal("fresh reader: integrity_check is ok after torn page writes")
		}
		if err != nil && sqlitex.Primary(err) != sqlitex.CORRUPT {
			t.Fatalf("integrity_check failed with %v (code %d), want SQLITE_CORRUPT or a report", err, sqlitex.Code(err))
		}
	})
}

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// walPages parses a WAL file (https://sqlite.org/fileformat.html#the_write_ahead_log)
// and returns its page size and the last image of each page in it.
func walPages(t *testing.T, wal []byte) (int, map[uint32][]byte) {
	t.Helper()
	if len(wal) < 32 {
		t.Fatalf("WAL is %d bytes, want a header and frames", len(wal))
	}
	if magic := binary.BigEndian.Uint32(wal); magic&^1 != 0x377f0682 {
		t.Fatalf("WAL magic %#x", magic)
	}
	ps := int(binary.BigEndian.Uint32(wal[8:]))
	images := map[uint32][]byte{}
	for off := 32; off+24+ps <= len(wal); off += 24 + ps {
		pgno := binary.BigEndian.Uint32(wal[off:])
		images[pgno] = wal[off+24 : off+24+ps]
	}
	if len(images) == 0 {
		t.Fatal("WAL has no frames")
	}
	return ps, images
}
