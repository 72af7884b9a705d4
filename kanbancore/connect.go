package kanbancore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// migrateHook creates or migrates the schema on the first connect to a file
// in this process. schema.go sets it (to migrate) in an init function; the
// connection layer only calls it, so it never depends on the board's code.
var migrateHook func(ctx context.Context, c *Conn) error

// initialized is the original's _INITIALIZED_PATHS: the files this process
// has already initialised (schema + migration), by canonical path.
var initialized sync.Map

// initMu is the original's in-process _INIT_LOCK around the pragma set.
var initMu sync.Mutex

// forgetInitialized makes this process behave as if it had never connected
// to path (the next Open takes the slow path again). For tests.
func forgetInitialized(path string) { initialized.Delete(canonicalPath(path)) }

// Open is the original's connect(): it opens one SQLite connection to the
// board file at path and prepares it as the Switches say.
//
// The slow path (every connect, or only the first one in this process when
// FastPath is set) runs, in order and under the init flock (InitFlock):
// mkdir -p of the parent, the header magic check (HeaderCheck), the
// integrity guard (IntegrityGuard), the open, the pragma set, and on the
// first connect in this process the schema migration. The fast path opens
// and sets the pragmas only. The pragma set, under an in-process mutex, is:
// busy_timeout (right after the open), apply_wal_with_fallback (WALPolicy),
// synchronous, wal_autocheckpoint (when non-zero), foreign_keys=ON,
// secure_delete=ON and cell_size_check=ON (when switched on) — the legacy
// switches reduce it to the legacy order WAL, synchronous, foreign_keys.
// The resulting journal mode is reported to Observer.JournalMode.
//
// A connection SQLite silently opened read-only (an EIO on the read-write
// open(2) makes it fall back) is closed and opened once more; if it is still
// read-only, Open fails with a ClassReadOnly *Error rather than keep it.
//
// Errors come back as *Error with Op "connect" (or the typed *HeaderError /
// *CorruptError inside one) and are reported to Observer.Failed.
func Open(ctx context.Context, path string, opts Options) (*Conn, error) {
	if opts.Switches == (Switches{}) {
		opts.Switches = Hardened()
	}
	if opts.Clock == nil {
		opts.Clock = wallClock{}
	}
	c, err := open(ctx, path, opts)
	if err != nil {
		err = wrapErr("connect", err)
		if opts.Observer != nil {
			opts.Observer.Failed("connect", err)
		}
		return nil, err
	}
	return c, nil
}

func open(ctx context.Context, path string, opts Options) (*Conn, error) {
	s := opts.Switches
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if _, err := driverName(opts.Driver); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	key := canonicalPath(path)
	_, done := initialized.Load(key)
	if !s.FastPath || !done {
		lock, err := acquireInitLock(ctx, path, s.InitFlock, s.InitFlockTimeout, opts.Clock, opts.Logf)
		if err != nil {
			return nil, err
		}
		defer lock.release()
		if s.HeaderCheck {
			if err := ValidateHeader(path); err != nil {
				return nil, err
			}
		}
		if s.IntegrityGuard {
			if err := guardHealthy(ctx, path, opts); err != nil {
				return nil, err
			}
		}
	}
	c, err := openWritable(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	initMu.Lock()
	mode, err := c.configure(ctx)
	initMu.Unlock()
	if err != nil {
		c.Close()
		return nil, err
	}
	if o := opts.Observer; o != nil {
		o.JournalMode(mode)
	}
	if _, done := initialized.Load(key); !done {
		if migrateHook != nil {
			if err := migrateHook(ctx, c); err != nil {
				c.Close()
				return nil, err
			}
		}
		initialized.Store(key, true)
	}
	return c, nil
}

// openWritable opens the connection, sets busy_timeout, and refuses a
// connection SQLite opened read-only (after one retry).
func openWritable(ctx context.Context, path string, opts Options) (*Conn, error) {
	for attempt := 0; ; attempt++ {
		c, err := openRaw(ctx, path, opts)
		if err != nil {
			return nil, err
		}
		if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout=%d", opts.Switches.BusyTimeout.Milliseconds())); err != nil {
			c.Close()
			return nil, err
		}
		ro, err := c.readOnly()
		if err != nil {
			c.Close()
			return nil, err
		}
		if !ro {
			return c, nil
		}
		c.Close()
		if attempt >= 1 {
			return nil, &Error{Class: ClassReadOnly, Code: codeReadOnly, Op: "connect",
				Err: fmt.Errorf("%w: SQLite opened %s read-only (twice); refusing to keep the connection", ErrReadOnly, path)}
		}
		c.logf("kanbancore: %s opened read-only; reopening", path)
	}
}

// configure applies the pragma set and returns the journal mode.
func (c *Conn) configure(ctx context.Context) (string, error) {
	s := c.opts.Switches
	mode, err := c.applyWAL(ctx)
	if err != nil {
		return "", err
	}
	stmts := []string{"PRAGMA synchronous=" + string(s.Synchronous)}
	if s.WALAutocheckpoint > 0 {
		stmts = append(stmts, fmt.Sprintf("PRAGMA wal_autocheckpoint=%d", s.WALAutocheckpoint))
	}
	stmts = append(stmts, "PRAGMA foreign_keys=ON")
	if s.SecureDelete {
		stmts = append(stmts, "PRAGMA secure_delete=ON")
	}
	if s.CellSizeCheck {
		stmts = append(stmts, "PRAGMA cell_size_check=ON")
	}
	for _, q := range stmts {
		if _, err := c.ExecContext(ctx, q); err != nil {
			return "", fmt.Errorf("%s: %w", q, err)
		}
	}
	return mode, nil
}
