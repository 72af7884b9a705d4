package kanbancore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// healthyFile makes a DELETE-mode database with a table of 200 rows.
func healthyFile(t *testing.T, d Driver, path string) {
	t.Helper()
	c, err := openRaw(context.Background(), path, Options{Driver: d})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustExec(t, c, "PRAGMA journal_mode=DELETE", "CREATE TABLE cl_g(id INTEGER PRIMARY KEY, v TEXT)",
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<200) INSERT INTO cl_g(v) SELECT printf('row-%05d-%s', i, hex(randomblob(20))) FROM n")
}

// mutate overwrites 64 bytes of page pg (1-based, 4096-byte pages) with b.
func mutate(t *testing.T, path string, pg int, b byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0) // no connection is open here
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{b}, 64), int64(pg-1)*4096); err != nil {
		t.Fatal(err)
	}
}

func backups(t *testing.T, path string) []string {
	t.Helper()
	m, _ := filepath.Glob(path + ".corrupt.*.bak")
	return m
}

// TestIntegrityGuardContentAddressedBackup: ten opens of the same corrupt
// bytes refuse with *CorruptError and leave one backup with identical
// bytes, the original untouched; different bytes make a second backup.
func TestIntegrityGuardContentAddressedBackup(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		path := filepath.Join(t.TempDir(), "kanban.db")
		healthyFile(t, d, path)
		mutate(t, path, 2, 0xAB)
		orig, _ := os.ReadFile(path)
		for i := 0; i < 10; i++ {
			c, err := Open(context.Background(), path, Options{Driver: d, Switches: Hardened()})
			if err == nil {
				c.Close()
				t.Fatal("Open of a corrupt file succeeded")
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorruptDB) || Classify(err) != ClassCorrupt || !IsCorruptBoardError(err) {
				t.Fatalf("open %d: %v, want a *CorruptError", i, err)
			}
		}
		bs := backups(t, path)
		if len(bs) != 1 {
			t.Fatalf("10 opens of the same bytes gave backups %v, want 1", bs)
		}
		if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
			t.Fatal("the guard changed the corrupt file")
		}
		if bb, _ := os.ReadFile(bs[0]); !bytes.Equal(bb, orig) {
			t.Fatal("backup bytes differ from the file")
		}
		mutate(t, path, 3, 0xCD)
		if _, err := Open(context.Background(), path, Options{Driver: d, Switches: Hardened()}); !errors.Is(err, ErrCorruptDB) {
			t.Fatalf("mutated file: %v", err)
		}
		if bs := backups(t, path); len(bs) != 2 {
			t.Fatalf("after mutation backups %v, want 2", bs)
		}
	})
}

// TestIntegrityGuardTimestampBackups: the pre-#33804 naming makes a new
// copy on every refusal.
func TestIntegrityGuardTimestampBackups(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		path := filepath.Join(t.TempDir(), "kanban.db")
		healthyFile(t, d, path)
		mutate(t, path, 2, 0xAB)
		clk := fixedClock{time.Date(2026, 5, 27, 12, 0, 0, 0, time.UTC)}
		for i := 0; i < 3; i++ {
			if _, err := Open(context.Background(), path, Options{Driver: d, Switches: Legacy(), Clock: clk}); !errors.Is(err, ErrCorruptDB) {
				t.Fatalf("open %d: %v", i, err)
			}
		}
		bs := backups(t, path)
		if len(bs) != 3 || !strings.HasSuffix(bs[0], ".corrupt.20260527_120000.1.bak") {
			t.Fatalf("backups %v, want 3 named .corrupt.20260527_120000[.n].bak", bs)
		}
	})
}

