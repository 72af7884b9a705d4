package kanbancore

import (
	"context"
	"slices"
	"sync"
	"testing"
)

// recordingObserver keeps every committed write transaction.
type recordingObserver struct {
	mu      sync.Mutex
	commits []Commit
}

func (o *recordingObserver) InTxn(ctx context.Context, tx Execer, op string) (int64, error) {
	return 0, nil
}
func (o *recordingObserver) Committed(c Commit) {
	o.mu.Lock()
	o.commits = append(o.commits, c)
	o.mu.Unlock()
}
func (o *recordingObserver) Failed(op string, err error) {}
func (o *recordingObserver) JournalMode(mode string)     {}

func (o *recordingObserver) last(op string) (Commit, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(o.commits) - 1; i >= 0; i-- {
		if o.commits[i].Op == op {
			return o.commits[i], true
		}
	}
	return Commit{}, false
}

func TestBoardObserverSeesChanges(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		obs := &recordingObserver{}
		b.opts.Observer = obs
		b.c = b.open()
		p := b.create(CreateOptions{Title: "p"})
		c := b.create(CreateOptions{Title: "c", Parents: []string{p}})
		cm, ok := obs.last("create_task")
		if !ok || !slices.Contains(cm.Transitions, Transition{c, "", StatusTodo}) ||
			!slices.Contains(cm.Inserted, RowRef{Table: "tasks", Key: c}) || !slices.Contains(cm.Inserted, RowRef{Table: "task_links", Key: p + ">" + c}) {
			t.Fatalf("create commit %+v", cm)
		}
		b.claim(p, ClaimOptions{})
		cm, _ = obs.last("claim_task")
		if !slices.Equal(cm.Transitions, []Transition{{p, StatusReady, StatusRunning}}) ||
			!slices.ContainsFunc(cm.Inserted, func(r RowRef) bool { return r.Table == "task_runs" && r.Task == p }) ||
			!slices.ContainsFunc(cm.Inserted, func(r RowRef) bool { return r.Table == "task_events" && r.Task == p }) {
			t.Fatalf("claim commit %+v (child rows must name their task)", cm)
		}
		// A commit with no transition still names its task through its rows.
		must[int64](t)(AddComment(b.ctx, b.c, p, "bob", "looks good"))
		cm, _ = obs.last("add_comment")
		if len(cm.Transitions) != 0 ||
			!slices.ContainsFunc(cm.Inserted, func(r RowRef) bool { return r.Table == "task_comments" && r.Task == p }) {
			t.Fatalf("comment commit %+v", cm)
		}
		must[bool](t)(CompleteTask(b.ctx, b.c, p, CompleteOptions{}))
		cm, _ = obs.last("complete_task")
		if !slices.Equal(cm.Transitions, []Transition{{p, StatusRunning, StatusDone}}) ||
			!slices.ContainsFunc(cm.Updated, func(r RowRef) bool { return r.Table == "task_runs" }) {
			t.Fatalf("complete commit %+v", cm)
		}
		// The promotion of the child is its own, later transaction.
		cm, _ = obs.last("recompute_ready")
		if !slices.Equal(cm.Transitions, []Transition{{c, StatusTodo, StatusReady}}) {
			t.Fatalf("recompute commit %+v", cm)
		}
		must[bool](t)(DeleteTask(b.ctx, b.c, c))
		cm, _ = obs.last("delete_task")
		if !slices.Contains(cm.Deleted, RowRef{Table: "tasks", Key: c}) || !slices.Contains(cm.Deleted, RowRef{Table: "task_links", Key: p + ">" + c}) {
			t.Fatalf("delete commit %+v", cm)
		}
	})
}
