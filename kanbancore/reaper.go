package kanbancore

import (
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Reap registry bounds (the original's TTL 600 s, cap 4096).
const (
	reapRegistryTTL = 600 * time.Second
	reapRegistryCap = 4096
)

type reapEntry struct {
	status unix.WaitStatus
	at     time.Time
}

var reapReg = struct {
	sync.Mutex
	m     map[int]reapEntry
	order []int
}{m: map[int]reapEntry{}}

// waitAny is waitpid(-1, WNOHANG); a variable so tests can fake errors.
var waitAny = func() (int, unix.WaitStatus, error) {
	var ws unix.WaitStatus
	pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
	return pid, ws, err
}

// ReapWorkerZombies reaps every exited child of this process with
// waitpid(-1, WNOHANG) until none is left, records each exit status in a
// bounded registry (read by DetectCrashedWorkers) and returns the reaped
// pids. It swallows every error. Like the original it reaps ANY child of
// the process, not only workers: code elsewhere in the process that waits
// for its own children can lose their status to it.
func ReapWorkerZombies() []int {
	var pids []int
	for i := 0; i < 1<<16; i++ {
		pid, ws, err := waitAny()
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			break
		}
		pids = append(pids, pid)
		recordExit(pid, ws)
	}
	return pids
}

func recordExit(pid int, ws unix.WaitStatus) {
	now := time.Now()
	reapReg.Lock()
	defer reapReg.Unlock()
	// Drop expired and over-cap entries, oldest first.
	for len(reapReg.order) > 0 {
		old := reapReg.order[0]
		if e := reapReg.m[old]; now.Sub(e.at) < reapRegistryTTL && len(reapReg.m) < reapRegistryCap {
			break
		}
		reapReg.order = reapReg.order[1:]
		delete(reapReg.m, old)
	}
	if _, ok := reapReg.m[pid]; !ok {
		reapReg.order = append(reapReg.order, pid)
	}
	reapReg.m[pid] = reapEntry{status: ws, at: now}
}

// ReapedExit returns the wait status recorded for pid by the reaper.
func ReapedExit(pid int) (unix.WaitStatus, bool) {
	reapReg.Lock()
	defer reapReg.Unlock()
	e, ok := reapReg.m[pid]
	if !ok || time.Since(e.at) >= reapRegistryTTL {
		return 0, false
	}
	return e.status, true
}

// Worker exit classes (the original's _classify_worker_exit).
const (
	ExitClean       = "clean_exit"
	ExitRateLimited = "rate_limited"
	ExitNonzero     = "nonzero_exit"
	ExitSignaled    = "signaled"
	ExitUnknown     = "unknown"
)

// ClassifyWorkerExit classifies a dead worker from the reap registry:
// rc 0 is clean_exit (a protocol violation for a task still running),
// rc 75 rate_limited, any other rc nonzero_exit, a signal signaled, and no
// record unknown. It returns the class and a human-readable detail.
func ClassifyWorkerExit(pid int) (class string, code int) {
	ws, ok := ReapedExit(pid)
	if !ok {
		return ExitUnknown, -1
	}
	switch {
	case ws.Exited() && ws.ExitStatus() == 0:
		return ExitClean, 0
	case ws.Exited() && ws.ExitStatus() == RateLimitExitCode:
		return ExitRateLimited, RateLimitExitCode
	case ws.Exited():
		return ExitNonzero, ws.ExitStatus()
	case ws.Signaled():
		return ExitSignaled, int(ws.Signal())
	}
	return ExitUnknown, -1
}
