package kanbancore

import (
	"context"
	"slices"
	"testing"
)

// toReview creates a ready task and moves it to review with RequestReview.
func (b *testBoard) toReview(title, assignee string) string {
	b.t.Helper()
	id := b.create(CreateOptions{Title: title, Assignee: assignee})
	if !must[bool](b.t)(RequestReview(b.ctx, b.c, id, RequestReviewOptions{})) {
		b.t.Fatalf("RequestReview(%s) refused from %s", id, b.status(id))
	}
	return id
}

// recordingSpawner keeps the tasks it was asked to spawn.
type recordingSpawner struct{ tasks []Task }

func (s *recordingSpawner) Spawn(ctx context.Context, t Task, ws string) (int, error) {
	s.tasks = append(s.tasks, t)
	return 930000 + len(s.tasks), nil
}

func (s *recordingSpawner) ids() []string {
	var out []string
	for _, t := range s.tasks {
		out = append(out, t.ID)
	}
	return out
}

func TestReviewStatusInValidStatuses(t *testing.T) {
	if !slices.Contains(ValidStatuses, StatusReview) {
		t.Fatalf("review missing from %v", ValidStatuses)
	}
}

// TestBoardReviewColumn ports T-KDB's review-column tests (claim_review_task
// ×3, dispatch_review ×8, has_spawnable_review ×3) and adds request_review.
func TestBoardReviewColumn(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		t.Run("request_review_ends_run", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.create(CreateOptions{Title: "impl", Assignee: "alice"})
			run := b.claim(id, ClaimOptions{}).CurrentRunID
			if !must[bool](t)(RequestReview(b.ctx, b.c, id, RequestReviewOptions{Summary: "PR up", ExpectedRunID: run})) {
				t.Fatal("request_review refused")
			}
			tk := b.task(id)
			if tk.Status != StatusReview || tk.ClaimLock != "" || tk.CurrentRunID != 0 || !b.hasEvent(id, "review_requested") {
				t.Fatalf("%+v %v", tk, b.kinds(id))
			}
			runs := must[[]TaskRun](t)(ListRuns(b.ctx, b.c, id))
			if len(runs) != 1 || runs[0].Outcome != "review_requested" || runs[0].Open() || runs[0].Summary != "PR up" {
				t.Fatalf("runs %+v", runs)
			}
			// Not from review, done or with a stale run id.
			if must[bool](t)(RequestReview(b.ctx, b.c, id, RequestReviewOptions{})) {
				t.Fatal("review → review accepted")
			}
			b.checkInvariant()
		})
		t.Run("claim_review_task_transitions_to_running", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.toReview("review me", "alice")
			tk, err := ClaimReviewTask(b.ctx, b.c, id, ClaimOptions{Claimer: "host:7"})
			if err != nil || tk == nil || tk.Status != StatusRunning || tk.ClaimLock != "host:7" || tk.CurrentRunID == 0 {
				t.Fatalf("claimed %+v, %v", tk, err)
			}
			evs := must[[]TaskEvent](t)(ListEvents(b.ctx, b.c, id))
			last := evs[len(evs)-1]
			if last.Kind != "claimed" || last.Payload["source_status"] != StatusReview || last.RunID != tk.CurrentRunID {
				t.Fatalf("claimed event %+v", last)
			}
			b.checkInvariant()
		})
		t.Run("claim_review_task_fails_on_non_review", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.create(CreateOptions{Title: "ready task", Assignee: "alice"})
			if tk := must[*Task](t)(ClaimReviewTask(b.ctx, b.c, id, ClaimOptions{})); tk != nil {
				t.Fatalf("claimed a ready task: %+v", tk)
			}
			b.wantStatus(id, StatusReady)
		})
		t.Run("claim_review_task_fails_when_already_claimed", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.toReview("review me", "alice")
			if must[*Task](t)(ClaimReviewTask(b.ctx, b.c, id, ClaimOptions{})) == nil {
				t.Fatal("first claim lost")
			}
			if tk := must[*Task](t)(ClaimReviewTask(b.ctx, b.c, id, ClaimOptions{})); tk != nil {
				t.Fatalf("second claim won: %+v", tk)
			}
			if runs := must[[]TaskRun](t)(ListRuns(b.ctx, b.c, id)); len(runs) != 1 {
				t.Fatalf("%d runs", len(runs))
			}
		})
		t.Run("dispatch_review_dry_run", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.toReview("review me", "alice")
			res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{DryRun: true}))
			if !slices.Equal(res.WouldSpawn, []string{id}) {
				t.Fatalf("%+v", res)
			}
			b.wantStatus(id, StatusReview)
		})
		t.Run("dispatch_review_spawns_with_review_skill", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.toReview("review me", "alice")
			sp := &recordingSpawner{}
			res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, WorkspacesRoot: t.TempDir()}))
			if len(res.Spawned) != 1 || res.Spawned[0].Lane != "review" || len(sp.tasks) != 1 {
				t.Fatalf("%+v", res)
			}
			if got := sp.tasks[0]; got.Skills != `["sdlc-review"]` || got.Assignee != "alice" {
				t.Fatalf("spawned as %+v", got)
			}
			tk := b.task(id)
			if tk.Status != StatusRunning || tk.Assignee != "alice" || tk.Skills != "" || tk.WorkerPID != 930001 {
				t.Fatalf("task after review spawn %+v", tk)
			}
			runs := must[[]TaskRun](t)(ListRuns(b.ctx, b.c, id))
			if len(runs) != 1 || !runs[0].Open() || runs[0].WorkerPID != 930001 {
				t.Fatalf("runs %+v", runs)
			}
			b.checkInvariant()
		})
		t.Run("dispatch_review_skips_unassigned", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.toReview("review floater", "")
			res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{DryRun: true, DefaultAssignee: "bob"}))
			if !slices.Equal(res.SkippedUnassigned, []string{id}) || len(res.WouldSpawn) != 0 {
				t.Fatalf("%+v", res)
			}
		})
		t.Run("dispatch_review_skips_nonspawnable", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.toReview("review", "orion-cc")
			res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{DryRun: true, Spawnable: func(string) bool { return false }}))
			if !slices.Equal(res.SkippedNonspawnable, []string{id}) || len(res.WouldSpawn) != 0 {
				t.Fatalf("%+v", res)
			}
		})
		t.Run("dispatch_review_counts_toward_max_spawn", func(t *testing.T) {
			b := newTestBoard(t, d)
			r1 := b.create(CreateOptions{Title: "ready 1", Assignee: "alice"})
			r2 := b.create(CreateOptions{Title: "ready 2", Assignee: "bob"})
			rv := b.toReview("review", "alice")
			sp := &recordingSpawner{}
			res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, MaxSpawn: 2, WorkspacesRoot: t.TempDir()}))
			got, want := sp.ids(), []string{r1, r2} // same created_at: order is by id
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) || !slices.Equal(res.SkippedCapacity, []string{rv}) {
				t.Fatalf("%+v spawned %v", res, sp.ids())
			}
			b.wantStatus(rv, StatusReview)
		})
		t.Run("dispatch_review_spawns_when_ready_empty", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.toReview("review me", "alice")
			sp := &recordingSpawner{}
			must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, WorkspacesRoot: t.TempDir()}))
			if !slices.Equal(sp.ids(), []string{id}) {
				t.Fatalf("spawned %v", sp.ids())
			}
		})
		t.Run("dispatch_review_does_not_claim_ready_tasks", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.create(CreateOptions{Title: "ready task", Assignee: "alice"})
			if must[*Task](t)(ClaimReviewTask(b.ctx, b.c, id, ClaimOptions{})) != nil {
				t.Fatal("claim_review_task claimed a ready task")
			}
			sp := &recordingSpawner{}
			res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, WorkspacesRoot: t.TempDir()}))
			if len(res.Spawned) != 1 || res.Spawned[0].Lane != "ready" || sp.tasks[0].Skills != "" {
				t.Fatalf("%+v", res)
			}
		})
		t.Run("dispatch_review_guard_uses_review_lane", func(t *testing.T) {
			// A completed implementer run is the input of a review, not a
			// reason to hold the reviewer; an auth wall still is.
			b := newTestBoard(t, d)
			id := b.toReview("review", "alice")
			b.endedRun(id, "completed", 60)
			b2 := b.toReview("review-auth", "alice")
			b.exec(`UPDATE tasks SET last_failure_error='401 unauthorized' WHERE id=?`, b2)
			res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{DryRun: true}))
			if !slices.Equal(res.WouldSpawn, []string{id}) || !slices.Equal(res.RespawnGuarded, []GuardedTask{{b2, GuardBlockerAuth}}) {
				t.Fatalf("%+v", res)
			}
		})
		t.Run("dispatch_review_disabled", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.toReview("review", "alice")
			res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{DryRun: true, NoReviewDispatch: true}))
			if len(res.WouldSpawn) != 0 {
				t.Fatalf("%+v", res)
			}
			b.wantStatus(id, StatusReview)
		})
		t.Run("has_spawnable_review", func(t *testing.T) {
			b := newTestBoard(t, d)
			if ok := must[bool](t)(HasSpawnableReview(b.ctx, b.c, nil)); ok {
				t.Fatal("false_on_empty: true")
			}
			b.create(CreateOptions{Title: "ready only", Assignee: "verifier"})
			if ok := must[bool](t)(HasSpawnableReview(b.ctx, b.c, nil)); ok {
				t.Fatal("a ready task counted as review")
			}
			b.toReview("review", "orion-cc")
			if ok := must[bool](t)(HasSpawnableReview(b.ctx, b.c, func(string) bool { return false })); ok {
				t.Fatal("false_when_only_terminal_lanes: true")
			}
			b.toReview("review2", "default")
			if ok := must[bool](t)(HasSpawnableReview(b.ctx, b.c, func(a string) bool { return a == "default" })); !ok {
				t.Fatal("true: false")
			}
		})
		t.Run("has_spawnable_ready", func(t *testing.T) {
			b := newTestBoard(t, d)
			if ok := must[bool](t)(HasSpawnableReady(b.ctx, b.c, nil)); ok {
				t.Fatal("false_on_empty_queue: true")
			}
			b.create(CreateOptions{Title: "t1", Assignee: "orion-cc"})
			b.create(CreateOptions{Title: "t2", Assignee: "orion-research"})
			b.create(CreateOptions{Title: "unassigned"})
			if ok := must[bool](t)(HasSpawnableReady(b.ctx, b.c, func(string) bool { return false })); ok {
				t.Fatal("false_when_only_terminal_lanes: true")
			}
			b.create(CreateOptions{Title: "hermes-task", Assignee: "daily"})
			if ok := must[bool](t)(HasSpawnableReady(b.ctx, b.c, func(a string) bool { return a == "daily" })); !ok {
				t.Fatal("true_when_real_profile_present: false")
			}
		})
	})
}

