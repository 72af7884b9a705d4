// Package proctree keeps sqlchaos's child processes from hanging a run or
// outliving it.
//
//   - Start starts a child from one dedicated OS thread that lives as long
//     as the process (see the Pdeathsig trap below) and records it in the
//     anchor's registry.
//   - StartChild and Run put a child under a deadline: past it (or when the
//     caller calls Quit, e.g. a role that did not stop after SIGTERM) the
//     child is hung: it gets SIGQUIT, which makes a Go process print every
//     goroutine's stack on stderr and exit; the child's stderr is captured
//     per process, so the dump is saved to StacksDir/<name>.txt; SIGKILL
//     follows after a grace. Hung reports it, for a hung verdict.
//   - Every child inherits $SQLCHAOS_ANCHOR, the process that owns its tree,
//     and (through reexec.Init → WatchAnchor) exits when the anchor exits,
//     also when its own parent is not the anchor (a worker started by a
//     dispatcher).
//   - Sweep, run at the next start, kills, reaps and unmounts what a dead
//     anchor left behind.
//
// The Pdeathsig trap: PR_SET_PDEATHSIG fires when the parent *thread*
// exits, not the parent process. Go runs goroutines on a pool of OS
// threads and terminates a thread when a goroutine locked to it
// (runtime.LockOSThread) exits without unlocking — any library may do that
// on any thread. A child forked from such a thread is killed at that
// moment, in the middle of a healthy run. Start therefore forks every child
// from one goroutine that locks its thread and never exits, so the parent
// thread of every child lives exactly as long as the process.
package proctree

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

var starter struct {
	once sync.Once
	ch   chan func()
}

// onStarterThread runs f on the starter goroutine, which is locked to its
// OS thread for the life of the process.
func onStarterThread(f func()) {
	starter.once.Do(func() {
		starter.ch = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread never exits
			for g := range starter.ch {
				g()
			}
		}()
	})
	done := make(chan struct{})
	starter.ch <- func() { defer close(done); f() }
	<-done
}

// WithAnchor returns env (os.Environ() when nil) with $SQLCHAOS_ANCHOR set
// to Anchor(), replacing any earlier value.
func WithAnchor(env []string) []string {
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, AnchorEnv+"=") {
			out = append(out, kv)
		}
	}
	return append(out, AnchorEnv+"="+Anchor())
}

// Start starts cmd from the starter thread, so that a Pdeathsig in
// cmd.SysProcAttr fires when this process exits and at no other time, and
// records the child under name in the anchor's registry. The caller waits
// for cmd (or releases it) as with exec.Cmd.Start.
func Start(cmd *exec.Cmd, name string) error {
	var err error
	onStarterThread(func() { err = cmd.Start() })
	if err != nil {
		return err
	}
	_ = RecordProc(cmd.Process.Pid, name)
	return nil
}

// DefaultQuitGrace is the time between SIGQUIT and SIGKILL of a hung child.
const DefaultQuitGrace = 2 * time.Second

// Options put a child under a deadline.
type Options struct {
	// Name names the child in the registry, in messages and in the stacks
	// file StacksDir/<Name>.txt.
	Name string
	// Deadline bounds the child's life from its start; past it the child
	// is hung (Quit). 0: no deadline (Quit may still be called).
	Deadline time.Duration
	// QuitGrace is the time between SIGQUIT and SIGKILL (default
	// DefaultQuitGrace).
	QuitGrace time.Duration
	// StacksDir receives <Name>.txt, the child's output from the SIGQUIT
	// on (the Go stack dump). "" sends the dump to Output with the rest.
	StacksDir string
	// Output receives the child's stderr, and its stdout unless cmd.Stdout
	// is set (nil discards). It is fed through a pipe this package reads,
	// so cmd.Wait never waits for grandchildren that inherited it.
	Output io.Writer
}

// Hang describes a child that had to be stopped with SIGQUIT.
type Hang struct {
	Name   string        `json:"name"`
	Pid    int           `json:"pid"`
	Reason string        `json:"reason"`           // "deadline 30s", "no exit 5s after SIGTERM", …
	After  time.Duration `json:"after"`            // from start to the SIGQUIT
	Stacks string        `json:"stacks,omitempty"` // the saved dump ("" if none)
	// Killed: SIGQUIT did not end it within the grace; SIGKILL did (or
	// nothing did: see Reason).
	Killed bool `json:"killed,omitempty"`
	// Exit is the time from SIGQUIT to the child's exit.
	Exit time.Duration `json:"exit"`
}

func (h *Hang) String() string {
	s := fmt.Sprintf("%s (pid %d) hung: %s, after %v", h.Name, h.Pid, h.Reason, h.After.Round(time.Millisecond))
	if h.Killed {
		s += ", SIGKILLed"
	}
	if h.Stacks != "" {
		s += ", stacks in " + h.Stacks
	}
	return s
}

// Child is a started process under a deadline.
type Child struct {
	Cmd     *exec.Cmd
	opts    Options
	started time.Time
	waited  chan struct{} // closed when cmd.Wait returned
	done    chan struct{} // closed after waited and after a Quit in progress
	err     error
	out     *catcher
	timer   *time.Timer

	quitOnce sync.Once
	mu       sync.Mutex
	quitting chan struct{} // closed when Quit has recorded the hang
	hang     *Hang
}

