package kanbancore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// countingSpawner records spawns and returns fake pids (or an error).
type countingSpawner struct {
	spawned []string
	err     error
}

func (s *countingSpawner) Spawn(ctx context.Context, t Task, ws string) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	s.spawned = append(s.spawned, t.ID)
	return 920000 + len(s.spawned), nil
}

func TestBoardDispatchBasics(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		ws := t.TempDir()
		a := b.create(CreateOptions{Title: "a", Assignee: "w", Priority: 1})
		u := b.create(CreateOptions{Title: "unassigned"})
		n := b.create(CreateOptions{Title: "n", Assignee: "nobody"})

		// Dry run claims nothing.
		res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{DryRun: true, WorkspacesRoot: ws}))
		if !slices.Contains(res.WouldSpawn, a) || len(res.Spawned) != 0 {
			t.Fatalf("dry run %+v", res)
		}
		b.wantStatus(a, StatusReady)

		sp := &countingSpawner{}
		res = must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, WorkspacesRoot: ws,
			Spawnable: func(x string) bool { return x != "nobody" }}))
		if !slices.Equal(sp.spawned, []string{a}) || !slices.Equal(res.SkippedUnassigned, []string{u}) ||
			!slices.Equal(res.SkippedNonspawnable, []string{n}) {
			t.Fatalf("dispatch %+v spawned %v", res, sp.spawned)
		}
		tk := b.task(a)
		if tk.Status != StatusRunning || tk.WorkerPID != 920001 || tk.WorkspacePath != filepath.Join(ws, a) || !b.hasEvent(a, "spawned") {
			t.Fatalf("spawned task %+v %v", tk, b.kinds(a))
		}
		if st, err := os.Stat(tk.WorkspacePath); err != nil || !st.IsDir() {
			t.Fatalf("workspace not created: %v", err)
		}
		runs := must[[]TaskRun](t)(ListRuns(b.ctx, b.c, a))
		if runs[0].WorkerPID != 920001 {
			t.Fatalf("run pid %d", runs[0].WorkerPID)
		}
		b.checkInvariant()
	})
}

func TestBoardDispatchSpawnFailureReleasesClaim(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		id := b.create(CreateOptions{Title: "x", Assignee: "w"})
		o := DispatchOptions{Spawner: &countingSpawner{err: errors.New("no such binary")}, WorkspacesRoot: t.TempDir()}
		res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, o))
		if !slices.Equal(res.SpawnFailed, []string{id}) {
			t.Fatalf("%+v", res)
		}
		tk := b.task(id)
		if tk.Status != StatusReady || tk.ClaimLock != "" || tk.ConsecutiveFailures != 1 || !b.hasEvent(id, "spawn_failed") {
			t.Fatalf("after spawn failure %+v %v", tk, b.kinds(id))
		}
		runs := must[[]TaskRun](t)(ListRuns(b.ctx, b.c, id))
		if len(runs) != 1 || runs[0].Outcome != "spawn_failed" || runs[0].Open() {
			t.Fatalf("runs %+v", runs)
		}
		// The second failure trips the breaker.
		res = must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, o))
		if !slices.Equal(res.AutoBlocked, []string{id}) {
			t.Fatalf("%+v", res)
		}
		b.wantStatus(id, StatusBlocked)
		b.checkInvariant()
	})
}

func TestBoardDispatchCaps(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		for i := 0; i < 2; i++ {
			b.claim(b.create(CreateOptions{Title: "already", Assignee: "w"}), ClaimOptions{Claimer: "far:1"})
		}
		for i := 0; i < 3; i++ {
			b.create(CreateOptions{Title: fmt.Sprint("r", i), Assignee: "w"})
		}
		ws := t.TempDir()
		// max_spawn counts running tasks: 3 - 2 running = 1 spawn.
		sp := &countingSpawner{}
		res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, MaxSpawn: 3, WorkspacesRoot: ws}))
		if len(sp.spawned) != 1 || len(res.SkippedCapacity) != 2 {
			t.Fatalf("max_spawn: %+v", res)
		}
		// max_in_progress at the limit (3 running): nothing.
		res = must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, MaxInProgress: 3, WorkspacesRoot: ws}))
		if len(sp.spawned) != 1 || len(res.SkippedCapacity) != 2 {
			t.Fatalf("max_in_progress at limit: %+v", res)
		}
		// Up to the cap: 4 allows one more.
		must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, MaxInProgress: 4, WorkspacesRoot: ws}))
		if len(sp.spawned) != 2 {
			t.Fatalf("max_in_progress cap: %v", sp.spawned)
		}
		// None is unlimited.
		must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, WorkspacesRoot: ws}))
		if len(sp.spawned) != 3 {
			t.Fatalf("unlimited: %v", sp.spawned)
		}
	})
}

