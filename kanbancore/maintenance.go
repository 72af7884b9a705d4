package kanbancore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultEventRetention is gc_events' default age: 30 days.
const DefaultEventRetention = 30 * 24 * time.Hour

// GCEvents deletes task_events rows older than olderThan (0 = 30 days) of
// tasks that are done or archived, in one write transaction, and returns
// how many it deleted. Tasks in any other status keep their whole history.
func GCEvents(ctx context.Context, c *Conn, olderThan time.Duration) (int, error) {
	if olderThan <= 0 {
		olderThan = DefaultEventRetention
	}
	var n int
	err := c.WriteTxn(ctx, "gc_events", func(tx *Tx) error {
		cutoff := tx.Now().Add(-olderThan).Unix()
		const where = ` FROM task_events WHERE created_at < ? AND task_id IN (SELECT id FROM tasks WHERE status IN ('done','archived'))`
		ids, err := column(ctx, tx.Conn, `SELECT CAST(id AS TEXT)`+where+` ORDER BY id`, cutoff)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE`+where, cutoff)
		if err != nil {
			return err
		}
		d, _ := res.RowsAffected()
		if int(d) != len(ids) {
			return fmt.Errorf("kanbancore: gc_events: selected %d rows, deleted %d", len(ids), d)
		}
		for _, id := range ids {
			tx.Deleted("task_events", id)
		}
		n = len(ids)
		return nil
	})
	return n, err
}

// ErrParentsNotDone is returned by PromoteTask for a task with a parent
// that is neither done nor archived.
var ErrParentsNotDone = errors.New("kanbancore: parents not done")

// PromoteOptions are promote_task's arguments.
type PromoteOptions struct {
	Actor  string
	Reason string
	Force  bool // promote even with unfinished parents
}

// PromoteTask is the operator's promote: a todo or blocked task goes to
// ready with a `promoted` event marked manual, as recompute_ready would do
// it but on purpose. It refuses (ErrParentsNotDone) while a parent is
// unfinished, unless Force. The failure counter, assignee and claim fields
// are left alone. False, nil for a task in another status or a lost
// compare-and-swap.
func PromoteTask(ctx context.Context, c *Conn, id string, o PromoteOptions) (bool, error) {
	var ok bool
	err := c.WriteTxn(ctx, "promote_task", func(tx *Tx) error {
		from, err := taskStatus(ctx, tx.Conn, id)
		if err != nil {
			return err
		}
		if from == "" {
			return fmt.Errorf("%w: %s", ErrUnknownTask, id)
		}
		if from != StatusTodo && from != StatusBlocked {
			return nil
		}
		undone, err := unfinishedParents(ctx, tx.Conn, id)
		if err != nil {
			return err
		}
		if len(undone) > 0 && !o.Force {
			return fmt.Errorf("%w: %s waits for %s", ErrParentsNotDone, id, strings.Join(undone, ", "))
		}
		if one, err := tx.execOne(ctx, `UPDATE tasks SET status='ready' WHERE id=? AND status=?`, id, from); err != nil || !one {
			return err
		}
		ok = true
		tx.Transition(id, from, StatusReady)
		if err := reclaimDanglingRun(ctx, tx, id); err != nil {
			return err
		}
		return addEvent(ctx, tx, id, 0, EventPromoted, map[string]any{"manual": true, "actor": nullStr(o.Actor),
			"reason": nullStr(o.Reason), "source_status": from, "forced": o.Force && len(undone) > 0})
	})
	return ok, err
}

// Limits of BuildWorkerContext.
const (
	workerContextBodyMax     = 8 << 10
	workerContextAttemptsMax = 5
	workerContextCommentsMax = 50
	workerContextResultMax   = 4 << 10
)

// BuildWorkerContext returns the text a worker reads to understand its
// task: a header (id, title, assignee, status, tenant, workspace, max
// runtime), the body, the most recent prior attempts (closed runs with
// their outcome, summary and error), the results of every done or archived
// parent (the parent's result, else its last completed run's summary), and
// the comment thread in order.
func BuildWorkerContext(ctx context.Context, c *Conn, id string) (string, error) {
	t, err := GetTask(ctx, c, id)
	if err != nil {
		return "", err
	}
	if t == nil {
		return "", fmt.Errorf("%w: %s", ErrUnknownTask, id)
	}
	runs, err := ListRuns(ctx, c, id)
	if err != nil {
		return "", err
	}
	parents, err := parentResults(ctx, c, id)
	if err != nil {
		return "", err
	}
	comments, err := ListComments(ctx, c, id)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	writeTaskHeader(&b, t)
	writePriorAttempts(&b, runs)
	writeParentResults(&b, parents)
	writeComments(&b, comments)
	return b.String(), nil
}

// writeTaskHeader writes the worker context's title, the task's fields and
// its body (truncated).
func writeTaskHeader(b *strings.Builder, t *Task) {
	fmt.Fprintf(b, "# Kanban task %s: %s\n\n", t.ID, t.Title)
	fmt.Fprintf(b, "Assignee: %s\nStatus:   %s\n", orDash(t.Assignee), t.Status)
	if t.Tenant != "" {
		fmt.Fprintf(b, "Tenant:   %s\n", t.Tenant)
	}
	fmt.Fprintf(b, "Workspace: %s @ %s\n", t.WorkspaceKind, orDash(t.WorkspacePath))
	if t.BranchName != "" {
		fmt.Fprintf(b, "Branch: %s\n", t.BranchName)
	}
	if t.MaxRuntimeSeconds > 0 {
		fmt.Fprintf(b, "Max runtime: %ds\n", t.MaxRuntimeSeconds)
	}
	if body := strings.TrimSpace(t.Body); body != "" {
		fmt.Fprintf(b, "\n## Body\n%s\n", truncate(body, workerContextBodyMax))
	}
}

// truncate cuts s to limit bytes, saying so.
func truncate(s string, limit int) string {
	if len(s) > limit {
		return s[:limit] + "\n…(truncated)"
	}
	return s
}

// writePriorAttempts writes the task's closed runs, the most recent
// workerContextAttemptsMax of them.
func writePriorAttempts(b *strings.Builder, runs []TaskRun) {
	var prior []TaskRun
	for _, r := range runs {
		if !r.Open() {
			prior = append(prior, r)
		}
	}
	if len(prior) == 0 {
		return
	}
	b.WriteString("\n## Prior attempts on this task\n")
	first := 0
	if len(prior) > workerContextAttemptsMax {
		first = len(prior) - workerContextAttemptsMax
		fmt.Fprintf(b, "(%d attempts, showing most recent %d)\n", len(prior), workerContextAttemptsMax)
	}
	for i, r := range prior[first:] {
		fmt.Fprintf(b, "### Attempt %d — %s (%s, %s)\n", first+i+1, orDash(string(r.Outcome)), orDash(r.Profile), epochUTC(r.EndedAt))
		if r.Summary != "" {
			fmt.Fprintf(b, "%s\n", r.Summary)
		}
		if r.Error != "" {
			fmt.Fprintf(b, "_error_: %s\n", r.Error)
		}
	}
}

// parentResult is a done or archived parent and what it produced.
type parentResult struct{ id, title, status, text string }

// parentResults returns the done or archived parents of task id, in
// completion order, each with its result, else its last completed run's
// summary.
func parentResults(ctx context.Context, c *Conn, id string) ([]parentResult, error) {
	scan := func(s rowScanner) (parentResult, error) {
		var p parentResult
		var result, summary sql.NullString
		if err := s.Scan(&p.id, &p.title, &p.status, &result, &summary); err != nil {
			return p, err
		}
		p.text = result.String
		if strings.TrimSpace(p.text) == "" {
			p.text = summary.String
		}
		return p, nil
	}
	return queryAll(ctx, c, scan, `SELECT p.id, p.title, p.status, p.result,
		(SELECT r.summary FROM task_runs r WHERE r.task_id=p.id AND r.outcome='completed' ORDER BY r.ended_at DESC, r.id DESC LIMIT 1)
		FROM task_links l JOIN tasks p ON p.id=l.parent_id
		WHERE l.child_id=? AND p.status IN ('done','archived') ORDER BY p.completed_at, p.id`, id)
}

// writeParentResults writes the parents' results (truncated).
func writeParentResults(b *strings.Builder, parents []parentResult) {
	if len(parents) == 0 {
		return
	}
	b.WriteString("\n## Parent task results\n")
	for _, p := range parents {
		text := truncate(strings.TrimSpace(p.text), workerContextResultMax)
		fmt.Fprintf(b, "### %s: %s (%s)\n%s\n", p.id, p.title, p.status, orDash(text))
	}
}

// writeComments writes the comment thread, the most recent
// workerContextCommentsMax comments.
func writeComments(b *strings.Builder, comments []Comment) {
	if len(comments) == 0 {
		return
	}
	b.WriteString("\n## Comments\n")
	if len(comments) > workerContextCommentsMax {
		fmt.Fprintf(b, "(%d comments, showing most recent %d)\n", len(comments), workerContextCommentsMax)
		comments = comments[len(comments)-workerContextCommentsMax:]
	}
	for _, cm := range comments {
		fmt.Fprintf(b, "**%s** (%s): %s\n", cm.Author, epochUTC(cm.CreatedAt), cm.Body)
	}
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func epochUTC(sec int64) string {
	if sec == 0 {
		return "-"
	}
	return time.Unix(sec, 0).UTC().Format("2006-01-02 15:04")
}

// workspacesRootFor is the managed scratch-workspaces root that cleanup may
// touch: explicit, else $SQLCHAOS_KANBAN_WORKSPACES_ROOT (set for every
// worker the ExecSpawner starts), else <db dir>/workspaces.
func workspacesRootFor(c *Conn, explicit string) string {
	if strings.TrimSpace(explicit) != "" {
		return explicit
	}
	if r := strings.TrimSpace(os.Getenv(EnvWorkspacesRoot)); r != "" {
		return r
	}
	return defaultWorkspacesRoot(c)
}

// containedIn reports whether path lies strictly inside root, after both
// are made absolute and their symlinks resolved (so a link inside root
// pointing elsewhere is not inside).
func containedIn(path, root string) bool {
	resolve := func(p string) (string, bool) {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", false
		}
		r, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return "", false
		}
		return r, true
	}
	p, ok1 := resolve(path)
	r, ok2 := resolve(root)
	if !ok1 || !ok2 {
		return false
	}
	rel, err := filepath.Rel(r, p)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// cleanupAfterComplete removes the scratch workspace of a task just
// completed, and of each of its done parents whose cleanup it was holding
// back (#28818/#33774). Only scratch workspaces strictly inside the managed
// root are removed, and never while a child task is still unfinished (it
// may read its parent's workspace). Best effort: failures are logged, never
// returned, because the completion has committed.
func cleanupAfterComplete(ctx context.Context, c *Conn, id, root string) []string {
	root = workspacesRootFor(c, root)
	candidates := []string{id}
	if ps, err := Parents(ctx, c, id); err == nil {
		candidates = append(candidates, ps...)
	}
	var removed []string
	for _, cand := range candidates {
		ok, err := cleanupScratchWorkspace(ctx, c, cand, root)
		if err != nil {
			c.logf("kanbancore: workspace cleanup of %s: %v", cand, err)
		}
		if ok {
			removed = append(removed, cand)
		}
	}
	return removed
}

func cleanupScratchWorkspace(ctx context.Context, c *Conn, id, root string) (bool, error) {
	t, err := GetTask(ctx, c, id)
	if err != nil || t == nil {
		return false, err
	}
	if t.Status != StatusDone || t.WorkspaceKind != WorkspaceScratch || t.WorkspacePath == "" {
		return false, nil
	}
	var active int
	if err := c.QueryRowContext(ctx, `SELECT COUNT(*) FROM task_links l JOIN tasks ch ON ch.id=l.child_id
		WHERE l.parent_id=? AND ch.status NOT IN ('done','archived')`, id).Scan(&active); err != nil {
		return false, err
	}
	if active > 0 {
		return false, nil // deferred until the children finish
	}
	if _, err := os.Lstat(t.WorkspacePath); os.IsNotExist(err) {
		return false, nil
	}
	if !containedIn(t.WorkspacePath, root) {
		return false, nil
	}
	if err := os.RemoveAll(t.WorkspacePath); err != nil {
		return false, err
	}
	return true, nil
}
