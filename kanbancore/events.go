package kanbancore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
)

// Event is one row of task_events.
type Event struct {
	ID        int64          `json:"id"`
	TaskID    string         `json:"task_id"`
	RunID     int64          `json:"run_id,omitempty"` // 0 = NULL
	Kind      string         `json:"kind"`
	Payload   map[string]any `json:"payload,omitempty"`
	CreatedAt int64          `json:"created_at"`
}

// addEvent inserts an event inside tx and records the row.
func addEvent(ctx context.Context, tx *Tx, taskID string, runID int64, kind string, payload map[string]any) error {
	var p any
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return err
		}
		p = string(b)
	}
	var r any
	if runID != 0 {
		r = runID
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO task_events(task_id, run_id, kind, payload, created_at) VALUES(?,?,?,?,?)`,
		taskID, r, kind, p, tx.Now().Unix())
	if err != nil {
		return fmt.Errorf("kanbancore: event %s: %w", kind, err)
	}
	id, _ := res.LastInsertId()
	tx.InsertedFor("task_events", fmt.Sprint(id), taskID)
	return nil
}

// ListEvents returns a task's events oldest first (all tasks when taskID is "").
func ListEvents(ctx context.Context, c *Conn, taskID string) ([]Event, error) {
	q, args := forTask(`SELECT id, task_id, run_id, kind, payload, created_at FROM task_events`, taskID)
	return queryAll(ctx, c, scanEvent, q, args...)
}

func scanEvent(s rowScanner) (Event, error) {
	var e Event
	var run sql.NullInt64
	var payload sql.NullString
	if err := s.Scan(&e.ID, &e.TaskID, &run, &e.Kind, &payload, &e.CreatedAt); err != nil {
		return e, err
	}
	e.RunID = run.Int64
	if payload.Valid && payload.String != "" {
		_ = json.Unmarshal([]byte(payload.String), &e.Payload)
	}
	return e, nil
}

// EventKinds returns the kinds of a task's events, oldest first.
func EventKinds(ctx context.Context, c *Conn, taskID string) ([]string, error) {
	evs, err := ListEvents(ctx, c, taskID)
	if err != nil {
		return nil, err
	}
	kinds := make([]string, len(evs))
	for i, e := range evs {
		kinds[i] = e.Kind
	}
	return kinds, nil
}
