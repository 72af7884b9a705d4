// Package ledger is the one recorder every sqlchaos process puts between
// kanbancore and its history: the commit counter and ledger tables (DDL,
// Create), the kanbancore.Observer that bumps the counter inside each
// write transaction and writes commits, errors and journal modes to the
// process's history (Observer), and the error event (ErrEvent). The
// scenario roles and the property harnesses use it alike, so a history
// means the same wherever it was written.
package ledger

import (
	"context"
	"fmt"
	"strings"

	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/kanbancore"
)

// DDL creates the commit counter and the commit ledger every write
// transaction of every process bumps and appends to (inside the
// transaction), so the commits of all processes form one total order and
// the oracle can tell an acknowledged commit from a lost one.
const DDL = `
CREATE TABLE IF NOT EXISTS chaos_counter (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT OR IGNORE INTO chaos_counter (id, n) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS chaos_ledger (seq INTEGER PRIMARY KEY, proc TEXT NOT NULL, op TEXT NOT NULL, t INTEGER NOT NULL);
`

// Create runs DDL on c (a kanbancore connection), one statement at a time.
func Create(ctx context.Context, c kanbancore.Execer) error {
	for _, stmt := range strings.Split(DDL, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := c.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
	}
	return nil
}

// Observer is the kanbancore.Observer of a sqlchaos process.
type Observer struct {
	// H is the process's history.
	H *history.Writer
	// NoCounter leaves the counter and ledger alone (a board without the
	// tables): commits then carry seq 0.
	NoCounter bool
	// NoModes drops journal-mode probes instead of recording TypeMode
	// events.
	NoModes bool
}

var _ kanbancore.Observer = (*Observer)(nil)

// InTxn bumps the commit counter and appends a ledger row.
func (o *Observer) InTxn(ctx context.Context, tx kanbancore.Execer, op string) (int64, error) {
	if o.NoCounter {
		return 0, nil
	}
	var seq int64
	if err := tx.QueryRowContext(ctx, `UPDATE chaos_counter SET n = n + 1 WHERE id = 1 RETURNING n`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("chaos ledger: counter: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO chaos_ledger(seq, proc, op, t) VALUES (?,?,?,?)`,
		seq, o.H.Proc(), op, history.Now()); err != nil {
		return 0, fmt.Errorf("chaos ledger: insert: %w", err)
	}
	return seq, nil
}

// Committed records a TypeCommit event: the op, its seq, and the rows and
// transitions kanbancore says it wrote (history.Commit).
func (o *Observer) Committed(c kanbancore.Commit) {
	e := history.Event{Type: history.TypeCommit, Op: c.Op, Seq: c.Seq}
	if len(c.Transitions) > 0 {
		e.Task = c.Transitions[0].Task
	}
	rec := history.Commit{Transitions: transitions(c.Transitions), Inserted: rowRefs(c.Inserted),
		Deleted: rowRefs(c.Deleted), Updated: rowRefs(c.Updated)}
	if rec.Transitions != nil || rec.Inserted != nil || rec.Deleted != nil || rec.Updated != nil {
		e.Data = &history.Data{Commit: rec}
	}
	o.H.Write(e)
}

// transitions converts kanbancore's transitions to the history's (nil
// when there are none).
func transitions(ts []kanbancore.Transition) []history.Transition {
	var out []history.Transition
	for _, t := range ts {
		out = append(out, history.Transition(t))
	}
	return out
}

// rowRefs converts kanbancore's row references to the history's (nil when
// there are none).
func rowRefs(rs []kanbancore.RowRef) []history.RowRef {
	var out []history.RowRef
	for _, r := range rs {
		out = append(out, history.RowRef(r))
	}
	return out
}

// Failed records a TypeError event with the error's class and code.
func (o *Observer) Failed(op string, err error) {
	if err == nil {
		return
	}
	o.H.Write(ErrEvent(history.TypeError, 0, op, "", err))
}

// JournalMode records a TypeMode event (unless NoModes).
func (o *Observer) JournalMode(mode string) {
	if !o.NoModes {
		o.H.Write(history.Event{Type: history.TypeMode, Mode: mode})
	}
}

// ErrEvent builds an event of type typ carrying err's text, class and
// SQLite code (nothing of them when err is nil).
func ErrEvent(typ string, id int64, op, task string, err error) history.Event {
	e := history.Event{Type: typ, ID: id, Op: op, Task: task}
	if err != nil {
		e.Err = err.Error()
		e.Class = kanbancore.Classify(err).String()
		if code, ok := kanbancore.SQLiteCode(err); ok {
			e.Code = code
		}
	}
	return e
}
