package prop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/internal/ledger"
	"github.com/sqlchaos/sqlchaos/internal/proctree"
	"github.com/sqlchaos/sqlchaos/internal/reexec"
	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
)

// Honesty harness: one process, two connections, a fixed sequence of board
// operations through a faultfs mount. Without other processes the
// filesystem operations come in the same order on every run, so two runs
// that differ only in one switch meet the same fault at the same place, and
// the harness can compare a checker's verdict with what the library itself
// reported (the ground truth: a *kanbancore.RollbackError is a shadowed
// cause, whatever any checker says).

// HonestyConfig is one run of the harness.
type HonestyConfig struct {
	Driver   string
	Profile  string   // base profile (default hardened)
	Sets     []string // switch overrides: the switch under test
	Plan     plan.Plan
	Seed     int64
	Template string // a board made by MakeHonestyBoard, copied for the run
	Ops      int    // rounds of the workload (default 10)
	Stderr   io.Writer
}

// OpRecord is one operation of the harness and what it returned.
type OpRecord struct {
	Index int
	Op    string
	Err   string
	Class string
	// Shadowed: the error is a *kanbancore.RollbackError (the legacy
	// ROLLBACK's own error replaced the cause); CauseClass is the class
	// of the cause it replaced.
	Shadowed   bool
	CauseClass string
	// Short: after the op, the database file (read in the backing
	// directory, never through the mount) is shorter than its header's
	// page count: a torn extend is persisted and visible.
	Short bool
}

// HonestyRun is the result of one harness run.
type HonestyRun struct {
	Ops     []OpRecord
	Fired   int // faults fired (delay excluded)
	Results map[string]oracle.Result
	Trace   []trace.Record
	Crashed string // the workload process died (exit status), "" if not
	// Hung describes a workload process or faultfs server that had to be
	// stopped at its deadline (stacks saved under StacksDir), "" if none.
	Hung string
}

// HonestyStacksDir is where hung harness processes' goroutine stacks go
// (the run's work directory is removed).
var HonestyStacksDir = filepath.Join(os.TempDir(), "sqlchaos-prop-stacks")

// Shadowed returns the indices of the ops whose error shadowed its cause.
func (h HonestyRun) Shadowed() []int {
	var out []int
	for _, o := range h.Ops {
		if o.Shadowed {
			out = append(out, o.Index)
		}
	}
	return out
}

// MakeHonestyBoard creates, fault-free, the board every harness run starts
// from: a WAL database with a few ready tasks, in dir/kanban.db.
func MakeHonestyBoard(ctx context.Context, dir, driver string) error {
	c, err := kanbancore.Open(ctx, filepath.Join(dir, oracle.DBName), kanbancore.Options{Driver: kanbancore.Driver(driver), Switches: kanbancore.Hardened()})
	if err != nil {
		return err
	}
	defer c.Close()
	for i := 0; i < 12; i++ {
		if _, err := kanbancore.CreateTask(ctx, c, kanbancore.CreateOptions{ID: TaskID(i), Title: fmt.Sprintf("seed task %d", i), Body: strings.Repeat("b", 600)}); err != nil {
			return err
		}
	}
	return nil
}

const roleHonesty = "prop-honesty"

func init() { reexec.Register(roleHonesty, honestyMain) }

// honestySpec is what the workload process needs (its reexec spec).
type honestySpec struct {
	DB, Driver, Profile string
	Sets                []string
	Seed                int64
	Ops                 int
	Hist, Out           string
	Backing             string // the backing copy of the database, for ground truth
}

// honestyMain is the workload process: two connections, a fixed sequence
// of operations, every op's result appended to spec.Out as it happens (so
// a crash leaves the ops before it).
func honestyMain(spec honestySpec) int {
	sw, err := kanbancore.ProfileByName(spec.Profile)
	if err == nil {
		err = sw.ApplySets(spec.Sets)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "prop-honesty:", err)
		return 2
	}
	out, err := os.OpenFile(spec.Out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "prop-honesty:", err)
		return 2
	}
	defer out.Close()
	h, err := history.Create(filepath.Join(spec.Hist, "harness.jsonl"), "harness")
	if err != nil {
		fmt.Fprintln(os.Stderr, "prop-honesty:", err)
		return 2
	}
	defer h.Close()
	w := &honestyWorkload{ctx: context.Background(), h: h, out: out, backing: spec.Backing}
	w.run(spec.DB, spec.Ops, kanbancore.Options{Driver: kanbancore.Driver(spec.Driver), Switches: sw,
		Observer: &ledger.Observer{H: h, NoCounter: true}, Seed: spec.Seed})
	return 0
}

