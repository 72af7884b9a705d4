package kanbancore

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBoardGCEvents(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		done := b.create(CreateOptions{Title: "done"})
		must[bool](t)(CompleteTask(b.ctx, b.c, done, CompleteOptions{Result: "r"}))
		arch := b.create(CreateOptions{Title: "archived"})
		must[bool](t)(ArchiveTask(b.ctx, b.c, arch))
		live := b.create(CreateOptions{Title: "ready"})
		blocked := b.create(CreateOptions{Title: "blocked", InitialStatus: StatusBlocked})
		count := func(id string) int { return len(b.kinds(id)) }
		before := map[string]int{done: count(done), arch: count(arch), live: count(live), blocked: count(blocked)}
		// Nothing is 30 days old yet.
		if n := must[int](t)(GCEvents(b.ctx, b.c, 0)); n != 0 {
			t.Fatalf("deleted %d fresh events", n)
		}
		b.clock.Advance(31 * 24 * time.Hour)
		must[int64](t)(AddComment(b.ctx, b.c, done, "user", "recent note")) // a fresh event on a done task
		n := must[int](t)(GCEvents(b.ctx, b.c, 0))
		if n != before[done]+before[arch] {
			t.Fatalf("deleted %d, want %d", n, before[done]+before[arch])
		}
		if k := b.kinds(done); !slices.Equal(k, []EventKind{"commented"}) {
			t.Fatalf("done task keeps %v", k)
		}
		if count(arch) != 0 || count(live) != before[live] || count(blocked) != before[blocked] {
			t.Fatalf("archived %d, ready %d/%d, blocked %d/%d", count(arch), count(live), before[live], count(blocked), before[blocked])
		}
		// A custom window.
		b.clock.Advance(2 * time.Hour)
		if n := must[int](t)(GCEvents(b.ctx, b.c, time.Hour)); n != 1 {
			t.Fatalf("1 h window deleted %d", n)
		}
	})
}

func TestBoardWorkerContextIncludesParentResultsAndComments(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		p := b.create(CreateOptions{Title: "p"})
		must[bool](t)(CompleteTask(b.ctx, b.c, p, CompleteOptions{Result: "PARENT_RESULT_MARKER"}))
		p2 := b.create(CreateOptions{Title: "p2"})
		must[bool](t)(CompleteTask(b.ctx, b.c, p2, CompleteOptions{Summary: "SUMMARY_ONLY_MARKER"}))
		undone := b.create(CreateOptions{Title: "undone parent", Body: "UNDONE_PARENT_BODY"})
		c := b.create(CreateOptions{Title: "child", Body: "BODY_MARKER", Parents: []string{p, p2}})
		// A prior attempt that ended blocked.
		if b.claim(c, ClaimOptions{Claimer: "far:1"}) == nil {
			t.Fatal("claim failed")
		}
		must[bool](t)(BlockTask(b.ctx, b.c, c, BlockOptions{Reason: "ATTEMPT_REASON"}))
		if err := LinkTasks(b.ctx, b.c, undone, c); err != nil {
			t.Fatal(err)
		}
		must[int64](t)(AddComment(b.ctx, b.c, c, "user", "CLARIFICATION_MARKER"))
		must[int64](t)(AddComment(b.ctx, b.c, c, "user", "SECOND_COMMENT"))
		ctx := must[string](t)(BuildWorkerContext(b.ctx, b.c, c))
		for _, want := range []string{"PARENT_RESULT_MARKER", "SUMMARY_ONLY_MARKER", "CLARIFICATION_MARKER", c, "child",
			"BODY_MARKER", "Attempt 1 — blocked", "ATTEMPT_REASON"} {
			if !strings.Contains(ctx, want) {
				t.Errorf("context lacks %q:\n%s", want, ctx)
			}
		}
		if strings.Contains(ctx, "UNDONE_PARENT_BODY") || strings.Index(ctx, "CLARIFICATION_MARKER") > strings.Index(ctx, "SECOND_COMMENT") {
			t.Errorf("unfinished parent shown or comments out of order:\n%s", ctx)
		}
		if _, err := BuildWorkerContext(b.ctx, b.c, "t_missing"); !errors.Is(err, ErrUnknownTask) {
			t.Fatalf("unknown task: %v", err)
		}
	})
}

