package kanbancore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// initLockPoll is how often a contended init flock is retried (the
// original polls every 50 ms).
const initLockPoll = 50 * time.Millisecond

// initLock is a held <db>.init.lock; release is a no-op when the lock was
// not taken.
type initLock struct{ f *os.File }

func (l initLock) release() {
	if l.f != nil {
		unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
		l.f.Close()
	}
}

// acquireInitLock takes the cross-process first-connect lock on
// <db>.init.lock according to mode: "none" takes nothing; "unbounded" waits
// until it gets the lock or ctx ends (#32759's original blocking flock);
// "bounded" polls for up to timeout of board time and then proceeds
// without the lock, logging a warning (#36644).
//
// The lock is a flock(2) on a separate file, so opening and closing it never
// touches SQLite's POSIX locks on the database file.
func acquireInitLock(ctx context.Context, dbPath string, mode InitFlock, timeout time.Duration, clock Clock, logf func(string, ...any)) (initLock, error) {
	if mode == InitFlockNone || mode == "" {
		return initLock{}, nil
	}
	name := dbPath + ".init.lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return initLock{}, fmt.Errorf("kanbancore: init lock %s: %w", name, err)
	}
	start := clock.Now()
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return initLock{f}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return initLock{}, fmt.Errorf("kanbancore: init lock %s: %w", name, err)
		}
		if mode == InitFlockBounded && clock.Now().Sub(start) >= timeout {
			f.Close()
			if logf != nil {
				logf("kanbancore: init lock %s not acquired within %s; proceeding without it", name, timeout)
			}
			return initLock{}, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return initLock{}, ctx.Err()
		case <-time.After(initLockPoll):
		}
	}
}
