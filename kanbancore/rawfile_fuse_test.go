package kanbancore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
)

// A FUSE server (or NFS) may fail a read of a regular file with EAGAIN.
// os.File takes that for "not ready" and parks the goroutine in the network
// poller for ever (issue 8: `chaosrun kanban --board MNT list` never
// returned under `errno op=read path=*.db errno=EAGAIN count=3`). These
// tests inject EAGAIN on every read of the database file through faultfs
// and require each in-process raw read of kanbancore to return an I/O error
// within a deadline instead.

// eagainMount mounts faultfs over a backing directory holding a fresh
// board (made fault-free before the mount) and loads plan.
func eagainMount(t *testing.T, d Driver, plan string) (db string, m *faultfs.Mount) {
	t.Helper()
	fusetest.Require(t)
	backing := t.TempDir()
	c, err := Open(context.Background(), filepath.Join(backing, "kanban.db"), Options{Driver: d, Switches: Hardened()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateTask(context.Background(), c, CreateOptions{Title: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	m = fusetest.Mount(t, faultfs.Config{Backing: backing, Plan: plan})
	return filepath.Join(m.Dir(), "kanban.db"), m
}

// within runs f and fails the test if it has not returned after d: the
// regression this guards against is a hang, and a hang must fail the test,
// not the suite (the stuck goroutine is abandoned).
func within(t *testing.T, d time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s did not return within %v under an EAGAIN read fault (waiting in the poller?)", what, d)
		return nil
	}
}

// wantEAGAIN checks that err is the injected EAGAIN, classified as an I/O
// error kanbancore surfaced.
func wantEAGAIN(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error under an EAGAIN on every read", what)
	}
	if !errors.Is(err, unix.EAGAIN) {
		t.Errorf("%s: %v, want the injected EAGAIN in the chain", what, err)
	}
	if c := Classify(err); c != ClassIOErr {
		t.Errorf("%s: class %v, want IOERR (%v)", what, c, err)
	}
}

func TestRawReadsSurfaceEAGAIN(t *testing.T) {
	db, m := eagainMount(t, DriverModernc, "errno op=read path=*.db errno=EAGAIN\n")

	t.Run("ReadFilePrefix", func(t *testing.T) {
		err := within(t, 10*time.Second, "ReadFilePrefix", func() error { _, err := ReadFilePrefix(db, 64); return err })
		wantEAGAIN(t, "ReadFilePrefix", err)
	})
	t.Run("ValidateHeader", func(t *testing.T) {
		err := within(t, 10*time.Second, "ValidateHeader", func() error { return ValidateHeader(db) })
		wantEAGAIN(t, "ValidateHeader", err)
	})
	t.Run("copyFileSafe", func(t *testing.T) {
		dst := filepath.Join(m.Dir(), "copy.bak")
		err := within(t, 10*time.Second, "copyFileSafe", func() error { return copyFileSafe(db, dst) })
		wantEAGAIN(t, "copyFileSafe", err)
		os.Remove(dst)
	})
	fired := uint64(0)
	cs, err := m.Client().Counters()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		fired += c.Fired
	}
	if fired < 3 {
		t.Errorf("the EAGAIN rule fired %d times, want at least 3 (one per raw read)", fired)
	}
}

// TestOpenSurfacesEAGAIN: a first connect under EAGAIN on every read of the
// database file returns an error on both drivers, from the header check or
// from SQLite, and never hangs.
func TestOpenSurfacesEAGAIN(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		for _, prof := range []string{ProfileLegacy, ProfileHardened} {
			t.Run(prof, func(t *testing.T) {
				db, _ := eagainMount(t, d, "errno op=read path=*.db errno=EAGAIN\n")
				sw, err := ProfileByName(prof)
				if err != nil {
					t.Fatal(err)
				}
				err = within(t, 20*time.Second, "Open", func() error {
					c, err := Open(context.Background(), db, Options{Driver: d, Switches: sw})
					if err == nil {
						_, err = ListTasks(context.Background(), c, ListOptions{})
						c.Close()
					}
					return err
				})
				if err == nil {
					t.Fatal("connect and list succeeded under an EAGAIN on every read of the database")
				}
				if c := Classify(err); c != ClassIOErr && c != ClassCorrupt && c != ClassNotADB {
					t.Errorf("class %v, want an I/O class: %v", c, err)
				}
				t.Logf("%s/%s: %v", d, prof, err)
			})
		}
	})
}
