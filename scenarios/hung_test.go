package scenarios

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
)

// hungSetup makes a board (fault-free, in the backing directory), mounts
// faultfs over it with plan, and returns a run directory and a CLI spec on
// the mounted board.
func hungSetup(t *testing.T, plan string, sets ...string) (runDir string, spec RoleSpec) {
	t.Helper()
	fusetest.Require(t)
	backing := t.TempDir()
	c, err := kanbancore.Open(context.Background(), filepath.Join(backing, oracle.DBName), kanbancore.Options{Driver: kanbancore.DriverModernc, Switches: kanbancore.Hardened()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kanbancore.CreateTask(context.Background(), c, kanbancore.CreateOptions{Title: "t"}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	m := fusetest.Mount(t, faultfs.Config{Backing: backing, Plan: plan, StopTimeout: time.Second})
	runDir = t.TempDir()
	hist := filepath.Join(runDir, oracle.HistoriesDir)
	if err := os.MkdirAll(hist, 0o755); err != nil {
		t.Fatal(err)
	}
	spec = RoleSpec{Role: RoleCLI, Proc: "cli-1", Op: "list", DB: filepath.Join(m.Dir(), oracle.DBName),
		Profile: kanbancore.ProfileHardened, Driver: "modernc", Switches: sets, Seed: 1,
		Clock: NewClock(DefaultScale).String(), HistDir: hist, WorkDir: t.TempDir()}
	return runDir, spec
}

// waitCalled waits until the process's history shows its connect call (it
// is then inside kanbancore.Open, where the delayed read blocks it).
func waitCalled(t *testing.T, spec RoleSpec) {
	t.Helper()
	end := time.Now().Add(20 * time.Second)
	for time.Now().Before(end) {
		evs, _ := history.ReadFile(filepath.Join(spec.HistDir, spec.Proc+".jsonl"))
		for _, e := range evs {
			if e.Type == history.TypeCall && e.Op == "connect" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never called connect", spec.Proc)
}

// checkStacks checks the saved stacks of a hung role: a Go goroutine dump
// with kanbancore's connect in it.
func checkStacks(t *testing.T, runDir string, h HungProc) {
	t.Helper()
	if h.Stacks != filepath.Join(StacksDir, h.Proc+".txt") {
		t.Errorf("stacks at %q, want %s", h.Stacks, filepath.Join(StacksDir, h.Proc+".txt"))
	}
	b, err := os.ReadFile(filepath.Join(runDir, h.Stacks))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SIGQUIT", "goroutine 1", "kanbancore.Open"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("stacks lack %q:\n%s", want, b)
		}
	}
}

// TestHungRoleAtTeardown: a role blocked in a filesystem operation that
// never returns (a 10-minute delay on every read of the database) does not
// stop on the teardown's SIGTERM; StopHangAfter later it is hung: SIGQUIT
// saves its goroutine stacks in RUNDIR/stacks/<proc>.txt, it is gone, and
// procSet.hung names it. The control half: a role that exits by itself is
// not hung.
func TestHungRoleAtTeardown(t *testing.T) {
	runDir, spec := hungSetup(t, "delay op=read path=*.db delay=10m\n")
	ps := newProcSet(testLog{t})
	if _, err := ps.start(spec); err != nil {
		t.Fatal(err)
	}
	waitCalled(t, spec)
	t0 := time.Now()
	ps.stopAll(time.Second)
	took := time.Since(t0)
	hung := ps.hung()
	t.Logf("stopAll took %v; hung: %v; exits: %v", took, hung, ps.exitSummary())
	if len(hung) != 1 || hung[0].Proc != "cli-1" || hung[0].Role != RoleCLI {
		t.Fatalf("hung = %v, want cli-1", hung)
	}
	if !strings.Contains(hung[0].Reason, "after SIGTERM") {
		t.Errorf("reason %q", hung[0].Reason)
	}
	if p := ps.get("cli-1"); !p.exited() {
		t.Fatal("the hung CLI is still running after stopAll")
	}
	if took < StopHangAfter || took > StopHangAfter+10*time.Second {
		t.Errorf("stopAll took %v; want StopHangAfter (%v) plus the SIGQUIT's grace at most", took, StopHangAfter)
	}
	checkStacks(t, runDir, hung[0])
}

// TestHungCLIAtItsDeadline: a CLI process past its deadline (CLIDeadline
// plus twice its busy_timeout) is hung while the run goes on: the script's
// wait for it returns, its stacks are saved.
func TestHungCLIAtItsDeadline(t *testing.T) {
	old := CLIDeadline
	CLIDeadline = 500 * time.Millisecond
	t.Cleanup(func() { CLIDeadline = old })
	runDir, spec := hungSetup(t, "delay op=read path=*.db delay=10m\n", "busy_timeout=100ms")
	if d := cliDeadline(spec); d != 700*time.Millisecond {
		t.Fatalf("cliDeadline = %v, want 500ms + 2×100ms", d)
	}
	ps := newProcSet(testLog{t})
	p, err := ps.start(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.stopAll(time.Second) })
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the CLI is still running 15s after its 700ms deadline")
	}
	hung := ps.hung()
	if len(hung) != 1 || !strings.HasPrefix(hung[0].Reason, "deadline 700ms") {
		t.Fatalf("hung = %v, want cli-1 at its 700ms deadline", hung)
	}
	t.Logf("%v (SIGQUIT to exit: killed=%v)", hung[0], hung[0].Killed)
	checkStacks(t, runDir, hung[0])
}

// TestCLINotHungWithoutFault: the control: the same CLI on a mount without
// faults exits by itself well before its deadline and is not hung.
func TestCLINotHungWithoutFault(t *testing.T) {
	_, spec := hungSetup(t, "")
	ps := newProcSet(testLog{t})
	p, err := ps.start(spec)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("a CLI on a healthy mount did not finish in 30s")
	}
	ps.stopAll(time.Second)
	if p.exitCode() != 0 || len(ps.hung()) != 0 {
		t.Fatalf("exit %d, hung %v; want 0 and none", p.exitCode(), ps.hung())
	}
}