func TestBoardPromoteTask(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		p := b.create(CreateOptions{Title: "parent"})
		c := b.create(CreateOptions{Title: "child", Parents: []string{p}})
		// Refuses while the parent is unfinished.
		ok, err := PromoteTask(b.ctx, b.c, c, PromoteOptions{Actor: "op"})
		if ok || !errors.Is(err, ErrParentsNotDone) {
			t.Fatalf("promote with undone parent: %v %v", ok, err)
		}
		b.wantStatus(c, StatusTodo)
		// Force overrides.
		if !must[bool](t)(PromoteTask(b.ctx, b.c, c, PromoteOptions{Actor: "op", Force: true})) {
			t.Fatal("forced promote refused")
		}
		b.wantStatus(c, StatusReady)
		// A blocked task with done parents: promoted, counter kept, manual event.
		bl := b.create(CreateOptions{Title: "blocked", InitialStatus: StatusBlocked})
		b.exec(`UPDATE tasks SET consecutive_failures=5 WHERE id=?`, bl)
		if !must[bool](t)(PromoteTask(b.ctx, b.c, bl, PromoteOptions{Actor: "op", Reason: "retry"})) {
			t.Fatal("blocked not promoted")
		}
		evs := must[[]TaskEvent](t)(ListEvents(b.ctx, b.c, bl))
		last := evs[len(evs)-1]
		if tk := b.task(bl); tk.Status != StatusReady || tk.ConsecutiveFailures != 5 || last.Kind != "promoted" || last.Payload["manual"] != true || last.Payload["source_status"] != StatusBlocked {
			t.Fatalf("%+v %+v", tk, last)
		}
		// Other statuses: no-op; unknown: error.
		if must[bool](t)(PromoteTask(b.ctx, b.c, bl, PromoteOptions{})) {
			t.Fatal("ready promoted again")
		}
		if _, err := PromoteTask(b.ctx, b.c, "t_missing", PromoteOptions{}); !errors.Is(err, ErrUnknownTask) {
			t.Fatalf("unknown: %v", err)
		}
		b.checkInvariant()
	})
}

// TestBoardScratchWorkspaceCleanup: completion removes the scratch
// workspace only under the managed root, defers it while a child is
// unfinished, and removes the parent's once the last child completes.
func TestBoardScratchWorkspaceCleanup(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		root := filepath.Join(t.TempDir(), "workspaces")
		mk := func(dir string) string {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
			return dir
		}
		exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
		complete := func(id string) {
			t.Helper()
			if !must[bool](t)(CompleteTask(b.ctx, b.c, id, CompleteOptions{WorkspacesRoot: root})) {
				t.Fatalf("complete %s refused", id)
			}
		}
		// Plain scratch task under the root: removed.
		a := b.create(CreateOptions{Title: "a", WorkspacePath: mk(filepath.Join(root, "a"))})
		complete(a)
		if exists(filepath.Join(root, "a")) {
			t.Fatal("scratch workspace under the root survived completion")
		}
		// Outside the root, a dir workspace, and a symlink escaping the root: kept.
		outside := mk(filepath.Join(t.TempDir(), "outside"))
		o := b.create(CreateOptions{Title: "o", WorkspacePath: outside})
		complete(o)
		dirWS := mk(filepath.Join(root, "dirkind"))
		dk := b.create(CreateOptions{Title: "dk", WorkspaceKind: "dir", WorkspacePath: dirWS})
		complete(dk)
		target := mk(filepath.Join(t.TempDir(), "target"))
		link := filepath.Join(root, "link")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		sl := b.create(CreateOptions{Title: "sl", WorkspacePath: link})
		complete(sl)
		if !exists(outside) || !exists(dirWS) || !exists(filepath.Join(target, "f")) {
			t.Fatalf("removed outside the managed scratch root: outside=%v dir=%v target=%v", exists(outside), exists(dirWS), exists(target))
		}
		// Parent with an unfinished child: deferred; done when the child completes.
		pws := mk(filepath.Join(root, "parent"))
		p := b.create(CreateOptions{Title: "p", WorkspacePath: pws})
		ch := b.create(CreateOptions{Title: "ch", Parents: []string{p}, WorkspacePath: mk(filepath.Join(root, "child"))})
		complete(p)
		if !exists(pws) {
			t.Fatal("parent workspace removed while its child is unfinished")
		}
		b.wantStatus(ch, StatusReady)
		complete(ch)
		if exists(pws) || exists(filepath.Join(root, "child")) {
			t.Fatalf("after the child completed: parent %v child %v", exists(pws), exists(filepath.Join(root, "child")))
		}
	})
}

