package kanbancore

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
)

// TornExtendError is the post-commit page-count check's finding: the header
// claims more pages than the file holds. The transaction it follows is
// committed and durable. It classifies as ClassTornExtend and matches
// ErrTornExtend.
type TornExtendError struct {
	Path        string
	HeaderPages int64
	FilePages   int64
}

// Error returns the original's message.
func (e *TornExtendError) Error() string {
	return fmt.Sprintf("torn-extend detected: page count mismatch on %s: header claims %d pages, file has %d pages", e.Path, e.HeaderPages, e.FilePages)
}

// Is matches ErrTornExtend.
func (e *TornExtendError) Is(target error) bool { return target == ErrTornExtend }

// preCommitPageCount returns the page count the pending commit will write
// into the header, for the pragma-stat and skip-in-wal checks (0 = skip).
// It runs inside the write transaction, just before COMMIT: a PRAGMA
// page_count after the COMMIT would open a new read transaction, and SQLite
// itself rejects a header count above the file's page count as
// SQLITE_CORRUPT at that point, which would mask the torn extend as generic
// corruption.
func (c *Conn) preCommitPageCount(ctx context.Context) int64 {
	switch c.opts.Switches.PageCountCheck {
	case PageCountPragmaStat:
	case PageCountSkipInWAL:
		if m, err := c.JournalMode(ctx); err != nil || m == "wal" {
			return 0
		}
	default:
		return 0
	}
	n, err := c.pragmaInt(ctx, "PRAGMA page_count")
	if err != nil {
		return 0
	}
	return n
}

// checkPageCount runs the post-commit page-count invariant (fix 6) in the
// form the PageCountCheck switch names. headerPages is preCommitPageCount's
// result. Errors other than a mismatch are swallowed, as in the original.
func (c *Conn) checkPageCount(ctx context.Context, headerPages int64) error {
	switch c.opts.Switches.PageCountCheck {
	case PageCountRawRead:
		return c.checkPageCountRawRead(ctx)
	case PageCountPragmaStat, PageCountSkipInWAL:
		if headerPages <= 0 {
			return nil
		}
		path, filePages, ok := c.mainFile(ctx)
		if !ok {
			return nil
		}
		if filePages < headerPages {
			return &TornExtendError{Path: path, HeaderPages: headerPages, FilePages: filePages}
		}
	}
	return nil
}

// mainFile returns the main database's path (PRAGMA database_list) and
// its size in whole pages (stat's size over PRAGMA page_size); ok is false
// for in-memory or temporary databases, or when the file cannot be
// stat'ed.
func (c *Conn) mainFile(ctx context.Context) (path string, filePages int64, ok bool) {
	rows, err := c.QueryContext(ctx, "PRAGMA database_list")
	if err != nil {
		return "", 0, false
	}
	for rows.Next() {
		var seq int
		var name, file string
		if rows.Scan(&seq, &name, &file) == nil && name == "main" {
			path = file
		}
	}
	rows.Close()
	if strings.TrimSpace(path) == "" {
		return "", 0, false
	}
	pageSize, err := c.pragmaInt(ctx, "PRAGMA page_size")
	if err != nil || pageSize <= 0 {
		return "", 0, false
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", 0, false
	}
	return path, st.Size() / pageSize, true
}

// checkPageCountRawRead is the PR-era _check_file_length_invariant, kept
// faithful on purpose: it opens the database file, reads header bytes
// 28–31 and closes it. That close(2) cancels every POSIX lock this process
// holds on the file, SQLite's included (#71724) — this is the one place in
// kanbancore that opens and closes the database file while a connection is
// open, and it exists to reproduce that defect.
func (c *Conn) checkPageCountRawRead(ctx context.Context) error {
	path, filePages, ok := c.mainFile(ctx)
	if !ok {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	var b [4]byte
	n, _ := f.ReadAt(b[:], 28)
	f.Close() // cancels this process's POSIX locks on the file
	if n < 4 {
		return nil
	}
	header := int64(binary.BigEndian.Uint32(b[:]))
	if header == 0 {
		return nil
	}
	if filePages < header {
		return &TornExtendError{Path: path, HeaderPages: header, FilePages: filePages}
	}
	return nil
}
