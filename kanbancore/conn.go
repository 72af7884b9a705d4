package kanbancore

import (
	"context"
	"database/sql"
	"fmt"
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
}

// Conn is one SQLite connection to one board file, like the original's
// sqlite3.Connection: a single database/sql connection, never a pool.
type Conn struct {
	path string
	opts Options
	db   *sql.DB
	c    *sql.Conn
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Path returns the database file's path.
func (c *Conn) Path() string { return c.path }

// Options returns the options the connection was opened with.
func (c *Conn) Options() Options { return c.opts }

// Now returns the current board time.
func (c *Conn) Now() time.Time { return c.opts.Clock.Now() }

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

// openRaw opens a single-connection handle on path with no pragmas applied.
func openRaw(ctx context.Context, path string, opts Options) (*Conn, error) {
	name, err := driverName(opts.Driver)
	if err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = wallClock{}
	}
	db, err := sql.Open(name, path)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	c, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Conn{path: path, opts: opts, db: db, c: c}, nil
}

// Close closes the connection.
func (c *Conn) Close() error {
	err := c.c.Close()
	if err2 := c.db.Close(); err == nil {
		err = err2
	}
	return err
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
	tx.commit.Inserted = append(tx.commit.Inserted, RowRef{table, key})
}

// Deleted records a row deleted in this transaction.
func (tx *Tx) Deleted(table, key string) {
	tx.commit.Deleted = append(tx.commit.Deleted, RowRef{table, key})
}

// Updated records a row updated in this transaction.
func (tx *Tx) Updated(table, key string) {
	tx.commit.Updated = append(tx.commit.Updated, RowRef{table, key})
}
