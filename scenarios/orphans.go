package scenarios

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

var adoptOnce sync.Once

// adoptOrphans makes this process a child subreaper: a worker whose
// dispatcher was killed (or a real worker whose launcher exited) is
// re-parented to the runner instead of to PID 1, which on some machines
// never reaps it. reapOrphans then collects them, so a run leaves no zombie
// behind.
func adoptOrphans() {
	adoptOnce.Do(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
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
		for _, c := range childrenOf(self) {
			if groups[c.pid] || !groups[c.pgrp] {
				continue
			}
			if c.state != 'Z' {
				alive++
				continue
			}
			var ws unix.WaitStatus
			if pid, err := unix.Wait4(c.pid, &ws, unix.WNOHANG, nil); err == nil && pid == c.pid {
				reaped++
			}
		}
		if alive == 0 || time.Now().After(deadline) {
			return reaped, alive
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type childProc struct {
	pid, pgrp int
	state     byte
}

// childrenOf lists the processes whose parent is ppid, from /proc.
func childrenOf(ppid int) []childProc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []childProc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		c, parent, ok := readStat(pid)
		if ok && parent == ppid {
			out = append(out, c)
		}
	}
	return out
}

// readStat parses /proc/<pid>/stat: state, ppid and pgrp follow the
// parenthesised command name.
func readStat(pid int) (c childProc, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return c, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return c, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 || len(f[0]) == 0 {
		return c, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return c, 0, false
	}
	return childProc{pid: pid, pgrp: pgrp, state: f[0][0]}, ppid, true
}
