package kanbancore

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
)

// sqliteMagic is the first 16 bytes of every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// HeaderError is the header magic check's refusal, the original's
// sqlite3.DatabaseError("file is not a database: invalid SQLite header for
// <path>[ (TLS record header detected at byte offset N)]; first_32=<hex>").
// It classifies as ClassNotADB and matches ErrNotADB.
type HeaderError struct {
	Path      string
	First32   []byte
	TLSOffset int // byte offset of a TLS record header, -1 if none
}

// Error returns the original's message.
func (e *HeaderError) Error() string {
	tls := ""
	if e.TLSOffset >= 0 {
		tls = fmt.Sprintf(" (TLS record header detected at byte offset %d)", e.TLSOffset)
	}
	return fmt.Sprintf("file is not a database: invalid SQLite header for %s%s; first_32=%s", e.Path, tls, hex.EncodeToString(e.First32))
}

// Is matches ErrNotADB.
func (e *HeaderError) Is(target error) bool { return target == ErrNotADB }

// isTLSRecord reports whether b starts with a TLS record header: content
// type 0x14..0x17, major version 3, minor 0..4, length 1..18432 (#29507: a
// proxy once wrote TLS bytes into the board file).
func isTLSRecord(b []byte) bool {
	if len(b) < 5 {
		return false
	}
	n := int(b[3])<<8 | int(b[4])
	return b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 0x03 && b[2] <= 0x04 && n >= 1 && n <= 18432
}

// checkHeaderBytes validates the first bytes of a database file (what
// ValidateHeader reads). An empty prefix passes.
func checkHeaderBytes(path string, b []byte) error {
	if len(b) == 0 || bytes.HasPrefix(b, []byte(sqliteMagic)) {
		return nil
	}
	e := &HeaderError{Path: path, TLSOffset: -1}
	e.First32 = append([]byte(nil), b[:min(32, len(b))]...)
	switch {
	case isTLSRecord(b):
		e.TLSOffset = 0
	case len(b) > 5 && isTLSRecord(b[5:]):
		e.TLSOffset = 5
	}
	return e
}

// ValidateHeader is the original's _validate_sqlite_header: a missing,
// empty or unstat-able file passes; otherwise its first 64 bytes must start
// with "SQLite format 3\x00", or a *HeaderError is returned. It reads the
// file without cancelling this process's SQLite locks (see ReadFilePrefix),
// so the gateway's header recheck may call it at any time.
func ValidateHeader(path string) error {
	st, err := os.Stat(path)
	if err != nil || st.Size() == 0 || !st.Mode().IsRegular() {
		return nil
	}
	b, err := ReadFilePrefix(path, 64)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return checkHeaderBytes(path, b)
}

// ReadFilePrefix returns up to n bytes from the start of a database file
// without ever cancelling this process's POSIX locks on it: when this
// process has no SQLite connection open on path it reads in-process (holding
// the open-file registry's lock, so no connection opens meanwhile);
// otherwise the read runs in a child process (head -c), whose open and close
// cannot touch our locks. n < 0 reads the whole file. The in-process read
// never waits in Go's poller (openNoPoll): an EAGAIN from the filesystem is
// an error, not a hang. A read error is a *Error of ClassIOErr (op "read
// header"); a missing file stays fs.ErrNotExist.
func ReadFilePrefix(path string, n int64) ([]byte, error) {
	var out []byte
	err := withFileSafely(path, func() error {
		f, err := openNoPoll(path, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		var r io.Reader = f
		if n >= 0 {
			r = io.LimitReader(f, n)
		}
		out, err = io.ReadAll(r)
		return err
	}, func() error {
		cmd := exec.Command("cat", "--", path)
		if n >= 0 {
			cmd = exec.Command("head", "-c", fmt.Sprint(n), "--", path)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			if _, serr := os.Stat(path); errors.Is(serr, fs.ErrNotExist) {
				return serr
			}
			return fmt.Errorf("kanbancore: reading %s in a child process: %v: %s", path, err, bytes.TrimSpace(stderr.Bytes()))
		}
		out = b
		return nil
	})
	return out, rawReadError("read header", err)
}

// copyFileSafe copies src to dst (created, 0644) with the same rule as
// ReadFilePrefix: in-process only when no connection of this process has
// src open, otherwise with cp in a child process.
func copyFileSafe(src, dst string) error {
	err := withFileSafely(src, func() error {
		in, err := openNoPoll(src, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := openNoPoll(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Sync(); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	}, func() error {
		if _, err := os.Stat(src); err != nil {
			return err
		}
		if _, err := os.Lstat(dst); err == nil {
			return &fs.PathError{Op: "copy", Path: dst, Err: fs.ErrExist}
		}
		outb, err := exec.Command("cp", "--", src, dst).CombinedOutput()
		if err != nil {
			return fmt.Errorf("kanbancore: cp %s %s: %v: %s", src, dst, err, bytes.TrimSpace(outb))
		}
		return nil
	})
	if errors.Is(err, fs.ErrExist) {
		return err
	}
	return rawReadError("copy "+src, err)
}

// withFileSafely runs inProc while holding the open-file registry's lock if
// this process has no connection open on the database file that path
// belongs to (path itself, or its -wal/-shm/-journal sidecar); otherwise it
// runs viaChild.
func withFileSafely(path string, inProc, viaChild func() error) error {
	key := canonicalPath(sidecarBase(path))
	openFiles.Lock()
	if openFiles.n[key] == 0 {
		defer openFiles.Unlock()
		return inProc()
	}
	openFiles.Unlock()
	return viaChild()
}

// sidecarBase maps a sidecar path to its database file's path.
func sidecarBase(path string) string {
	for _, s := range []string{"-wal", "-shm", "-journal"} {
		if len(path) > len(s) && path[len(path)-len(s):] == s {
			return path[:len(path)-len(s)]
		}
	}
	return path
}
