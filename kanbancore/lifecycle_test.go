package kanbancore

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestBoardBlockUnblockScheduleAssign(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		id := b.create(CreateOptions{Title: "x", Assignee: "w"})
		b.claim(id, ClaimOptions{})
		if !must[bool](t)(BlockTask(b.ctx, b.c, id, BlockOptions{Reason: "wait"})) {
			t.Fatal("block false")
		}
		tk := b.task(id)
		if tk.Status != StatusBlocked || tk.ClaimLock != "" || tk.CurrentRunID != 0 {
			t.Fatalf("blocked: %+v", tk)
		}
		runs := must[[]TaskRun](t)(ListRuns(b.ctx, b.c, id))
		if runs[0].Outcome != "blocked" {
			t.Fatalf("run outcome %q", runs[0].Outcome)
		}
		b.exec(`UPDATE tasks SET consecutive_failures=2, last_failure_error='boom' WHERE id=?`, id)
		if !must[bool](t)(UnblockTask(b.ctx, b.c, id)) {
			t.Fatal("unblock false")
		}
		tk = b.task(id)
		if tk.Status != StatusReady || tk.ConsecutiveFailures != 0 || tk.LastFailureError != "" {
			t.Fatalf("unblocked: %+v", tk)
		}
		if must[bool](t)(UnblockTask(b.ctx, b.c, id)) {
			t.Fatal("unblock of a ready task")
		}
		// Kind routing: dependency → todo; the same kind twice → triage.
		dep := b.create(CreateOptions{Title: "dep"})
		must[bool](t)(BlockTask(b.ctx, b.c, dep, BlockOptions{Kind: "dependency"}))
		b.wantStatus(dep, StatusTodo)
		k := b.create(CreateOptions{Title: "k"})
		must[bool](t)(BlockTask(b.ctx, b.c, k, BlockOptions{Kind: "auth"}))
		b.wantStatus(k, StatusBlocked)
		must[bool](t)(UnblockTask(b.ctx, b.c, k))
		must[bool](t)(BlockTask(b.ctx, b.c, k, BlockOptions{Kind: "auth"}))
		b.wantStatus(k, StatusTriage)
		// Unblock with pending parents goes to todo; without, to ready.
		p := b.create(CreateOptions{Title: "p"})
		ch := b.create(CreateOptions{Title: "ch", Parents: []string{p}, InitialStatus: StatusBlocked})
		must[bool](t)(UnblockTask(b.ctx, b.c, ch))
		b.wantStatus(ch, StatusTodo)
		// Schedule parks a task; the dispatcher never picks it; unblock rechecks the gate.
		sc := b.create(CreateOptions{Title: "sc", Parents: []string{p}, Assignee: "w"})
		if !must[bool](t)(ScheduleTask(b.ctx, b.c, sc, b.clock.Now().Add(time.Hour), "later")) {
			t.Fatal("schedule false")
		}
		res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{DryRun: true, WorkspacesRoot: t.TempDir()}))
		if slices.Contains(res.WouldSpawn, sc) {
			t.Fatal("scheduled task would be dispatched")
		}
		must[bool](t)(UnblockTask(b.ctx, b.c, sc))
		b.wantStatus(sc, StatusTodo)
		// Assign: refused while running with a claim; new assignee resets the counter.
		a := b.create(CreateOptions{Title: "a", Assignee: "Bob"})
		b.claim(a, ClaimOptions{})
		if _, err := AssignTask(b.ctx, b.c, a, "carol"); !errors.Is(err, ErrTaskRunning) {
			t.Fatalf("assign while running: %v", err)
		}
		a2 := b.create(CreateOptions{Title: "a2", Assignee: "bob"})
		b.exec(`UPDATE tasks SET consecutive_failures=1 WHERE id=?`, a2)
		must[bool](t)(AssignTask(b.ctx, b.c, a2, "CAROL"))
		if tk := b.task(a2); tk.Assignee != "carol" || tk.ConsecutiveFailures != 0 {
			t.Fatalf("assign: %+v", tk)
		}
		b.checkInvariant()
	})
}

