package scenarios

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/internal/ledger"
	"github.com/sqlchaos/sqlchaos/internal/reexec"
	"github.com/sqlchaos/sqlchaos/kanbancore"
)

func init() {
	reexec.Register(RoleDispatcher, roleMain(runDispatcher))
	reexec.Register(RoleWorker, roleMain(runWorker))
	reexec.Register(RoleLauncher, runLauncher)
	reexec.Register(RoleWatcher, roleMain(runWatcher))
	reexec.Register(RoleCLI, roleMain(runCLI))
	reexec.Register(RoleWriter, roleMain(runWriter))
}

// errCrash makes a role process exit 1 without a clean shutdown: a worker
// that crashes.
var errCrash = errors.New("worker crash (scenario-chosen)")

// role is the running state of one role process.
type role struct {
	ctx   context.Context
	spec  RoleSpec
	clock Clock
	h     *history.Writer
	obs   *ledger.Observer
	sw    kanbancore.Switches
	rng   *rand.Rand
}

// seedFor derives a per-process seed from the run seed and a name, so every
// process draws from its own stream and the same seed gives the same
// choices in every process.
func seedFor(seed int64, name string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(uint64(seed) >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(name))
	return h.Sum64()
}

// roleMain wraps a role body: it reads the spec's clock, opens the history,
// records start and exit, and turns SIGTERM/SIGINT into a cancelled
// context so the role closes its connection cleanly.
func roleMain(body func(r *role) error) func(RoleSpec) int {
	return func(spec RoleSpec) int {
		clock, err := spec.clock()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		h, err := history.Create(filepath.Join(spec.HistDir, spec.Proc+".jsonl"), spec.Proc)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer h.Close()
		sw, err := kanbancore.ProfileByName(spec.Profile)
		if err == nil {
			err = sw.ApplySets(spec.Switches)
		}
		if err != nil {
			h.Write(history.Event{Type: history.TypeExit, Err: err.Error()})
			fmt.Fprintf(os.Stderr, "%s: %v\n", spec.Proc, err)
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		r := &role{ctx: ctx, spec: spec, clock: clock, h: h, obs: &ledger.Observer{H: h}, sw: sw,
			rng: newRand(spec.Seed, spec.Proc)}
		h.Write(history.Event{Type: history.TypeStart, Data: &history.Data{
			Role: spec.Role, Profile: spec.Profile, Driver: spec.Driver, Seed: new(spec.Seed), Ppid: os.Getppid()}})
		err = body(r)
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = nil // stopped by the runner
		}
		code := 0
		ev := history.Event{Type: history.TypeExit}
		if err != nil {
			ev.Err = err.Error()
			code = 1
		}
		h.Write(ev)
		return code
	}
}

// options returns the kanbancore options of this process.
func (r *role) options() kanbancore.Options {
	return kanbancore.Options{Driver: kanbancore.Driver(r.spec.Driver), Switches: r.sw, Observer: r.obs, Clock: r.clock}
}

// call records an operation's call and return (with the error's class) in
// the history around fn.
func (r *role) call(op, task string, fn func() error) error {
	id := r.h.NextID()
	r.h.Write(history.Event{Type: history.TypeCall, ID: id, Op: op, Task: task})
	err := fn()
	r.h.Write(ledger.ErrEvent(history.TypeReturn, id, op, task, err))
	return err
}

// open opens the board, recorded as the operation "connect".
func (r *role) open() (*kanbancore.Conn, error) {
	var c *kanbancore.Conn
	err := r.call("connect", "", func() error {
		var err error
		c, err = kanbancore.Open(r.ctx, r.spec.DB, r.options())
		return err
	})
	return c, err
}

// sleep sleeps a board-time duration (scaled to wall time); it returns
// the context's error when stopped.
func (r *role) sleep(board time.Duration) error {
	return sleepBoard(r.ctx, r.clock, board)
}

