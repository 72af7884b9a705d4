package kanbancore

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers "sqlite3"
	_ "modernc.org/sqlite"          // registers "sqlite"
)

// Options configure a connection to a board.
type Options struct {
	Driver   Driver   // default DriverModernc
	Switches Switches // default: the hardened profile's switches
	Observer Observer // may be nil
	Clock    Clock    // default: wall clock
	// Seed drives every random choice of the connection layer (the
	// hardened write_txn's retry jitter).
	Seed int64
	// Logf receives the warnings the original logs (WAL fallback, init
	// flock timeout). nil discards them.
	Logf func(format string, args ...any)
}

// Conn is one SQLite connection to one board file, like the original's
// sqlite3.Connection: a single database/sql connection, never a pool.
type Conn struct {
	path string
	key  string // canonical path, the key of the open-file registry
	opts Options
	db   *sql.DB
	c    *sql.Conn
	rng  *rand.Rand

	closeOnce sync.Once
	closeErr  error
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Path returns the database file's path.
func (c *Conn) Path() string { return c.path }

// Options returns the options the connection was opened with.
func (c *Conn) Options() Options { return c.opts }

// Now returns the current board time.
func (c *Conn) Now() time.Time { return c.opts.Clock.Now() }

func (c *Conn) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

// driverName maps a Driver to its database/sql name.
func driverName(d Driver) (string, error) {
	switch d {
	case DriverModernc, "":
		return "sqlite", nil
	case DriverMattn:
		return "sqlite3", nil
	}
	return "", fmt.Errorf("kanbancore: unknown driver %q (want modernc or mattn)", d)
}

// openFiles counts this process's open SQLite connections per database
// file. Any code that must read the database file's bytes (the header check,
// the integrity guard's backup) holds mu while it does, and reads in-process
// only when the count is zero: otherwise its close(2) would cancel the POSIX
// locks SQLite holds on the file (sqlite.org/howtocorrupt.html §2.2), so it
// reads through a child process instead (see readFileSafe).
var openFiles struct {
	sync.Mutex
	n map[string]int
}

// canonicalPath is the registry key: the absolute path with the directory's
// symlinks resolved.
func canonicalPath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(dir, filepath.Base(abs))
	}
	return abs
}

// openRaw opens a single-connection handle on path with no pragmas applied.
// It registers the connection in openFiles before SQLite opens the file.
func openRaw(ctx context.Context, path string, opts Options) (*Conn, error) {
	name, err := driverName(opts.Driver)
	if err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = wallClock{}
	}
	key := canonicalPath(path)
	openFiles.Lock()
	if openFiles.n == nil {
		openFiles.n = map[string]int{}
	}
	openFiles.n[key]++
	openFiles.Unlock()
	unregister := func() {
		openFiles.Lock()
		if openFiles.n[key]--; openFiles.n[key] <= 0 {
			delete(openFiles.n, key)
		}
		openFiles.Unlock()
	}
	db, err := sql.Open(name, path)
	if err != nil {
		unregister()
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	c, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		unregister()
		return nil, err
	}
	conn := &Conn{path: path, key: key, opts: opts, db: db, c: c, rng: rand.New(rand.NewSource(opts.Seed))}
	return conn, nil
}

// Close closes the connection. It is safe to call more than once.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		err := c.c.Close()
		if err2 := c.db.Close(); err == nil {
			err = err2
		}
		c.closeErr = err
		openFiles.Lock()
		if openFiles.n[c.key]--; openFiles.n[c.key] <= 0 {
			delete(openFiles.n, c.key)
		}
		openFiles.Unlock()
	})
	return c.closeErr
}

// ExecContext runs a statement in autocommit mode (or inside the current
// transaction when called from WriteTxn's callback through Tx).
func (c *Conn) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return c.c.ExecContext(ctx, q, args...)
}

// QueryContext runs a query.
func (c *Conn) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return c.c.QueryContext(ctx, q, args...)
}

// QueryRowContext runs a query expected to return at most one row.
func (c *Conn) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return c.c.QueryRowContext(ctx, q, args...)
}

// pragmaString runs a pragma (or any single-row query) and returns its first
// column as a string ("" when it returns no row).
func (c *Conn) pragmaString(ctx context.Context, q string) (string, error) {
	rows, err := c.c.QueryContext(ctx, q)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var v sql.NullString
	if rows.Next() {
		if err := rows.Scan(&v); err != nil {
			return "", err
		}
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	return v.String, rows.Close()
}

// pragmaInt is pragmaString parsed as an integer.
func (c *Conn) pragmaInt(ctx context.Context, q string) (int64, error) {
	s, err := c.pragmaString(ctx, q)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
}

// readOnly reports whether SQLite opened this connection read-only. SQLite
// does that silently when the read-write open(2) fails, e.g. with an EIO
// (feasibility Q4). modernc answers exactly (sqlite3_db_readonly); for
// mattn, which does not expose that call, the process's descriptors on the
// database file are inspected in /proc (no open or close of the file): a
// descriptor opened O_RDONLY on it means a read-only connection.
func (c *Conn) readOnly() (bool, error) {
	var ro, asked bool
	err := c.c.Raw(func(dc any) error {
		if r, ok := dc.(interface {
			IsReadOnly(string) (bool, error)
		}); ok {
			asked = true
			v, err := r.IsReadOnly("main")
			ro = v
			return err
		}
		return nil
	})
	if err != nil || asked {
		return ro, err
	}
	return hasReadOnlyFD(c.key), nil
}

// hasReadOnlyFD reports whether this process holds a descriptor on path that
// was opened read-only. Linux only; false elsewhere.
func hasReadOnlyFD(path string) bool {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return false
	}
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || target != path {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(info), "\n") {
			if f, ok := strings.CutPrefix(line, "flags:"); ok {
				flags, err := strconv.ParseUint(strings.TrimSpace(f), 8, 64)
				if err == nil && flags&uint64(os.O_RDWR|os.O_WRONLY) == 0 {
					return true
				}
			}
		}
	}
	return false
}

// Tx is the handle a WriteTxn callback uses: it runs statements on the
// connection and records what changed for the Observer.
type Tx struct {
	*Conn
	commit Commit
}

// Transition records a status change made in this transaction.
func (tx *Tx) Transition(task, from, to string) {
	tx.commit.Transitions = append(tx.commit.Transitions, Transition{task, from, to})
}

// Inserted records a row inserted in this transaction.
func (tx *Tx) Inserted(table, key string) {
	tx.commit.Inserted = append(tx.commit.Inserted, RowRef{Table: table, Key: key})
}

// InsertedFor records a child row (event, run, comment) of task inserted in
// this transaction.
func (tx *Tx) InsertedFor(table, key, task string) {
	tx.commit.Inserted = append(tx.commit.Inserted, RowRef{Table: table, Key: key, Task: task})
}

// Deleted records a row deleted in this transaction.
func (tx *Tx) Deleted(table, key string) {
	tx.commit.Deleted = append(tx.commit.Deleted, RowRef{Table: table, Key: key})
}

// execOne runs a statement meant to change exactly one row (a
// compare-and-swap in its WHERE clause) and reports whether it did.
func (tx *Tx) execOne(ctx context.Context, q string, args ...any) (bool, error) {
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Updated records a row updated in this transaction.
func (tx *Tx) Updated(table, key string) {
	tx.commit.Updated = append(tx.commit.Updated, RowRef{Table: table, Key: key})
}
