package kanbancore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

// Child roles: a short-lived reader (open, count, close) and writer (open,
// insert one value, close), the lock_cancellation_experiment's B and C.
func init() {
	reexec.Register("kanbancore-test-peek", func(args []string) int { return childRun(args, "SELECT count(*) FROM cl_lc") })
	reexec.Register("kanbancore-test-put", func(args []string) int {
		return childRun(args[:2], "INSERT INTO cl_lc VALUES ("+args[2]+")")
	})
	reexec.Register("kanbancore-test-exclusive", childExclusive)
}

func childRun(args []string, q string) int {
	ctx := context.Background()
	c, err := openRaw(ctx, args[1], Options{Driver: Driver(args[0])})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "PRAGMA busy_timeout=5000"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := c.ExecContext(ctx, q); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// childExclusive tries BEGIN EXCLUSIVE with busy_timeout=0 and writes a
// row: exit 0 when it got in, 3 on SQLITE_BUSY.
func childExclusive(args []string) int {
	ctx := context.Background()
	c, err := openRaw(ctx, args[1], Options{Driver: Driver(args[0])})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	for _, q := range []string{"PRAGMA busy_timeout=0", "BEGIN EXCLUSIVE", "INSERT INTO cl_lc VALUES (99)", "COMMIT"} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			if Classify(err) == ClassBusy {
				return 3
			}
			fmt.Fprintln(os.Stderr, q, err)
			return 1
		}
	}
	return 0
}

func runChild(t *testing.T, role string, args ...string) {
	t.Helper()
	cmd, err := reexec.Command(role, args)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child %s %v: %v\n%s", role, args, err, out)
	}
}

func inode(path string) (uint64, bool) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	return st.Sys().(*syscall.Stat_t).Ino, true
}

// deletedWALFDs counts this process's descriptors on a deleted -wal file.
func deletedWALFDs(dbPath string) int {
	ents, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, e := range ents {
		l, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && l == dbPath+"-wal (deleted)" {
			n++
		}
	}
	return n
}

// heldLocks counts the POSIX locks process pid holds on path's inode, from
// /proc/locks.
func heldLocks(t *testing.T, pid int, path string) int {
	t.Helper()
	ino, ok := inode(path)
	if !ok {
		t.Fatalf("stat %s", path)
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Skipf("no /proc/locks: %v", err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[1] == "POSIX" && f[4] == strconv.Itoa(pid) && strings.HasSuffix(f[5], ":"+strconv.FormatUint(ino, 10)) {
			n++
		}
	}
	return n
}

// pythonOldSQLite returns a python3 whose sqlite3 module is older than
// 3.51.0, the release that added unixIsSharingShmNode (the last closer no
// longer unlinks the -wal/-shm while another process still holds the -shm
// dead-man-switch lock). The lock_cancellation_experiment was measured with
// such a SQLite (3.40.1).
func pythonOldSQLite(t *testing.T) string {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: cannot run an older-SQLite peer")
	}
	out, err := exec.Command(py, "-c", "import sqlite3; print(sqlite3.sqlite_version)").Output()
	if err != nil {
		t.Skipf("python3 has no sqlite3 module: %v", err)
	}
	v := strings.TrimSpace(string(out))
	var p [3]int
	for i, f := range strings.SplitN(v, ".", 3) {
		p[i], _ = strconv.Atoi(f)
	}
	if p[0] > 3 || (p[0] == 3 && p[1] >= 51) {
		t.Skipf("python3's SQLite %s already has unixIsSharingShmNode", v)
	}
	return py
}

// TestRawReadPageCountCheckCancelsLocksWAL ports lock_cancellation_experiment
// to kanbancore. Process A (this test) holds a WAL connection whose commits
// run the page-count check. With raw-read the check's close(2) drops A's
// SHARED lock on the database file (observed in /proc/locks); with
// pragma-stat, skip-in-wal and off the lock stays. The consequence depends
// on the peer's SQLite: a peer built with SQLite >= 3.51 (both Go drivers
// embed 3.54.1) refuses to act as the last connection while A still holds
// the -shm dead-man-switch, so the -wal survives; a peer with an older
// SQLite (python3's, when installed) checkpoints and unlinks the -wal under
// A, A keeps writing into the "(deleted)" inode, and a third process's
// acknowledged commit is silently lost (final rows 1,2,4).
func TestRawReadPageCountCheckCancelsLocksWAL(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		for _, check := range []string{"raw-read", "pragma-stat", "skip-in-wal", "off"} {
			for _, peer := range []string{"go", "python-old-sqlite"} {
				if peer != "go" && check != "raw-read" && check != "skip-in-wal" {
					continue
				}
				t.Run(check+"/"+peer, func(t *testing.T) {
					var py string
					if peer != "go" {
						py = pythonOldSQLite(t)
					}
					lockCancellationRun(t, d, check, py)
				})
			}
		}
	})
}

