package kanbancore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	mattn "github.com/mattn/go-sqlite3"
)

// injectPragma replaces the execPragma seam for the test: fail(q, n) is
// consulted before each journal-mode pragma (n counts calls of that exact
// statement) and may return a driver error; every statement is recorded.
func injectPragma(t *testing.T, fail func(q string, n int) error) *[]string {
	t.Helper()
	var mu sync.Mutex
	var log []string
	counts := map[string]int{}
	orig := execPragma
	execPragma = func(ctx context.Context, c *Conn, q string) (string, error) {
		mu.Lock()
		counts[q]++
		n := counts[q]
		log = append(log, q)
		mu.Unlock()
		if err := fail(q, n); err != nil {
			return "", err
		}
		return orig(ctx, c, q)
	}
	t.Cleanup(func() { execPragma = orig })
	return &log
}

// eioWrite is the driver error an injected EIO surfaces as
// (SQLITE_IOERR_WRITE, feasibility Q4).
var eioWrite = mattn.Error{Code: mattn.ErrIoErr, ExtendedCode: mattn.ErrIoErrWrite}

// walFile makes an idle WAL database (header bytes 18/19 = 2/2, no
// connection open).
func walFile(t *testing.T, d Driver) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kanban.db")
	c, err := openRaw(context.Background(), path, Options{Driver: d})
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, c, "PRAGMA journal_mode=WAL", "CREATE TABLE cl_w(x)", "INSERT INTO cl_w VALUES (1)")
	c.Close()
	if a, b := headerModeBytes(t, path); a != 2 || b != 2 {
		t.Fatalf("setup: header bytes 18/19 = %d/%d, want 2/2", a, b)
	}
	return path
}

func headerModeBytes(t *testing.T, path string) (byte, byte) {
	t.Helper()
	b, err := os.ReadFile(path) // no connection is open here
	if err != nil || len(b) < 20 {
		t.Fatalf("read header: %v", err)
	}
	return b[18], b[19]
}

// TestWALPolicyEIOOnSetPragma: an idle WAL file; every PRAGMA journal_mode=WAL
// fails with "disk I/O error". legacy issues the set on every connect and
// downgrades the file to DELETE for everyone (header 1/1, Bug D); pr and
// newest probe first, see WAL and never issue the set (fix 8), so the
// header stays 2/2.
func TestWALPolicyEIOOnSetPragma(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		for _, pol := range []string{"legacy", "pr", "newest"} {
			t.Run(pol, func(t *testing.T) {
				path := walFile(t, d)
				log := injectPragma(t, func(q string, n int) error {
					if q == "PRAGMA journal_mode=WAL" {
						return eioWrite
					}
					return nil
				})
				obs := &recObserver{}
				c := openT(t, d, path, Hardened(), obs, "wal_policy="+pol)
				c.Close()
				setIssued := strings.Contains(strings.Join(*log, ";"), "journal_mode=WAL")
				a, b := headerModeBytes(t, path)
				if pol == "legacy" {
					if obs.modes[0] != "delete" || a != 1 || b != 1 || !setIssued {
						t.Fatalf("legacy: mode %v, header %d/%d, set issued %v; want delete, 1/1, true", obs.modes, a, b, setIssued)
					}
					return
				}
				if obs.modes[0] != "wal" || a != 2 || b != 2 || setIssued {
					t.Fatalf("%s: mode %v, header %d/%d, set issued %v; want wal, 2/2, false", pol, obs.modes, a, b, setIssued)
				}
			})
		}
	})
}

