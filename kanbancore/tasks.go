package kanbancore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Task statuses (the original's VALID_STATUSES).
const (
	StatusTriage    = "triage"
	StatusTodo      = "todo"
	StatusScheduled = "scheduled"
	StatusReady     = "ready"
	StatusRunning   = "running"
	StatusBlocked   = "blocked"
	StatusReview    = "review"
	StatusDone      = "done"
	StatusArchived  = "archived"
)

// ValidStatuses lists every task status.
var ValidStatuses = []string{StatusTriage, StatusTodo, StatusScheduled, StatusReady, StatusRunning,
	StatusBlocked, StatusReview, StatusDone, StatusArchived}

// Constants of the original (board-time durations live in Switches).
const (
	DefaultClaimTTL               = 900 * time.Second
	DefaultFailureLimit           = 2
	BlockRecurrenceLimit          = 2
	ClaimHeartbeatMaxStaleSeconds = 3600
	ReclaimDeferGraceSeconds      = 120
	RateLimitExitCode             = 75
)

// Task is one row of tasks. Integer fields use 0 for NULL.
type Task struct {
	ID                  string `json:"id"`
	Title               string `json:"title"`
	Body                string `json:"body,omitempty"`
	Assignee            string `json:"assignee,omitempty"`
	Status              string `json:"status"`
	Priority            int64  `json:"priority"`
	CreatedBy           string `json:"created_by,omitempty"`
	CreatedAt           int64  `json:"created_at"`
	StartedAt           int64  `json:"started_at,omitempty"`
	CompletedAt         int64  `json:"completed_at,omitempty"`
	WorkspaceKind       string `json:"workspace_kind"`
	WorkspacePath       string `json:"workspace_path,omitempty"`
	BranchName          string `json:"branch_name,omitempty"`
	ProjectID           string `json:"project_id,omitempty"`
	ClaimLock           string `json:"claim_lock,omitempty"`
	ClaimExpires        int64  `json:"claim_expires,omitempty"`
	Tenant              string `json:"tenant,omitempty"`
	Result              string `json:"result,omitempty"`
	IdempotencyKey      string `json:"idempotency_key,omitempty"`
	ConsecutiveFailures int64  `json:"consecutive_failures"`
	WorkerPID           int    `json:"worker_pid,omitempty"`
	LastFailureError    string `json:"last_failure_error,omitempty"`
	MaxRuntimeSeconds   int64  `json:"max_runtime_seconds,omitempty"`
	LastHeartbeatAt     int64  `json:"last_heartbeat_at,omitempty"`
	CurrentRunID        int64  `json:"current_run_id,omitempty"`
	Skills              string `json:"skills,omitempty"`
	MaxRetries          int64  `json:"max_retries,omitempty"` // 0 = NULL (use the dispatcher's limit)
	SessionID           string `json:"session_id,omitempty"`
	BlockKind           string `json:"block_kind,omitempty"`
	BlockRecurrences    int64  `json:"block_recurrences"`
}

const taskCols = `id, title, body, assignee, status, priority, created_by, created_at, started_at, completed_at,
	workspace_kind, workspace_path, branch_name, project_id, claim_lock, claim_expires, tenant, result,
	idempotency_key, consecutive_failures, worker_pid, last_failure_error, max_runtime_seconds,
	last_heartbeat_at, current_run_id, skills, max_retries, session_id, block_kind, block_recurrences`

func scanTask(s rowScanner) (Task, error) {
	var t Task
	var body, assignee, createdBy, wsPath, branch, project, lock, tenant, result, idem, lastErr, skills, session, blockKind sql.NullString
	var prio, started, completed, exp, pid, maxrt, hb, cur, maxRetries, failures, recur sql.NullInt64
	err := s.Scan(&t.ID, &t.Title, &body, &assignee, &t.Status, &prio, &createdBy, &t.CreatedAt, &started, &completed,
		&t.WorkspaceKind, &wsPath, &branch, &project, &lock, &exp, &tenant, &result,
		&idem, &failures, &pid, &lastErr, &maxrt, &hb, &cur, &skills, &maxRetries, &session, &blockKind, &recur)
	t.Body, t.Assignee, t.CreatedBy, t.WorkspacePath, t.BranchName, t.ProjectID = body.String, assignee.String, createdBy.String, wsPath.String, branch.String, project.String
	t.ClaimLock, t.Tenant, t.Result, t.IdempotencyKey, t.LastFailureError = lock.String, tenant.String, result.String, idem.String, lastErr.String
	t.Skills, t.SessionID, t.BlockKind = skills.String, session.String, blockKind.String
	t.Priority, t.StartedAt, t.CompletedAt, t.ClaimExpires, t.WorkerPID = prio.Int64, started.Int64, completed.Int64, exp.Int64, int(pid.Int64)
	t.MaxRuntimeSeconds, t.LastHeartbeatAt, t.CurrentRunID, t.MaxRetries = maxrt.Int64, hb.Int64, cur.Int64, maxRetries.Int64
	t.ConsecutiveFailures, t.BlockRecurrences = failures.Int64, recur.Int64
	return t, err
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// rowScanner is what scanTask, scanRun and the other row decoders read from.
type rowScanner interface{ Scan(...any) error }

// queryAll runs query and decodes every row with scan, in order.
func queryAll[T any](ctx context.Context, q querier, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// forTask narrows query to one task's rows when taskID is not "" and orders
// them by id (oldest first).
func forTask(query, taskID string) (string, []any) {
	if taskID == "" {
		return query + ` ORDER BY id`, nil
	}
	return query + ` WHERE task_id=? ORDER BY id`, []any{taskID}
}

// GetTask returns a task, or (nil, nil) when it does not exist.
func GetTask(ctx context.Context, c *Conn, id string) (*Task, error) {
	return getTask(ctx, c, id)
}

func getTask(ctx context.Context, q querier, id string) (*Task, error) {
	t, err := scanTask(q.QueryRowContext(ctx, `SELECT `+taskCols+` FROM tasks WHERE id=?`, id))
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func taskExists(ctx context.Context, q querier, id string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM tasks WHERE id=?`, id).Scan(&n)
	return n > 0, err
}

func taskStatus(ctx context.Context, q querier, id string) (string, error) {
	var s string
	err := q.QueryRowContext(ctx, `SELECT status FROM tasks WHERE id=?`, id).Scan(&s)
	if err == sql.ErrNoRows {
		return "", nil
	}
	return s, err
}

// ListOptions filter ListTasks.
type ListOptions struct {
	Assignee        string // case-insensitive
	Status          string
	Tenant          string
	IncludeArchived bool
	// OrderBy is a TaskOrder: "" / "priority" (priority DESC, created_at
	// ASC), "created" (created_at ASC), "id".
	OrderBy string
}

// ListTasks lists tasks; archived tasks are hidden unless asked for.
func ListTasks(ctx context.Context, c *Conn, o ListOptions) ([]Task, error) {
	q := `SELECT ` + taskCols + ` FROM tasks WHERE 1=1`
	var args []any
	if o.Assignee != "" {
		q += ` AND assignee=?`
		args = append(args, normAssignee(o.Assignee))
	}
	if o.Status != "" {
		q += ` AND status=?`
		args = append(args, o.Status)
	} else if !o.IncludeArchived {
		q += ` AND status!='archived'`
	}
	if o.Tenant != "" {
		q += ` AND tenant=?`
		args = append(args, o.Tenant)
	}
	switch TaskOrder(o.OrderBy) {
	case "", OrderPriority:
		q += ` ORDER BY priority DESC, created_at ASC, id ASC`
	case OrderCreated:
		q += ` ORDER BY created_at ASC, id ASC`
	case OrderID:
		q += ` ORDER BY id`
	default:
		return nil, fmt.Errorf("%w: order_by %q", ErrInvalid, o.OrderBy)
	}
	return queryAll(ctx, c, scanTask, q, args...)
}

// TaskOrder names the order ListTasks returns tasks in
// (ListOptions.OrderBy, the CLI's --order-by).
type TaskOrder string

// TaskOrder values.
const (
	OrderPriority TaskOrder = "priority" // priority DESC, created_at ASC (the default, also "")
	OrderCreated  TaskOrder = "created"  // created_at ASC
	OrderID       TaskOrder = "id"
)

func normAssignee(a string) string { return strings.ToLower(strings.TrimSpace(a)) }

// NewTaskID returns "t_" + 8 hex digits.
func NewTaskID() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "t_" + hex.EncodeToString(b[:])
}

var (
	hostOnce sync.Once
	hostName string
)

// Hostname is the host part of claim locks ("host-local" means a lock that
// starts with Hostname()+":").
func Hostname() string {
	hostOnce.Do(func() {
		hostName, _ = os.Hostname()
		if hostName == "" {
			hostName = "localhost"
		}
	})
	return hostName
}

// ClaimerID is this process's claim lock, "<hostname>:<pid>".
func ClaimerID() string { return fmt.Sprintf("%s:%d", Hostname(), os.Getpid()) }

func isHostLocal(lock string) bool { return strings.HasPrefix(lock, Hostname()+":") }

// CreateOptions are create_task's arguments.
type CreateOptions struct {
	ID             string // optional explicit id (default: NewTaskID)
	Title          string
	Body           string
	Assignee       string
	CreatedBy      string
	WorkspaceKind  string // scratch (default) | worktree | dir
	WorkspacePath  string
	BranchName     string // only with worktree
	Tenant         string
	Priority       int64
	Parents        []string
	Triage         bool
	IdempotencyKey string
	MaxRuntime     time.Duration // 0 = none
	Skills         []string
	MaxRetries     int64  // 0 = dispatcher's limit
	InitialStatus  string // "" or "blocked"
	SessionID      string
	ProjectID      string
}

// Workspace kinds (Task.WorkspaceKind, CreateOptions.WorkspaceKind).
const (
	WorkspaceScratch  = "scratch" // the default: a scratch directory the dispatcher makes
	WorkspaceWorktree = "worktree"
	WorkspaceDir      = "dir"
)

var workspaceKinds = map[string]bool{WorkspaceScratch: true, WorkspaceWorktree: true, WorkspaceDir: true}

// CreateTask inserts a task and its parent links in one write transaction
// and returns its id. Status: triage when asked; blocked with
// InitialStatus "blocked"; todo when a parent is not done; else ready. An
// idempotency key that matches a non-archived task returns that task's id
// without writing (looked up before the transaction, as the original does:
// two racing creators can both insert).
func CreateTask(ctx context.Context, c *Conn, o CreateOptions) (string, error) {
	o, err := o.normalize()
	if err != nil {
		return "", err
	}
	if o.IdempotencyKey != "" {
		var id string
		err := c.QueryRowContext(ctx, `SELECT id FROM tasks WHERE idempotency_key=? AND status!='archived'
			ORDER BY created_at DESC LIMIT 1`, o.IdempotencyKey).Scan(&id)
		if err == nil {
			return id, nil
		}
		if err != sql.ErrNoRows {
			return "", err
		}
	}
	id := o.ID
	if id == "" {
		id = NewTaskID()
	}
	err = c.WriteTxn(ctx, "create_task", func(tx *Tx) error {
		status, err := o.initialStatus(ctx, tx)
		if err != nil {
			return err
		}
		if err := insertTask(ctx, tx, id, status, o); err != nil {
			return err
		}
		payload := map[string]any{"assignee": nullStr(o.Assignee), "status": status, "parents": o.Parents,
			"tenant": nullStr(o.Tenant), "branch_name": nullStr(o.BranchName), "skills": o.Skills}
		if err := addEvent(ctx, tx, id, 0, EventCreated, payload); err != nil {
			return err
		}
		if status == StatusBlocked {
			return addEvent(ctx, tx, id, 0, EventBlocked, map[string]any{"reason": "initial_status", "kind": nil})
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// normalize validates CreateTask's options and returns them with the
// title trimmed, the workspace kind defaulted, the assignee normalized and
// the parents deduplicated.
func (o CreateOptions) normalize() (CreateOptions, error) {
	o.Title = strings.TrimSpace(o.Title)
	if o.Title == "" {
		return o, fmt.Errorf("%w: title is required", ErrInvalid)
	}
	if o.WorkspaceKind == "" {
		o.WorkspaceKind = WorkspaceScratch
	}
	if !workspaceKinds[o.WorkspaceKind] {
		return o, fmt.Errorf("%w: workspace_kind %q (want scratch, worktree or dir)", ErrInvalid, o.WorkspaceKind)
	}
	if o.BranchName != "" && o.WorkspaceKind != WorkspaceWorktree {
		return o, fmt.Errorf("%w: branch_name requires workspace_kind=worktree", ErrInvalid)
	}
	if o.InitialStatus != "" && o.InitialStatus != StatusBlocked && o.InitialStatus != StatusRunning {
		return o, fmt.Errorf("%w: initial_status %q", ErrInvalid, o.InitialStatus)
	}
	o.Assignee = normAssignee(o.Assignee)
	o.Parents = dedupe(o.Parents)
	return o, nil
}

// initialStatus returns a new task's status: triage when asked, blocked
// with InitialStatus "blocked", todo when a parent is not done, else
// ready. An unknown parent is an error.
func (o CreateOptions) initialStatus(ctx context.Context, tx *Tx) (string, error) {
	status := StatusReady
	for _, p := range o.Parents {
		ps, err := taskStatus(ctx, tx.Conn, p)
		if err != nil {
			return "", err
		}
		if ps == "" {
			return "", fmt.Errorf("%w: %s", ErrUnknownParent, p)
		}
		// PR-era check: only done satisfies a parent at create time.
		if ps != StatusDone {
			status = StatusTodo
		}
	}
	switch {
	case o.Triage:
		status = StatusTriage
	case o.InitialStatus == StatusBlocked:
		status = StatusBlocked
	}
	return status, nil
}

// insertTask inserts the tasks row of a new task (o normalized) and its
// parent links.
func insertTask(ctx context.Context, tx *Tx, id, status string, o CreateOptions) error {
	var skills any
	if len(o.Skills) > 0 {
		b, _ := json.Marshal(o.Skills)
		skills = string(b)
	}
	var maxrt any
	if o.MaxRuntime > 0 {
		maxrt = int64(o.MaxRuntime / time.Second)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO tasks(id, title, body, assignee, status, priority, created_by, created_at,
			workspace_kind, workspace_path, branch_name, project_id, tenant, idempotency_key, max_runtime_seconds,
			skills, max_retries, session_id) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		id, o.Title, nullStr(o.Body), nullStr(o.Assignee), status, o.Priority, nullStr(o.CreatedBy), tx.Now().Unix(),
		o.WorkspaceKind, nullStr(o.WorkspacePath), nullStr(o.BranchName), nullStr(o.ProjectID), nullStr(o.Tenant),
		nullStr(o.IdempotencyKey), maxrt, skills, nullInt(o.MaxRetries), nullStr(o.SessionID))
	if err != nil {
		return err
	}
	tx.Inserted("tasks", id)
	tx.Transition(id, "", status)
	for _, p := range o.Parents {
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO task_links(parent_id, child_id) VALUES(?,?)`, p, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			tx.Inserted("task_links", p+">"+id)
		}
	}
	return nil
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		s = strings.TrimSpace(s)
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// ClaimOptions are claim_task's arguments.
type ClaimOptions struct {
	TTL     time.Duration // 0 = Switches.ClaimTTL (900 s by default); at least 1 s
	Claimer string        // default ClaimerID()
}

// claimParams resolves o's claim lock (default ClaimerID()) and TTL in
// seconds.
func (c *Conn) claimParams(o ClaimOptions) (claimer string, ttl int64) {
	claimer = o.Claimer
	if claimer == "" {
		claimer = ClaimerID()
	}
	return claimer, c.claimTTL(o.TTL)
}

// claimCAS is the claim step ClaimTask and ClaimReviewTask share, inside tx:
// it ends a dangling run of task id, then moves it (read as t) from status
// from to running under the claim lock (claim_expires = now+ttl, started_at
// kept from the first claim), opens a run and emits `claimed`, whose payload
// gets extra's entries too. It reports false when the compare-and-swap lost.
func claimCAS(ctx context.Context, tx *Tx, id string, t *Task, from, claimer string, ttl int64, extra map[string]any) (bool, error) {
	if err := reclaimDanglingRun(ctx, tx, id); err != nil {
		return false, err
	}
	now := tx.Now().Unix()
	expires := now + ttl
	if one, err := tx.execOne(ctx, `UPDATE tasks SET status='running', claim_lock=?, claim_expires=?,
		started_at=COALESCE(started_at, ?), worker_pid=NULL, last_heartbeat_at=NULL
		WHERE id=? AND status=? AND claim_lock IS NULL`, claimer, expires, now, id, from); err != nil || !one {
		return false, err
	}
	tx.Transition(id, from, StatusRunning)
	rid, err := openRun(ctx, tx, id, t.Assignee, claimer, expires, nullInt(t.MaxRuntimeSeconds), now)
	if err != nil {
		return false, err
	}
	payload := map[string]any{"lock": claimer, "expires": expires, "run_id": rid}
	for k, v := range extra {
		payload[k] = v
	}
	return true, addEvent(ctx, tx, id, rid, EventClaimed, payload)
}

func (c *Conn) claimTTL(ttl time.Duration) int64 {
	if ttl <= 0 {
		ttl = c.opts.Switches.ClaimTTL
	}
	if ttl <= 0 {
		ttl = DefaultClaimTTL
	}
	s := int64(ttl / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// ClaimTask moves a ready task to running in one write transaction: it takes
// the claim lock, sets claim_expires = now+TTL and started_at =
// COALESCE(started_at, now) (the FIRST claim), opens a run and emits
// `claimed`. A task with an unfinished parent is demoted to todo with a
// `claim_rejected` event, and that demotion commits. It returns nil when the
// task was not claimable or the compare-and-swap lost the race.
func ClaimTask(ctx context.Context, c *Conn, id string, o ClaimOptions) (*Task, error) {
	claimer, ttl := c.claimParams(o)
	var won bool
	err := c.WriteTxn(ctx, "claim_task", func(tx *Tx) error {
		t, err := getTask(ctx, tx.Conn, id)
		if err != nil || t == nil {
			return err
		}
		undone, err := unfinishedParents(ctx, tx.Conn, id)
		if err != nil {
			return err
		}
		if len(undone) > 0 {
			one, err := tx.execOne(ctx, `UPDATE tasks SET status='todo' WHERE id=? AND status='ready'`, id)
			if err != nil {
				return err
			}
			if one {
				tx.Transition(id, StatusReady, StatusTodo)
				return addEvent(ctx, tx, id, 0, EventClaimRejected, map[string]any{"reason": "parents_not_done", "parents": undone})
			}
			return nil
		}
		if t.Status != StatusReady {
			return nil
		}
		won, err = claimCAS(ctx, tx, id, t, StatusReady, claimer, ttl, nil)
		return err
	})
	if err != nil || !won {
		return nil, err
	}
	return GetTask(ctx, c, id)
}

// HeartbeatOptions are heartbeat_claim's arguments.
type HeartbeatOptions struct {
	TTL     time.Duration
	Claimer string
}

// HeartbeatClaim extends a running task's claim (CAS on the claim lock) and
// mirrors the new expiry onto the run. False when the claim is not ours.
func HeartbeatClaim(ctx context.Context, c *Conn, id string, o HeartbeatOptions) (bool, error) {
	claimer, ttl := c.claimParams(ClaimOptions(o))
	var ok bool
	err := c.WriteTxn(ctx, "heartbeat_claim", func(tx *Tx) error {
		expires := tx.Now().Unix() + ttl
		if one, err := tx.execOne(ctx, `UPDATE tasks SET claim_expires=? WHERE id=? AND status='running' AND claim_lock=?`, expires, id, claimer); err != nil || !one {
			return err
		}
		ok = true
		tx.Updated("tasks", id)
		_, err := tx.ExecContext(ctx, `UPDATE task_runs SET claim_expires=? WHERE id=(SELECT current_run_id FROM tasks WHERE id=?) AND ended_at IS NULL`, expires, id)
		return err
	})
	return ok, err
}

// HeartbeatWorker records a worker heartbeat on the task and its run and
// emits `heartbeat`. It needs status running, and a matching current run
// when expectedRunID is not 0.
func HeartbeatWorker(ctx context.Context, c *Conn, id, note string, expectedRunID int64) (bool, error) {
	var ok bool
	err := c.WriteTxn(ctx, "heartbeat_worker", func(tx *Tx) error {
		now := tx.Now().Unix()
		q := `UPDATE tasks SET last_heartbeat_at=? WHERE id=? AND status='running'`
		args := []any{now, id}
		if expectedRunID != 0 {
			q += ` AND current_run_id=?`
			args = append(args, expectedRunID)
		}
		if one, err := tx.execOne(ctx, q, args...); err != nil || !one {
			return err
		}
		ok = true
		tx.Updated("tasks", id)
		var rid sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT current_run_id FROM tasks WHERE id=?`, id).Scan(&rid); err != nil {
			return err
		}
		if rid.Valid {
			if _, err := tx.ExecContext(ctx, `UPDATE task_runs SET last_heartbeat_at=? WHERE id=?`, now, rid.Int64); err != nil {
				return err
			}
		}
		var p map[string]any
		if note != "" {
			p = map[string]any{"note": note}
		}
		return addEvent(ctx, tx, id, rid.Int64, EventHeartbeat, p)
	})
	return ok, err
}

// CompleteOptions are complete_task's arguments.
type CompleteOptions struct {
	Result        string
	Summary       string
	Metadata      map[string]any
	CreatedCards  []string // verified to exist before completing
	ExpectedRunID int64
	FailureLimit  int // for the recompute_ready that follows
	// WorkspacesRoot is the managed scratch-workspaces root the cleanup
	// after completion may remove from: "" = $SQLCHAOS_KANBAN_WORKSPACES_ROOT,
	// else <db dir>/workspaces.
	WorkspacesRoot string
}

// CompleteTask marks a running, ready or blocked task done. Like the
// original it is several transactions: the completion itself (end the run
// as `completed`, or synthesise a zero-length run; emit `completed`), then
// clearing the failure counter, then recompute_ready, then removal of the
// scratch workspace (only under the managed workspaces root; deferred while
// a child task is unfinished, and done for a parent whose last child this
// completion finished). A crash between them leaves children in todo until
// the next recompute.
func CompleteTask(ctx context.Context, c *Conn, id string, o CompleteOptions) (bool, error) {
	if len(o.CreatedCards) > 0 {
		var phantom []string
		for _, card := range dedupe(o.CreatedCards) {
			ok, err := taskExists(ctx, c, card)
			if err != nil {
				return false, err
			}
			if !ok {
				phantom = append(phantom, card)
			}
		}
		if len(phantom) > 0 {
			err := c.WriteTxn(ctx, "complete_task_hallucination", func(tx *Tx) error {
				if ok, err := taskExists(ctx, tx.Conn, id); err != nil || !ok {
					return err
				}
				return addEvent(ctx, tx, id, 0, EventCompletionBlockedHallucination, map[string]any{"phantom_cards": phantom})
			})
			if err != nil {
				return false, err
			}
			return false, fmt.Errorf("%w: %s", ErrHallucinatedCard, strings.Join(phantom, ", "))
		}
	}
	var ok bool
	err := c.WriteTxn(ctx, "complete_task", func(tx *Tx) error {
		from, err := taskStatus(ctx, tx.Conn, id)
		if err != nil || from == "" {
			return err
		}
		now := tx.Now().Unix()
		q := `UPDATE tasks SET status='done', result=?, completed_at=?, claim_lock=NULL, claim_expires=NULL,
			worker_pid=NULL, block_kind=NULL, block_recurrences=0
			WHERE id=? AND status IN ('running','ready','blocked')`
		args := []any{nullStr(o.Result), now, id}
		if o.ExpectedRunID != 0 {
			q += ` AND current_run_id=?`
			args = append(args, o.ExpectedRunID)
		}
		if one, err := tx.execOne(ctx, q, args...); err != nil || !one {
			return err
		}
		ok = true
		tx.Transition(id, from, StatusDone)
		summary := firstLine(o.Summary, 400)
		rid, err := endRun(ctx, tx, id, runEnd{outcome: OutcomeCompleted, status: "done", summary: summary, metadata: o.Metadata})
		if err != nil {
			return err
		}
		if rid == 0 {
			// No open run: synthesise a zero-length one so every completion has a run.
			res, err := tx.ExecContext(ctx, `INSERT INTO task_runs(task_id, profile, status, started_at, ended_at, outcome, summary)
				SELECT id, assignee, 'done', ?, ?, 'completed', ? FROM tasks WHERE id=?`, now, now, nullStr(summary), id)
			if err != nil {
				return err
			}
			rid, _ = res.LastInsertId()
			tx.InsertedFor("task_runs", fmt.Sprint(rid), id)
		}
		return addEvent(ctx, tx, id, rid, EventCompleted, map[string]any{"result_len": len(o.Result), "summary": nullStr(summary)})
	})
	if err != nil || !ok {
		return ok, err
	}
	if err := clearFailureCounter(ctx, c, id); err != nil {
		return true, err
	}
	if _, err := RecomputeReady(ctx, c, o.FailureLimit); err != nil {
		return true, err
	}
	cleanupAfterComplete(ctx, c, id, o.WorkspacesRoot)
	return true, nil
}

// moveEndingRun runs inside tx the status-changing compare-and-swap q (with
// args) on task id; when it changed exactly one row it records the
// transition from → to, ends the task's open run with end and emits event
// kind with payload(), built after the run is ended. won is true once the row
// changed, even when ending the run or adding the event then fails.
func moveEndingRun(ctx context.Context, tx *Tx, id, from, to, q string, args []any, end runEnd, kind EventKind, payload func() map[string]any) (won bool, err error) {
	if one, err := tx.execOne(ctx, q, args...); err != nil || !one {
		return false, err
	}
	tx.Transition(id, from, to)
	rid, err := endRun(ctx, tx, id, end)
	if err != nil {
		return true, err
	}
	return true, addEvent(ctx, tx, id, rid, kind, payload())
}

func firstLine(s string, max int) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > max {
		s = s[:max]
	}
	return s
}

func clearFailureCounter(ctx context.Context, c *Conn, id string) error {
	return c.WriteTxn(ctx, "clear_failure_counter", func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tasks SET consecutive_failures=0, last_failure_error=NULL
			WHERE id=? AND (consecutive_failures!=0 OR last_failure_error IS NOT NULL)`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			tx.Updated("tasks", id)
		}
		return nil
	})
}

// BlockOptions are block_task's arguments.
type BlockOptions struct {
	Reason        string
	Kind          string // "dependency" routes to todo; the same kind twice routes to triage
	ExpectedRunID int64
}

// BlockTask moves a running or ready task to blocked (or todo for kind
// "dependency", or triage when the same kind recurs BlockRecurrenceLimit
// times), clearing the claim and ending the run as `blocked`.
func BlockTask(ctx context.Context, c *Conn, id string, o BlockOptions) (bool, error) {
	var ok bool
	err := c.WriteTxn(ctx, "block_task", func(tx *Tx) error {
		t, err := getTask(ctx, tx.Conn, id)
		if err != nil || t == nil {
			return err
		}
		if t.Status != StatusRunning && t.Status != StatusReady {
			return nil
		}
		target := StatusBlocked
		recur := int64(0)
		if o.Kind != "" {
			recur = 1
			if t.BlockKind == o.Kind {
				recur = t.BlockRecurrences + 1
			}
		}
		switch {
		case o.Kind == "dependency":
			target = StatusTodo
		case o.Kind != "" && recur >= BlockRecurrenceLimit:
			target = StatusTriage
		}
		q := `UPDATE tasks SET status=?, claim_lock=NULL, claim_expires=NULL, worker_pid=NULL, block_kind=?, block_recurrences=?
			WHERE id=? AND status=?`
		args := []any{target, nullStr(o.Kind), recur, id, t.Status}
		if o.ExpectedRunID != 0 {
			q += ` AND current_run_id=?`
			args = append(args, o.ExpectedRunID)
		}
		ok, err = moveEndingRun(ctx, tx, id, t.Status, target, q, args,
			runEnd{outcome: OutcomeBlocked, summary: firstLine(o.Reason, 400)}, EventBlocked, func() map[string]any {
				return map[string]any{"reason": nullStr(o.Reason), "kind": nullStr(o.Kind),
					"recurrences": recur, "source_status": t.Status, "status": target}
			})
		return err
	})
	return ok, err
}

// UnblockTask moves a blocked or scheduled task to ready (todo when a parent
// is unfinished), resets the failure counter, closes any dangling run and
// emits `unblocked`.
func UnblockTask(ctx context.Context, c *Conn, id string) (bool, error) {
	var ok bool
	err := c.WriteTxn(ctx, "unblock_task", func(tx *Tx) error {
		from, err := taskStatus(ctx, tx.Conn, id)
		if err != nil || (from != StatusBlocked && from != StatusScheduled) {
			return err
		}
		undone, err := unfinishedParents(ctx, tx.Conn, id)
		if err != nil {
			return err
		}
		target := StatusReady
		if len(undone) > 0 {
			target = StatusTodo
		}
		if one, err := tx.execOne(ctx, `UPDATE tasks SET status=?, consecutive_failures=0, last_failure_error=NULL,
			claim_lock=NULL, claim_expires=NULL, worker_pid=NULL WHERE id=? AND status=?`, target, id, from); err != nil || !one {
			return err
		}
		ok = true
		tx.Transition(id, from, target)
		if err := reclaimDanglingRun(ctx, tx, id); err != nil {
			return err
		}
		return addEvent(ctx, tx, id, 0, EventUnblocked, map[string]any{"status": target, "source_status": from})
	})
	return ok, err
}

// ScheduleTask parks a todo/ready/running/blocked task in scheduled (a time
// delay the dispatcher never picks up); UnblockTask releases it.
func ScheduleTask(ctx context.Context, c *Conn, id string, until time.Time, reason string) (bool, error) {
	var ok bool
	err := c.WriteTxn(ctx, "schedule_task", func(tx *Tx) error {
		from, err := taskStatus(ctx, tx.Conn, id)
		if err != nil {
			return err
		}
		switch from {
		case StatusTodo, StatusReady, StatusRunning, StatusBlocked:
		default:
			return nil
		}
		ok, err = moveEndingRun(ctx, tx, id, from, StatusScheduled,
			`UPDATE tasks SET status='scheduled', claim_lock=NULL, claim_expires=NULL, worker_pid=NULL
			WHERE id=? AND status=?`, []any{id, from},
			runEnd{outcome: OutcomeScheduled}, EventScheduled, func() map[string]any {
				var u any
				if !until.IsZero() {
					u = until.Unix()
				}
				return map[string]any{"until": u, "reason": nullStr(reason), "source_status": from}
			})
		return err
	})
	return ok, err
}

// AssignTask sets a task's assignee (lower-cased). It refuses while the task
// is running with a claim; a new assignee resets the failure counter.
func AssignTask(ctx context.Context, c *Conn, id, assignee string) (bool, error) {
	assignee = normAssignee(assignee)
	var ok bool
	err := c.WriteTxn(ctx, "assign_task", func(tx *Tx) error {
		t, err := getTask(ctx, tx.Conn, id)
		if err != nil || t == nil {
			return err
		}
		if t.Status == StatusRunning && t.ClaimLock != "" {
			return fmt.Errorf("%w: %s (claimed by %s)", ErrTaskRunning, id, t.ClaimLock)
		}
		q := `UPDATE tasks SET assignee=? WHERE id=? AND status=?`
		if t.Assignee != assignee {
			q = `UPDATE tasks SET assignee=?, consecutive_failures=0, last_failure_error=NULL WHERE id=? AND status=?`
		}
		if one, err := tx.execOne(ctx, q, nullStr(assignee), id, t.Status); err != nil || !one {
			return err
		}
		ok = true
		tx.Updated("tasks", id)
		return addEvent(ctx, tx, id, 0, EventAssigned, map[string]any{"assignee": nullStr(assignee), "previous": nullStr(t.Assignee)})
	})
	return ok, err
}

// ArchiveTask archives a task from any other status (ending its run), then
// recomputes readiness: an archived parent counts as satisfied.
func ArchiveTask(ctx context.Context, c *Conn, id string) (bool, error) {
	var ok bool
	err := c.WriteTxn(ctx, "archive_task", func(tx *Tx) error {
		from, err := taskStatus(ctx, tx.Conn, id)
		if err != nil || from == "" || from == StatusArchived {
			return err
		}
		ok, err = moveEndingRun(ctx, tx, id, from, StatusArchived,
			`UPDATE tasks SET status='archived', claim_lock=NULL, claim_expires=NULL, worker_pid=NULL
			WHERE id=? AND status=?`, []any{id, from},
			runEnd{outcome: OutcomeArchived}, EventArchived, func() map[string]any {
				return map[string]any{"source_status": from}
			})
		return err
	})
	if err != nil || !ok {
		return ok, err
	}
	_, err = RecomputeReady(ctx, c, 0)
	return true, err
}

// DeleteTask hard-deletes a task from any status together with its links,
// comments, events, runs, attachments and subscriptions, then recomputes
// readiness. False when the task does not exist.
func DeleteTask(ctx context.Context, c *Conn, id string) (bool, error) {
	ok, err := deleteTask(ctx, c, id, false)
	if err != nil || !ok {
		return ok, err
	}
	_, err = RecomputeReady(ctx, c, 0)
	return true, err
}

// DeleteArchivedTask deletes an archived task and its related rows; it
// returns false for a task that is not archived.
func DeleteArchivedTask(ctx context.Context, c *Conn, id string) (bool, error) {
	return deleteTask(ctx, c, id, true)
}

func deleteTask(ctx context.Context, c *Conn, id string, archivedOnly bool) (bool, error) {
	op := "delete_task"
	if archivedOnly {
		op = "delete_archived_task"
	}
	var ok bool
	err := c.WriteTxn(ctx, op, func(tx *Tx) error {
		from, err := taskStatus(ctx, tx.Conn, id)
		if err != nil || from == "" || (archivedOnly && from != StatusArchived) {
			return err
		}
		if err := deleteRelations(ctx, tx, id); err != nil {
			return err
		}
		q := `DELETE FROM tasks WHERE id=?`
		args := []any{id}
		if archivedOnly {
			q += ` AND status='archived'`
		}
		one, err := tx.execOne(ctx, q, args...)
		if err != nil {
			return err
		}
		if !one {
			return fmt.Errorf("kanbancore: %s %s: task vanished inside the transaction", op, id)
		}
		ok = true
		tx.Deleted("tasks", id)
		tx.Transition(id, from, "")
		return nil
	})
	return ok, err
}

// deleteRelations is the hand-made cascade (the schema has no foreign keys).
func deleteRelations(ctx context.Context, tx *Tx, id string) error {
	links, err := tx.QueryContext(ctx, `SELECT parent_id, child_id FROM task_links WHERE parent_id=? OR child_id=?`, id, id)
	if err != nil {
		return err
	}
	var keys []string
	for links.Next() {
		var p, ch string
		if err := links.Scan(&p, &ch); err != nil {
			links.Close()
			return err
		}
		keys = append(keys, p+">"+ch)
	}
	links.Close()
	for _, k := range keys {
		tx.Deleted("task_links", k)
	}
	for _, tbl := range []struct{ table, q string }{
		{"task_links", `DELETE FROM task_links WHERE parent_id=? OR child_id=?`},
		{"task_comments", `DELETE FROM task_comments WHERE task_id=?`},
		{"task_events", `DELETE FROM task_events WHERE task_id=?`},
		{"task_runs", `DELETE FROM task_runs WHERE task_id=?`},
		{"task_attachments", `DELETE FROM task_attachments WHERE task_id=?`},
		{"kanban_notify_subs", `DELETE FROM kanban_notify_subs WHERE task_id=?`},
	} {
		args := []any{id}
		if strings.Count(tbl.q, "?") == 2 {
			args = append(args, id)
		}
		res, err := tx.ExecContext(ctx, tbl.q, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 && tbl.table != "task_links" {
			tx.Deleted(tbl.table, "task:"+id)
		}
	}
	return nil
}

// ReclaimTask is the operator's reclaim: a running task's host-local worker
// is terminated, the claim released (running → ready), the run closed as
// `reclaimed` and the failure counter reset.
func ReclaimTask(ctx context.Context, c *Conn, id, reason string, p ProcessOps) (bool, error) {
	t, err := GetTask(ctx, c, id)
	if err != nil || t == nil || t.Status != StatusRunning {
		return false, err
	}
	var term terminateResult
	if t.WorkerPID > 0 && isHostLocal(t.ClaimLock) {
		term = p.terminate(t.WorkerPID)
	}
	var ok bool
	err = c.WriteTxn(ctx, "reclaim_task", func(tx *Tx) error {
		var err error
		ok, err = moveEndingRun(ctx, tx, id, StatusRunning, StatusReady,
			`UPDATE tasks SET status='ready', claim_lock=NULL, claim_expires=NULL, worker_pid=NULL,
			consecutive_failures=0, last_failure_error=NULL WHERE id=? AND status='running' AND claim_lock IS ?`, []any{id, nullStr(t.ClaimLock)},
			runEnd{outcome: OutcomeReclaimed, errText: "manual reclaim: " + reason, metadata: term.metadata()}, EventReclaimed,
			func() map[string]any {
				return map[string]any{"manual": true, "reason": nullStr(reason),
					"stale_lock": nullStr(t.ClaimLock), "worker_pid": nullInt(int64(t.WorkerPID))}
			})
		return err
	})
	return ok, err
}