// TestBoardStaleDeferredWhenLiveWorkerSurvives ports
// test_stale_claim_deferred_when_live_worker_survives_termination and
// test_detect_stale_defers_when_live_worker_survives: a host-local worker
// that outlives SIGTERM and SIGKILL keeps its task running, with its pid,
// a claim extended by 120 s and a `reclaim_deferred` event — no reclaim, no
// second worker — and once it dies the next sweep reclaims.
func TestBoardStaleDeferredWhenLiveWorkerSurvives(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		t.Run("stale_claim_deferred_when_live_worker_survives_termination", func(t *testing.T) {
			b := newTestBoard(t, d)
			f := &fakeProcs{live: map[int]bool{940001: true}, survive: map[int]bool{940001: true}}
			sw := SweepOptions{Proc: f.ops()}
			id := b.running("stuck", 940001)
			b.clock.Advance(901 * time.Second)
			b.exec(`UPDATE tasks SET last_heartbeat_at=? WHERE id=?`, b.clock.Now().Unix()-4000, id) // stale heartbeat
			if n := must[int](t)(ReleaseStaleClaims(b.ctx, b.c, sw)); n != 0 {
				t.Fatalf("reclaimed %d", n)
			}
			tk := b.task(id)
			if tk.Status != StatusRunning || tk.WorkerPID != 940001 || tk.ClaimExpires != b.clock.Now().Unix()+ReclaimDeferGraceSeconds ||
				!b.hasEvent(id, "reclaim_deferred") || b.hasEvent(id, "reclaimed") {
				t.Fatalf("%+v %v", tk, b.kinds(id))
			}
			if !slices.Contains(f.signals, "940001:terminated") || !slices.Contains(f.signals, "940001:killed") {
				t.Fatalf("signals %v", f.signals)
			}
			// A dispatch tick inside the deferral spawns no second worker.
			sp := &recordingSpawner{}
			must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, Proc: f.ops(), WorkspacesRoot: t.TempDir()}))
			if len(sp.tasks) != 0 {
				t.Fatalf("duplicate worker spawned: %v", sp.ids())
			}
			// The worker finally dies: the next expired sweep reclaims.
			delete(f.survive, 940001)
			b.clock.Advance(121 * time.Second)
			if n := must[int](t)(ReleaseStaleClaims(b.ctx, b.c, sw)); n != 1 {
				t.Fatalf("reclaimed %d after the worker died", n)
			}
			b.wantStatus(id, StatusReady)
			b.checkInvariant()
		})
		t.Run("detect_stale_defers_when_live_worker_survives", func(t *testing.T) {
			b := newTestBoard(t, d)
			f := &fakeProcs{live: map[int]bool{940002: true}, survive: map[int]bool{940002: true}}
			sw := SweepOptions{Proc: f.ops()}
			id := b.running("wedged", 940002)
			b.clock.Advance(5 * time.Hour) // no heartbeat at all, 5 h in
			got := must[[]string](t)(DetectStaleRunning(b.ctx, b.c, 4*time.Hour, sw))
			if len(got) != 0 {
				t.Fatalf("stale reclaimed a surviving worker: %v", got)
			}
			tk := b.task(id)
			if tk.Status != StatusRunning || tk.WorkerPID != 940002 || tk.ClaimExpires != b.clock.Now().Unix()+ReclaimDeferGraceSeconds ||
				!b.hasEvent(id, "reclaim_deferred") || b.hasEvent(id, "stale") || tk.ConsecutiveFailures != 0 {
				t.Fatalf("%+v %v", tk, b.kinds(id))
			}
			delete(f.survive, 940002)
			if got := must[[]string](t)(DetectStaleRunning(b.ctx, b.c, 4*time.Hour, sw)); !slices.Equal(got, []string{id}) {
				t.Fatalf("not reclaimed after the worker died: %v", got)
			}
			b.checkInvariant()
		})
	})
}