// TestWALPolicyEIOOnProbeAndSet: the read-only probe fails too. legacy
// downgrades (1/1); pr swallows the probe error, falls through to the set,
// and re-raises its EIO (connect fails, header 2/2); newest retries the
// probe, then treats the mode as unknown and touches nothing (connect
// succeeds reporting "unknown", header 2/2).
func TestWALPolicyEIOOnProbeAndSet(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		for _, pol := range []string{"legacy", "pr", "newest"} {
			t.Run(pol, func(t *testing.T) {
				path := walFile(t, d)
				injectPragma(t, func(q string, n int) error {
					if q == "PRAGMA journal_mode=WAL" || q == "PRAGMA journal_mode" {
						return eioWrite
					}
					return nil
				})
				s := Hardened()
				s.WALPolicy = WALPolicy(pol)
				obs := &recObserver{}
				c, err := Open(context.Background(), path, Options{Driver: d, Switches: s, Observer: obs})
				if c != nil {
					c.Close()
				}
				a, b := headerModeBytes(t, path)
				switch pol {
				case "legacy":
					if err != nil || a != 1 || b != 1 {
						t.Fatalf("legacy: err %v, header %d/%d; want nil, 1/1", err, a, b)
					}
				case "pr":
					if Classify(err) != ClassIOErr || !strings.Contains(err.Error(), "disk I/O error") || a != 2 || b != 2 {
						t.Fatalf("pr: err %v (class %v), header %d/%d; want IOERR, 2/2", err, Classify(err), a, b)
					}
					if len(obs.failed) != 1 {
						t.Fatalf("pr: Observer.Failed got %v", obs.failed)
					}
				case "newest":
					if err != nil || a != 2 || b != 2 || obs.modes[0] != "unknown" {
						t.Fatalf("newest: err %v, header %d/%d, mode %v; want nil, 2/2, unknown", err, a, b, obs.modes)
					}
				}
			})
		}
	})
}

// TestWALPolicyBusyOnFirstSwitch: a fresh (DELETE) file whose first
// PRAGMA journal_mode=WAL answers SQLITE_BUSY twice, as concurrent first
// switches do regardless of busy_timeout (feasibility Q2). legacy and pr
// fail the connect; newest retries and ends in WAL.
func TestWALPolicyBusyOnFirstSwitch(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		for _, pol := range []string{"legacy", "pr", "newest"} {
			t.Run(pol, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "kanban.db")
				injectPragma(t, func(q string, n int) error {
					if q == "PRAGMA journal_mode=WAL" && n <= 2 {
						return mattn.Error{Code: mattn.ErrBusy, ExtendedCode: mattn.ErrNoExtended(mattn.ErrBusy)}
					}
					return nil
				})
				s := Hardened()
				s.WALPolicy = WALPolicy(pol)
				c, err := Open(context.Background(), path, Options{Driver: d, Switches: s})
				if pol == "newest" {
					if err != nil {
						t.Fatalf("newest: %v", err)
					}
					defer c.Close()
					if m, _ := c.JournalMode(context.Background()); m != "wal" {
						t.Fatalf("newest: mode %q, want wal", m)
					}
					return
				}
				if Classify(err) != ClassBusy {
					if c != nil {
						c.Close()
					}
					t.Fatalf("%s: err %v, want BUSY", pol, err)
				}
			})
		}
	})
}

