package scenarios

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

	"github.com/sqlchaos/sqlchaos/internal/fusetest"
	"github.com/sqlchaos/sqlchaos/internal/proctree"
	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

// runnerRole runs one scenario cell in its own process (args: scenario,
// profile, run directory), as chaosrun run does.
const runnerRole = "scn-test-runner"

func init() {
	reexec.Register(runnerRole, func(args []string) int {
		_, err := Execute(context.Background(), Config{Scenario: args[0], Profile: args[1], Driver: "modernc", Seed: 1,
			Out: args[2], Stderr: os.Stderr})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	})
}

// registered is one "proc" line of an anchor file.
type registered struct {
	pid   int
	start uint64
	name  string
}

// readRegistry parses an anchor file: its processes and mount points.
func readRegistry(t *testing.T, file string) (procs []registered, mounts []string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 4 && f[0] == "proc":
			pid, _ := strconv.Atoi(f[1])
			start, _ := strconv.ParseUint(f[2], 10, 64)
			procs = append(procs, registered{pid, start, f[3]})
		case len(f) == 2 && f[0] == "mount":
			m, _ := strconv.Unquote(f[1])
			mounts = append(mounts, m)
		}
	}
	return procs, mounts
}

// withAnchor lists the live processes whose environment names anchor. A
// read of /proc/PID/environ can block for ever on a process stuck in a
// page fault on a hung FUSE mount (someone else's test on this machine), so
// each read is bounded and an unreadable process is skipped.
func withAnchor(anchor string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ch := make(chan []byte, 1)
		go func() {
			b, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
			ch <- b
		}()
		var env []byte
		select {
		case env = <-ch:
		case <-time.After(200 * time.Millisecond):
			continue
		}
		if bytes.Contains(env, []byte("\x00"+proctree.AnchorEnv+"="+anchor+"\x00")) || bytes.HasPrefix(env, []byte(proctree.AnchorEnv+"="+anchor+"\x00")) {
			out = append(out, pid)
		}
	}
	return out
}

func chaosfsMountedAt(dir string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == dir && strings.Contains(line, " - fuse.chaosfs ") {
			return true
		}
	}
	return false
}

// TestKilledRunnerLeavesNothing: a runner (a process running
// scenarios.Execute on connect-eio-zombies: faultfs server, a gateway, the
// workers it spawns) is SIGKILLed while its roles run. Without any help
// from the dead runner: every process it started (its roles by their
// parent-death signal, the workers — whose parent is the gateway — and the
// server by the anchor watch) exits, and the server unmounts on its
// SIGTERM. The next runner start (adoptOrphans, the first thing Execute
// does) then reaps the zombies this process adopted as a subreaper and
// removes the registry file: no faultfs mount, no process, no zombie left.
func TestKilledRunnerLeavesNothing(t *testing.T) {
	fusetest.Require(t)
	reg := t.TempDir()
	t.Setenv(proctree.RegistryEnv, reg)
	adoptOrphans() // this test process is the subreaper the orphans go to
	cmd, err := reexec.Command(runnerRole, []string{"connect-eio-zombies", "legacy", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = testLog{t}, testLog{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	rs, ok := proctree.ReadStat(cmd.Process.Pid)
	if !ok {
		t.Fatal("runner gone at once")
	}
	anchor := fmt.Sprintf("%d:%d", rs.Pid, rs.Start)
	file := proctree.AnchorFile(anchor)

	// Wait until the run is in full swing: the server, the gateway and a
	// live worker of the gateway's.
	var procs []registered
	var mounts []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		procs, mounts = readRegistry(t, file)
		liveWorker := false
		for _, p := range procs {
			if strings.Contains(p.name, "-w") && proctree.Alive(p.pid, p.start) {
				liveWorker = true
			}
		}
		if liveWorker && len(mounts) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live worker within 60s; registry: %v %v", procs, mounts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mnt := mounts[0]
	t.Cleanup(func() {
		// The runner's work directory (backing + mount point), unless the
		// runner recorded it for the sweep (proctree.RecordTemp).
		if !chaosfsMountedAt(mnt) && strings.HasPrefix(filepath.Base(filepath.Dir(mnt)), "scn-") {
			os.RemoveAll(filepath.Dir(mnt))
		}
	})
	descendants := withAnchor(anchor)
	if !chaosfsMountedAt(mnt) {
		t.Fatalf("the run's mount %s is not listed", mnt)
	}
	t.Logf("runner %s: %d registered processes, %d live processes naming it, mount %s", anchor, len(procs), len(descendants), mnt)

	t0 := time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	killed = true

	// Everything exits by itself (parent-death signal, anchor watch).
	procs, _ = readRegistry(t, file) // a spawn may have raced the kill
	end := time.Now().Add(proctree.WatchGrace + 10*time.Second)
	for {
		var alive []string
		for _, p := range procs {
			if proctree.Alive(p.pid, p.start) {
				alive = append(alive, fmt.Sprintf("%s[%d]", p.name, p.pid))
			}
		}
		for _, pid := range withAnchor(anchor) {
			if s, ok := proctree.ReadStat(pid); ok && !s.Zombie() {
				alive = append(alive, fmt.Sprintf("unregistered[%d]", pid))
			}
		}
		if len(alive) == 0 && !chaosfsMountedAt(mnt) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("%v after the runner's SIGKILL: still alive %v, mounted %v", time.Since(t0), alive, chaosfsMountedAt(mnt))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("all %d registered processes exited and the mount went %v after the runner's SIGKILL", len(procs), time.Since(t0))

	// The next start reaps the zombies and removes the registry file.
	adoptOrphans()
	for _, p := range procs {
		if s, ok := proctree.ReadStat(p.pid); ok && s.Start == p.start {
			t.Errorf("%s (pid %d) left in state %c, parent %d", p.name, p.pid, s.State, s.Ppid)
		}
	}
	for _, c := range proctree.Children(os.Getpid()) {
		if c.Zombie() {
			t.Errorf("zombie child %d left after the next start", c.Pid)
		}
	}
	if chaosfsMountedAt(mnt) {
		t.Errorf("faultfs still mounted at %s", mnt)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the dead runner's registry file is still there: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(file)); len(ents) > 1 {
		t.Logf("registry: %v", ents)
	}
}
