package kanbancore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// DispatchOptions are dispatch_once's arguments.
type DispatchOptions struct {
	Spawner         Spawner
	TTL             time.Duration // claim TTL; 0 = Switches.ClaimTTL
	DryRun          bool          // report what would spawn; claim nothing
	MaxSpawn        int           // cap on running tasks after this tick (counts already-running); 0 = none
	MaxInProgress   int           // skip spawning when this many are running; 0 = unlimited
	FailureLimit    int           // 0 = DefaultFailureLimit
	StaleTimeout    time.Duration // detect_stale_running; 0 = off
	DefaultAssignee string        // persisted onto unassigned ready tasks
	// Spawnable says whether an assignee names a worker profile; nil = all.
	Spawnable func(assignee string) bool
	// WorkspacesRoot holds scratch workspaces; "" = <db dir>/workspaces.
	WorkspacesRoot string
	Claimer        string
	Proc           ProcessOps
}

// SpawnedTask is one worker started by DispatchOnce.
type SpawnedTask struct {
	ID        string `json:"id"`
	PID       int    `json:"pid"`
	Workspace string `json:"workspace"`
}

// DispatchResult counts what one dispatch_once did.
type DispatchResult struct {
	Reaped              []int         `json:"reaped,omitempty"`
	Reclaimed           int           `json:"reclaimed"`
	Stale               []string      `json:"stale,omitempty"`
	Crashed             []string      `json:"crashed,omitempty"`
	AutoBlocked         []string      `json:"auto_blocked,omitempty"`
	RateLimited         []string      `json:"rate_limited,omitempty"`
	TimedOut            []string      `json:"timed_out,omitempty"`
	Promoted            int           `json:"promoted"`
	Spawned             []SpawnedTask `json:"spawned,omitempty"`
	WouldSpawn          []string      `json:"would_spawn,omitempty"`
	SpawnFailed         []string      `json:"spawn_failed,omitempty"`
	LostClaim           []string      `json:"lost_claim,omitempty"`
	SkippedUnassigned   []string      `json:"skipped_unassigned,omitempty"`
	SkippedNonspawnable []string      `json:"skipped_nonspawnable,omitempty"`
	SkippedCapacity     []string      `json:"skipped_capacity,omitempty"`
}