// TestBoardDispatchMaxInProgress ports the three max_in_progress tests and
// covers the per-profile cap and default_assignee.
func TestBoardDispatchMaxInProgress(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		t.Run("skips_when_at_limit", func(t *testing.T) {
			b := newTestBoard(t, d)
			b.claim(b.create(CreateOptions{Title: "a", Assignee: "alice"}), ClaimOptions{})
			b.claim(b.create(CreateOptions{Title: "b", Assignee: "bob"}), ClaimOptions{})
			b.create(CreateOptions{Title: "c", Assignee: "bob"})
			b.create(CreateOptions{Title: "d", Assignee: "alice"})
			sp := &recordingSpawner{}
			must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, MaxInProgress: 2, WorkspacesRoot: t.TempDir()}))
			if len(sp.tasks) != 0 {
				t.Fatalf("spawned %v", sp.ids())
			}
		})
		t.Run("spawns_up_to_cap", func(t *testing.T) {
			b := newTestBoard(t, d)
			b.claim(b.create(CreateOptions{Title: "a", Assignee: "alice"}), ClaimOptions{})
			for _, title := range []string{"b", "c", "d"} {
				b.create(CreateOptions{Title: title, Assignee: "bob"})
			}
			sp := &recordingSpawner{}
			must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, MaxInProgress: 3, WorkspacesRoot: t.TempDir()}))
			if len(sp.tasks) != 2 {
				t.Fatalf("spawned %v, want 2 (cap 3 - 1 running)", sp.ids())
			}
		})
		t.Run("none_is_unlimited", func(t *testing.T) {
			b := newTestBoard(t, d)
			for _, title := range []string{"a", "b", "c", "d"} {
				b.create(CreateOptions{Title: title, Assignee: "alice"})
			}
			sp := &recordingSpawner{}
			must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, WorkspacesRoot: t.TempDir()}))
			if len(sp.tasks) != 4 {
				t.Fatalf("spawned %v", sp.ids())
			}
		})
		t.Run("per_profile_cap", func(t *testing.T) {
			b := newTestBoard(t, d)
			b.claim(b.create(CreateOptions{Title: "running", Assignee: "alice"}), ClaimOptions{})
			a1 := b.create(CreateOptions{Title: "a1", Assignee: "alice", Priority: 3})
			b1 := b.create(CreateOptions{Title: "b1", Assignee: "bob", Priority: 2})
			b2 := b.create(CreateOptions{Title: "b2", Assignee: "bob", Priority: 1})
			sp := &recordingSpawner{}
			res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, MaxInProgressPerProfile: 1, WorkspacesRoot: t.TempDir()}))
			want := []ProfileCapped{{a1, "alice", 1}, {b2, "bob", 1}}
			if !slices.Equal(sp.ids(), []string{b1}) || !slices.Equal(res.SkippedPerProfileCapped, want) {
				t.Fatalf("%+v spawned %v", res, sp.ids())
			}
			b.wantStatus(a1, StatusReady)
			b.wantStatus(b2, StatusReady)
		})
		t.Run("default_assignee", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.create(CreateOptions{Title: "floater"})
			res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{DryRun: true, DefaultAssignee: "Worker"}))
			if !slices.Equal(res.WouldSpawn, []string{id}) || b.task(id).Assignee != "" || len(res.AutoAssigned) != 0 {
				t.Fatalf("dry run persisted or missed the default: %+v %+v", res, b.task(id))
			}
			sp := &recordingSpawner{}
			res = must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, DefaultAssignee: "Worker", WorkspacesRoot: t.TempDir()}))
			if !slices.Equal(res.AutoAssigned, []string{id}) || sp.tasks[0].Assignee != "worker" || b.task(id).Assignee != "worker" || !b.hasEvent(id, "assigned") {
				t.Fatalf("%+v %+v %v", res, b.task(id), b.kinds(id))
			}
		})
	})
}