// TestPragmasPerProfile: every connection carries its profile's pragmas
// (the oracle's pragma check: synchronous=2, secure_delete=1,
// cell_size_check=1 after fix 1).
func TestPragmasPerProfile(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		for _, p := range Profiles() {
			t.Run(p.Name, func(t *testing.T) {
				c := openT(t, d, filepath.Join(t.TempDir(), "kanban.db"), p.Switches, nil)
				s := p.Switches
				want := map[string]int64{
					"synchronous":        map[string]int64{"NORMAL": 1, "FULL": 2}[string(s.Synchronous)],
					"secure_delete":      b2i(s.SecureDelete),
					"cell_size_check":    b2i(s.CellSizeCheck),
					"wal_autocheckpoint": int64(s.WALAutocheckpoint),
					"busy_timeout":       s.BusyTimeout.Milliseconds(),
					"foreign_keys":       1,
				}
				if want["wal_autocheckpoint"] == 0 {
					want["wal_autocheckpoint"] = 1000
				}
				for name, w := range want {
					got, err := c.pragmaInt(context.Background(), "PRAGMA "+name)
					if err != nil || got != w {
						t.Errorf("PRAGMA %s = %d (%v), want %d", name, got, err, w)
					}
				}
			})
		}
	})
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// TestJournalModeDeleteSwitch: journal_mode=delete models a filesystem that
// refuses WAL. Under every WAL policy and on both drivers, a fresh file and
// a file found in WAL both end in rollback-journal mode: the connection
// reports delete, header bytes 18/19 are 1/1, no -wal file appears, and no
// PRAGMA journal_mode=WAL ever reaches SQLite. The control (journal_mode=wal)
// ends in WAL on a fresh file under every policy.
func TestJournalModeDeleteSwitch(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		for _, pol := range []string{"legacy", "pr", "newest"} {
			for _, start := range []string{"fresh", "wal-file"} {
				for _, env := range []string{"delete", "wal"} {
					if env == "wal" && start == "wal-file" {
						continue
					}
					t.Run(pol+"/"+start+"/"+env, func(t *testing.T) {
						ctx := context.Background()
						path := filepath.Join(t.TempDir(), "kanban.db")
						if start == "wal-file" {
							path = walFile(t, d)
						}
						log := injectPragma(t, func(string, int) error { return nil })
						obs := &recObserver{}
						c := openT(t, d, path, Hardened(), obs, "wal_policy="+pol, "journal_mode="+env)
						mustExec(t, c, "CREATE TABLE IF NOT EXISTS cl_jm(x)", "INSERT INTO cl_jm VALUES (1)")
						got, err := c.JournalMode(ctx)
						if err != nil {
							t.Fatal(err)
						}
						setRan := strings.Contains(strings.Join(*log, ";"), "journal_mode=WAL")
						_, walErr := os.Stat(path + "-wal")
						c.Close()
						a, b := headerModeBytes(t, path)
						if env == "wal" {
							if got != "wal" || obs.modes[0] != "wal" || a != 2 || b != 2 {
								t.Fatalf("control: mode %q (reported %v), header %d/%d; want wal, 2/2", got, obs.modes, a, b)
							}
							return
						}
						if got != "delete" || len(obs.modes) != 1 || obs.modes[0] != "delete" || a != 1 || b != 1 {
							t.Fatalf("mode %q (reported %v), header %d/%d; want delete, 1/1", got, obs.modes, a, b)
						}
						if setRan {
							t.Fatalf("PRAGMA journal_mode=WAL reached SQLite: %v", *log)
						}
						if walErr == nil {
							t.Fatalf("a -wal file exists in journal_mode=delete")
						}
					})
				}
			}
		}
	})
}

// TestJournalModeDeleteActivatesPageCountCheck: with journal_mode=delete
// and nothing else changed, each profile's own page-count check runs in
// rollback-journal mode: a commit that extends the file, cut by one page
// right after COMMIT, raises TORN_EXTEND under pr32857, merged33482
// (raw-read) and hardened (skip-in-wal, active because the file is not WAL);
// legacy (off) says nothing. The control: hardened in WAL (the default) with
// the same cut skips the check.
func TestJournalModeDeleteActivatesPageCountCheck(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		type cell struct {
			profile, env string
			want         bool
		}
		cells := []cell{{ProfileLegacy, "delete", false}, {ProfilePR32857, "delete", true},
			{ProfileMerged33482, "delete", true}, {ProfileHardened, "delete", true}, {ProfileHardened, "wal", false}}
		for _, cl := range cells {
			t.Run(cl.profile+"/"+cl.env, func(t *testing.T) {
				ctx := context.Background()
				path := filepath.Join(t.TempDir(), "kanban.db")
				sw, err := ProfileByName(cl.profile)
				if err != nil {
					t.Fatal(err)
				}
				obs := &recObserver{}
				c := openT(t, d, path, sw, obs, "journal_mode="+cl.env)
				mustExec(t, c, "CREATE TABLE cl_jp(v BLOB)")
				if m, _ := c.JournalMode(ctx); m != cl.env {
					t.Fatalf("journal mode %q, want %q", m, cl.env)
				}
				obs.onCommit = func(Commit) {
					st, err := os.Stat(path)
					if err != nil {
						t.Error(err)
						return
					}
					if err := os.Truncate(path, st.Size()-4096); err != nil { // path-based: no descriptor
						t.Error(err)
					}
				}
				err = c.WriteTxn(ctx, "grow", func(tx *Tx) error {
					_, err := tx.ExecContext(ctx, "INSERT INTO cl_jp VALUES (zeroblob(20000))")
					return err
				})
				if len(obs.committed) != 1 {
					t.Fatalf("Committed called %d times, want 1", len(obs.committed))
				}
				if got := Classify(err) == ClassTornExtend; got != cl.want || (!cl.want && err != nil) {
					t.Fatalf("%s/%s: err %v; want TORN_EXTEND %v", cl.profile, cl.env, err, cl.want)
				}
			})
		}
	})
}
