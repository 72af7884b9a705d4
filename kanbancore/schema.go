package kanbancore

import (
	"context"
	"fmt"
	"strings"
)

func init() { migrateHook = migrate }

// schemaSQL creates the tables and the indexes that do not depend on
// optional (migrated) columns. Like the original there are no FOREIGN KEY,
// CHECK or UNIQUE constraints besides primary keys; cascades are by hand.
var schemaSQL = []string{
	`CREATE TABLE IF NOT EXISTS tasks (
		id TEXT PRIMARY KEY,
		title TEXT NOT NULL,
		body TEXT,
		assignee TEXT,
		status TEXT NOT NULL,
		priority INTEGER DEFAULT 0,
		created_by TEXT,
		created_at INTEGER NOT NULL,
		started_at INTEGER,
		completed_at INTEGER,
		workspace_kind TEXT NOT NULL DEFAULT 'scratch',
		workspace_path TEXT,
		claim_lock TEXT,
		claim_expires INTEGER,
		result TEXT
	)`,
	`CREATE TABLE IF NOT EXISTS task_links (
		parent_id TEXT NOT NULL,
		child_id TEXT NOT NULL,
		PRIMARY KEY (parent_id, child_id)
	)`,
	`CREATE TABLE IF NOT EXISTS task_comments (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		task_id TEXT NOT NULL,
		author TEXT NOT NULL,
		body TEXT NOT NULL,
		created_at INTEGER NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS task_events (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		task_id TEXT NOT NULL,
		kind TEXT NOT NULL,
		payload TEXT,
		created_at INTEGER NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS task_runs (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		task_id TEXT NOT NULL,
		profile TEXT,
		step_key TEXT,
		status TEXT NOT NULL,
		claim_lock TEXT,
		claim_expires INTEGER,
		worker_pid INTEGER,
		max_runtime_seconds INTEGER,
		last_heartbeat_at INTEGER,
		started_at INTEGER NOT NULL,
		ended_at INTEGER,
		outcome TEXT,
		summary TEXT,
		metadata TEXT,
		error TEXT
	)`,
	`CREATE TABLE IF NOT EXISTS task_attachments (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		task_id TEXT NOT NULL,
		filename TEXT NOT NULL,
		stored_path TEXT NOT NULL,
		content_type TEXT,
		size INTEGER NOT NULL DEFAULT 0,
		uploaded_by TEXT,
		created_at INTEGER NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS kanban_notify_subs (
		task_id TEXT NOT NULL,
		platform TEXT NOT NULL,
		chat_id TEXT NOT NULL,
		thread_id TEXT NOT NULL DEFAULT '',
		user_id TEXT,
		created_at INTEGER NOT NULL,
		last_event_id INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (task_id, platform, chat_id, thread_id)
	)`,
	`CREATE INDEX IF NOT EXISTS idx_tasks_assignee_status ON tasks(assignee, status)`,
	`CREATE INDEX IF NOT EXISTS idx_tasks_status ON tasks(status)`,
	`CREATE INDEX IF NOT EXISTS idx_links_child ON task_links(child_id)`,
	`CREATE INDEX IF NOT EXISTS idx_links_parent ON task_links(parent_id)`,
	`CREATE INDEX IF NOT EXISTS idx_comments_task ON task_comments(task_id, created_at)`,
	`CREATE INDEX IF NOT EXISTS idx_events_task ON task_events(task_id, created_at)`,
	`CREATE INDEX IF NOT EXISTS idx_runs_task ON task_runs(task_id, started_at)`,
	`CREATE INDEX IF NOT EXISTS idx_runs_status ON task_runs(status)`,
	`CREATE INDEX IF NOT EXISTS idx_attachments_task ON task_attachments(task_id)`,
	`CREATE INDEX IF NOT EXISTS idx_notify_task ON kanban_notify_subs(task_id)`,
}

// optionalColumns are added by the migration when missing (a board created
// by an older build lacks them). The order matters only for readability.
var optionalColumns = []struct{ table, column, decl string }{
	{"tasks", "branch_name", "TEXT"},
	{"tasks", "project_id", "TEXT"},
	{"tasks", "tenant", "TEXT"},
	{"tasks", "idempotency_key", "TEXT"},
	{"tasks", "consecutive_failures", "INTEGER NOT NULL DEFAULT 0"},
	{"tasks", "worker_pid", "INTEGER"},
	{"tasks", "last_failure_error", "TEXT"},
	{"tasks", "max_runtime_seconds", "INTEGER"},
	{"tasks", "last_heartbeat_at", "INTEGER"},
	{"tasks", "current_run_id", "INTEGER"},
	{"tasks", "workflow_template_id", "TEXT"},
	{"tasks", "current_step_key", "TEXT"},
	{"tasks", "skills", "TEXT"},
	{"tasks", "model_override", "TEXT"},
	{"tasks", "provider_override", "TEXT"},
	{"tasks", "reasoning_effort", "TEXT"},
	{"tasks", "max_retries", "INTEGER"},
	{"tasks", "goal_mode", "INTEGER NOT NULL DEFAULT 0"},
	{"tasks", "goal_max_turns", "INTEGER"},
	{"tasks", "session_id", "TEXT"},
	{"tasks", "block_kind", "TEXT"},
	{"tasks", "block_recurrences", "INTEGER NOT NULL DEFAULT 0"},
	{"tasks", "completion_contract", "TEXT"},
	{"tasks", "worker_started_at", "INTEGER"},
	{"tasks", "worker_unit", "TEXT"},
	{"task_events", "run_id", "INTEGER"},
}

