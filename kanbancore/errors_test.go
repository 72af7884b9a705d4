package kanbancore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	mattn "github.com/mattn/go-sqlite3"
)

// TestClassifyRealDriverErrors provokes each class with a real driver
// error on both drivers and checks Classify, SQLiteCode and that wrapping
// keeps the chain.
func TestClassifyRealDriverErrors(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		ctx := context.Background()
		dir := t.TempDir()
		path := filepath.Join(dir, "kanban.db")
		c, err := openRaw(ctx, path, Options{Driver: d})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		mustExec(t, c, "PRAGMA journal_mode=DELETE", "CREATE TABLE cl_e(id INTEGER PRIMARY KEY, k TEXT UNIQUE)", "INSERT INTO cl_e(k) VALUES ('a')")

		check := func(name string, err error, want ErrClass, wantCode int) {
			t.Helper()
			if err == nil {
				t.Errorf("%s: no error", name)
				return
			}
			code, _ := SQLiteCode(err)
			wrapped := fmt.Errorf("ctx: %w", wrapErr("op", err))
			if Classify(err) != want || Classify(wrapped) != want || (wantCode != 0 && code != wantCode) {
				t.Errorf("%s: %v → class %v code %d, want %v code %d", name, err, Classify(err), code, want, wantCode)
			}
			if !errors.Is(wrapped, err) {
				t.Errorf("%s: wrapping lost the chain", name)
			}
		}

		_, err = c.ExecContext(ctx, "INSERT INTO cl_e(k) VALUES ('a')")
		check("constraint", err, ClassOther, 2067)

		other, err := openRaw(ctx, path, Options{Driver: d})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		mustExec(t, other, "PRAGMA busy_timeout=0") // mattn defaults to 5 s
		mustExec(t, c, "BEGIN IMMEDIATE")
		_, err = other.ExecContext(ctx, "BEGIN IMMEDIATE")
		check("busy", err, ClassBusy, 5)
		mustExec(t, c, "ROLLBACK")

		bad := filepath.Join(dir, "bad.db")
		os.WriteFile(bad, append([]byte("definitely not sqlite, just bytes......"), make([]byte, 4096)...), 0o644)
		b, err := openRaw(ctx, bad, Options{Driver: d}) // mattn reads the header at open
		if err == nil {
			_, err = b.ExecContext(ctx, "SELECT * FROM sqlite_master")
			b.Close()
		}
		check("notadb", err, ClassNotADB, 26)

		corrupt := filepath.Join(dir, "corrupt.db")
		healthyFile(t, d, corrupt)
		mutate(t, corrupt, 2, 0xAB)
		cc, err := openRaw(ctx, corrupt, Options{Driver: d})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cc.QueryContext(ctx, "SELECT count(v) FROM cl_g")
		check("corrupt", err, ClassCorrupt, 0)
		cc.Close()

		_, err = c.ExecContext(ctx, "PRAGMA max_page_count=2")
		if err == nil {
			_, err = c.ExecContext(ctx, "INSERT INTO cl_e(k) SELECT hex(randomblob(3000)) FROM (SELECT 1 UNION SELECT 2 UNION SELECT 3)")
		}
		check("full", err, ClassFull, 13)

		co, err := openRaw(ctx, filepath.Join(dir, "no", "such", "dir.db"), Options{Driver: d})
		if err == nil {
			_, err = co.ExecContext(ctx, "CREATE TABLE x(y)")
			co.Close()
		}
		check("cantopen", err, ClassCantOpen, 0)

		// No IOERR without FUSE: a constructed driver error stands in.
		check("ioerr (constructed)", mattn.Error{Code: mattn.ErrIoErr, ExtendedCode: mattn.ErrIoErrFsync}, ClassIOErr, 1034)
	})
	if Classify(nil) != ClassOther || Classify(errors.New("x")) != ClassOther {
		t.Fatal("non-SQLite errors must classify OTHER")
	}
	if got := Classify(&TornExtendError{Path: "p"}); got != ClassTornExtend || ClassTornExtend.String() != "TORN_EXTEND" {
		t.Fatalf("torn extend: %v", got)
	}
}

// TestReadOnlyConnectionRefused: an immutable file makes SQLite silently
// open read-only (as an EIO on the read-write open does); Open detects it,
// retries once and fails with READONLY instead of keeping the connection.
// A write on such a connection classifies READONLY too.
func TestReadOnlyConnectionRefused(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "kanban.db")
		healthyFile(t, d, path)
		if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
			t.Skipf("chattr +i unavailable (%v: %s): cannot make SQLite open read-only as root", err, out)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", path).Run() })
		raw, err := openRaw(ctx, path, Options{Driver: d})
		if err != nil {
			t.Fatal(err)
		}
		ro, err := raw.readOnly()
		_, werr := raw.ExecContext(ctx, "INSERT INTO cl_g(v) VALUES ('w')")
		raw.Close()
		if err != nil || !ro || Classify(werr) != ClassReadOnly {
			t.Fatalf("readOnly() = %v, %v; write error %v; want true and READONLY", ro, err, werr)
		}
		start := time.Now()
		c, err := Open(ctx, path, Options{Driver: d, Switches: Hardened()})
		if err == nil {
			c.Close()
			t.Fatal("Open kept a read-only connection")
		}
		if Classify(err) != ClassReadOnly || !errors.Is(err, ErrReadOnly) {
			t.Fatalf("got %v, want READONLY", err)
		}
		t.Logf("refused after %v: %v", time.Since(start), err)
	})
}
