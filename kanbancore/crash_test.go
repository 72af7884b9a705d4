package kanbancore

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// exitedChild starts `sh -c 'exit code'`, waits until the reaper has
// collected it and returns its pid: a dead worker with a recorded status.
func exitedChild(t *testing.T, code int) int {
	t.Helper()
	cmd := exec.Command("sh", "-c", fmt.Sprintf("exit %d", code))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if slices.Contains(ReapWorkerZombies(), pid) {
			return pid
		}
		if _, ok := ReapedExit(pid); ok {
			return pid
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("child %d never reaped", pid)
	return 0
}

// fakeProcs is a ProcessOps double: a set of live pids, and a record of signals.
type fakeProcs struct {
	mu      sync.Mutex
	live    map[int]bool
	signals []string
	// survive keeps a pid alive through SIGKILL.
	survive map[int]bool
}

func (f *fakeProcs) ops() ProcessOps {
	return ProcessOps{
		Alive: func(pid int) bool { f.mu.Lock(); defer f.mu.Unlock(); return f.live[pid] },
		Signal: func(pid int, sig syscall.Signal) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.signals = append(f.signals, fmt.Sprintf("%d:%v", pid, sig))
			if !f.live[pid] {
				return syscall.ESRCH
			}
			if !f.survive[pid] {
				delete(f.live, pid)
			}
			return nil
		},
		Sleep:     func(time.Duration) {},
		TermPolls: 3,
	}
}

// running claims a fresh task host-locally and sets its worker pid.
func (b *testBoard) running(title string, pid int) string {
	b.t.Helper()
	id := b.create(CreateOptions{Title: title, Assignee: "w"})
	if b.claim(id, ClaimOptions{}) == nil {
		b.t.Fatalf("claim %s failed", id)
	}
	b.exec(`UPDATE tasks SET worker_pid=? WHERE id=?`, pid, id)
	return id
}

func TestBoardStaleClaims(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		f := &fakeProcs{live: map[int]bool{}, survive: map[int]bool{}}
		sw := SweepOptions{Proc: f.ops()}
		dead := b.running("dead", 900001)
		live := b.running("live", 900002)
		f.live[900002] = true
		stuck := b.running("stuck", 900003)
		f.live[900003], f.survive[900003] = true, true
		b.exec(`UPDATE tasks SET last_heartbeat_at=? WHERE id=?`, b.clock.Now().Unix()-10, stuck)
		foreign := b.create(CreateOptions{Title: "foreign"})
		b.claim(foreign, ClaimOptions{Claimer: "elsewhere.example:77"})
		b.exec(`UPDATE tasks SET worker_pid=900004 WHERE id=?`, foreign)
		f.live[900004] = true

		// Not expired yet: nothing happens.
		if n := must[int](t)(ReleaseStaleClaims(b.ctx, b.c, sw)); n != 0 {
			t.Fatalf("reclaimed %d before expiry", n)
		}
		b.clock.Advance(901 * time.Second) // past the 900 s TTL
		b.exec(`UPDATE tasks SET last_heartbeat_at=? WHERE id=?`, b.clock.Now().Unix()-4000, stuck)
		n := must[int](t)(ReleaseStaleClaims(b.ctx, b.c, sw))
		if n != 2 {
			t.Fatalf("reclaimed %d, want 2 (dead + foreign)", n)
		}
		b.wantStatus(dead, StatusReady)
		if tk := b.task(dead); tk.ClaimLock != "" || tk.WorkerPID != 0 {
			t.Fatalf("dead not released: %+v", tk)
		}
		if !slices.Contains(f.signals, "900001:terminated") {
			t.Fatalf("no SIGTERM to the dead worker: %v", f.signals)
		}
		evs := must[[]TaskEvent](t)(ListEvents(b.ctx, b.c, dead))
		rec := evs[len(evs)-1]
		for _, k := range []string{"claim_expires", "last_heartbeat_at", "worker_pid", "host_local", "stale_lock"} {
			if _, ok := rec.Payload[k]; !ok || rec.Kind != "reclaimed" {
				t.Fatalf("reclaimed payload lacks %s: %+v", k, rec)
			}
		}
		runs := must[[]TaskRun](t)(ListRuns(b.ctx, b.c, dead))
		if runs[0].Outcome != "reclaimed" || !strings.HasPrefix(runs[0].Error, "stale_lock=") {
			t.Fatalf("run %+v", runs[0])
		}
		// Live host-local worker with no heartbeat: extended, not killed.
		b.wantStatus(live, StatusRunning)
		if !b.hasEvent(live, "claim_extended") || b.hasEvent(live, "reclaimed") {
			t.Fatalf("live events %v", b.kinds(live))
		}
		if tk := b.task(live); tk.ClaimExpires != b.clock.Now().Unix()+900 {
			t.Fatalf("extension %d", tk.ClaimExpires-b.clock.Now().Unix())
		}
		for _, s := range f.signals {
			if strings.HasPrefix(s, "900002:") {
				t.Fatalf("live worker signalled: %v", f.signals)
			}
		}
		// Stale heartbeat + survivor: deferred, still running with its pid.
		tk := b.task(stuck)
		if tk.Status != StatusRunning || tk.WorkerPID != 900003 || tk.ClaimExpires != b.clock.Now().Unix()+120 || !b.hasEvent(stuck, "reclaim_deferred") {
			t.Fatalf("stuck: %+v events %v", tk, b.kinds(stuck))
		}
		if !slices.Contains(f.signals, "900003:killed") {
			t.Fatalf("survivor not SIGKILLed: %v", f.signals)
		}
		// Not host-local: released without any signal.
		b.wantStatus(foreign, StatusReady)
		for _, s := range f.signals {
			if strings.HasPrefix(s, "900004:") {
				t.Fatalf("foreign worker signalled: %v", f.signals)
			}
		}
		b.checkInvariant()
	})
}

