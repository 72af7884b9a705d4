package kanbancore

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// openNoPoll opens a file like os.OpenFile, but the returned *os.File never
// waits in Go's network poller.
//
// os.OpenFile registers every descriptor it can with epoll, and a FUSE file
// can be registered (FUSE implements poll). A read or write that then fails
// with EAGAIN — which a FUSE server (faultfs's `errno ... errno=EAGAIN`),
// NFS or any other network filesystem may return on a regular file — is
// taken by os.File for "not ready yet": the goroutine parks in the poller
// for a readiness event that never comes, and the process hangs forever.
// A descriptor opened here is blocking and handed to os.NewFile, which does
// not register blocking descriptors, so such an EAGAIN is returned to the
// caller as the error it is.
//
// Every in-process read of a board file (the header check, the guard's
// copies, the raw-read page-count check) opens through here.
func openNoPoll(path string, flag int, perm fs.FileMode) (*os.File, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, flag|unix.O_CLOEXEC, uint32(perm.Perm()))
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// rawReadError classifies an OS error of an in-process read of a board file
// (the header check's or a guard copy's read, not SQLite's): it is an I/O
// error the process surfaced (ClassIOErr, code 0), reported under op with
// the original error kept (errors.Is(err, unix.EAGAIN) and
// errors.Is(err, fs.ErrNotExist) still hold). A missing file is passed
// through unchanged: callers treat it as "nothing to read".
func rawReadError(op string, err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Class: ClassIOErr, Op: op, Err: err}
}