// sleepBoard sleeps a board-time duration on clock (scaled to wall time);
// it returns ctx's error when ctx ends first.
func sleepBoard(ctx context.Context, clock Clock, board time.Duration) error {
	t := time.NewTimer(clock.Wall(board))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// runWorker is a worker process a dispatcher spawned for spec.Task: after
// a (scaled) start delay it connects once, heartbeats Count times, then
// completes the task, blocks it, or crashes, as its seeded draw says.
func runWorker(r *role) error {
	w := r.spec.Worker
	if w == nil {
		w = &WorkerTemplate{Heartbeats: 3, Interval: 10 * time.Second}
	}
	if err := r.sleep(w.StartDelay); err != nil {
		return err
	}
	c, err := r.open()
	if err != nil {
		return err
	}
	defer c.Close()
	task := r.spec.Task
	beats := w.Heartbeats
	if w.HeartbeatsJitter > 0 {
		beats += r.rng.IntN(w.HeartbeatsJitter + 1)
	}
	for i := 0; i < beats; i++ {
		if err := r.sleep(w.Interval); err != nil {
			return err
		}
		r.call("heartbeat", task, func() error {
			_, err := kanbancore.HeartbeatWorker(r.ctx, c, task, fmt.Sprintf("hb %d", i+1), 0)
			return err
		})
	}
	u := r.rng.Float64()
	switch {
	case u < w.FailP:
		r.h.Write(history.Event{Type: history.TypeExit, Task: task, Err: errCrash.Error()})
		r.h.Close()
		os.Exit(1) // no clean close: a crash
	case u < w.FailP+w.BlockP:
		err = r.call("block", task, func() error {
			_, err := kanbancore.BlockTask(r.ctx, c, task, kanbancore.BlockOptions{Reason: "scenario block"})
			return err
		})
	default:
		err = r.call("complete", task, func() error {
			_, err := kanbancore.CompleteTask(r.ctx, c, task, kanbancore.CompleteOptions{Result: "done by " + r.spec.Proc})
			return err
		})
	}
	if w.ExitLinger > 0 {
		r.sleep(w.ExitLinger)
	}
	return err
}

// runLauncher is the process a dispatcher records as a worker's pid when
// spec.Launcher is set: it starts the real worker (same spec, role
// scn-worker) and exits after LaunchDelay, so the recorded pid is dead while
// the worker it launched is alive: the launch-window false negative of the
// original's liveness probe (fork → /proc visibility lag, psutil races),
// made deterministic.
func runLauncher(spec RoleSpec) int {
	clock, err := spec.clock()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	// The launcher's own history records the real worker's spawn, so the
	// oracle follows the worker's pid, not only the launcher's.
	h, err := history.Create(filepath.Join(spec.HistDir, spec.Proc+"-launcher.jsonl"), spec.Proc+"-launcher")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer h.Close()
	h.Write(history.Event{Type: history.TypeStart, Data: &history.Data{Role: RoleLauncher, Ppid: os.Getppid()}})
	// The launcher's part ends here: it exits (after LaunchDelay) while the
	// worker it hands the task to starts. Its exit is recorded first so the
	// oracle does not count launcher and worker as two live workers.
	h.Write(history.Event{Type: history.TypeExit, Data: &history.Data{Handoff: true}})
	spec.Role = RoleWorker
	p, err := startRole(spec, os.Stderr, false, "")
	if err != nil {
		h.Write(ledger.ErrEvent(history.TypeError, 0, "spawn", spec.Task, err))
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	h.Write(history.Event{Type: history.TypeSpawn, Task: spec.Task, Data: &history.Data{Pid: p.pid(), Proc: spec.Proc}})
	_ = p.cmd.Process.Release()
	time.Sleep(clock.Wall(spec.LaunchDelay))
	return 0
}

// newRand returns the seeded generator of the named process.
func newRand(seed int64, name string) *rand.Rand {
	return rand.New(rand.NewPCG(seedFor(seed, name), 0x5eed))
}