func TestBoardCrashGrace(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		// Default grace (30 s): skipped at t0, reclaimed at t0+60.
		b := newTestBoard(t, d)
		id := b.running("x", exitedChild(t, 1))
		rep := must[CrashReport](t)(DetectCrashedWorkers(b.ctx, b.c, SweepOptions{}))
		if len(rep.Crashed) != 0 {
			t.Fatalf("crashed inside the grace: %v", rep)
		}
		b.wantStatus(id, StatusRunning)
		b.clock.Advance(60 * time.Second)
		rep = must[CrashReport](t)(DetectCrashedWorkers(b.ctx, b.c, SweepOptions{}))
		if !slices.Equal(rep.Crashed, []string{id}) {
			t.Fatalf("not crashed after the grace: %+v", rep)
		}
		b.wantStatus(id, StatusReady)
		if !b.hasEvent(id, "crashed") || b.task(id).ConsecutiveFailures != 1 {
			t.Fatalf("crash not recorded: %v %+v", b.kinds(id), b.task(id))
		}
		// The caveat: started_at is the FIRST claim, so a respawn has no grace.
		b.claim(id, ClaimOptions{})
		b.exec(`UPDATE tasks SET worker_pid=? WHERE id=?`, exitedChild(t, 1), id)
		rep = must[CrashReport](t)(DetectCrashedWorkers(b.ctx, b.c, SweepOptions{FailureLimit: 5}))
		if !slices.Equal(rep.Crashed, []string{id}) {
			t.Fatalf("respawn protected by the grace (caveat lost): %+v", rep)
		}
		b.checkInvariant()

		// Grace 5 s as a switch value: +3 s not reclaimed, +6 s reclaimed.
		b5 := newTestBoard(t, d, func(s *Switches) { s.CrashGrace = 5 * time.Second })
		id5 := b5.running("y", exitedChild(t, 1))
		b5.clock.Advance(3 * time.Second)
		if rep := must[CrashReport](t)(DetectCrashedWorkers(b5.ctx, b5.c, SweepOptions{})); len(rep.Crashed) != 0 {
			t.Fatalf("+3 s: %v", rep)
		}
		b5.clock.Advance(3 * time.Second)
		if rep := must[CrashReport](t)(DetectCrashedWorkers(b5.ctx, b5.c, SweepOptions{})); len(rep.Crashed) != 1 {
			t.Fatalf("+6 s: %v", rep)
		}
		b5.wantStatus(id5, StatusReady)

		// Legacy (no grace): reclaimed at once.
		bl := newTestBoard(t, d, func(s *Switches) { s.CrashGrace = 0 })
		idl := bl.running("z", exitedChild(t, 1))
		if rep := must[CrashReport](t)(DetectCrashedWorkers(bl.ctx, bl.c, SweepOptions{})); len(rep.Crashed) != 1 {
			t.Fatalf("legacy: %v", rep)
		}
		bl.wantStatus(idl, StatusReady)
	})
}