// postMigrationIndexes depend on optional columns, so they are created only
// after the columns exist (a legacy board would otherwise fail to connect).
var postMigrationIndexes = []string{
	`CREATE INDEX IF NOT EXISTS idx_tasks_tenant ON tasks(tenant)`,
	`CREATE INDEX IF NOT EXISTS idx_tasks_idempotency ON tasks(idempotency_key)`,
	`CREATE INDEX IF NOT EXISTS idx_tasks_session_id ON tasks(session_id)`,
	`CREATE INDEX IF NOT EXISTS idx_events_run ON task_events(run_id, id)`,
}

// eventRenames are the original's one-time event-kind renames.
var eventRenames = [][2]EventKind{{"ready", EventPromoted}, {"priority", EventReprioritized}, {"spawn_auto_blocked", EventGaveUp}}

// migrate creates the schema and brings an older board up to date. Like the
// original's executescript it runs each statement in autocommit, and every
// step is idempotent: a concurrent migration in another process (which adds
// the same column first) is tolerated.
func migrate(ctx context.Context, c *Conn) error {
	for _, q := range schemaSQL {
		if _, err := c.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("kanbancore: schema: %w", err)
		}
	}
	for _, col := range optionalColumns {
		if err := addColumnIfMissing(ctx, c, col.table, col.column, col.decl); err != nil {
			return err
		}
	}
	for _, q := range postMigrationIndexes {
		if _, err := c.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("kanbancore: schema: %w", err)
		}
	}
	for _, r := range eventRenames {
		var n int
		if err := c.QueryRowContext(ctx, `SELECT COUNT(*) FROM task_events WHERE kind=?`, r[0]).Scan(&n); err != nil {
			return fmt.Errorf("kanbancore: migrate: %w", err)
		}
		if n > 0 {
			if _, err := c.ExecContext(ctx, `UPDATE task_events SET kind=? WHERE kind=?`, r[1], r[0]); err != nil {
				return fmt.Errorf("kanbancore: migrate: %w", err)
			}
		}
	}
	return synthesizeLegacyRuns(ctx, c)
}

// addColumnIfMissing runs ALTER TABLE ADD COLUMN and treats "duplicate
// column name" as success (the race with another migrating process, #21708).
func addColumnIfMissing(ctx context.Context, c *Conn, table, column, decl string) error {
	has, err := hasColumn(ctx, c, table, column)
	if err != nil || has {
		return err
	}
	_, err = c.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", table, column, decl))
	if err != nil && strings.Contains(strings.ToLower(err.Error()), "duplicate column name") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kanbancore: migrate %s.%s: %w", table, column, err)
	}
	return nil
}

func hasColumn(ctx context.Context, c *Conn, table, column string) (bool, error) {
	rows, err := c.QueryContext(ctx, fmt.Sprintf("PRAGMA table_info(%s)", table))
	if err != nil {
		return false, fmt.Errorf("kanbancore: migrate: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return false, err
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return false, err
		}
		name := fmt.Sprint(vals[1])
		if b, ok := vals[1].([]byte); ok {
			name = string(b)
		}
		if strings.EqualFold(name, column) {
			return true, nil
		}
	}
	return false, rows.Err()
}

// synthesizeLegacyRuns gives every running task of a pre-runs board an open
// task_runs row, so the run invariant holds after migration.
func synthesizeLegacyRuns(ctx context.Context, c *Conn) error {
	var n int
	if err := c.QueryRowContext(ctx, `SELECT COUNT(*) FROM tasks WHERE status='running' AND current_run_id IS NULL`).Scan(&n); err != nil {
		return fmt.Errorf("kanbancore: migrate: %w", err)
	}
	if n == 0 {
		return nil
	}
	return c.WriteTxn(ctx, "migrate_synthesize_runs", func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, assignee, claim_lock, claim_expires, worker_pid, COALESCE(started_at, created_at)
			FROM tasks WHERE status='running' AND current_run_id IS NULL`)
		if err != nil {
			return err
		}
		type legacy struct {
			id                    string
			assignee, lock        any
			expires, pid, started any
		}
		var ls []legacy
		for rows.Next() {
			var l legacy
			if err := rows.Scan(&l.id, &l.assignee, &l.lock, &l.expires, &l.pid, &l.started); err != nil {
				rows.Close()
				return err
			}
			ls = append(ls, l)
		}
		rows.Close()
		for _, l := range ls {
			res, err := tx.ExecContext(ctx, `INSERT INTO task_runs(task_id, profile, status, claim_lock, claim_expires, worker_pid, started_at)
				VALUES(?,?,'running',?,?,?,?)`, l.id, l.assignee, l.lock, l.expires, l.pid, l.started)
			if err != nil {
				return err
			}
			rid, _ := res.LastInsertId()
			tx.InsertedFor("task_runs", fmt.Sprint(rid), l.id)
			if _, err := tx.ExecContext(ctx, `UPDATE tasks SET current_run_id=? WHERE id=?`, rid, l.id); err != nil {
				return err
			}
			tx.Updated("tasks", l.id)
		}
		return nil
	})
}