func lockCancellationRun(t *testing.T, d Driver, check, py string) {
	ctx := context.Background()
	path := filepath.Join(canonicalPath(t.TempDir()), "kanban.db")
	a, err := Open(ctx, path, Options{Driver: d, Switches: Hardened()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.opts.Switches.Set("page_count_check", check); err != nil {
		t.Fatal(err)
	}
	put := func(v int) {
		t.Helper()
		err := a.WriteTxn(ctx, "put", func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO cl_lc VALUES (?)", v)
			return err
		})
		// pragma-stat false-alarms in WAL mode (the main file lags
		// page_count until a checkpoint); the commit is durable.
		if err != nil && !(check == "pragma-stat" && errors.Is(err, ErrTornExtend)) {
			t.Fatalf("A put %d: %v", v, err)
		}
	}
	peer := func(role string, args ...string) {
		t.Helper()
		if py == "" {
			runChild(t, role, append([]string{string(d), path}, args...)...)
			return
		}
		q := "select count(*) from cl_lc"
		if role == "kanbancore-test-put" {
			q = "insert into cl_lc values (" + args[0] + ")"
		}
		script := fmt.Sprintf("import sqlite3,sys; c=sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5); c.execute(%q).fetchall(); c.close()", q)
		if out, err := exec.Command(py, "-c", script, path).CombinedOutput(); err != nil {
			t.Fatalf("python peer: %v\n%s", err, out)
		}
	}
	mustExec(t, a, "CREATE TABLE cl_lc(x)")
	put(1)
	locks := heldLocks(t, os.Getpid(), path)
	walIno, ok := inode(path + "-wal")
	if !ok {
		t.Fatal("no -wal after A's commit")
	}
	peer("kanbancore-test-peek")
	ino2, still := inode(path + "-wal")
	unlinked := !still || ino2 != walIno
	deleted := deletedWALFDs(path)
	put(2)
	peer("kanbancore-test-put", "3")
	put(4)
	a.Close()
	final := readAll(t, d, path)
	t.Logf("check=%s: A's db-file locks after commit: %d, -wal unlinked under A: %v, A's (deleted) -wal fds: %d, final rows: %s", check, locks, unlinked, deleted, final)
	if check == "raw-read" {
		if locks != 0 {
			t.Errorf("raw-read: A still holds %d POSIX locks on the db file after the check's close", locks)
		}
	} else if locks == 0 {
		t.Errorf("%s: A holds no POSIX lock on the db file after a commit", check)
	}
	if check == "raw-read" && py != "" {
		if !unlinked || deleted == 0 {
			t.Errorf("raw-read, old-SQLite peer: -wal not unlinked under A (unlinked=%v, deleted fds=%d)", unlinked, deleted)
		}
		if final != "1,2,4" {
			t.Errorf("raw-read, old-SQLite peer: final rows %s, want 1,2,4 (the acknowledged 3 lost)", final)
		}
		return
	}
	if unlinked || deleted != 0 {
		t.Errorf("-wal unlinked under A (unlinked=%v, deleted fds=%d)", unlinked, deleted)
	}
	if final != "1,2,3,4" {
		t.Errorf("final rows %s, want 1,2,3,4", final)
	}
}

func readAll(t *testing.T, d Driver, path string) string {
	t.Helper()
	ctx := context.Background()
	f, err := openRaw(ctx, path, Options{Driver: d})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.QueryContext(ctx, "SELECT x FROM cl_lc ORDER BY x")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var x int
		rows.Scan(&x)
		got = append(got, strconv.Itoa(x))
	}
	return strings.Join(got, ",")
}

