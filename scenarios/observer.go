package scenarios

import (
	"context"
	"fmt"

	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/kanbancore"
)

// Ledger DDL: the commit counter and the commit ledger every write
// transaction of every process bumps and appends to (inside the
// transaction), so the commits of all processes form one total order and
// the oracle can tell an acknowledged commit from a lost one.
const ledgerDDL = `
CREATE TABLE IF NOT EXISTS chaos_counter (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT OR IGNORE INTO chaos_counter (id, n) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS chaos_ledger (seq INTEGER PRIMARY KEY, proc TEXT NOT NULL, op TEXT NOT NULL, t INTEGER NOT NULL);
`

// observer is the kanbancore.Observer of a scenario process: it writes the
// commit counter and ledger row inside each write transaction and records
// commits, errors and journal modes in the process's history.
type observer struct {
	h *history.Writer
}

var _ kanbancore.Observer = (*observer)(nil)

// InTxn bumps the commit counter and appends a ledger row.
func (o *observer) InTxn(ctx context.Context, tx kanbancore.Execer, op string) (int64, error) {
	var seq int64
	if err := tx.QueryRowContext(ctx, `UPDATE chaos_counter SET n = n + 1 WHERE id = 1 RETURNING n`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("chaos ledger: counter: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO chaos_ledger(seq, proc, op, t) VALUES (?,?,?,?)`,
		seq, o.h.Proc(), op, history.Now()); err != nil {
		return 0, fmt.Errorf("chaos ledger: insert: %w", err)
	}
	return seq, nil
}

// Committed records a TypeCommit event.
func (o *observer) Committed(c kanbancore.Commit) {
	data := map[string]any{}
	if len(c.Transitions) > 0 {
		data[history.DataTransitions] = c.Transitions
	}
	if len(c.Inserted) > 0 {
		data[history.DataInserted] = c.Inserted
	}
	if len(c.Deleted) > 0 {
		data[history.DataDeleted] = c.Deleted
	}
	if len(c.Updated) > 0 {
		data[history.DataUpdated] = c.Updated
	}
	e := history.Event{Type: history.TypeCommit, Op: c.Op, Seq: c.Seq}
	if len(c.Transitions) > 0 {
		e.Task = c.Transitions[0].Task
	}
	if len(data) > 0 {
		e.Data = data
	}
	o.h.Write(e)
}

// Failed records a TypeError event with the error's class and code.
func (o *observer) Failed(op string, err error) {
	if err == nil {
		return
	}
	o.h.Write(errEvent(history.TypeError, 0, op, "", err))
}

// JournalMode records a TypeMode event.
func (o *observer) JournalMode(mode string) {
	o.h.Write(history.Event{Type: history.TypeMode, Mode: mode})
}

// errEvent builds an event carrying err's text, class and SQLite code.
func errEvent(typ string, id int64, op, task string, err error) history.Event {
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
