package scenarios

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/internal/proctree"
	"github.com/sqlchaos/sqlchaos/internal/reexec"
	"github.com/sqlchaos/sqlchaos/kanbancore"
)

// StacksDir is the run directory's folder of hung processes' goroutine
// stacks: stacks/<proc>.txt (and stacks/faultfs.txt for the server).
const StacksDir = "stacks"

// StopHangAfter is how long a role process may take to exit after the
// teardown's SIGTERM (faults already cleared) before it is declared hung:
// SIGQUIT (its goroutine stacks into stacks/<proc>.txt), then SIGKILL.
var StopHangAfter = 5 * time.Second

// CLIDeadline is a CLI process's deadline (one connect and one operation)
// beyond the waits its profile allows: cliDeadline adds twice the
// profile's busy_timeout (a connect and its operation may each wait that
// long for a lock; 30 s under legacy, 120 s under hardened).
var CLIDeadline = 30 * time.Second

// HungProc is a process of the run that had to be stopped as hung: past
// its deadline, or still running StopHangAfter after the teardown's
// SIGTERM (or, for the faultfs server, after its stop request).
type HungProc struct {
	Proc   string        `json:"proc"`             // process name ("cli-7", "gateway-1", "faultfs")
	Role   string        `json:"role"`             // scn-cli, scn-dispatcher, …, faultfs
	Pid    int           `json:"pid"`              //
	Reason string        `json:"reason"`           // "deadline 30s", "no exit 5s after SIGTERM", …
	After  time.Duration `json:"after"`            // from its start to the SIGQUIT
	Stacks string        `json:"stacks,omitempty"` // saved stacks, relative to the run directory
	Killed bool          `json:"killed,omitempty"` // SIGQUIT did not end it; SIGKILL did
}

func (h HungProc) String() string {
	s := fmt.Sprintf("%s[%d] hung: %s, after %v", h.Proc, h.Pid, h.Reason, h.After.Round(time.Millisecond))
	if h.Stacks != "" {
		s += ", stacks in " + h.Stacks
	}
	return s
}

func hungProc(role string, h *proctree.Hang, runDir string) HungProc {
	hp := HungProc{Proc: h.Name, Role: role, Pid: h.Pid, Reason: h.Reason, After: h.After, Killed: h.Killed}
	if h.Stacks != "" {
		hp.Stacks = h.Stacks
		if rel, err := filepath.Rel(runDir, h.Stacks); err == nil && runDir != "" {
			hp.Stacks = rel
		}
	}
	return hp
}