func TestBoardCrashClassificationAndBreaker(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d, func(s *Switches) { s.CrashGrace = 0 })
		// Rate-limit exits requeue without counting a failure.
		rl := b.create(CreateOptions{Title: "rl", Assignee: "w"})
		for i := 0; i < 6; i++ {
			if b.claim(rl, ClaimOptions{}) == nil {
				t.Fatalf("round %d: claim failed (status %s)", i, b.status(rl))
			}
			b.exec(`UPDATE tasks SET worker_pid=? WHERE id=?`, exitedChild(t, 75), rl)
			rep := must[CrashReport](t)(DetectCrashedWorkers(b.ctx, b.c, SweepOptions{}))
			if !slices.Equal(rep.RateLimited, []string{rl}) || len(rep.Crashed) != 0 {
				t.Fatalf("round %d: %+v", i, rep)
			}
		}
		tk := b.task(rl)
		if tk.Status != StatusReady || tk.ConsecutiveFailures != 0 || tk.LastFailureError == "" || b.hasEvent(rl, "crashed") {
			t.Fatalf("rate limited: %+v %v", tk, b.kinds(rl))
		}
		runs := must[[]TaskRun](t)(ListRuns(b.ctx, b.c, rl))
		if len(runs) != 6 || runs[5].Outcome != "rate_limited" {
			t.Fatalf("runs %+v", runs)
		}
		// A real crash counts and trips the breaker at 2.
		cr := b.create(CreateOptions{Title: "cr", Assignee: "w"})
		for i := 0; i < 2; i++ {
			b.claim(cr, ClaimOptions{})
			b.exec(`UPDATE tasks SET worker_pid=? WHERE id=?`, exitedChild(t, 1), cr)
			must[CrashReport](t)(DetectCrashedWorkers(b.ctx, b.c, SweepOptions{}))
		}
		b.wantStatus(cr, StatusBlocked)
		evs := must[[]TaskEvent](t)(ListEvents(b.ctx, b.c, cr))
		last := evs[len(evs)-1]
		if last.Kind != "gave_up" || last.Payload["failures"] != float64(2) || last.Payload["limit_source"] != "dispatcher" {
			t.Fatalf("gave_up event %+v", last)
		}
		// A clean exit while running is a protocol violation: blocked at once.
		pv := b.running("pv", exitedChild(t, 0))
		rep := must[CrashReport](t)(DetectCrashedWorkers(b.ctx, b.c, SweepOptions{}))
		if !slices.Contains(rep.AutoBlocked, pv) || !b.hasEvent(pv, "protocol_violation") {
			t.Fatalf("protocol violation: %+v %v", rep, b.kinds(pv))
		}
		b.wantStatus(pv, StatusBlocked)
		b.checkInvariant()
	})
}

func TestBoardSystemicVsIsolatedCrashes(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d, func(s *Switches) { s.CrashGrace = 0 })
		var ids []string
		for i := 0; i < 4; i++ {
			ids = append(ids, b.running(fmt.Sprint("s", i), exitedChild(t, 1)))
		}
		rep := must[CrashReport](t)(DetectCrashedWorkers(b.ctx, b.c, SweepOptions{}))
		if len(rep.Crashed) != 4 || len(rep.AutoBlocked) != 4 {
			t.Fatalf("systemic: %+v", rep)
		}
		for _, id := range ids {
			b.wantStatus(id, StatusBlocked)
		}
		b2 := newTestBoard(t, d, func(s *Switches) { s.CrashGrace = 0 })
		a := b2.running("a", exitedChild(t, 1))
		c := b2.running("c", exitedChild(t, 1))
		rep = must[CrashReport](t)(DetectCrashedWorkers(b2.ctx, b2.c, SweepOptions{}))
		if len(rep.Crashed) != 2 || len(rep.AutoBlocked) != 0 {
			t.Fatalf("isolated: %+v", rep)
		}
		b2.wantStatus(a, StatusReady)
		b2.wantStatus(c, StatusReady)
	})
}

