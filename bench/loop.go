// Package bench measures what faultfs costs SQLite: commits per second of a
// one-row INSERT loop in one process, in WAL and DELETE journal modes, at
// synchronous FULL and NORMAL, on both drivers, on the bare backing
// directory and through faultfs mounts (no rules, 20 rules that never fire,
// trace on). The SQLite workload always runs in the calling process; every
// mount is served by a separate faultfs process (faultfs.Start).
//
// `chaosrun bench` prints Run's report as a table with ratios; the Go
// benchmarks (BenchmarkInsert/{bare,fuse,fuse20}/{driver}/{mode}/{sync}) give
// the same loop to `go test -bench` and benchstat.
package bench

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/sqlchaos/sqlchaos/internal/sqlitex"
)

// Journal modes and synchronous levels the benchmark knows.
var (
	Modes = []string{"wal", "delete"}
	Syncs = []string{"full", "normal"}
)

// payload is the row every INSERT writes: small, so that a commit costs
// about one page write plus the journal or WAL traffic around it.
const payload = "sqlchaos bench row: 0123456789abcdef0123456789abcdef"

// warmup inserts run before timing starts: they create the journal or WAL
// and settle the page cache so the first timed commit is not special.
const warmup = 20

// Loop is an open database ready for a one-row INSERT loop.
type Loop struct {
	db   *sql.DB
	stmt *sql.Stmt
	rows int
}

// OpenLoop creates (or reopens) the database at path on driver with the
// given journal mode ("wal" or "delete") and synchronous level ("full" or
// "normal"), creates the table and runs the warm-up inserts.
func OpenLoop(ctx context.Context, driver, path, mode, sync string) (*Loop, error) {
	mode, sync = strings.ToLower(mode), strings.ToLower(sync)
	if !slices.Contains(Modes, mode) {
		return nil, fmt.Errorf("bench: unknown journal mode %q (want wal or delete)", mode)
	}
	if !slices.Contains(Syncs, sync) {
		return nil, fmt.Errorf("bench: unknown synchronous level %q (want full or normal)", sync)
	}
	db, err := sqlitex.Open(driver, path, "busy_timeout=5000", "journal_mode="+mode, "synchronous="+sync)
	if err != nil {
		return nil, err
	}
	var got string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&got); err != nil || got != mode {
		db.Close()
		return nil, fmt.Errorf("bench: journal_mode is %q, want %q (err %v)", got, mode, err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		db.Close()
		return nil, fmt.Errorf("bench: create table: %w", err)
	}
	stmt, err := db.PrepareContext(ctx, "INSERT INTO t(v) VALUES (?)")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bench: prepare: %w", err)
	}
	l := &Loop{db: db, stmt: stmt}
	if err := l.Insert(ctx, warmup); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Insert runs n autocommit one-row INSERTs: n commits.
func (l *Loop) Insert(ctx context.Context, n int) error {
	for i := 0; i < n; i++ {
		if _, err := l.stmt.ExecContext(ctx, payload); err != nil {
			return fmt.Errorf("bench: insert %d: %w", l.rows+1, err)
		}
		l.rows++
	}
	return nil
}

// Verify checks that the table holds exactly the rows Insert committed.
func (l *Loop) Verify(ctx context.Context) error {
	var n int
	if err := l.db.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
		return fmt.Errorf("bench: count: %w", err)
	}
	if n != l.rows {
		return fmt.Errorf("bench: table holds %d rows, %d were committed", n, l.rows)
	}
	return nil
}

// Close closes the statement and the database.
func (l *Loop) Close() error {
	l.stmt.Close()
	return l.db.Close()
}