func TestBoardDispatchReclaimsStaleBeforeSpawning(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		id := b.create(CreateOptions{Title: "x", Assignee: "w"})
		b.claim(id, ClaimOptions{Claimer: "gone-host:1", TTL: 10 * time.Second})
		b.clock.Advance(11 * time.Second)
		sp := &countingSpawner{}
		res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, WorkspacesRoot: t.TempDir()}))
		if res.Reclaimed != 1 || !slices.Equal(sp.spawned, []string{id}) {
			t.Fatalf("%+v spawned %v", res, sp.spawned)
		}
		if runs := must[[]TaskRun](t)(ListRuns(b.ctx, b.c, id)); len(runs) != 2 || runs[0].Outcome != "reclaimed" || !runs[1].Open() {
			t.Fatalf("runs %+v", runs)
		}
		b.checkInvariant()
	})
}

func TestBoardExecSpawnerRealProcess(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d, func(s *Switches) { s.CrashGrace = 0 })
		id := b.create(CreateOptions{Title: "x", Assignee: "w"})
		sp := &ExecSpawner{
			Command: []string{"sh", "-c", `printf '%s|%s|%s' "$SQLCHAOS_KANBAN_TASK" "$SQLCHAOS_KANBAN_DB" "$SQLCHAOS_KANBAN_BOARD" > env.txt; exit 3`},
			DB:      b.path, Board: "default",
		}
		res := must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: sp, WorkspacesRoot: t.TempDir()}))
		if len(res.Spawned) != 1 || res.Spawned[0].PID <= 0 {
			t.Fatalf("%+v", res)
		}
		sp0 := res.Spawned[0]
		var got []byte
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, ok := ReapedExit(sp0.PID); ok {
				break
			}
			ReapWorkerZombies()
			time.Sleep(5 * time.Millisecond)
		}
		got, _ = os.ReadFile(filepath.Join(sp0.Workspace, "env.txt"))
		if want := id + "|" + b.path + "|default"; string(got) != want {
			t.Fatalf("worker env %q want %q", got, want)
		}
		if class, code := ClassifyWorkerExit(sp0.PID); class != ExitNonzero || code != 3 {
			t.Fatalf("exit class %s %d", class, code)
		}
		// The next dispatch sees the dead worker and records the crash.
		res = must[DispatchResult](t)(DispatchOnce(b.ctx, b.c, DispatchOptions{Spawner: &countingSpawner{}, WorkspacesRoot: t.TempDir(), MaxSpawn: 1}))
		if !slices.Equal(res.Crashed, []string{id}) {
			t.Fatalf("crash not detected: %+v", res)
		}
		evs := must[[]TaskEvent](t)(ListEvents(b.ctx, b.c, id))
		found := false
		for _, e := range evs {
			if e.Kind == "crashed" && strings.Contains(fmt.Sprint(e.Payload["error"]), "exited with code 3") {
				found = true
			}
		}
		if !found {
			t.Fatalf("no crashed event with the exit code: %+v", evs)
		}
	})
}

func TestBoardReaper(t *testing.T) {
	// No children: nothing.
	if got := ReapWorkerZombies(); len(got) != 0 {
		t.Fatalf("reaped %v with no children", got)
	}
	// waitpid errors are swallowed.
	old := waitAny
	waitAny = func() (int, unix.WaitStatus, error) { return -1, 0, unix.EINVAL }
	if got := ReapWorkerZombies(); len(got) != 0 {
		t.Fatalf("reaped %v on error", got)
	}
	waitAny = old
	// Returns the pids and records exit statuses.
	var pids []int
	for _, code := range []int{0, 75, 9} {
		cmd := execStart(t, fmt.Sprintf("exit %d", code))
		pids = append(pids, cmd)
	}
	waitZombies(t, pids)
	got := ReapWorkerZombies()
	for _, p := range pids {
		if !slices.Contains(got, p) {
			t.Fatalf("reaped %v, missing %d", got, p)
		}
	}
	for i, want := range []string{ExitClean, ExitRateLimited, ExitNonzero} {
		if c, _ := ClassifyWorkerExit(pids[i]); c != want {
			t.Fatalf("pid %d: %s want %s", pids[i], c, want)
		}
	}
	if c, _ := ClassifyWorkerExit(1); c != ExitUnknown {
		t.Fatalf("unknown pid classified %s", c)
	}
}

// execStart starts `sh -c script` without waiting for it.
func execStart(t *testing.T, script string) int {
	t.Helper()
	sp := &ExecSpawner{Command: []string{"sh", "-c", script}}
	pid, err := sp.Spawn(context.Background(), Task{ID: "t_reap"}, "")
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitZombies waits until every pid is a zombie (exited, not reaped).
func waitZombies(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range pids {
		for !isZombie(p) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d never became a zombie", p)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "State:") {
			return strings.Contains(l, "Z")
		}
	}
	return false
}