// honestyWorkload runs the harness's operations, recording each in the
// history and as an OpRecord line in out.
type honestyWorkload struct {
	ctx     context.Context
	h       *history.Writer
	out     io.Writer
	backing string
	idx     int
}

// run opens two connections to db and runs ops rounds of create (a),
// claim (b), heartbeat (a) and complete (b), skipping a connection that
// failed to open.
func (w *honestyWorkload) run(db string, ops int, opts kanbancore.Options) {
	ctx := w.ctx
	var a, b *kanbancore.Conn
	w.do("connect", func() (err error) { a, err = kanbancore.Open(ctx, db, opts); return })
	w.do("connect", func() (err error) { b, err = kanbancore.Open(ctx, db, opts); return })
	for i := 0; i < ops; i++ {
		task := TaskID(i % 12)
		if a != nil {
			w.do("create", func() error {
				_, err := kanbancore.CreateTask(ctx, a, kanbancore.CreateOptions{Title: fmt.Sprintf("harness %d", i), Body: strings.Repeat("x", 1500)})
				return err
			})
		}
		if b != nil {
			w.do("claim", func() error {
				_, err := kanbancore.ClaimTask(ctx, b, task, kanbancore.ClaimOptions{Claimer: "harness-b"})
				return err
			})
		}
		if a != nil {
			w.do("heartbeat", func() error {
				_, err := kanbancore.HeartbeatClaim(ctx, a, task, kanbancore.HeartbeatOptions{Claimer: "harness-b"})
				return err
			})
		}
		if b != nil {
			w.do("complete", func() error {
				_, err := kanbancore.CompleteTask(ctx, b, task, kanbancore.CompleteOptions{Result: "ok"})
				return err
			})
		}
	}
	for _, c := range []*kanbancore.Conn{a, b} {
		if c != nil {
			c.Close()
		}
	}
}

// do runs one operation: its call and return go to the history, its
// OpRecord (error class, shadowed cause, short file) to out.
func (w *honestyWorkload) do(op string, fn func() error) {
	id := w.h.NextID()
	w.h.Write(history.Event{Type: history.TypeCall, ID: id, Op: op})
	err := fn()
	w.h.Write(ledger.ErrEvent(history.TypeReturn, id, op, "", err))
	rec := OpRecord{Index: w.idx, Op: op}
	w.idx++
	if err != nil {
		rec.Err, rec.Class = err.Error(), kanbancore.Classify(err).String()
		var rb *kanbancore.RollbackError
		if errors.As(err, &rb) {
			rec.Shadowed, rec.CauseClass = true, kanbancore.Classify(rb.Cause).String()
		}
	}
	rec.Short = backingShort(w.backing)
	b, _ := json.Marshal(rec)
	w.out.Write(append(b, '\n'))
}

// backingShort reports whether the database file at path (the backing
// copy: reading it does not go through the mount, so it cancels no lock of
// this process's connections) is shorter than its header's page count.
func backingShort(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 100 {
		return false
	}
	ps := int64(b[16])<<8 | int64(b[17])
	if ps == 1 {
		ps = 65536
	}
	pages := int64(b[28])<<24 | int64(b[29])<<16 | int64(b[30])<<8 | int64(b[31])
	return ps > 0 && pages > 0 && int64(len(b)) < pages*ps
}

// RunHonesty runs the harness once (the workload in its own process, so
// that a crash is an outcome) and judges it with the oracle.
func RunHonesty(ctx context.Context, cfg HonestyConfig) (*HonestyRun, error) {
	cfg.setDefaults()
	sw, err := kanbancore.ProfileByName(cfg.Profile)
	if err == nil {
		err = sw.ApplySets(cfg.Sets)
	}
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "prop-honesty-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	backing, mnt := filepath.Join(work, "backing"), filepath.Join(work, "mnt")
	if err := prepareHonestyDir(work, cfg.Template); err != nil {
		return nil, err
	}
	tracePath := filepath.Join(work, "trace.jsonl")
	m, err := faultfs.Start(ctx, faultfs.Config{Backing: backing, Mountpoint: mnt, Plan: cfg.Plan.String(), Seed: cfg.Seed,
		Trace: tracePath, Control: filepath.Join(work, "ctl"), Stderr: cfg.Stderr, Stacks: HonestyStacksDir})
	if err != nil {
		return nil, fmt.Errorf("faultfs: %w", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			m.Stop()
		}
	}()
	spec := honestySpec{DB: filepath.Join(mnt, oracle.DBName), Driver: cfg.Driver, Profile: cfg.Profile, Sets: cfg.Sets,
		Seed: cfg.Seed, Ops: cfg.Ops, Hist: filepath.Join(work, "hist"), Out: filepath.Join(work, "ops.jsonl"),
		Backing: filepath.Join(backing, oracle.DBName)}
	run, err := runHonestyWorkload(spec, 2*sw.BusyTimeout+time.Minute, cfg.Stderr)
	if err != nil {
		return nil, err
	}
	stopped = true
	if err := m.Stop(); err != nil {
		return nil, fmt.Errorf("faultfs stop: %w", err)
	}
	if h := m.Hung(); h != nil {
		run.Hung += fmt.Sprintf("; faultfs server %s (stacks %s)", h.Reason, h.Stacks)
	}
	if run.Trace, err = trace.ReadFile(tracePath); err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	for _, r := range run.Trace {
		if r.Kind == trace.KindOp && r.Rule > 0 && !strings.HasPrefix(r.Fault, "delay") {
			run.Fired++
		}
	}
	if err := judgeHonesty(run, cfg, sw, work, backing); err != nil {
		return nil, err
	}
	return run, nil
}

