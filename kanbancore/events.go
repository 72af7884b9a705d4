package kanbancore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
)

// TaskEvent is one row of task_events.
type TaskEvent struct {
	ID        int64          `json:"id"`
	TaskID    string         `json:"task_id"`
	RunID     int64          `json:"run_id,omitempty"` // 0 = NULL
	Kind      EventKind      `json:"kind"`
	Payload   map[string]any `json:"payload,omitempty"`
	CreatedAt int64          `json:"created_at"`
}

// EventKind is the kind of a task_events row (its kind column). The values
// are the original Python layer's and are on disk: they never change.
type EventKind string

// The event kinds. The run-ending ones share their name with the run's
// outcome (RunOutcome.event).
const (
	EventCreated                        EventKind = "created"
	EventLinked                         EventKind = "linked"
	EventUnlinked                       EventKind = "unlinked"
	EventPromoted                       EventKind = "promoted"
	EventClaimed                        EventKind = "claimed"
	EventClaimRejected                  EventKind = "claim_rejected"
	EventSpawned                        EventKind = "spawned"
	EventHeartbeat                      EventKind = "heartbeat"
	EventCompleted                      EventKind = "completed"
	EventCompletionBlockedHallucination EventKind = "completion_blocked_hallucination"
	EventBlocked                        EventKind = "blocked"
	EventUnblocked                      EventKind = "unblocked"
	EventScheduled                      EventKind = "scheduled"
	EventReviewRequested                EventKind = "review_requested"
	EventAssigned                       EventKind = "assigned"
	EventCommented                      EventKind = "commented"
	EventArchived                       EventKind = "archived"
	EventClaimExtended                  EventKind = "claim_extended"
	EventReclaimDeferred                EventKind = "reclaim_deferred"
	EventReclaimed                      EventKind = "reclaimed"
	EventStale                          EventKind = "stale"
	EventTimedOut                       EventKind = "timed_out"
	EventCrashed                        EventKind = "crashed"
	EventProtocolViolation              EventKind = "protocol_violation"
	EventRateLimited                    EventKind = "rate_limited"
	EventSpawnFailed                    EventKind = "spawn_failed"
	EventGaveUp                         EventKind = "gave_up"
	EventRespawnGuarded                 EventKind = "respawn_guarded"
	// Written only by the original (a status edit, a priority change);
	// this layer reads them from older boards.
	EventStatus        EventKind = "status"
	EventReprioritized EventKind = "reprioritized"
)

// sqlKinds renders kinds as SQL string literals separated by commas, for
// an IN (...) list.
func sqlKinds(kinds ...EventKind) string {
	q := make([]string, len(kinds))
	for i, k := range kinds {
		q[i] = "'" + string(k) + "'"
	}
	return strings.Join(q, ",")
}

// addEvent inserts an event inside tx and records the row.
func addEvent(ctx context.Context, tx *Tx, taskID string, runID int64, kind EventKind, payload map[string]any) error {
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
func ListEvents(ctx context.Context, c *Conn, taskID string) ([]TaskEvent, error) {
	q, args := forTask(`SELECT id, task_id, run_id, kind, payload, created_at FROM task_events`, taskID)
	return queryAll(ctx, c, scanEvent, q, args...)
}

func scanEvent(s rowScanner) (TaskEvent, error) {
	var e TaskEvent
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
func EventKinds(ctx context.Context, c *Conn, taskID string) ([]EventKind, error) {
	evs, err := ListEvents(ctx, c, taskID)
	if err != nil {
		return nil, err
	}
	kinds := make([]EventKind, len(evs))
	for i, e := range evs {
		kinds[i] = e.Kind
	}
	return kinds, nil
}