// TestBoardDispatchLockSwitch shows dispatch_lock (#50331): with the switch
// on (hardened) a dispatcher that finds <db>.dispatch.lock held does
// nothing at all this tick; with it off (legacy) it dispatches regardless.
func TestBoardDispatchLockSwitch(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		for _, on := range []bool{true, false} {
			b := newTestBoard(t, d, func(s *Switches) { s.DispatchLock = on })
			id := b.create(CreateOptions{Title: "x", Assignee: "alice"})
			held, ok, err := tryDispatchLock(b.path) // another dispatcher's lock
			if err != nil || !ok {
				t.Fatalf("lock: %v %v", ok, err)
			}
			sp := &recordingSpawner{}
			o := DispatchOptions{Spawner: sp, WorkspacesRoot: t.TempDir()}
			res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, o))
			if on {
				if !res.SkippedLocked || len(sp.tasks) != 0 || b.status(id) != StatusReady {
					t.Fatalf("dispatch_lock on, lock held: %+v", res)
				}
			} else if res.SkippedLocked || !slices.Equal(sp.ids(), []string{id}) {
				t.Fatalf("dispatch_lock off: %+v", res)
			}
			held.release()
			if on {
				// Released: the next tick runs and leaves the lock free.
				res = must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, o))
				if res.SkippedLocked || !slices.Equal(sp.ids(), []string{id}) {
					t.Fatalf("after release: %+v", res)
				}
				again, ok, err := tryDispatchLock(b.path)
				if err != nil || !ok {
					t.Fatalf("DispatchOnce kept the lock: %v %v", ok, err)
				}
				again.release()
			}
		}
	})
}
