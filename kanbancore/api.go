package kanbancore

import (
	"context"
	"database/sql"
	"time"
)

// Driver names a SQLite driver.
type Driver string

// The two supported drivers.
const (
	DriverModernc Driver = "modernc" // modernc.org/sqlite (pure Go)
	DriverMattn   Driver = "mattn"   // github.com/mattn/go-sqlite3 (cgo)
)

// Clock tells board time. Every timestamp the board stores and every
// duration in Switches is measured on it, so a harness can run the board's
// 30 s crash grace in 300 ms by scaling the clock, without changing behaviour.
type Clock interface {
	Now() time.Time
}

// Execer is what runs SQL inside a write transaction.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Observer is the harness's window into the board: every committed write
// transaction reports what it changed, every surfaced error is reported, and
// InTxn may add statements (a commit counter) inside each write transaction
// just before COMMIT. Implementations must be safe for use by one goroutine
// at a time per Conn. A nil Observer is allowed.
type Observer interface {
	// InTxn runs inside every write transaction, just before COMMIT. Its
	// result (for example a commit counter value) is returned in Commit.Seq.
	InTxn(ctx context.Context, tx Execer, op string) (seq int64, err error)
	// Committed reports a write transaction that committed (COMMIT returned
	// success, even if a post-commit check later raised).
	Committed(c Commit)
	// Failed reports an error surfaced by op.
	Failed(op string, err error)
	// JournalMode reports the journal mode a new connection ended up in.
	JournalMode(mode string)
}

// Commit describes one committed write transaction.
type Commit struct {
	Op          string       // operation name, e.g. "claim_task"
	Seq         int64        // value returned by Observer.InTxn
	Transitions []Transition // status changes made
	Inserted    []RowRef     // rows inserted
	Deleted     []RowRef     // rows deleted
	Updated     []RowRef     // rows updated (other than status transitions)
}

// Transition is a task status change made by a committed transaction.
type Transition struct {
	Task string `json:"task"`
	From string `json:"from"`
	To   string `json:"to"`
}

// RowRef names a row: its table and primary key (task id, or integer id),
// and for child rows (events, runs, comments) the task they belong to.
type RowRef struct {
	Table string `json:"table"`
	Key   string `json:"key"`
	Task  string `json:"task,omitempty"`
}
