package proctree_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sqlchaos/sqlchaos/internal/proctree"
	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}

const (
	roleHang       = "proctree-test-hang"       // prints "ready", then sleeps in hangHere for ever
	roleStubborn   = "proctree-test-stubborn"   // ignores SIGQUIT and SIGTERM, sleeps for ever
	roleChatty     = "proctree-test-chatty"     // writes to stdout and stderr, exits 3
	roleAnchor     = "proctree-test-anchor"     // becomes an anchor, starts args[0] as a child, prints its pid, sleeps
	roleGrandchild = "proctree-test-grandchild" // prints its pid and sleeps (no Pdeathsig: only the anchor watch ends it)
	roleThreadExit = "proctree-test-threadexit" // see TestPdeathsigTrap
)

func init() {
	reexec.Register(roleHang, func([]string) int {
		fmt.Println("ready")
		hangHere()
		return 0
	})
	reexec.Register(roleStubborn, func([]string) int {
		signal.Ignore(syscall.SIGQUIT, syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return 0
	})
	reexec.Register(roleChatty, func([]string) int {
		fmt.Println("to stdout")
		fmt.Fprintln(os.Stderr, "to stderr")
		return 3
	})
	reexec.Register(roleAnchor, func(args []string) int {
		proctree.BecomeAnchor()
		var cmd *exec.Cmd
		if args[0] == "sleep" {
			cmd = exec.Command("sleep", "1000")
		} else {
			cmd, _ = reexec.Command(args[0], nil)
		}
		cmd.Stderr = os.Stderr
		if err := proctree.Start(cmd, "grandchild"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(cmd.Process.Pid)
		time.Sleep(time.Hour)
		return 0
	})
	reexec.Register(roleGrandchild, func([]string) int {
		time.Sleep(time.Hour)
		return 0
	})
	reexec.Register(roleThreadExit, threadExitMain)
}

//go:noinline
func hangHere() { time.Sleep(time.Hour) }

// readyLine waits for the child's first stdout line.
func startWithStdout(t *testing.T, cmd *exec.Cmd, o proctree.Options) (*proctree.Child, string) {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c, err := proctree.StartChild(cmd, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(c.Pid(), syscall.SIGKILL); <-c.Done() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child's first line: %v", err)
	}
	return c, strings.TrimSpace(line)
}

// syncBuf is a goroutine-safe buffer.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDeadlineQuitsAndSavesStacks: a child past its deadline gets SIGQUIT;
// its goroutine dump lands in StacksDir/<name>.txt (and not in its normal
// output), and Hung says so.
func TestDeadlineQuitsAndSavesStacks(t *testing.T) {
	t.Setenv(proctree.RegistryEnv, t.TempDir())
	cmd, err := reexec.Command(roleHang, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuf
	stacks := t.TempDir()
	t0 := time.Now()
	c, line := startWithStdout(t, cmd, proctree.Options{Name: "hanger", Deadline: 300 * time.Millisecond, StacksDir: stacks, Output: &out})
	if line != "ready" {
		t.Fatalf("first line %q", line)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("hung child still running 10s after its 300ms deadline")
	}
	took := time.Since(t0)
	h := c.Hung()
	if h == nil {
		t.Fatal("Hung() = nil for a child stopped at its deadline")
	}
	t.Logf("%v; exit %v after SIGQUIT, %v from start to reaped", h, h.Exit, took)
	if h.Killed {
		t.Errorf("a Go child needed SIGKILL after SIGQUIT: %v", h)
	}
	if h.Stacks != filepath.Join(stacks, "hanger.txt") {
		t.Errorf("stacks at %q, want %s", h.Stacks, filepath.Join(stacks, "hanger.txt"))
	}
	dump, err := os.ReadFile(h.Stacks)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SIGQUIT", "goroutine 1", "hangHere"} {
		if !bytes.Contains(dump, []byte(want)) {
			t.Errorf("stacks file lacks %q:\n%s", want, dump)
		}
	}
	if strings.Contains(out.String(), "goroutine 1") {
		t.Errorf("the dump went to the normal output too")
	}
	if !strings.Contains(out.String(), "hung (deadline 300ms)") {
		t.Errorf("output lacks the hang note: %q", out.String())
	}
}

// TestQuitKillsWhatIgnoresSIGQUIT: a child that survives SIGQUIT is
// SIGKILLed after the grace.
func TestQuitKillsWhatIgnoresSIGQUIT(t *testing.T) {
	t.Setenv(proctree.RegistryEnv, t.TempDir())
	cmd, err := reexec.Command(roleStubborn, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := startWithStdout(t, cmd, proctree.Options{Name: "stubborn", QuitGrace: 300 * time.Millisecond})
	t0 := time.Now()
	h := c.Quit("test")
	if h == nil || !h.Killed {
		t.Fatalf("Quit = %v, want a hang that needed SIGKILL", h)
	}
	if !c.Exited() {
		t.Fatal("Quit returned before the child exited")
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("Quit took %v with a 300ms grace", d)
	}
	if c.Quit("again") != h {
		t.Errorf("a second Quit changed the hang")
	}
}

// TestRunForwardsOutputAndExit: a child that ends by itself is not hung;
// its stdout and stderr reach Output and its exit status Err.
func TestRunForwardsOutputAndExit(t *testing.T) {
	t.Setenv(proctree.RegistryEnv, t.TempDir())
	cmd, err := reexec.Command(roleChatty, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuf
	c, err := proctree.Run(cmd, proctree.Options{Name: "chatty", Deadline: 30 * time.Second, Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	if c.Hung() != nil {
		t.Errorf("Hung = %v", c.Hung())
	}
	if c.Cmd.ProcessState.ExitCode() != 3 {
		t.Errorf("exit %v, want 3", c.Err())
	}
	if s := out.String(); !strings.Contains(s, "to stdout") || !strings.Contains(s, "to stderr") {
		t.Errorf("output %q", s)
	}
	if c.Quit("late") != nil {
		t.Errorf("Quit of an exited child returned a hang")
	}
}

// subreaper makes this test process adopt orphans, so that the test can reap
// what it checks (PID 1 on some machines never does).
func subreaper(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
}

// reapGone waits (up to d) until pid has exited, reaping it if it became
// our zombie; it reports whether it is gone.
func reapGone(pid int, d time.Duration) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		s, ok := proctree.ReadStat(pid)
		if !ok {
			return true
		}
		if s.Zombie() {
			if s.Ppid == os.Getpid() {
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, unix.WNOHANG, nil)
				continue
			}
			return true // dead; its parent must reap it
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// TestWatchAnchor: a grandchild without any parent-death signal, whose
// parent (an anchor) is SIGKILLed, exits by itself through the anchor watch
// that reexec.Init started.
func TestWatchAnchor(t *testing.T) {
	t.Setenv(proctree.RegistryEnv, t.TempDir())
	subreaper(t)
	cmd, err := reexec.Command(roleAnchor, []string{roleGrandchild})
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{} // no Pdeathsig: this test kills the anchor itself
	a, line := startWithStdout(t, cmd, proctree.Options{Name: "anchor", Output: testLog{t}})
	g, err := strconv.Atoi(line)
	if err != nil {
		t.Fatalf("grandchild pid %q", line)
	}
	t.Cleanup(func() { syscall.Kill(g, syscall.SIGKILL); reapGone(g, time.Second) })
	if st, ok := proctree.ReadStat(g); !ok || st.Ppid != a.Pid() {
		t.Fatalf("grandchild %d: %+v, want parent %d", g, st, a.Pid())
	}
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", g))
	if !bytes.Contains(env, []byte(proctree.AnchorEnv+"="+strconv.Itoa(a.Pid())+":")) {
		t.Fatalf("grandchild's environment does not name its anchor %d", a.Pid())
	}
	t0 := time.Now()
	syscall.Kill(a.Pid(), syscall.SIGKILL)
	<-a.Done()
	if !reapGone(g, proctree.WatchGrace+5*time.Second) {
		t.Fatalf("grandchild %d still alive %v after its anchor died", g, time.Since(t0))
	}
	t.Logf("grandchild gone %v after its anchor's SIGKILL", time.Since(t0))
}

// TestSweepKillsReapsAndUnmounts: what a dead anchor recorded — a
// non-Go process that no watch ends, adopted by this (subreaper) process —
// is SIGKILLed and reaped by Sweep; its recorded mount point is handed to
// the unmount callback; its temporary directory is removed; the anchor
// file goes. A live anchor's file is left
// alone.
func TestSweepKillsReapsAndUnmounts(t *testing.T) {
	reg := t.TempDir()
	t.Setenv(proctree.RegistryEnv, reg)
	subreaper(t)
	cmd, err := reexec.Command(roleAnchor, []string{"sleep"})
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	a, line := startWithStdout(t, cmd, proctree.Options{Name: "anchor", Output: testLog{t}})
	g, err := strconv.Atoi(line)
	if err != nil {
		t.Fatalf("grandchild pid %q", line)
	}
	t.Cleanup(func() { syscall.Kill(g, syscall.SIGKILL); reapGone(g, time.Second) })
	ast, _ := proctree.ReadStat(a.Pid())
	file := proctree.AnchorFile(fmt.Sprintf("%d:%d", a.Pid(), ast.Start))
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatalf("the anchor's registry file: %v", err)
	}
	fmt.Fprintf(f, "mount %q\n", "/nonexistent/mnt")
	tmp := filepath.Join(t.TempDir(), "run tmp")
	os.MkdirAll(filepath.Join(tmp, "sub"), 0o755)
	os.WriteFile(filepath.Join(tmp, "sub", "f"), []byte("x"), 0o644)
	fmt.Fprintf(f, "tmp %q\n", tmp)
	f.Close()

	var asked []string
	unmount := func(m string) (bool, error) { asked = append(asked, m); return true, nil }
	rep, err := proctree.Sweep(unmount)
	if err != nil || !rep.Empty() {
		t.Fatalf("Sweep with the anchor alive = %v, %v; want nothing done", rep, err)
	}
	syscall.Kill(a.Pid(), syscall.SIGKILL)
	<-a.Done()
	if st, ok := proctree.ReadStat(g); !ok || st.Zombie() {
		t.Fatalf("the sleep grandchild died with its anchor (%+v); it should need the sweep", st)
	}
	rep, err = proctree.Sweep(unmount)
	t.Logf("sweep: %v", rep)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Killed) != 1 || rep.Killed[0] != g || len(rep.Reaped) != 1 || rep.Reaped[0] != g {
		t.Errorf("Sweep killed %v, reaped %v; want [%d] both", rep.Killed, rep.Reaped, g)
	}
	if len(asked) != 1 || asked[0] != "/nonexistent/mnt" {
		t.Errorf("unmount asked for %q", asked)
	}
	if _, ok := proctree.ReadStat(g); ok {
		t.Errorf("grandchild %d still in /proc after the sweep", g)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("anchor file still there after the sweep: %v", err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) || len(rep.Temps) != 1 {
		t.Errorf("the recorded temporary dir: %v, swept %q", err, rep.Temps)
	}
}

// testLog sends a child's output to the test log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Logf("child: %s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// The Pdeathsig trap. threadExitMain (a child of the test) starts a
// grandchild with Pdeathsig=SIGKILL from a goroutine locked to its OS thread,
// then lets that goroutine exit while locked, which makes the Go runtime
// terminate the thread. With args[0] == "plain" the grandchild is started
// with exec.Cmd.Start on that thread; with "proctree" through
// proctree.Start. It prints the grandchild's pid, then whether the
// grandchild is still alive 300 ms after the thread exited.
func threadExitMain(args []string) int {
	// Keep the main goroutine on the main thread: the runtime never ends
	// the main thread (it wedges it instead), so the goroutine below must
	// run on another one.
	runtime.LockOSThread()
	var pid int
	var err error
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		cmd := exec.Command("sleep", "1000")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if args[0] == "plain" {
			err = cmd.Start()
		} else {
			err = proctree.Start(cmd, "sleeper")
		}
		if err == nil {
			pid = cmd.Process.Pid
			go cmd.Wait()
		}
		close(done)
	}()
	<-done
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	time.Sleep(300 * time.Millisecond)
	alive := syscall.Kill(pid, 0) == nil
	if s, ok := proctree.ReadStat(pid); ok && s.Zombie() {
		alive = false
	}
	fmt.Println(pid, alive)
	syscall.Kill(pid, syscall.SIGKILL)
	return 0
}

// TestPdeathsigTrap shows the trap the package works around: a child with
// Pdeathsig started from a goroutine whose thread later exits is killed at
// that moment, although its parent process lives on; started through
// proctree.Start it lives.
func TestPdeathsigTrap(t *testing.T) {
	t.Setenv(proctree.RegistryEnv, t.TempDir())
	for _, c := range []struct {
		how       string
		wantAlive bool
	}{{"plain", false}, {"proctree", true}} {
		cmd, err := reexec.Command(roleThreadExit, []string{c.how})
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", c.how, err)
		}
		var pid int
		var alive bool
		if _, err := fmt.Sscan(string(out), &pid, &alive); err != nil {
			t.Fatalf("%s: output %q", c.how, out)
		}
		if alive != c.wantAlive {
			t.Errorf("%s: grandchild alive=%v after its starting thread exited, want %v", c.how, alive, c.wantAlive)
		}
	}
}
