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
	Spawner       Spawner
	TTL           time.Duration // claim TTL; 0 = Switches.ClaimTTL
	DryRun        bool          // report what would spawn; claim nothing, write no guard events
	MaxSpawn      int           // cap on running tasks after this tick (counts already-running); 0 = none
	MaxInProgress int           // skip spawning when this many are running; 0 = unlimited
	// MaxInProgressPerProfile caps running tasks per assignee (#21582);
	// 0 = unlimited. A task over the cap waits in SkippedPerProfileCapped.
	MaxInProgressPerProfile int
	FailureLimit            int           // 0 = DefaultFailureLimit
	StaleTimeout            time.Duration // detect_stale_running; 0 = off
	// DefaultAssignee is persisted onto unassigned ready tasks (an
	// `assigned` event) before they spawn; a dry run only reports it.
	DefaultAssignee string
	// Spawnable says whether an assignee names a worker profile; nil = all.
	Spawnable func(assignee string) bool
	// WorkspacesRoot holds scratch workspaces; "" = <db dir>/workspaces.
	WorkspacesRoot string
	Claimer        string
	Proc           ProcessOps
	// NoRespawnGuard turns check_respawn_guard off (the original always
	// runs it).
	NoRespawnGuard bool
	// RateLimitCooldown of the respawn guard: 0 = ResolveRateLimitCooldown()
	// (300 s unless the environment says otherwise); negative = none.
	RateLimitCooldown time.Duration
	// NoReviewDispatch leaves the review column to humans (the original's
	// kanban.review_dispatch=false); by default review tasks are claimed
	// with ClaimReviewTask and spawned with skills ["sdlc-review"].
	NoReviewDispatch bool
}

// SpawnedTask is one worker started by DispatchOnce.
type SpawnedTask struct {
	ID        string `json:"id"`
	PID       int    `json:"pid"`
	Workspace string `json:"workspace"`
	Lane      string `json:"lane,omitempty"` // "ready" or "review"
}

// GuardedTask is a task the respawn guard held back this tick.
type GuardedTask struct {
	ID     string `json:"id"`
	Reason string `json:"reason"` // rate_limit_cooldown | blocker_auth | recent_success | active_pr
}

// ProfileCapped is a task deferred because its assignee already runs
// MaxInProgressPerProfile tasks.
type ProfileCapped struct {
	ID       string `json:"id"`
	Assignee string `json:"assignee"`
	Running  int    `json:"running"`
}

// DispatchResult counts what one dispatch_once did.
type DispatchResult struct {
	Reaped                  []int           `json:"reaped,omitempty"`
	Reclaimed               int             `json:"reclaimed"`
	Stale                   []string        `json:"stale,omitempty"`
	Crashed                 []string        `json:"crashed,omitempty"`
	AutoBlocked             []string        `json:"auto_blocked,omitempty"`
	RateLimited             []string        `json:"rate_limited,omitempty"`
	TimedOut                []string        `json:"timed_out,omitempty"`
	Promoted                int             `json:"promoted"`
	Spawned                 []SpawnedTask   `json:"spawned,omitempty"`
	WouldSpawn              []string        `json:"would_spawn,omitempty"`
	SpawnFailed             []string        `json:"spawn_failed,omitempty"`
	LostClaim               []string        `json:"lost_claim,omitempty"`
	SkippedUnassigned       []string        `json:"skipped_unassigned,omitempty"`
	SkippedNonspawnable     []string        `json:"skipped_nonspawnable,omitempty"`
	SkippedCapacity         []string        `json:"skipped_capacity,omitempty"`
	SkippedPerProfileCapped []ProfileCapped `json:"skipped_per_profile_capped,omitempty"`
	RespawnGuarded          []GuardedTask   `json:"respawn_guarded,omitempty"`
	AutoAssigned            []string        `json:"auto_assigned,omitempty"`
	// SkippedLocked: another dispatcher held <db>.dispatch.lock (switch
	// dispatch_lock, #50331); this tick did nothing at all.
	SkippedLocked bool `json:"skipped_locked,omitempty"`
}

// DispatchOnce is one dispatcher pass over a board, as many small separate
// transactions (not one atomic unit). With the dispatch_lock switch it first
// takes a non-blocking flock on <db>.dispatch.lock and returns at once with
// SkippedLocked when another dispatcher holds it. Then: reap zombies;
// release stale claims, detect stale running tasks, detect crashed workers,
// enforce max runtime, recompute readiness; then, ready column first and
// review column after, claim and spawn tasks in priority order within the
// caps (max_spawn, max_in_progress, the per-profile cap), skipping
// unassigned and non-spawnable assignees and whatever the respawn guard
// holds back (event `respawn_guarded`, never an auto-block). A spawn failure
// counts a failure and releases the claim.
func DispatchOnce(ctx context.Context, c *Conn, o DispatchOptions) (DispatchResult, error) {
	if c.opts.Switches.DispatchLock {
		lk, held, err := tryDispatchLock(c.Path())
		if err != nil {
			return DispatchResult{}, err
		}
		if !held {
			return DispatchResult{SkippedLocked: true}, nil
		}
		defer lk.release()
	}
	return dispatchOnceLocked(ctx, c, o)
}

