package scenarios

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

// proc is one role process the runner started. It runs in its own process
// group (pgid == pid) so that the workers a dispatcher spawns, which inherit
// the group, are stopped with it.
type proc struct {
	name string
	spec RoleSpec
	cmd  *exec.Cmd
	done chan struct{} // closed when Wait returned
	err  error         // Wait's result, valid after done
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

// procSet tracks every role process of one run, by name.
type procSet struct {
	mu     sync.Mutex
	procs  map[string]*proc
	order  []string
	stderr io.Writer
}

func newProcSet(stderr io.Writer) *procSet {
	return &procSet{procs: map[string]*proc{}, stderr: stderr}
}

// startRole starts spec as a separate OS process of this binary (the
// reexec role spec.Role) in its own process group.
func startRole(spec RoleSpec, stderr io.Writer, ownGroup bool) (*proc, error) {
	cmd, err := reexec.Command(spec.Role)
	if err != nil {
		return nil, err
	}
	env, err := spec.env()
	if err != nil {
		return nil, err
	}
	cmd.Env = append(cmd.Env, env)
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	if ownGroup {
		// Pdeathsig: a role never outlives a runner that died without
		// cleaning up.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("scenarios: start %s (%s): %w", spec.Proc, spec.Role, err)
	}
	return &proc{name: spec.Proc, spec: spec, cmd: cmd, done: make(chan struct{})}, nil
}

// start starts a role and begins waiting for it.
func (ps *procSet) start(spec RoleSpec) (*proc, error) {
	ps.mu.Lock()
	if _, dup := ps.procs[spec.Proc]; dup {
		ps.mu.Unlock()
		return nil, fmt.Errorf("scenarios: duplicate process name %q", spec.Proc)
	}
	ps.mu.Unlock()
	p, err := startRole(spec, ps.stderr, true)
	if err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
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
// group (the workers it spawned): SIGTERM to each group, then SIGKILL to
// each group after grace. It always returns after every direct child has
// been waited for.
func (ps *procSet) stopAll(grace time.Duration) {
	procs := ps.all()
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
	for _, p := range procs {
		// Kill the group even when its leader exited: spawned workers may
		// live on in it.
		signalGroup(p.pid(), syscall.SIGKILL)
	}
	groups := map[int]bool{}
	for _, p := range procs {
		groups[p.pid()] = true
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			fmt.Fprintf(ps.stderr, "scenarios: %s (pid %d) did not exit after SIGKILL\n", p.name, p.pid())
		}
	}
	if _, alive := reapOrphans(groups, 5*time.Second); alive > 0 {
		fmt.Fprintf(ps.stderr, "scenarios: %d orphaned worker(s) still alive after SIGKILL\n", alive)
	}
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
		out = append(out, fmt.Sprintf("%s[%d] %s", p.name, p.pid(), s))
	}
	sort.Strings(out)
	return out
}
