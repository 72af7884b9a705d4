package scenarios

import (
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/internal/proctree"
)

var adoptOnce sync.Once

// adoptOrphans prepares this process to run a scenario (Execute calls it
// first):
//   - it becomes a child subreaper: a worker whose dispatcher was killed
//     (or a real worker whose launcher exited) is re-parented to the runner
//     instead of to PID 1, which on some machines never reaps it;
//     reapOrphans then collects them, so a run leaves no zombie behind;
//   - it becomes the anchor of the processes it starts (proctree): if it is
//     killed, its roles (Pdeathsig), their workers and its faultfs server
//     (anchor watch) die with it, also when this runner was itself started
//     by another anchor (a test binary);
//   - it sweeps what a dead run left behind (faultfs.SweepOrphans): the
//     processes still alive are killed, the zombies this process adopted
//     are reaped, the mounts are cleared. Live runs are not touched.
func adoptOrphans() {
	adoptOnce.Do(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
	proctree.BecomeAnchor()
	if rep, err := faultfs.SweepOrphans(); err != nil || !rep.Empty() {
		fmt.Fprintf(os.Stderr, "scenarios: cleared what a dead run left: %v (err %v)\n", rep, err)
	}
}

// reapOrphans waits for this process's children that belong to one of the
// process groups in groups (the role processes' groups) but are not role
// processes themselves: the workers adopted through adoptOrphans. Role
// processes are left to their own exec.Cmd.Wait. It returns how many it
// reaped and how many were still alive at the deadline.
func reapOrphans(groups map[int]bool, timeout time.Duration) (reaped, alive int) {
	deadline := time.Now().Add(timeout)
	self := os.Getpid()
	for {
		alive = 0
		for _, c := range proctree.Children(self) {
			if groups[c.Pid] || !groups[c.Pgrp] {
				continue
			}
			if !c.Zombie() {
				alive++
				continue
			}
			var ws unix.WaitStatus
			if pid, err := unix.Wait4(c.Pid, &ws, unix.WNOHANG, nil); err == nil && pid == c.Pid {
				reaped++
			} else {
				alive++ // a leader shows Z before its other threads are gone
			}
		}
		if alive == 0 || time.Now().After(deadline) {
			return reaped, alive
		}
		time.Sleep(20 * time.Millisecond)
	}
}
