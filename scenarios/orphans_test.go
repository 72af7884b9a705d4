package scenarios

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/internal/proctree"
)

// A grandchild whose parent exits is adopted by the runner (not PID 1) and
// reaped by reapOrphans once its group is killed: no zombie is left behind.
func TestReapOrphansAdoptsAndReaps(t *testing.T) {
	adoptOrphans()
	cmd := exec.Command("sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	leader := cmd.Process.Pid
	orphan, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("orphan pid %q: %v", out, err)
	}
	t.Cleanup(func() { syscall.Kill(orphan, syscall.SIGKILL) })
	c, ok := proctree.ReadStat(orphan)
	if !ok || c.Ppid != syscall.Getpid() || c.Pgrp != leader {
		t.Fatalf("orphan %d: ok=%v ppid=%d (want us, %d) pgrp=%d (want %d)", orphan, ok, c.Ppid, syscall.Getpid(), c.Pgrp, leader)
	}
	syscall.Kill(-leader, syscall.SIGKILL)
	reaped, alive := reapOrphans(map[int]bool{leader: true}, 5*time.Second)
	if reaped != 1 || alive != 0 {
		t.Fatalf("reapOrphans = %d reaped, %d alive; want 1, 0", reaped, alive)
	}
	if _, ok := proctree.ReadStat(orphan); ok {
		t.Fatalf("orphan %d still in /proc after reaping", orphan)
	}
}