func dispatchOnceLocked(ctx context.Context, c *Conn, o DispatchOptions) (DispatchResult, error) {
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

	running, perProfile, err := runningCounts(ctx, c)
	if err != nil {
		return res, err
	}
	ready, err := dispatchable(ctx, c, StatusReady)
	if err != nil {
		return res, err
	}
	var review []Task
	if !o.NoReviewDispatch {
		if review, err = dispatchable(ctx, c, StatusReview); err != nil {
			return res, err
		}
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
		wsRoot = defaultWorkspacesRoot(c)
	}
	d := &dispatcher{c: c, o: o, res: &res, capacity: capacity, perProfile: perProfile, wsRoot: wsRoot}
	for _, t := range ready {
		if err := d.consider(ctx, t, readyLane); err != nil {
			return res, err
		}
	}
	for _, t := range review {
		if err := d.consider(ctx, t, reviewLane); err != nil {
			return res, err
		}
	}
	return res, nil
}

// defaultWorkspacesRoot is <db dir>/workspaces.
func defaultWorkspacesRoot(c *Conn) string {
	return filepath.Join(filepath.Dir(c.Path()), "workspaces")
}

// runningCounts returns the number of running tasks and their count per
// assignee.
func runningCounts(ctx context.Context, c *Conn) (int, map[string]int, error) {
	rows, err := c.QueryContext(ctx, `SELECT COALESCE(assignee,''), COUNT(*) FROM tasks WHERE status='running' GROUP BY 1`)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	total, per := 0, map[string]int{}
	for rows.Next() {
		var a string
		var n int
		if err := rows.Scan(&a, &n); err != nil {
			return 0, nil, err
		}
		total += n
		per[a] = n
	}
	return total, per, rows.Err()
}

// dispatchable lists unclaimed tasks of one column in dispatch order.
func dispatchable(ctx context.Context, c *Conn, status string) ([]Task, error) {
	return queryAll(ctx, c, scanTask, `SELECT `+taskCols+` FROM tasks WHERE status=? AND claim_lock IS NULL
		ORDER BY priority DESC, created_at ASC, id ASC`, status)
}

// dispatcher is the state of one dispatch pass's spawn loop.
type dispatcher struct {
	c          *Conn
	o          DispatchOptions
	res        *DispatchResult
	capacity   int // -1 = unlimited
	started    int
	perProfile map[string]int
	wsRoot     string
}

// consider runs one candidate task of a lane through the dispatch steps:
// auto-assign, the admission checks, then (not in a dry run) claim and
// spawn.
func (d *dispatcher) consider(ctx context.Context, t Task, lane string) error {
	if err := d.autoAssign(ctx, &t, lane); err != nil {
		return err
	}
	if ok, err := d.admit(ctx, t, lane); err != nil || !ok {
		return err
	}
	if d.o.DryRun {
		d.res.WouldSpawn = append(d.res.WouldSpawn, t.ID)
		d.started++
		d.perProfile[t.Assignee]++
		return nil
	}
	return d.claimAndSpawn(ctx, t, lane)
}

// autoAssign gives an unassigned ready task the default assignee (in a
// dry run only on t).
func (d *dispatcher) autoAssign(ctx context.Context, t *Task, lane string) error {
	o := d.o
	if lane != readyLane || t.Assignee != "" || o.DefaultAssignee == "" {
		return nil
	}
	if o.DryRun {
		t.Assignee = normAssignee(o.DefaultAssignee)
		return nil
	}
	ok, err := AssignTask(ctx, d.c, t.ID, o.DefaultAssignee)
	if ok && err == nil {
		t.Assignee = normAssignee(o.DefaultAssignee)
		d.res.AutoAssigned = append(d.res.AutoAssigned, t.ID)
	}
	return err
}

