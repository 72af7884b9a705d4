package kanbancore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
)

// TaskRun is one row of task_runs: one attempt at a task.
type TaskRun struct {
	ID                int64      `json:"id"`
	TaskID            string     `json:"task_id"`
	Profile           string     `json:"profile,omitempty"`
	Status            string     `json:"status"`
	ClaimLock         string     `json:"claim_lock,omitempty"`
	ClaimExpires      int64      `json:"claim_expires,omitempty"`
	WorkerPID         int        `json:"worker_pid,omitempty"`
	MaxRuntimeSeconds int64      `json:"max_runtime_seconds,omitempty"`
	LastHeartbeatAt   int64      `json:"last_heartbeat_at,omitempty"`
	StartedAt         int64      `json:"started_at"`
	EndedAt           int64      `json:"ended_at,omitempty"` // 0 = open
	Outcome           RunOutcome `json:"outcome,omitempty"`
	Summary           string     `json:"summary,omitempty"`
	Metadata          string     `json:"metadata,omitempty"`
	Error             string     `json:"error,omitempty"`
}

// RunOutcome is how a run ended (task_runs.outcome). The values are the
// original Python layer's and are on disk: they never change.
type RunOutcome string

// The run outcomes.
const (
	OutcomeCompleted       RunOutcome = "completed"
	OutcomeBlocked         RunOutcome = "blocked"
	OutcomeScheduled       RunOutcome = "scheduled"
	OutcomeReviewRequested RunOutcome = "review_requested"
	OutcomeArchived        RunOutcome = "archived"
	OutcomeReclaimed       RunOutcome = "reclaimed"
	OutcomeStale           RunOutcome = "stale"
	OutcomeTimedOut        RunOutcome = "timed_out"
	OutcomeCrashed         RunOutcome = "crashed"
	OutcomeRateLimited     RunOutcome = "rate_limited"
	OutcomeSpawnFailed     RunOutcome = "spawn_failed"
	OutcomeGaveUp          RunOutcome = "gave_up"
)

// event is the kind of the event of o's name, which a failure below the
// breaker's limit emits when it ends the run with outcome o.
func (o RunOutcome) event() EventKind { return EventKind(o) }

// Open reports whether the run has not ended.
func (r TaskRun) Open() bool { return r.EndedAt == 0 }

const runCols = `id, task_id, profile, status, claim_lock, claim_expires, worker_pid, max_runtime_seconds,
	last_heartbeat_at, started_at, ended_at, outcome, summary, metadata, error`

func scanRun(s rowScanner) (TaskRun, error) {
	var r TaskRun
	var profile, lock, outcome, summary, meta, errs sql.NullString
	var exp, pid, maxrt, hb, ended sql.NullInt64
	err := s.Scan(&r.ID, &r.TaskID, &profile, &r.Status, &lock, &exp, &pid, &maxrt, &hb, &r.StartedAt, &ended,
		&outcome, &summary, &meta, &errs)
	r.Profile, r.ClaimLock, r.Outcome, r.Summary, r.Metadata, r.Error =
		profile.String, lock.String, RunOutcome(outcome.String), summary.String, meta.String, errs.String
	r.ClaimExpires, r.WorkerPID, r.MaxRuntimeSeconds, r.LastHeartbeatAt, r.EndedAt =
		exp.Int64, int(pid.Int64), maxrt.Int64, hb.Int64, ended.Int64
	return r, err
}

// ListRuns returns a task's runs oldest first (all runs when taskID is "").
func ListRuns(ctx context.Context, c *Conn, taskID string) ([]TaskRun, error) {
	q, args := forTask(`SELECT `+runCols+` FROM task_runs`, taskID)
	return queryAll(ctx, c, scanRun, q, args...)
}

