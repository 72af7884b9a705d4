package kanbancore

import (
	"errors"
	"slices"
	"testing"
)

func TestBoardLinksAndReadiness(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		p := b.create(CreateOptions{Title: "p"})
		c := b.create(CreateOptions{Title: "c"})
		if err := LinkTasks(b.ctx, b.c, p, c); err != nil {
			t.Fatal(err)
		}
		b.wantStatus(c, StatusTodo) // demoted: parent not done
		if !b.hasEvent(c, "linked") {
			t.Fatal("no linked event")
		}
		// Link to an already-done parent keeps a ready child ready.
		done := b.create(CreateOptions{Title: "done"})
		must[bool](t)(CompleteTask(b.ctx, b.c, done, CompleteOptions{}))
		r := b.create(CreateOptions{Title: "r"})
		if err := LinkTasks(b.ctx, b.c, done, r); err != nil {
			t.Fatal(err)
		}
		b.wantStatus(r, StatusReady)
		if err := LinkTasks(b.ctx, b.c, p, p); !errors.Is(err, ErrSelfLink) {
			t.Fatalf("self link: %v", err)
		}
		if err := LinkTasks(b.ctx, b.c, c, p); !errors.Is(err, ErrCycle) {
			t.Fatalf("cycle: %v", err)
		}
		g := b.create(CreateOptions{Title: "g", Parents: []string{c}})
		if err := LinkTasks(b.ctx, b.c, g, p); !errors.Is(err, ErrCycle) {
			t.Fatalf("long cycle: %v", err)
		}
		if err := LinkTasks(b.ctx, b.c, p, "t_missing"); !errors.Is(err, ErrUnknownTask) {
			t.Fatalf("unknown: %v", err)
		}
		// Chain p -> c -> g cascades one level per completion.
		must[bool](t)(CompleteTask(b.ctx, b.c, p, CompleteOptions{}))
		b.wantStatus(c, StatusReady)
		b.wantStatus(g, StatusTodo)
		must[bool](t)(CompleteTask(b.ctx, b.c, c, CompleteOptions{}))
		b.wantStatus(g, StatusReady)

		// Fan-in waits for all parents.
		a1 := b.create(CreateOptions{Title: "a1"})
		a2 := b.create(CreateOptions{Title: "a2"})
		f := b.create(CreateOptions{Title: "f", Parents: []string{a1, a2}})
		must[bool](t)(CompleteTask(b.ctx, b.c, a1, CompleteOptions{}))
		b.wantStatus(f, StatusTodo)
		must[bool](t)(CompleteTask(b.ctx, b.c, a2, CompleteOptions{}))
		b.wantStatus(f, StatusReady)

		// Unlink triggers recompute_ready.
		x := b.create(CreateOptions{Title: "x"})
		y := b.create(CreateOptions{Title: "y", Parents: []string{x}})
		b.wantStatus(y, StatusTodo)
		if !must[bool](t)(UnlinkTasks(b.ctx, b.c, x, y)) {
			t.Fatal("unlink false")
		}
		b.wantStatus(y, StatusReady)
		if must[bool](t)(UnlinkTasks(b.ctx, b.c, x, y)) {
			t.Fatal("second unlink true")
		}
		// Archive of a parent promotes its dependents.
		z := b.create(CreateOptions{Title: "z", Parents: []string{x}})
		must[bool](t)(ArchiveTask(b.ctx, b.c, x))
		b.wantStatus(z, StatusReady)
		ls := must[[]Link](t)(ListLinks(b.ctx, b.c))
		if !slices.Contains(ls, Link{x, z}) {
			t.Fatalf("links %v", ls)
		}
	})
}

func TestBoardRecomputeReadyBlockedRules(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		// Blocked with 0 failures and no sticky block event is promoted.
		x := b.create(CreateOptions{Title: "x"})
		b.exec(`UPDATE tasks SET status='blocked' WHERE id=?`, x)
		if n := must[int](t)(RecomputeReady(b.ctx, b.c, 0)); n != 1 {
			t.Fatalf("promoted %d", n)
		}
		b.wantStatus(x, StatusReady)
		// At the failure limit it stays blocked; below it recovers with the counter kept.
		at := b.create(CreateOptions{Title: "at"})
		b.exec(`UPDATE tasks SET status='blocked', consecutive_failures=2 WHERE id=?`, at)
		below := b.create(CreateOptions{Title: "below"})
		b.exec(`UPDATE tasks SET status='blocked', consecutive_failures=1 WHERE id=?`, below)
		must[int](t)(RecomputeReady(b.ctx, b.c, 0))
		b.wantStatus(at, StatusBlocked)
		b.wantStatus(below, StatusReady)
		if tk := b.task(below); tk.ConsecutiveFailures != 1 {
			t.Fatalf("counter reset to %d", tk.ConsecutiveFailures)
		}
		// The dispatcher's limit is honoured ...
		must[int](t)(RecomputeReady(b.ctx, b.c, 3))
		b.wantStatus(at, StatusReady)
		// ... and a task's max_retries overrides it.
		mr := b.create(CreateOptions{Title: "mr", MaxRetries: 5})
		b.exec(`UPDATE tasks SET status='blocked', consecutive_failures=4 WHERE id=?`, mr)
		must[int](t)(RecomputeReady(b.ctx, b.c, 1))
		b.wantStatus(mr, StatusReady)
		// block_task's block is sticky: recompute does not undo it.
		s := b.create(CreateOptions{Title: "s"})
		must[bool](t)(BlockTask(b.ctx, b.c, s, BlockOptions{Reason: "needs input"}))
		must[int](t)(RecomputeReady(b.ctx, b.c, 0))
		b.wantStatus(s, StatusBlocked)
	})
}