// setDefaults fills in the profile (hardened), the rounds (10) and Stderr
// (discarded).
func (cfg *HonestyConfig) setDefaults() {
	if cfg.Profile == "" {
		cfg.Profile = kanbancore.ProfileHardened
	}
	if cfg.Ops == 0 {
		cfg.Ops = 10
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
}

// prepareHonestyDir makes work's backing, mnt and hist directories and
// copies the template board (database, -wal, -shm) into backing.
func prepareHonestyDir(work, template string) error {
	backing := filepath.Join(work, "backing")
	for _, d := range []string{backing, filepath.Join(work, "mnt"), filepath.Join(work, "hist")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, suf := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(filepath.Join(template, oracle.DBName+suf))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(backing, oracle.DBName+suf), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runHonestyWorkload runs the workload process of spec under deadline and
// returns its ops; a crash is recorded as a last op (and in the history),
// a hang in Hung.
func runHonestyWorkload(spec honestySpec, deadline time.Duration, stderr io.Writer) (*HonestyRun, error) {
	cmd, err := reexec.Command(roleHonesty, spec)
	if err != nil {
		return nil, err
	}
	// Under a deadline: a workload that waits for ever (EAGAIN in Go's
	// poller, say) is stopped with SIGQUIT (stacks saved) and reported as
	// hung, never left to hang the suite.
	child, err := proctree.Run(cmd, proctree.Options{Name: "honesty-" + spec.Driver, Deadline: deadline,
		StacksDir: HonestyStacksDir, Output: stderr})
	if err != nil {
		return nil, err
	}
	run := &HonestyRun{}
	runErr := child.Err()
	if h := child.Hung(); h != nil {
		run.Hung = fmt.Sprintf("workload %s (stacks %s)", h.Reason, h.Stacks)
	}
	if b, err := os.ReadFile(spec.Out); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			var rec OpRecord
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Op != "" {
				run.Ops = append(run.Ops, rec)
			}
		}
	}
	if runErr != nil {
		// A crash (SIGBUS from a faulted mmap, say) is an outcome, not a
		// harness error: it is recorded like an op that failed.
		rec := OpRecord{Index: len(run.Ops), Op: "crash", Err: runErr.Error(), Class: "CRASH"}
		run.Ops = append(run.Ops, rec)
		run.Crashed = runErr.Error()
		if h, err := history.Create(filepath.Join(spec.Hist, "parent.jsonl"), "parent"); err == nil {
			h.Write(history.Event{Type: history.TypeExit, Pid: child.Pid(), Err: "harness child: " + runErr.Error(), Class: "CRASH"})
			h.Close()
		}
	}
	return run, nil
}

// judgeHonesty runs the error-fidelity and page-count checkers over the
// run's histories, trace and backing files into run.Results.
func judgeHonesty(run *HonestyRun, cfg HonestyConfig, sw kanbancore.Switches, work, backing string) error {
	events, err := history.ReadDir(filepath.Join(work, "hist"))
	if err != nil {
		return err
	}
	meta := oracle.Meta{Scenario: "honesty", Profile: cfg.Profile, Driver: cfg.Driver, Seed: cfg.Seed, Plan: cfg.Plan.String(),
		Switches: map[string]string{}}
	for _, s := range sw.List() {
		meta.Switches[s.Name] = s.Value
	}
	in := &oracle.Input{Dir: work, Events: events, Trace: run.Trace, Meta: meta, Files: backing}
	run.Results = map[string]oracle.Result{}
	for _, name := range []string{oracle.ErrorFidelity, oracle.PageCount} {
		if r, ok := oracle.Run(in, name); ok {
			run.Results[name] = r
		}
	}
	return nil
}