// TestRawReadPageCountCheckLetsContenderInDELETE: DELETE mode, two
// connections in process A. Right after A's commit (from Observer.Committed,
// i.e. before the check runs) connection X opens a read transaction and
// holds SHARED. With raw-read the check's close(2) cancels that lock and a
// writer process W gets BEGIN EXCLUSIVE with busy_timeout=0 while X's read
// transaction is still open (#53819's "contender gets in"); with the other
// forms W gets SQLITE_BUSY.
func TestRawReadPageCountCheckLetsContenderInDELETE(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		for _, check := range []string{"raw-read", "pragma-stat", "skip-in-wal", "off"} {
			t.Run(check, func(t *testing.T) {
				ctx := context.Background()
				path := filepath.Join(t.TempDir(), "kanban.db")
				obs := &recObserver{}
				a := openT(t, d, path, Hardened(), obs, "page_count_check="+check)
				mustExec(t, a, "PRAGMA journal_mode=DELETE", "CREATE TABLE cl_lc(x)")
				x, err := openRaw(ctx, path, Options{Driver: d}) // Open would switch the file back to WAL
				if err != nil {
					t.Fatal(err)
				}
				defer x.Close()
				obs.onCommit = func(Commit) {
					if _, err := x.ExecContext(ctx, "BEGIN"); err != nil {
						t.Error(err)
					}
					var n int
					if err := x.QueryRowContext(ctx, "SELECT count(*) FROM cl_lc").Scan(&n); err != nil {
						t.Error(err)
					}
				}
				if err := a.WriteTxn(ctx, "put", func(tx *Tx) error {
					_, err := tx.ExecContext(ctx, "INSERT INTO cl_lc VALUES (1)")
					return err
				}); err != nil {
					t.Fatal(err)
				}
				cmd, err := reexec.Command("kanbancore-test-exclusive", []string{string(d), path})
				if err != nil {
					t.Fatal(err)
				}
				out, err := cmd.CombinedOutput()
				got := "in"
				if err != nil {
					got = "busy"
					if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
						t.Fatalf("contender: %v\n%s", err, out)
					}
				}
				var n int
				x.QueryRowContext(ctx, "SELECT count(*) FROM cl_lc").Scan(&n)
				x.ExecContext(ctx, "COMMIT")
				t.Logf("check=%s: contender %s while X held a read txn; X then counted %d rows", check, got, n)
				want := "busy"
				if check == "raw-read" {
					want = "in"
				}
				if got != want {
					t.Fatalf("%s: contender %s, want %s", check, got, want)
				}
			})
		}
	})
}

// TestPageCountCheckDetectsTornExtend: in DELETE mode a commit extends the
// file and the extension is lost (the file is cut by one page right after
// COMMIT, before the check). raw-read, pragma-stat and skip-in-wal raise a
// *TornExtendError after Observer.Committed; off says nothing.
func TestPageCountCheckDetectsTornExtend(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		for _, check := range []string{"raw-read", "pragma-stat", "skip-in-wal", "off"} {
			t.Run(check, func(t *testing.T) {
				ctx := context.Background()
				path := filepath.Join(t.TempDir(), "kanban.db")
				obs := &recObserver{}
				c := openT(t, d, path, Hardened(), obs, "page_count_check="+check)
				mustExec(t, c, "PRAGMA journal_mode=DELETE", "CREATE TABLE cl_pc(v BLOB)")
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
				err := c.WriteTxn(ctx, "grow", func(tx *Tx) error {
					_, err := tx.ExecContext(ctx, "INSERT INTO cl_pc VALUES (zeroblob(20000))")
					return err
				})
				if len(obs.committed) != 1 {
					t.Fatalf("Committed called %d times, want 1", len(obs.committed))
				}
				if check == "off" {
					if err != nil {
						t.Fatalf("off: %v", err)
					}
					return
				}
				var te *TornExtendError
				if !errors.As(err, &te) || !errors.Is(err, ErrTornExtend) || Classify(err) != ClassTornExtend {
					t.Fatalf("%s: got %v, want a TORN_EXTEND error", check, err)
				}
				want := fmt.Sprintf("torn-extend detected: page count mismatch on %s: header claims %d pages, file has %d pages", te.Path, te.HeaderPages, te.HeaderPages-1)
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("message %q, want it to contain %q", err, want)
				}
				if len(obs.failed) != 1 {
					t.Fatalf("Failed reported %d errors, want 1", len(obs.failed))
				}
			})
		}
	})
}