// StartChild starts cmd under o (see Options) with Start. Without a
// SysProcAttr the child gets Pdeathsig SIGKILL. Its environment carries
// the anchor. The child is waited for in the background: use Done, Err,
// Hung.
func StartChild(cmd *exec.Cmd, o Options) (*Child, error) {
	if o.QuitGrace == 0 {
		o.QuitGrace = DefaultQuitGrace
	}
	if o.Name == "" {
		o.Name = filepath.Base(cmd.Path)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	cmd.Env = WithAnchor(cmd.Env)
	sink := o.Output
	if sink == nil {
		sink = io.Discard
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = pw
	if cmd.Stdout == nil {
		cmd.Stdout = pw
	}
	c := &Child{Cmd: cmd, opts: o, waited: make(chan struct{}), done: make(chan struct{}),
		out: &catcher{sink: sink, drained: make(chan struct{})}}
	err = Start(cmd, o.Name)
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, err
	}
	c.started = time.Now()
	if o.Deadline > 0 {
		c.timer = time.AfterFunc(o.Deadline, func() { c.Quit(fmt.Sprintf("deadline %v", o.Deadline)) })
	}
	go func() {
		io.Copy(c.out, pr)
		pr.Close()
		c.out.close()
	}()
	go func() {
		c.err = cmd.Wait()
		if c.timer != nil {
			c.timer.Stop()
		}
		close(c.waited)
		// A Quit in progress finishes (records the hang) before Done.
		c.mu.Lock()
		quitting := c.quitting
		c.mu.Unlock()
		if quitting != nil {
			<-quitting
		}
		close(c.done)
	}()
	return c, nil
}

// Run starts cmd under o and waits until it has exited (or been stopped as
// hung). The child's exit error is c.Err(); c.Hung() says whether it hung.
func Run(cmd *exec.Cmd, o Options) (*Child, error) {
	c, err := StartChild(cmd, o)
	if err != nil {
		return nil, err
	}
	<-c.done
	c.WaitOutput(time.Second)
	return c, nil
}

// Pid is the child's pid.
func (c *Child) Pid() int { return c.Cmd.Process.Pid }

// Done is closed when the child has exited and been waited for.
func (c *Child) Done() <-chan struct{} { return c.done }

// Exited reports whether the child has exited and been waited for (Done
// may close a moment later, once a Quit in progress has recorded the hang).
func (c *Child) Exited() bool {
	select {
	case <-c.waited:
		return true
	default:
		return false
	}
}

// Err is cmd.Wait's result; valid once Done is closed.
func (c *Child) Err() error { return c.err }

// Hung returns the child's hang, nil if it was never declared hung.
func (c *Child) Hung() *Hang {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hang
}

// Quit declares the child hung for reason: its output from now on goes to
// StacksDir/<Name>.txt; it gets SIGQUIT (and SIGCONT, in case it was
// stopped), which makes a Go process dump its goroutines and exit; after
// QuitGrace it gets SIGKILL. Quit returns once the child has exited (at most
// QuitGrace plus 10 s after SIGKILL), with the hang; nil if the child had
// already exited. Only the process is signalled, not its group.
func (c *Child) Quit(reason string) *Hang {
	c.quitOnce.Do(func() {
		c.mu.Lock()
		select {
		case <-c.waited:
			c.mu.Unlock()
			return
		default:
		}
		c.quitting = make(chan struct{})
		c.mu.Unlock()
		defer close(c.quitting)
		h := &Hang{Name: c.opts.Name, Pid: c.Pid(), Reason: reason, After: time.Since(c.started)}
		if c.opts.StacksDir != "" {
			path := filepath.Join(c.opts.StacksDir, safeName(c.opts.Name)+".txt")
			if err := c.out.catch(path, fmt.Sprintf("# %s (pid %d): %s; SIGQUIT after %v\n", h.Name, h.Pid, reason, h.After.Round(time.Millisecond))); err == nil {
				h.Stacks = path
			}
		}
		where := ""
		if h.Stacks != "" {
			where = " in " + h.Stacks
		}
		c.out.note(fmt.Sprintf("proctree: %s (pid %d) hung (%s): SIGQUIT, stacks%s\n", h.Name, h.Pid, reason, where))
		t0 := time.Now()
		syscall.Kill(h.Pid, syscall.SIGQUIT)
		syscall.Kill(h.Pid, syscall.SIGCONT)
		select {
		case <-c.waited:
		case <-time.After(c.opts.QuitGrace):
			h.Killed = true
			syscall.Kill(h.Pid, syscall.SIGKILL)
			select {
			case <-c.waited:
			case <-time.After(10 * time.Second):
				h.Reason += "; still not reaped 10s after SIGKILL"
			}
		}
		h.Exit = time.Since(t0)
		c.WaitOutput(time.Second)
		c.mu.Lock()
		c.hang = h
		c.mu.Unlock()
	})
	return c.Hung()
}

// WaitOutput waits (at most d) until the child's output has all reached
// Output: every writer closed the pipe (a grandchild that inherited it may
// keep it open after the child exited). Done does not wait for that.
func (c *Child) WaitOutput(d time.Duration) {
	select {
	case <-c.out.drained:
	case <-time.After(d):
	}
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r == ' ' {
			return '_'
		}
		return r
	}, s)
}

// catcher forwards a child's output to its sink until catch switches it to
// a stacks file.
type catcher struct {
	mu      sync.Mutex
	sink    io.Writer
	f       *os.File
	drained chan struct{}
}

func (c *catcher) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f != nil {
		c.f.Write(p)
		return len(p), nil
	}
	c.sink.Write(p)
	return len(p), nil
}

// note writes s to the sink even after catch.
func (c *catcher) note(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	io.WriteString(c.sink, s)
}

func (c *catcher) catch(path, header string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	f.WriteString(header)
	c.mu.Lock()
	c.f = f
	c.mu.Unlock()
	return nil
}

func (c *catcher) close() {
	c.mu.Lock()
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
	c.mu.Unlock()
	close(c.drained)
}
