package kanbancore

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

// TestMain lets the tests re-execute this test binary as a second process
// (the lock-cancellation tests' readers and writers).
func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}

// drivers is the table every connection-layer test runs over.
var drivers = []Driver{DriverModernc, DriverMattn}

func forEachDriver(t *testing.T, f func(t *testing.T, d Driver)) {
	t.Helper()
	for _, d := range drivers {
		t.Run(string(d), func(t *testing.T) { f(t, d) })
	}
}

// recObserver records what the connection layer reports.
type recObserver struct {
	mu        sync.Mutex
	seq       int64
	committed []Commit
	failed    []error
	modes     []string
	onCommit  func(Commit)
}

func (o *recObserver) InTxn(ctx context.Context, tx Execer, op string) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seq++
	return o.seq, nil
}

func (o *recObserver) Committed(c Commit) {
	o.mu.Lock()
	o.committed = append(o.committed, c)
	f := o.onCommit
	o.mu.Unlock()
	if f != nil {
		f(c)
	}
}

func (o *recObserver) Failed(op string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failed = append(o.failed, err)
}

func (o *recObserver) JournalMode(m string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.modes = append(o.modes, m)
}

// openT opens path with profile switches s (modified by sets) and closes it
// at cleanup.
func openT(t *testing.T, d Driver, path string, s Switches, obs Observer, sets ...string) *Conn {
	t.Helper()
	if err := s.ApplySets(sets); err != nil {
		t.Fatal(err)
	}
	c, err := Open(context.Background(), path, Options{Driver: d, Switches: s, Observer: obs, Seed: 1})
	if err != nil {
		t.Fatalf("Open(%s, %s): %v", path, d, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustExec(t *testing.T, c *Conn, qs ...string) {
	t.Helper()
	for _, q := range qs {
		if _, err := c.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestOpenWriteTxnBasics(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		for _, p := range Profiles() {
			t.Run(p.Name, func(t *testing.T) {
				ctx := context.Background()
				path := filepath.Join(t.TempDir(), "kanban.db")
				obs := &recObserver{}
				c := openT(t, d, path, p.Switches, obs)
				if got := obs.modes; len(got) != 1 || got[0] != "wal" {
					t.Fatalf("JournalMode reports %v, want [wal]", got)
				}
				mustExec(t, c, "CREATE TABLE IF NOT EXISTS cl_t(id INTEGER PRIMARY KEY, v TEXT)")
				err := c.WriteTxn(ctx, "put", func(tx *Tx) error {
					if _, err := tx.ExecContext(ctx, "INSERT INTO cl_t(v) VALUES ('a')"); err != nil {
						return err
					}
					tx.Inserted("cl_t", "1")
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(obs.committed) != 1 || obs.committed[0].Seq != 1 || obs.committed[0].Op != "put" ||
					len(obs.committed[0].Inserted) != 1 {
					t.Fatalf("Committed = %+v", obs.committed)
				}
				if m, err := c.JournalMode(ctx); err != nil || m != "wal" {
					t.Fatalf("JournalMode = %q, %v", m, err)
				}
				if len(obs.failed) != 0 {
					t.Fatalf("Failed reported %v", obs.failed)
				}
			})
		}
	})
}