func TestBoardArchiveDeleteCascades(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		p := b.create(CreateOptions{Title: "p"})
		c := b.create(CreateOptions{Title: "c", Parents: []string{p}})
		must[int64](t)(AddComment(b.ctx, b.c, p, "me", "hello"))
		b.claim(p, ClaimOptions{})
		b.exec(`INSERT INTO kanban_notify_subs(task_id, platform, chat_id, created_at) VALUES(?,?,?,?)`, p, "x", "1", 1)
		// Delete of a non-archived task via DeleteArchivedTask is refused.
		if must[bool](t)(DeleteArchivedTask(b.ctx, b.c, p)) {
			t.Fatal("deleted a non-archived task")
		}
		must[bool](t)(ArchiveTask(b.ctx, b.c, p))
		if ts := must[[]Task](t)(ListTasks(b.ctx, b.c, ListOptions{})); slices.ContainsFunc(ts, func(x Task) bool { return x.ID == p }) {
			t.Fatal("archived task listed by default")
		}
		if ts := must[[]Task](t)(ListTasks(b.ctx, b.c, ListOptions{IncludeArchived: true})); !slices.ContainsFunc(ts, func(x Task) bool { return x.ID == p }) {
			t.Fatal("archived task missing with IncludeArchived")
		}
		b.checkInvariant()
		if !must[bool](t)(DeleteArchivedTask(b.ctx, b.c, p)) {
			t.Fatal("delete archived false")
		}
		for _, tbl := range []string{"task_links", "task_comments", "task_events", "task_runs", "kanban_notify_subs"} {
			var n int
			col := "task_id"
			if tbl == "task_links" {
				col = "parent_id"
			}
			b.c.QueryRowContext(b.ctx, `SELECT COUNT(*) FROM `+tbl+` WHERE `+col+`=?`, p).Scan(&n)
			if n != 0 {
				t.Fatalf("%s still has %d rows", tbl, n)
			}
		}
		// delete_task on a parent from any status makes the child ready.
		p2 := b.create(CreateOptions{Title: "p2"})
		c2 := b.create(CreateOptions{Title: "c2", Parents: []string{p2}})
		b.wantStatus(c2, StatusTodo)
		if !must[bool](t)(DeleteTask(b.ctx, b.c, p2)) {
			t.Fatal("delete false")
		}
		b.wantStatus(c2, StatusReady)
		if tk, _ := GetTask(b.ctx, b.c, p2); tk != nil {
			t.Fatal("task still there")
		}
		if must[bool](t)(DeleteTask(b.ctx, b.c, "t_missing")) {
			t.Fatal("delete of a missing task returned true")
		}
		_ = c
	})
}

func TestBoardCommentsAndEventsLifecycle(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		id := b.create(CreateOptions{Title: "x"})
		for _, s := range []string{"one", "two", "three"} {
			must[int64](t)(AddComment(b.ctx, b.c, id, "a", s))
		}
		if _, err := AddComment(b.ctx, b.c, id, "a", "  "); !errors.Is(err, ErrEmptyComment) {
			t.Fatalf("empty comment: %v", err)
		}
		cs := must[[]Comment](t)(ListComments(b.ctx, b.c, id))
		if len(cs) != 3 || cs[0].Body != "one" || cs[2].Body != "three" {
			t.Fatalf("comments %+v", cs)
		}
		id2 := b.create(CreateOptions{Title: "y"})
		b.claim(id2, ClaimOptions{})
		must[bool](t)(CompleteTask(b.ctx, b.c, id2, CompleteOptions{Result: "r"}))
		if k := b.kinds(id2); !slices.Equal(k, []EventKind{"created", "claimed", "completed"}) {
			t.Fatalf("events %v", k)
		}
		// A completion naming phantom cards is refused with its own event.
		id3 := b.create(CreateOptions{Title: "z"})
		if _, err := CompleteTask(b.ctx, b.c, id3, CompleteOptions{CreatedCards: []string{"t_ghost"}}); !errors.Is(err, ErrHallucinatedCard) {
			t.Fatalf("phantom cards: %v", err)
		}
		b.wantStatus(id3, StatusReady)
		if !b.hasEvent(id3, "completion_blocked_hallucination") {
			t.Fatal("no hallucination event")
		}
	})
}

func TestBoardClaimRejectsWhenParentsNotDone(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		p := b.create(CreateOptions{Title: "p"})
		c := b.create(CreateOptions{Title: "c"})
		// Link behind the board's back so the child stays ready with an undone parent.
		b.exec(`INSERT INTO task_links(parent_id, child_id) VALUES(?,?)`, p, c)
		if b.claim(c, ClaimOptions{}) != nil {
			t.Fatal("claimed with an undone parent")
		}
		b.wantStatus(c, StatusTodo) // the demotion committed
		if !b.hasEvent(c, "claim_rejected") || b.hasEvent(c, "claimed") {
			t.Fatalf("events %v", b.kinds(c))
		}
		must[bool](t)(CompleteTask(b.ctx, b.c, p, CompleteOptions{}))
		b.wantStatus(c, StatusReady)
		if b.claim(c, ClaimOptions{}) == nil {
			t.Fatal("claim after parent done failed")
		}
	})
}