// openRun inserts a running task_runs row for a task just claimed and points
// tasks.current_run_id at it.
func openRun(ctx context.Context, tx *Tx, taskID, profile, lock string, expires, maxRuntime any, now int64) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO task_runs(task_id, profile, status, claim_lock, claim_expires, max_runtime_seconds, started_at)
		VALUES(?,?,'running',?,?,?,?)`, taskID, nullStr(profile), lock, expires, maxRuntime, now)
	if err != nil {
		return 0, err
	}
	rid, _ := res.LastInsertId()
	tx.InsertedFor("task_runs", fmt.Sprint(rid), taskID)
	if _, err := tx.ExecContext(ctx, `UPDATE tasks SET current_run_id=? WHERE id=?`, rid, taskID); err != nil {
		return 0, err
	}
	return rid, nil
}

// runEnd describes how a run ends.
type runEnd struct {
	outcome  RunOutcome
	status   string // run status; defaults to outcome
	summary  string
	errText  string
	metadata map[string]any
}

// endRun closes the task's current run (if any) and NULLs the pointer. It
// returns the closed run id (0 when there was none).
func endRun(ctx context.Context, tx *Tx, taskID string, e runEnd) (int64, error) {
	var cur sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT current_run_id FROM tasks WHERE id=?`, taskID).Scan(&cur); err != nil {
		if err == sql.ErrNoRows {
			return 0, nil
		}
		return 0, err
	}
	if !cur.Valid {
		return 0, nil
	}
	if e.status == "" {
		e.status = string(e.outcome)
	}
	var meta any
	if e.metadata != nil {
		b, _ := json.Marshal(e.metadata)
		meta = string(b)
	}
	res, err := tx.ExecContext(ctx, `UPDATE task_runs SET ended_at=?, status=?, outcome=?, summary=COALESCE(?, summary),
		error=COALESCE(?, error), metadata=COALESCE(?, metadata), claim_lock=NULL, claim_expires=NULL
		WHERE id=? AND ended_at IS NULL`,
		tx.Now().Unix(), e.status, e.outcome, nullStr(e.summary), nullStr(e.errText), meta, cur.Int64)
	if err != nil {
		return 0, err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		tx.Updated("task_runs", fmt.Sprint(cur.Int64))
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tasks SET current_run_id=NULL WHERE id=?`, taskID); err != nil {
		return 0, err
	}
	return cur.Int64, nil
}

// reclaimDanglingRun repairs a leaked open run: a task that is not running
// but still has open runs gets them closed as `reclaimed`.
func reclaimDanglingRun(ctx context.Context, tx *Tx, taskID string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM task_runs WHERE task_id=? AND ended_at IS NULL`, taskID).Scan(&n); err != nil {
		return err
	}
	var cur sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT current_run_id FROM tasks WHERE id=?`, taskID).Scan(&cur); err != nil && err != sql.ErrNoRows {
		return err
	}
	if n == 0 && !cur.Valid {
		return nil
	}
	now := tx.Now().Unix()
	if n > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE task_runs SET ended_at=?, status='reclaimed', outcome='reclaimed',
			error=COALESCE(error,'dangling run'), claim_lock=NULL, claim_expires=NULL WHERE task_id=? AND ended_at IS NULL`, now, taskID); err != nil {
			return err
		}
		tx.Updated("task_runs", "task:"+taskID)
	}
	_, err := tx.ExecContext(ctx, `UPDATE tasks SET current_run_id=NULL WHERE id=?`, taskID)
	return err
}

// CheckRunInvariant returns one line per task that breaks the run
// invariant: tasks.current_run_id is set exactly while one open run exists,
// and then it names that run. An empty result means the invariant holds.
func CheckRunInvariant(ctx context.Context, c *Conn) ([]string, error) {
	rows, err := c.QueryContext(ctx, `SELECT t.id, t.status, t.current_run_id,
		(SELECT COUNT(*) FROM task_runs r WHERE r.task_id=t.id AND r.ended_at IS NULL),
		(SELECT MIN(r.id) FROM task_runs r WHERE r.task_id=t.id AND r.ended_at IS NULL)
		FROM tasks t ORDER BY t.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var bad []string
	for rows.Next() {
		var id, status string
		var cur, open sql.NullInt64
		var n int
		if err := rows.Scan(&id, &status, &cur, &n, &open); err != nil {
			return nil, err
		}
		switch {
		case cur.Valid && n != 1:
			bad = append(bad, fmt.Sprintf("%s (%s): current_run_id=%d but %d open runs", id, status, cur.Int64, n))
		case !cur.Valid && n != 0:
			bad = append(bad, fmt.Sprintf("%s (%s): current_run_id NULL but %d open runs", id, status, n))
		case cur.Valid && open.Int64 != cur.Int64:
			bad = append(bad, fmt.Sprintf("%s (%s): current_run_id=%d but open run is %d", id, status, cur.Int64, open.Int64))
		}
	}
	return bad, rows.Err()
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}
