package kanbancore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// guardProbeTimeout is the integrity probe's busy timeout (the original's
// sqlite3.connect(timeout=5)). Tests shorten it.
var guardProbeTimeout = 5 * time.Second

// CorruptError is the original's KanbanDbCorruptError: the integrity guard
// found the file malformed, saved a backup and refuses to initialise a
// schema on top of it. It classifies as ClassCorrupt and matches
// ErrCorruptDB.
type CorruptError struct {
	Path   string // the database file
	Backup string // the backup copy ("" if the copy failed)
	Detail string // integrity_check's first row, or the probe's error message
	Err    error  // the probe's error, if it failed with one
}

// Error names the file, the finding and the backup.
func (e *CorruptError) Error() string {
	b := e.Backup
	if b == "" {
		b = "(backup failed)"
	}
	return fmt.Sprintf("kanban database %s is corrupt (%s); backup saved to %s; refusing to initialise it", e.Path, e.Detail, b)
}

// Unwrap returns the probe's error.
func (e *CorruptError) Unwrap() error { return e.Err }

// Is matches ErrCorruptDB.
func (e *CorruptError) Is(target error) bool { return target == ErrCorruptDB }

// guardHealthy is _guard_existing_db_is_healthy: a probe connection runs
// PRAGMA integrity_check. An OperationalError-class failure (BUSY, LOCKED,
// IOERR, …) is returned unchanged: a locked healthy database is not
// corrupt. A DatabaseError-class failure (CORRUPT, NOTADB) or a first row
// other than "ok" backs the file up and returns a *CorruptError. A missing
// or empty file passes. Note that a transient read EIO surfaces as
// SQLITE_CORRUPT (feasibility Q4), so it too is refused here; telling the
// two apart is the corrupt-board latch's job.
func guardHealthy(ctx context.Context, path string, opts Options) error {
	st, err := os.Stat(path)
	if err != nil || st.Size() == 0 {
		return nil
	}
	detail, perr, err := integrityProbe(ctx, path, opts)
	if err != nil {
		return err
	}
	if perr == nil && detail == "ok" {
		return nil
	}
	if perr != nil {
		detail = perr.Error()
	}
	backup, berr := backupCorrupt(path, opts)
	ce := &CorruptError{Path: path, Backup: backup, Detail: detail, Err: perr}
	if berr != nil {
		return errors.Join(ce, berr)
	}
	return ce
}

// integrityProbe opens a separate connection and returns integrity_check's
// first row, or perr when the probe failed with a corruption-class error,
// or err when it failed otherwise.
func integrityProbe(ctx context.Context, path string, opts Options) (detail string, perr, err error) {
	probe, err := openRaw(ctx, path, opts)
	if err != nil {
		return "", nil, err
	}
	defer probe.Close()
	if _, err := probe.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout=%d", guardProbeTimeout.Milliseconds())); err != nil {
		if isDatabaseError(err) {
			return "", err, nil
		}
		return "", nil, err
	}
	detail, err = probe.pragmaString(ctx, "PRAGMA integrity_check")
	if err != nil {
		if isDatabaseError(err) {
			return "", err, nil
		}
		return "", nil, err
	}
	return detail, nil, nil
}

// backupCorrupt copies the database file and its sidecars next to it, named
// per the GuardBackup switch, and returns the backup's path. The copies are
// made without cancelling this process's SQLite locks (copyFileSafe).
func backupCorrupt(path string, opts Options) (string, error) {
	var dst string
	var err error
	if opts.Switches.GuardBackup == GuardBackupContent {
		dst, err = backupContent(path)
	} else {
		dst, err = backupTimestamp(path, opts.Clock)
	}
	if err != nil {
		return "", err
	}
	for _, s := range []string{"-wal", "-shm", "-journal"} {
		if _, serr := os.Stat(path + s); serr != nil {
			continue
		}
		if _, serr := os.Lstat(dst + s); serr == nil {
			continue // sidecars are copied once
		}
		if cerr := copyFileSafe(path+s, dst+s); cerr != nil && !errors.Is(cerr, fs.ErrExist) {
			return dst, cerr
		}
	}
	return dst, nil
}

// backupContent names the backup <name>.corrupt.<sha256[:16]>.bak, so the
// same bytes reuse one backup (#33804).
func backupContent(path string) (string, error) {
	tmp := fmt.Sprintf("%s.corrupt.tmp-%d-%d", path, os.Getpid(), time.Now().UnixNano())
	if err := copyFileSafe(path, tmp); err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	f, err := openNoPoll(tmp, os.O_RDONLY, 0) // our own copy: a different inode, safe to open and close
	if err != nil {
		return "", rawReadError("read backup", err)
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", rawReadError("read backup", err)
	}
	dst := fmt.Sprintf("%s.corrupt.%s.bak", path, hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Lstat(dst); err == nil {
		return dst, nil
	}
	if err := os.Link(tmp, dst); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	return dst, nil
}

// backupTimestamp names the backup <name>.corrupt.<YYYYmmdd_HHMMSS>[.<n>].bak
// in board time: every refusal makes a new copy (the pre-#33804 form).
func backupTimestamp(path string, clock Clock) (string, error) {
	if clock == nil {
		clock = wallClock{}
	}
	base := fmt.Sprintf("%s.corrupt.%s", path, clock.Now().Format("20060102_150405"))
	for n := 0; ; n++ {
		dst := base + ".bak"
		if n > 0 {
			dst = fmt.Sprintf("%s.%d.bak", base, n)
		}
		err := copyFileSafe(path, dst)
		if err == nil {
			return dst, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
}