// proc is one role process the runner started. It runs in its own process
// group (pgid == pid) so that the workers a dispatcher spawns, which inherit
// the group, are stopped with it.
type proc struct {
	name  string
	spec  RoleSpec
	cmd   *exec.Cmd
	child *proctree.Child // nil for a worker (the dispatcher's reaper waits for it)
	done  chan struct{}   // closed when Wait returned
	err   error           // Wait's result, valid after done
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has exited (and been waited for).
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode is the exit status once exited (-1 if signalled or unknown).
func (p *proc) exitCode() int {
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// hang is the process's hang, nil if it never hung.
func (p *proc) hang() *proctree.Hang {
	if p.child == nil {
		return nil
	}
	return p.child.Hung()
}

// procSet tracks every role process of one run, by name, and the run's
// faultfs server (for hung).
type procSet struct {
	mu     sync.Mutex
	procs  map[string]*proc
	order  []string
	stderr io.Writer
	dir    string // run directory (stacks go to dir/stacks); "" until known
	server *faultfs.Mount
}

func newProcSet(stderr io.Writer) *procSet {
	return &procSet{procs: map[string]*proc{}, stderr: stderr}
}

// runDirOf is the run directory of a role spec: the parent of its
// histories directory (the runner puts them in RUNDIR/histories).
func runDirOf(spec RoleSpec) string {
	if spec.HistDir == "" {
		return ""
	}
	return filepath.Dir(spec.HistDir)
}

// cliDeadline is a CLI process's deadline under its profile and switches:
// CLIDeadline plus twice its busy_timeout.
func cliDeadline(spec RoleSpec) time.Duration {
	sw, err := kanbancore.ProfileByName(spec.Profile)
	if err == nil {
		err = sw.ApplySets(spec.Switches)
	}
	if err != nil {
		return CLIDeadline + 2*kanbancore.Hardened().BusyTimeout
	}
	return CLIDeadline + 2*sw.BusyTimeout
}

// startRole starts spec as a separate OS process of this binary (the
// reexec role spec.Role). With ownGroup (a role the runner starts) it runs
// in its own process group, dies with the runner (Pdeathsig SIGKILL from
// proctree's starter thread; the anchor watch covers the rest), and is
// under a deadline (CLI processes: cliDeadline; long-lived roles: the
// teardown's StopHangAfter): a hung one gets SIGQUIT, its stacks go to
// stacksDir/<proc>.txt, and its stdout and stderr go to stderr through a
// pipe read per process. Without ownGroup (a worker a dispatcher or a
// launcher starts) it stays in its parent's group, shares its parent's
// stderr, outlives its parent as in the original, and is never waited for
// by Go (the board's reaper collects it); it still exits with the run's
// anchor.
func startRole(spec RoleSpec, stderr io.Writer, ownGroup bool, stacksDir string) (*proc, error) {
	cmd, err := reexec.Command(spec.Role, spec)
	if err != nil {
		return nil, err
	}
	p := &proc{name: spec.Proc, spec: spec, cmd: cmd, done: make(chan struct{})}
	if !ownGroup {
		cmd.Stdout = stderr
		cmd.Stderr = stderr
		if err := proctree.Start(cmd, spec.Proc); err != nil {
			return nil, fmt.Errorf("scenarios: start %s (%s): %w", spec.Proc, spec.Role, err)
		}
		return p, nil
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	o := proctree.Options{Name: spec.Proc, StacksDir: stacksDir, Output: stderr}
	if spec.Role == RoleCLI {
		o.Deadline = cliDeadline(spec)
	}
	c, err := proctree.StartChild(cmd, o)
	if err != nil {
		return nil, fmt.Errorf("scenarios: start %s (%s): %w", spec.Proc, spec.Role, err)
	}
	p.child = c
	go func() {
		<-c.Done()
		p.err = c.Err()
		close(p.done)
	}()
	return p, nil
}

// start starts a role and begins waiting for it.
func (ps *procSet) start(spec RoleSpec) (*proc, error) {
	ps.mu.Lock()
	if _, dup := ps.procs[spec.Proc]; dup {
		ps.mu.Unlock()
		return nil, fmt.Errorf("scenarios: duplicate process name %q", spec.Proc)
	}
	if ps.dir == "" && runDirOf(spec) != "" {
		// The first role of a run: the run directory is known; a reused
		// one starts without the previous run's stacks.
		ps.dir = runDirOf(spec)
		os.RemoveAll(filepath.Join(ps.dir, StacksDir))
	}
	stacks := ""
	if ps.dir != "" {
		stacks = filepath.Join(ps.dir, StacksDir)
	}
	ps.mu.Unlock()
	p, err := startRole(spec, ps.stderr, true, stacks)
	if err != nil {
		return nil, err
	}
	ps.mu.Lock()
	ps.procs[spec.Proc] = p
	ps.order = append(ps.order, spec.Proc)
	ps.mu.Unlock()
	return p, nil
}

func (ps *procSet) get(name string) *proc {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.procs[name]
}

// all returns the processes in start order.
func (ps *procSet) all() []*proc {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make([]*proc, 0, len(ps.order))
	for _, n := range ps.order {
		out = append(out, ps.procs[n])
	}
	return out
}

// stopOne stops one role process by pid: SIGTERM, then SIGKILL after
// grace. Only the process itself is signalled, not its group: a gateway
// restart leaves the workers it spawned running, as the original does.
func (ps *procSet) stopOne(name string, grace time.Duration) error {
	p := ps.get(name)
	if p == nil {
		return fmt.Errorf("scenarios: no process %q", name)
	}
	if p.exited() {
		return nil
	}
	_ = syscall.Kill(p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(p.pid(), syscall.SIGKILL)
	<-p.done
	return nil
}

// stopAll stops every role process and whatever is left of its process
// group (the workers it spawned): SIGTERM to each group; after grace the
// processes still running get until StopHangAfter (from the SIGTERM) to
// exit, then are hung (SIGQUIT for their stacks, SIGKILL after
// proctree.DefaultQuitGrace); then SIGKILL to each group. It always returns
// after every direct child has been waited for (or reported as unkillable).
func (ps *procSet) stopAll(grace time.Duration) {
	procs := ps.all()
	t0 := time.Now()
	for _, p := range procs {
		signalGroup(p.pid(), syscall.SIGTERM)
	}
	deadline := time.After(grace)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-deadline:
		}
	}
	hangAt := time.After(max(0, StopHangAfter-time.Since(t0)))
	for _, p := range procs {
		if p.child == nil {
			continue
		}
		select {
		case <-p.done:
		case <-hangAt:
		}
	}
	var quits sync.WaitGroup
	for _, p := range procs {
		if p.child != nil && !p.exited() {
			quits.Add(1)
			go func(p *proc) {
				defer quits.Done()
				p.child.Quit(fmt.Sprintf("no exit %v after SIGTERM", StopHangAfter))
			}(p)
		}
	}
	quits.Wait()
	groups, _ := killGroups(procs, 5*time.Second, func(p *proc) error {
		fmt.Fprintf(ps.stderr, "scenarios: %s (pid %d) did not exit after SIGKILL\n", p.name, p.pid())
		return nil
	})
	if _, alive := reapOrphans(groups, 5*time.Second); alive > 0 {
		fmt.Fprintf(ps.stderr, "scenarios: %d orphaned worker(s) still alive after SIGKILL\n", alive)
	}
}

// killGroups sends SIGKILL to the process group of each of procs (even when
// its leader exited: spawned workers may live on in it), then waits up to
// wait for each leader in turn. A leader still running after its wait is
// passed to stuck; when stuck returns an error, killGroups stops waiting
// and returns it. It returns the process groups killed (for reapOrphans).
func killGroups(procs []*proc, wait time.Duration, stuck func(p *proc) error) (map[int]bool, error) {
	for _, p := range procs {
		signalGroup(p.pid(), syscall.SIGKILL)
	}
	groups := map[int]bool{}
	for _, p := range procs {
		groups[p.pid()] = true
		select {
		case <-p.done:
		case <-time.After(wait):
			if err := stuck(p); err != nil {
				return groups, err
			}
		}
	}
	return groups, nil
}

// setServer makes hung report the run's faultfs server too (when its Stop
// had to escalate).
func (ps *procSet) setServer(m *faultfs.Mount) {
	ps.mu.Lock()
	ps.server = m
	ps.mu.Unlock()
}

// hung lists the run's processes that had to be stopped as hung, in start
// order, the faultfs server (set by the runner) last.
func (ps *procSet) hung() []HungProc {
	var out []HungProc
	for _, p := range ps.all() {
		if h := p.hang(); h != nil {
			out = append(out, hungProc(p.spec.Role, h, ps.dir))
		}
	}
	ps.mu.Lock()
	m := ps.server
	ps.mu.Unlock()
	if m != nil {
		if h := m.Hung(); h != nil {
			out = append(out, hungProc("faultfs", h, ps.dir))
		}
	}
	return out
}

// signalGroup signals the process group led by pid; when the group no
// longer exists it falls back to pid itself.
func signalGroup(pid int, sig syscall.Signal) {
	if pid <= 1 {
		return
	}
	if err := syscall.Kill(-pid, sig); errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(pid, sig)
	}
}

// exitSummary lists every process's exit status, for the run log.
func (ps *procSet) exitSummary() []string {
	var out []string
	for _, p := range ps.all() {
		s := "running"
		if p.exited() {
			s = fmt.Sprintf("exit %d", p.exitCode())
			if p.err != nil && p.exitCode() < 0 {
				s = p.err.Error()
			}
		}
		if h := p.hang(); h != nil {
			s += " (hung: " + h.Reason + ")"
		}
		out = append(out, fmt.Sprintf("%s[%d] %s", p.name, p.pid(), s))
	}
	sort.Strings(out)
	return out
}
