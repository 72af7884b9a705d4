package crashes

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// walFixture makes a WAL database with commits left in its -wal (no
// checkpoint), and with restart also a restarted WAL whose stale tail of
// old frames follows the new ones. It returns the db and -wal bytes.
func walFixture(t *testing.T, restart bool) (db, wal []byte) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kanban.db")
	c := openDB(t, path, "PRAGMA journal_mode=WAL", "PRAGMA wal_autocheckpoint=0")
	if _, err := c.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)`); err != nil {
		t.Fatal(err)
	}
	insert := func(lo, hi int) {
		for i := lo; i <= hi; i++ {
			if _, err := c.Exec(`INSERT INTO t VALUES (?, printf('%0300d', ?))`, i, i); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(1, 60)
	if restart {
		if _, err := c.Exec(`PRAGMA wal_checkpoint(RESTART)`); err != nil {
			t.Fatal(err)
		}
		insert(61, 70)
	}
	// Copy the files while the connection is open (closing would
	// checkpoint and delete the -wal).
	var err error
	if db, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	if wal, err = os.ReadFile(path + "-wal"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	return db, wal
}

// dumpDB opens db with wal (as a crash image) and returns its integrity
// check and every row, or the error.
func dumpDB(t *testing.T, db, wal []byte) string {
	dir := t.TempDir()
	if err := place(dir, "kanban.db", Image{"kanban.db": db}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kanban.db-wal"), wal, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "kanban.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b strings.Builder
	var ic string
	if err := c.QueryRow(`PRAGMA integrity_check`).Scan(&ic); err != nil {
		return "error: " + err.Error()
	}
	b.WriteString(ic + "\n")
	rows, err := c.Query(`SELECT id, body FROM t ORDER BY id`)
	if err != nil {
		return b.String() + "error: " + err.Error()
	}
	defer rows.Close()
	for rows.Next() {
		var id int
		var body string
		rows.Scan(&id, &body)
		fmt.Fprintf(&b, "%d %s\n", id, body)
	}
	return b.String()
}

// TestWALValidLen checks that cutting a -wal after its last valid frame
// changes nothing SQLite sees: for intact, restarted (stale tail),
// frame-lost, frame-torn and header-damaged WALs, the database read
// through the cut WAL equals the one read through the whole WAL.
func TestWALValidLen(t *testing.T) {
	seed := time.Now().UnixNano()
	r := rand.New(rand.NewPCG(uint64(seed), 3))
	for _, restart := range []bool{false, true} {
		db, wal := walFixture(t, restart)
		n := walValidLen(wal)
		switch {
		case !restart && n != len(wal):
			t.Fatalf("intact WAL of %d bytes: valid length %d", len(wal), n)
		case restart && n >= len(wal):
			t.Fatalf("restarted WAL of %d bytes: valid length %d, the stale tail kept", len(wal), n)
		}
		ps := 4096
		frames := (len(wal) - 32) / (24 + ps)
		for i := 0; i < 12; i++ {
			w := append([]byte(nil), wal...)
			what := "intact"
			switch k := r.IntN(4); {
			case k == 0 && frames > 0: // a frame lost: zeros (never written) or old bytes
				f := r.IntN(frames)
				clear(w[32+f*(24+ps) : 32+(f+1)*(24+ps)])
				what = fmt.Sprintf("frame %d zeroed", f)
			case k == 1 && frames > 0: // a torn frame: one sector of its page
				f := r.IntN(frames)
				off := 32 + f*(24+ps) + 24 + 512*r.IntN(8)
				for j := off; j < off+512; j++ {
					w[j] ^= 0x5a
				}
				what = fmt.Sprintf("frame %d torn at %d", f, off)
			case k == 2: // a damaged header: the whole WAL is ignored
				w[12+r.IntN(20)] ^= 1
				what = "header damaged"
			}
			cut := walValidLen(w)
			full, trimmed := dumpDB(t, db, w), dumpDB(t, db, w[:cut])
			if full != trimmed {
				t.Fatalf("seed %d restart=%v %s: reading the WAL cut at %d of %d differs:\nfull:\n%.300s\ncut:\n%.300s", seed, restart, what, cut, len(w), full, trimmed)
			}
			if what == "header damaged" && cut != len(w) {
				t.Fatalf("damaged header: cut at %d of %d", cut, len(w))
			}
		}
	}
}
