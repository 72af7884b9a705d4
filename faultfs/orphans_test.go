package faultfs_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
	"github.com/sqlchaos/sqlchaos/internal/proctree"
	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

// anchorMountRole is a stand-in for a run: it becomes an anchor, mounts
// faultfs over args[0] on args[1], prints "PID" (the server's), and sleeps
// until it is killed.
const anchorMountRole = "faultfs-test-anchor-mount"

func init() {
	reexec.Register(anchorMountRole, func(args []string) int {
		proctree.BecomeAnchor()
		m, err := faultfs.Start(context.Background(), faultfs.Config{Backing: args[0], Mountpoint: args[1]})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(m.Pid())
		time.Sleep(time.Hour)
		return 0
	})
}

// TestStopHungServerSavesStacks: a server that does not stop within
// StopTimeout is hung: Stop takes its goroutine stacks with SIGQUIT into
// Config.Stacks/faultfs.txt, ends it, and Hung reports it.
func TestStopHungServerSavesStacks(t *testing.T) {
	stacks := t.TempDir()
	m := fusetest.Mount(t, faultfs.Config{StopTimeout: 300 * time.Millisecond, Stacks: stacks})
	if err := syscall.Kill(m.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	h := m.Hung()
	if h == nil {
		t.Fatal("Hung() = nil after a Stop that had to escalate")
	}
	t.Logf("Stop took %v: %v (SIGQUIT to exit %v)", time.Since(t0), h, h.Exit)
	b, err := os.ReadFile(filepath.Join(stacks, "faultfs.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SIGQUIT", "goroutine ", "go-fuse"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("stacks lack %q (%d bytes)", want, len(b))
		}
	}
	if m.Died() != nil {
		t.Errorf("Died = %v; Stop's own escalation is not a crash", m.Died())
	}
}

// TestStopCleanServerNotHung: the control: a server that stops when asked
// is not hung and leaves no stacks.
func TestStopCleanServerNotHung(t *testing.T) {
	stacks := t.TempDir()
	m := fusetest.Mount(t, faultfs.Config{Stacks: stacks})
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if h := m.Hung(); h != nil {
		t.Fatalf("Hung = %v for a clean stop", h)
	}
	if ents, _ := os.ReadDir(stacks); len(ents) != 0 {
		t.Errorf("stacks saved for a clean stop: %v", ents)
	}
}

// TestSweepOrphansClearsADeadRunsMount: a run (anchor) is SIGKILLed while
// its faultfs server cannot react (SIGSTOPped: its parent-death SIGTERM and
// its anchor watch stay pending). The mount is left behind. SweepOrphans
// kills the server, reaps it (this test process adopted it as a subreaper)
// and unmounts.
func TestSweepOrphansClearsADeadRunsMount(t *testing.T) {
	fusetest.Require(t)
	t.Setenv(proctree.RegistryEnv, t.TempDir())
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("subreaper: %v", err)
	}
	mnt, err := os.MkdirTemp("", "faultfs-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { faultfs.Unmount(mnt); os.Remove(mnt) })
	cmd, err := reexec.Command(anchorMountRole, []string{t.TempDir(), mnt})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testLog{t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("anchor did not mount: %v", err)
	}
	server, _ := strconv.Atoi(strings.TrimSpace(line))
	t.Cleanup(func() { syscall.Kill(server, syscall.SIGKILL) })
	if err := syscall.Kill(server, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	time.Sleep(100 * time.Millisecond)
	if !mountedIn(t, mnt) {
		t.Fatal("the stopped server's mount went away by itself; the sweep has nothing to do")
	}
	rep, err := faultfs.SweepOrphans()
	t.Logf("sweep: %v", rep)
	if err != nil {
		t.Fatal(err)
	}
	if mountedIn(t, mnt) {
		t.Error("still mounted after SweepOrphans")
	}
	if len(rep.Mounts) != 1 || rep.Mounts[0] != mnt {
		t.Errorf("swept mounts %q, want [%s]", rep.Mounts, mnt)
	}
	if s, ok := proctree.ReadStat(server); ok {
		t.Errorf("server %d still in /proc (state %c, parent %d)", server, s.State, s.Ppid)
	}
}
