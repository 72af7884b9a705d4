package kanbancore

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// dispatchLock is a held <db>.dispatch.lock.
type dispatchLock struct{ f *os.File }

func (l dispatchLock) release() {
	if l.f != nil {
		unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
		l.f.Close()
	}
}

// tryDispatchLock takes a non-blocking exclusive flock on
// <db>.dispatch.lock (#50331). held is false when another open file
// description — another dispatcher process, or another Conn in this one —
// holds it. The lock is a flock(2) on a separate file, so opening and
// closing it never touches SQLite's POSIX locks on the database file.
func tryDispatchLock(dbPath string) (lk dispatchLock, held bool, err error) {
	name := dbPath + ".dispatch.lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return dispatchLock{}, false, fmt.Errorf("kanbancore: dispatch lock %s: %w", name, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	switch {
	case err == nil:
		return dispatchLock{f}, true, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		f.Close()
		return dispatchLock{}, false, nil
	}
	f.Close()
	return dispatchLock{}, false, fmt.Errorf("kanbancore: dispatch lock %s: %w", name, err)
}
