package sqlitex

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCodeBothDrivers(t *testing.T) {
	for _, drv := range Drivers() {
		t.Run(drv, func(t *testing.T) {
			dir := t.TempDir()
			db, err := Open(drv, filepath.Join(dir, "t.db"), "journal_mode=WAL")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE)"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec("INSERT INTO t(v) VALUES ('a')"); err != nil {
				t.Fatal(err)
			}
			_, err = db.Exec("INSERT INTO t(v) VALUES ('a')")
			if got, want := Code(err), 2067; got != want { // SQLITE_CONSTRAINT_UNIQUE
				t.Fatalf("duplicate insert: Code(%v) = %d, want %d", err, got, want)
			}
			if got, want := Primary(err), 19; got != want {
				t.Fatalf("Primary = %d, want %d", got, want)
			}
			wrapped := errors.Join(errors.New("context"), err)
			if got := Code(wrapped); got != 2067 {
				t.Fatalf("Code(wrapped) = %d, want 2067", got)
			}

			bad := filepath.Join(dir, "bad.db")
			junk := []byte("this is definitely not a sqlite database header....")
			if err := os.WriteFile(bad, append(junk, make([]byte, 4096)...), 0o644); err != nil {
				t.Fatal(err)
			}
			bdb, err := Open(drv, bad)
			if err != nil {
				t.Fatal(err)
			}
			defer bdb.Close()
			_, err = bdb.Exec("SELECT * FROM sqlite_master")
			if got := Code(err); got != NOTADB {
				t.Fatalf("garbage file: Code(%v) = %d, want %d", err, got, NOTADB)
			}
		})
	}
	if Code(nil) != 0 || Code(errors.New("plain")) != 0 {
		t.Fatal("Code of a non-SQLite error must be 0")
	}
	if _, err := SQLName("nope"); err == nil {
		t.Fatal("SQLName(nope) did not fail")
	}
}
