package proctree

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// AnchorEnv names the variable that ties a process tree to its anchor:
// "PID:START" of the process that owns the tree (a scenario runner, a test
// binary, chaosrun). reexec.Command puts it into every child's environment
// and children pass it on to theirs, so a worker that a dispatcher started
// knows its run's anchor although its own parent is the dispatcher.
const AnchorEnv = "SQLCHAOS_ANCHOR"

// WatchGrace is how long a process whose anchor died has between the
// SIGTERM it sends itself (a role closes its connection, the faultfs server
// unmounts) and the SIGKILL that follows.
var WatchGrace = 3 * time.Second

// Anchor returns the "PID:START" value children of this process inherit:
// the anchor this process inherited, or this process itself.
func Anchor() string {
	if a := os.Getenv(AnchorEnv); a != "" {
		if _, _, err := parseAnchor(a); err == nil {
			return a
		}
	}
	return self()
}

func self() string { return fmt.Sprintf("%d:%d", os.Getpid(), selfStart()) }

// BecomeAnchor makes this process the anchor of every child it starts from
// now on (and of their children): when it dies, they all die. A scenario
// runner calls it, so that killing the runner ends its whole run even when
// the runner itself was started by another anchor (a test binary).
func BecomeAnchor() { os.Setenv(AnchorEnv, self()) }

func parseAnchor(a string) (pid int, start uint64, err error) {
	p, s, ok := strings.Cut(a, ":")
	if !ok {
		return 0, 0, fmt.Errorf("proctree: bad %s=%q", AnchorEnv, a)
	}
	if pid, err = strconv.Atoi(p); err != nil || pid <= 0 {
		return 0, 0, fmt.Errorf("proctree: bad %s=%q", AnchorEnv, a)
	}
	if start, err = strconv.ParseUint(s, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("proctree: bad %s=%q", AnchorEnv, a)
	}
	return pid, start, nil
}

// WatchAnchor makes this process follow its inherited anchor
// ($SQLCHAOS_ANCHOR) into death: when the anchor exits, this process sends
// itself SIGTERM and, WatchGrace later, SIGKILL. reexec.Init calls it in
// every re-executed process. It is the parent-death signal for processes
// whose parent is not the anchor (a worker whose dispatcher started it),
// and a second line behind Pdeathsig for the others. It returns at once;
// the watch runs in a goroutine (blocked in poll(2) on a pidfd, or polling
// /proc every 250 ms where pidfds are missing).
//
// It also keeps a broken stdout or stderr from killing the process: a
// child's output usually goes through a pipe its parent reads (StartChild),
// and when the parent dies, Go would end the child with SIGPIPE at its next
// log line — the faultfs server's "unmounting" line, before it unmounted.
// With SIGPIPE caught, such a write fails with EPIPE and the process goes
// on with its cleanup. (A handler, unlike SIG_IGN, is not inherited by the
// programs the process executes.)
func WatchAnchor() {
	a := os.Getenv(AnchorEnv)
	if a == "" {
		return
	}
	pid, start, err := parseAnchor(a)
	if err != nil || pid == os.Getpid() {
		return
	}
	sigpipe := make(chan os.Signal, 1)
	signal.Notify(sigpipe, syscall.SIGPIPE)
	go func() {
		for range sigpipe {
		}
	}()
	fd, err := unix.PidfdOpen(pid, 0)
	if err == nil && !Same(pid, start) {
		unix.Close(fd) // the pid names another process now
		fd, err = -1, errors.New("anchor gone")
	}
	go func() {
		if err != nil || !waitPidfd(fd) {
			for Alive(pid, start) {
				time.Sleep(250 * time.Millisecond)
			}
		}
		fmt.Fprintf(os.Stderr, "proctree: anchor %d exited; pid %d exits with it\n", pid, os.Getpid())
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		time.Sleep(WatchGrace)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}()
}

// waitPidfd blocks until the process behind fd has exited (true), or
// returns false if poll(2) fails.
func waitPidfd(fd int) bool {
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, -1)
		switch {
		case err == nil && n > 0:
			return true
		case err != nil && !errors.Is(err, unix.EINTR):
			return false
		}
	}
}