// TestIntegrityGuardLockedHealthyIsNotCorrupt: a healthy file locked by an
// exclusive writer makes the probe fail with BUSY, which is returned as is:
// no *CorruptError, no backup.
func TestIntegrityGuardLockedHealthyIsNotCorrupt(t *testing.T) {
	old := guardProbeTimeout
	guardProbeTimeout = 200 * time.Millisecond
	t.Cleanup(func() { guardProbeTimeout = old })
	forEachDriver(t, func(t *testing.T, d Driver) {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "kanban.db")
		healthyFile(t, d, path)
		locker, err := openRaw(ctx, path, Options{Driver: d})
		if err != nil {
			t.Fatal(err)
		}
		defer locker.Close()
		mustExec(t, locker, "BEGIN EXCLUSIVE", "INSERT INTO cl_g(v) VALUES ('x')")
		c, err := Open(ctx, path, Options{Driver: d, Switches: Hardened()})
		if err == nil {
			c.Close()
			t.Fatal("Open succeeded under an exclusive lock")
		}
		if errors.Is(err, ErrCorruptDB) || Classify(err) != ClassBusy {
			t.Fatalf("got %v (class %v), want BUSY and not corrupt", err, Classify(err))
		}
		if bs := backups(t, path); len(bs) != 0 {
			t.Fatalf("backups %v for a healthy locked file", bs)
		}
		mustExec(t, locker, "ROLLBACK")
	})
}

// TestHeaderCheckMessages: the header magic check refuses non-SQLite bytes
// before any connection, with the original's message, naming a TLS record
// at offset 0 or 5.
func TestHeaderCheckMessages(t *testing.T) {
	tls := []byte{0x16, 0x03, 0x01, 0x00, 0x50}
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"tls0", " (TLS record header detected at byte offset 0); first_32=1603010050", append(append([]byte{}, tls...), make([]byte, 100)...)},
		{"tls5", " (TLS record header detected at byte offset 5); first_32=78787878781603010050", append(append([]byte("xxxxx"), tls...), make([]byte, 100)...)},
		{"garbage", "; first_32=6e6f74206120646174616261736520617420616c6c2c206a7573742074657874", []byte("not a database at all, just text, long enough")},
	}
	forEachDriver(t, func(t *testing.T, d Driver) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "kanban.db")
				os.WriteFile(path, tc.data, 0o644)
				_, err := Open(context.Background(), path, Options{Driver: d, Switches: Hardened()})
				want := "file is not a database: invalid SQLite header for " + path + tc.want
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("got %v, want %q", err, want)
				}
				var he *HeaderError
				if !errors.As(err, &he) || !errors.Is(err, ErrNotADB) || Classify(err) != ClassNotADB || !IsCorruptBoardError(err) {
					t.Fatalf("%v: want a NOTADB *HeaderError", err)
				}
				if bs := backups(t, path); len(bs) != 0 {
					t.Fatalf("header refusal made backups %v", bs)
				}
			})
		}
	})
	if err := ValidateHeader(filepath.Join(t.TempDir(), "missing.db")); err != nil {
		t.Fatalf("missing file: %v", err)
	}
}

// TestHeaderRecheckKeepsLocks: ValidateHeader while this process holds a
// connection reads through a child process, so the connection keeps its
// POSIX lock on the database file (a raw in-process read would drop it).
func TestHeaderRecheckKeepsLocks(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		path := filepath.Join(canonicalPath(t.TempDir()), "kanban.db")
		c := openT(t, d, path, Hardened(), nil)
		mustExec(t, c, "CREATE TABLE cl_h(x)", "INSERT INTO cl_h VALUES (1)")
		if n := heldLocks(t, os.Getpid(), path); n == 0 {
			t.Fatal("setup: no lock held on the WAL database")
		}
		if err := ValidateHeader(path); err != nil {
			t.Fatal(err)
		}
		if n := heldLocks(t, os.Getpid(), path); n == 0 {
			t.Fatal("ValidateHeader dropped the connection's POSIX lock")
		}
		b, err := ReadFilePrefix(path, 16)
		if err != nil || string(b) != sqliteMagic {
			t.Fatalf("ReadFilePrefix = %q, %v", b, err)
		}
		if n := heldLocks(t, os.Getpid(), path); n == 0 {
			t.Fatal("ReadFilePrefix dropped the connection's POSIX lock")
		}
		// Control: the in-process open+close that ValidateHeader avoids.
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if n := heldLocks(t, os.Getpid(), path); n != 0 {
			t.Fatalf("control: a raw open+close left %d locks; the check above proves nothing", n)
		}
	})
}