// admit reports whether t may be spawned: assigned to a spawnable
// profile, within the capacity and the per-profile cap, and let through by
// the respawn guard (whose refusal is recorded unless in a dry run). Each
// refusal is noted in the result.
func (d *dispatcher) admit(ctx context.Context, t Task, lane string) (bool, error) {
	o, res := d.o, d.res
	if t.Assignee == "" {
		res.SkippedUnassigned = append(res.SkippedUnassigned, t.ID)
		return false, nil
	}
	if o.Spawnable != nil && !o.Spawnable(t.Assignee) {
		res.SkippedNonspawnable = append(res.SkippedNonspawnable, t.ID)
		return false, nil
	}
	if d.capacity >= 0 && d.started >= d.capacity {
		res.SkippedCapacity = append(res.SkippedCapacity, t.ID)
		return false, nil
	}
	if n := d.perProfile[t.Assignee]; o.MaxInProgressPerProfile > 0 && n >= o.MaxInProgressPerProfile {
		res.SkippedPerProfileCapped = append(res.SkippedPerProfileCapped, ProfileCapped{t.ID, t.Assignee, n})
		return false, nil
	}
	if o.NoRespawnGuard {
		return true, nil
	}
	reason, err := CheckRespawnGuard(ctx, d.c, t.ID, GuardOptions{Lane: lane, RateLimitCooldown: o.RateLimitCooldown})
	if err != nil || reason == "" {
		return err == nil, err
	}
	res.RespawnGuarded = append(res.RespawnGuarded, GuardedTask{t.ID, reason})
	if !o.DryRun {
		return false, recordRespawnGuarded(ctx, d.c, t.ID, reason, lane)
	}
	return false, nil
}

// claimAndSpawn claims t in its lane and spawns its worker; a failed
// spawn counts a failure (releasing the claim and ending the run).
func (d *dispatcher) claimAndSpawn(ctx context.Context, t Task, lane string) error {
	c, o, res := d.c, d.o, d.res
	claim := ClaimTask
	if lane == reviewLane {
		claim = ClaimReviewTask
	}
	claimed, err := claim(ctx, c, t.ID, ClaimOptions{TTL: o.TTL, Claimer: o.Claimer})
	if err != nil {
		return err
	}
	if claimed == nil {
		res.LostClaim = append(res.LostClaim, t.ID)
		return nil
	}
	d.started++
	d.perProfile[t.Assignee]++
	ws, pid, err := d.spawn(ctx, *claimed, lane)
	if err != nil {
		res.SpawnFailed = append(res.SpawnFailed, t.ID)
		blocked, ferr := recordTaskFailure(ctx, c, t.ID, "spawn failed: "+err.Error(),
			failureOpts{outcome: OutcomeSpawnFailed, limit: o.FailureLimit, releaseClaim: true, endRun: true})
		if ferr != nil {
			return ferr
		}
		if blocked {
			res.AutoBlocked = append(res.AutoBlocked, t.ID)
		}
		return nil
	}
	if err := setWorkerPID(ctx, c, *claimed, pid, ws); err != nil {
		return err
	}
	res.Spawned = append(res.Spawned, SpawnedTask{ID: t.ID, PID: pid, Workspace: ws, Lane: lane})
	return nil
}

// spawn resolves the claimed task's workspace and starts its worker (a
// review-lane worker with the review skill only).
func (d *dispatcher) spawn(ctx context.Context, claimed Task, lane string) (ws string, pid int, err error) {
	ws, err = resolveWorkspace(ctx, d.c, claimed, d.wsRoot)
	if err != nil {
		return ws, 0, err
	}
	if d.o.Spawner == nil {
		return ws, 0, fmt.Errorf("kanbancore: no spawner configured")
	}
	spawnTask := claimed
	if lane == reviewLane {
		spawnTask.Skills = `["` + ReviewSkill + `"]`
	}
	spawnTask.WorkspacePath = ws
	pid, err = d.o.Spawner.Spawn(ctx, spawnTask, ws)
	return ws, pid, err
}

// resolveWorkspace returns (creating if needed) the task's workspace and
// persists it: scratch → <wsRoot>/<id>; dir and worktree use the task's path.
func resolveWorkspace(ctx context.Context, c *Conn, t Task, wsRoot string) (string, error) {
	ws := t.WorkspacePath
	if ws == "" {
		if t.WorkspaceKind != WorkspaceScratch {
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
		if one, err := tx.execOne(ctx, `UPDATE tasks SET worker_pid=?, worker_started_at=? WHERE id=? AND status='running' AND claim_lock=?`,
			pid, now, t.ID, t.ClaimLock); err != nil || !one {
			return err
		}
		tx.Updated("tasks", t.ID)
		if t.CurrentRunID != 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE task_runs SET worker_pid=? WHERE id=? AND ended_at IS NULL`, pid, t.CurrentRunID); err != nil {
				return err
			}
		}
		return addEvent(ctx, tx, t.ID, t.CurrentRunID, EventSpawned, map[string]any{"pid": pid, "workspace": ws})
	})
}