func TestBoardMaxRuntimeAndStaleRunning(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		f := &fakeProcs{live: map[int]bool{}, survive: map[int]bool{}}
		sw := SweepOptions{Proc: f.ops()}
		id := b.create(CreateOptions{Title: "mr", Assignee: "w", MaxRuntime: 100 * time.Second})
		b.claim(id, ClaimOptions{})
		b.exec(`UPDATE tasks SET worker_pid=910001 WHERE id=?`, id)
		f.live[910001] = true
		b.clock.Advance(50 * time.Second)
		must[bool](t)(ReclaimTask(b.ctx, b.c, id, "retry", f.ops()))
		b.clock.Advance(40 * time.Second)
		b.claim(id, ClaimOptions{}) // second run starts at t0+90
		b.exec(`UPDATE tasks SET worker_pid=910002 WHERE id=?`, id)
		f.live[910002] = true
		b.clock.Advance(60 * time.Second) // 150 s after the first claim, 60 s into this run
		if got := must[[]string](t)(EnforceMaxRuntime(b.ctx, b.c, sw)); len(got) != 0 {
			t.Fatalf("timed out by the first claim's start: %v", got)
		}
		b.clock.Advance(50 * time.Second)
		if got := must[[]string](t)(EnforceMaxRuntime(b.ctx, b.c, sw)); !slices.Equal(got, []string{id}) {
			t.Fatalf("not timed out: %v", got)
		}
		tk := b.task(id)
		if tk.Status != StatusReady || tk.ConsecutiveFailures != 1 || !b.hasEvent(id, "timed_out") {
			t.Fatalf("after timeout %+v %v", tk, b.kinds(id))
		}

		// detect_stale_running: off at 0, no failure counted, heartbeat respected.
		s := b.create(CreateOptions{Title: "stale"})
		b.claim(s, ClaimOptions{Claimer: "far:1"})
		hb := b.create(CreateOptions{Title: "hb"})
		b.claim(hb, ClaimOptions{Claimer: "far:2"})
		bl := b.create(CreateOptions{Title: "blocked"})
		b.exec(`UPDATE tasks SET status='blocked' WHERE id=?`, bl)
		if got := must[[]string](t)(DetectStaleRunning(b.ctx, b.c, 0, sw)); len(got) != 0 {
			t.Fatalf("timeout 0 acted: %v", got)
		}
		b.clock.Advance(500 * time.Second)
		must[bool](t)(HeartbeatWorker(b.ctx, b.c, hb, "", 0))
		fresh := b.create(CreateOptions{Title: "fresh"})
		b.claim(fresh, ClaimOptions{Claimer: "far:3"})
		got := must[[]string](t)(DetectStaleRunning(b.ctx, b.c, 300*time.Second, sw))
		if !slices.Equal(got, []string{s}) {
			t.Fatalf("stale: %v", got)
		}
		if tk := b.task(s); tk.Status != StatusReady || tk.ConsecutiveFailures != 0 || !b.hasEvent(s, "stale") {
			t.Fatalf("stale task %+v", tk)
		}
		b.wantStatus(hb, StatusRunning)
		b.wantStatus(fresh, StatusRunning)
		b.wantStatus(bl, StatusBlocked)
		b.checkInvariant()
	})
}

func TestBoardConcurrentClaimsOnlyOneWins(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		id := b.create(CreateOptions{Title: "contested"})
		conns := make([]*Conn, 8)
		for i := range conns {
			conns[i] = b.open()
		}
		var wg sync.WaitGroup
		wins := make(chan string, len(conns))
		errs := make(chan error, len(conns))
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tk, err := ClaimTask(b.ctx, c, id, ClaimOptions{Claimer: fmt.Sprintf("host:%d", i)})
				if err != nil {
					errs <- err
				} else if tk != nil {
					wins <- tk.ClaimLock
				}
			}()
		}
		wg.Wait()
		close(wins)
		close(errs)
		for err := range errs {
			t.Errorf("claim error: %v", err)
		}
		var winners []string
		for w := range wins {
			winners = append(winners, w)
		}
		if len(winners) != 1 {
			t.Fatalf("winners %v", winners)
		}
		if tk := b.task(id); tk.ClaimLock != winners[0] {
			t.Fatalf("lock %q, winner %q", tk.ClaimLock, winners[0])
		}
		runs := must[[]TaskRun](t)(ListRuns(b.ctx, b.c, id))
		if len(runs) != 1 {
			t.Fatalf("%d runs", len(runs))
		}
	})
}