// DispatchOnce is one dispatcher pass over a board, as many small separate
// transactions (not one atomic unit): reap zombies; release stale claims,
// detect stale running tasks, detect crashed workers, enforce max runtime,
// recompute readiness; then claim and spawn ready tasks in priority order
// within the caps. A spawn failure counts a failure and releases the claim.
func DispatchOnce(ctx context.Context, c *Conn, o DispatchOptions) (DispatchResult, error) {
	var res DispatchResult
	res.Reaped = ReapWorkerZombies()
	sw := SweepOptions{Proc: o.Proc, FailureLimit: o.FailureLimit, TTL: o.TTL}
	var err error
	if res.Reclaimed, err = ReleaseStaleClaims(ctx, c, sw); err != nil {
		return res, err
	}
	if res.Stale, err = DetectStaleRunning(ctx, c, o.StaleTimeout, sw); err != nil {
		return res, err
	}
	crash, err := DetectCrashedWorkers(ctx, c, sw)
	if err != nil {
		return res, err
	}
	res.Crashed, res.AutoBlocked, res.RateLimited = crash.Crashed, crash.AutoBlocked, crash.RateLimited
	if res.TimedOut, err = EnforceMaxRuntime(ctx, c, sw); err != nil {
		return res, err
	}
	if res.Promoted, err = RecomputeReady(ctx, c, o.FailureLimit); err != nil {
		return res, err
	}

	var running int
	if err := c.QueryRowContext(ctx, `SELECT COUNT(*) FROM tasks WHERE status='running'`).Scan(&running); err != nil {
		return res, err
	}
	rows, err := c.QueryContext(ctx, `SELECT `+taskCols+` FROM tasks WHERE status='ready' AND claim_lock IS NULL
		ORDER BY priority DESC, created_at ASC, id ASC`)
	if err != nil {
		return res, err
	}
	var ready []Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			rows.Close()
			return res, err
		}
		ready = append(ready, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, err
	}

	capacity := -1 // unlimited
	if o.MaxSpawn > 0 {
		capacity = max(o.MaxSpawn-running, 0)
	}
	if o.MaxInProgress > 0 {
		left := max(o.MaxInProgress-running, 0)
		if capacity < 0 || left < capacity {
			capacity = left
		}
	}
	wsRoot := o.WorkspacesRoot
	if wsRoot == "" {
		wsRoot = filepath.Join(filepath.Dir(c.Path()), "workspaces")
	}
	started := 0
	for _, t := range ready {
		if t.Assignee == "" && o.DefaultAssignee != "" && !o.DryRun {
			if ok, err := AssignTask(ctx, c, t.ID, o.DefaultAssignee); err != nil {
				return res, err
			} else if ok {
				t.Assignee = normAssignee(o.DefaultAssignee)
			}
		} else if t.Assignee == "" && o.DefaultAssignee != "" {
			t.Assignee = normAssignee(o.DefaultAssignee)
		}
		if t.Assignee == "" {
			res.SkippedUnassigned = append(res.SkippedUnassigned, t.ID)
			continue
		}
		if o.Spawnable != nil && !o.Spawnable(t.Assignee) {
			res.SkippedNonspawnable = append(res.SkippedNonspawnable, t.ID)
			continue
		}
		if capacity >= 0 && started >= capacity {
			res.SkippedCapacity = append(res.SkippedCapacity, t.ID)
			continue
		}
		if o.DryRun {
			res.WouldSpawn = append(res.WouldSpawn, t.ID)
			started++
			continue
		}
		claimed, err := ClaimTask(ctx, c, t.ID, ClaimOptions{TTL: o.TTL, Claimer: o.Claimer})
		if err != nil {
			return res, err
		}
		if claimed == nil {
			res.LostClaim = append(res.LostClaim, t.ID)
			continue
		}
		started++
		ws, err := resolveWorkspace(ctx, c, *claimed, wsRoot)
		var pid int
		if err == nil {
			if o.Spawner == nil {
				err = fmt.Errorf("kanbancore: no spawner configured")
			} else {
				pid, err = o.Spawner.Spawn(ctx, *claimed, ws)
			}
		}
		if err != nil {
			res.SpawnFailed = append(res.SpawnFailed, t.ID)
			blocked, ferr := recordTaskFailure(ctx, c, t.ID, "spawn failed: "+err.Error(),
				failureOpts{outcome: "spawn_failed", limit: o.FailureLimit, releaseClaim: true, endRun: true})
			if ferr != nil {
				return res, ferr
			}
			if blocked {
				res.AutoBlocked = append(res.AutoBlocked, t.ID)
			}
			continue
		}
		if err := setWorkerPID(ctx, c, *claimed, pid, ws); err != nil {
			return res, err
		}
		res.Spawned = append(res.Spawned, SpawnedTask{ID: t.ID, PID: pid, Workspace: ws})
	}
	return res, nil
}

// resolveWorkspace returns (creating if needed) the task's workspace and
// persists it: scratch → <wsRoot>/<id>; dir and worktree use the task's path.
func resolveWorkspace(ctx context.Context, c *Conn, t Task, wsRoot string) (string, error) {
	ws := t.WorkspacePath
	if ws == "" {
		if t.WorkspaceKind != "scratch" {
			return "", fmt.Errorf("kanbancore: task %s: workspace_kind %s needs a workspace_path", t.ID, t.WorkspaceKind)
		}
		ws = filepath.Join(wsRoot, t.ID)
	}
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return "", err
	}
	if ws == t.WorkspacePath {
		return ws, nil
	}
	return ws, c.WriteTxn(ctx, "set_workspace", func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tasks SET workspace_path=? WHERE id=? AND workspace_path IS NULL`, ws, t.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			tx.Updated("tasks", t.ID)
		}
		return nil
	})
}

// setWorkerPID records the spawned worker's pid on the task and its run and
// emits `spawned`. A task that the worker already finished is left alone.
func setWorkerPID(ctx context.Context, c *Conn, t Task, pid int, ws string) error {
	return c.WriteTxn(ctx, "set_worker_pid", func(tx *Tx) error {
		now := tx.Now().Unix()
		res, err := tx.ExecContext(ctx, `UPDATE tasks SET worker_pid=?, worker_started_at=? WHERE id=? AND status='running' AND claim_lock=?`,
			pid, now, t.ID, t.ClaimLock)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		tx.Updated("tasks", t.ID)
		if t.CurrentRunID != 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE task_runs SET worker_pid=? WHERE id=? AND ended_at IS NULL`, pid, t.CurrentRunID); err != nil {
				return err
			}
		}
		return addEvent(ctx, tx, t.ID, t.CurrentRunID, "spawned", map[string]any{"pid": pid, "workspace": ws})
	})
}
