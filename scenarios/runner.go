package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/internal/ledger"
	"github.com/sqlchaos/sqlchaos/internal/proctree"
	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/reports"
	"github.com/sqlchaos/sqlchaos/verdict"
)

// Config is one cell of the matrix: a scenario under one profile and
// driver with one seed.
type Config struct {
	Scenario string
	Profile  string
	Driver   string
	Seed     int64
	// Duration scales the scenario's load phase (0 = the scenario's
	// default). Only some scenarios (soak) use it for more than that.
	Duration time.Duration
	// Out is the run directory; "" makes a fresh temporary one (kept: it
	// holds the report).
	Out string
	// PlanOverride replaces the scenario's main plan (the text of
	// --plan FILE), e.g. to replay a plan found elsewhere.
	PlanOverride string
	// Sets are extra switch assignments on top of the profile.
	Sets []string
	// Scale is board seconds per wall second (0 = DefaultScale).
	Scale float64
	// Stderr receives the role processes' stderr and the runner's notes
	// (default os.Stderr).
	Stderr io.Writer
	// Progress, if set, is called about four times a second while the
	// scenario runs.
	Progress func(Progress)
}

// Progress is a live view of a running cell.
type Progress struct {
	Cell    string
	Elapsed time.Duration
	Fired   uint64 // faults fired so far
	Phase   string
}

// Cell names a (scenario, profile, driver) triple.
func (c Config) Cell() string { return c.Scenario + "/" + c.Profile + "/" + c.Driver }

// ErrSetup marks errors of setting a run up (bad scenario or profile, no
// FUSE, a mount that failed): exit status 2, not a verdict.
var ErrSetup = errors.New("setup")

// Result is a finished run.
type Result struct {
	Config  Config
	Dir     string
	Results []oracle.Result
	Outcome Outcome
	// Expected restates the cell's expectation ("fail: journal-mode",
	// "hold", "finding: ...") beside its Outcome.
	Expected string
	Fired    uint64
	Wall     time.Duration
	// Notes are runner observations worth a line in the report (process
	// exit statuses, a role that died early, an unload error).
	Notes []string
	// Report is the judged run as the reports package has it.
	Report *reports.Report
	// ScriptErr is the scenario script's error, if any (the run is still
	// judged).
	ScriptErr error
	// Hung lists the processes stopped as hung (stacks in RUNDIR/stacks);
	// any makes the cell's verdict hung.
	Hung []HungProc
}

// runnerMeta extends oracle.Meta in meta.json with what replay needs.
type runnerMeta struct {
	oracle.Meta
	Runner struct {
		PlanTemplate string   `json:"plan_template,omitempty"` // the main plan as given (may hold {pid:...})
		Plans        []string `json:"plans,omitempty"`         // every plan loaded, canonical, in order
		Sets         []string `json:"sets,omitempty"`
		Scale        float64  `json:"scale"`
		Duration     string   `json:"duration,omitempty"`
		Replay       string   `json:"replay"`
	} `json:"runner"`
}

// Script is the live handle of one scenario run: a scenario's Script
// function drives the run through it (mount, processes, plans, clock).
type Script struct {
	ctx     context.Context
	cfg     Config
	sc      *Scenario
	clock   Clock
	dir     string // run directory (kept)
	work    string // backing, mountpoint, socket (removed)
	backing string
	mnt     string
	db      string // board path through the mount
	mount   *faultfs.Mount
	ctl     *faultfs.Client
	procs   *procSet
	stderr  io.Writer
	start   time.Time

	mu       sync.Mutex
	fired    uint64 // fired by plans already unloaded
	plans    []string
	loaded   bool // a plan is loaded and not cleared
	phase    string
	cliN     int
	bg       sync.WaitGroup
	bgErrs   []error
	notes    []string
	mainPlan string
	planUsed bool
}

// Execute runs one cell end to end: setup, mount, roles and phases,
// teardown, judging and the report. Teardown (stop faults, stop roles by
// pid, unmount) always runs, also when ctx is cancelled (SIGINT).
func Execute(ctx context.Context, cfg Config) (*Result, error) {
	adoptOrphans()
	sc, sw, cfg, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	dir, err := prepareRunDir(cfg.Out, fmt.Sprintf("sqlchaos-%s-%s-%s-%d-", sc.Name, cfg.Profile, cfg.Driver, cfg.Seed))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	// Short paths: the control socket must fit a sockaddr_un.
	work, err := os.MkdirTemp("", "scn-")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	_ = proctree.RecordTemp(work) // a killed runner's work dir is swept at the next start
	mainPlan := sc.mainPlan(cfg)
	r := &Script{ctx: ctx, cfg: cfg, sc: sc, clock: NewClock(cfg.Scale), dir: dir, work: work,
		backing: filepath.Join(work, "backing"), mnt: filepath.Join(work, "mnt"),
		procs: newProcSet(cfg.Stderr), stderr: cfg.Stderr, start: time.Now(), mainPlan: mainPlan}
	r.db = filepath.Join(r.mnt, oracle.DBName)
	res := &Result{Config: cfg, Dir: dir}

	unmounted := false
	defer func() {
		if !unmounted {
			r.teardown()
		}
		os.RemoveAll(work)
	}()
	if err := r.setup(sw); err != nil {
		return nil, fmt.Errorf("%w: board setup: %v", ErrSetup, err)
	}
	if err := r.startMount(); err != nil {
		return nil, err
	}
	scriptErr := r.runBounded()
	if scriptErr != nil {
		res.ScriptErr = scriptErr
		r.note("script: %v", scriptErr)
	}

	// Teardown: faults off, roles stopped by pid, unmount; then the files.
	r.teardown()
	unmounted = true
	res.Hung = r.procs.hung()
	for _, h := range res.Hung {
		r.note("%v", h)
	}
	res.Fired = r.firedTotal()
	res.Wall = time.Since(r.start)
	if err := r.copyFiles(); err != nil {
		r.note("copy files: %v", err)
	}
	if err := r.writeMeta(sw); err != nil {
		return nil, fmt.Errorf("%w: meta: %v", ErrSetup, err)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("interrupted: %w (run directory %s)", ctx.Err(), dir)
	}
	if err := r.judge(res, scriptErr); err != nil {
		return nil, err
	}
	return res, nil
}

// resolve checks cfg against the catalog and fills in its defaults: the
// scenario, the run's switches (profile, the scenario's sets, then the
// run's), driver, scale and stderr; the main plan's template must parse.
func resolve(cfg Config) (*Scenario, kanbancore.Switches, Config, error) {
	sc, ok := Lookup(cfg.Scenario)
	if !ok {
		return nil, kanbancore.Switches{}, cfg, fmt.Errorf("%w: unknown scenario %q (see chaosrun list)", ErrSetup, cfg.Scenario)
	}
	sw, err := kanbancore.ProfileByName(cfg.Profile)
	if err == nil {
		err = sw.ApplySets(append(append([]string(nil), sc.Sets...), cfg.Sets...))
	}
	if err != nil {
		return nil, sw, cfg, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	if cfg.Driver == "" {
		cfg.Driver = "modernc"
	}
	if cfg.Driver != "modernc" && cfg.Driver != "mattn" {
		return nil, sw, cfg, fmt.Errorf("%w: unknown driver %q (want modernc or mattn)", ErrSetup, cfg.Driver)
	}
	if cfg.Scale == 0 {
		cfg.Scale = sc.Scale
	}
	if cfg.Scale == 0 {
		cfg.Scale = DefaultScale
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if err := checkTemplate(sc.mainPlan(cfg)); err != nil {
		return nil, sw, cfg, fmt.Errorf("%w: plan: %v", ErrSetup, err)
	}
	return sc, sw, cfg, nil
}

// mainPlan is the run's main plan template: --plan's, else the scenario's.
func (sc *Scenario) mainPlan(cfg Config) string {
	if cfg.PlanOverride != "" {
		return cfg.PlanOverride
	}
	return sc.Plan
}

// prepareRunDir returns the absolute run directory (out, or a new temporary
// one named from pattern), emptied of a previous run's artifacts (histories
// are append-only files), with its histories and files subdirectories.
func prepareRunDir(out, pattern string) (string, error) {
	dir := out
	var err error
	if dir == "" {
		if dir, err = os.MkdirTemp("", pattern); err != nil {
			return "", err
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return "", err
	}
	for _, name := range []string{oracle.HistoriesDir, oracle.FilesDir, oracle.TraceFile, oracle.MetaFile,
		"report.json", "summary.md", "plan.txt", "runner.log", StacksDir} {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return "", err
		}
	}
	for _, d := range []string{dir, filepath.Join(dir, oracle.HistoriesDir), filepath.Join(dir, oracle.FilesDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// startMount starts the faultfs server over the board's backing directory.
func (r *Script) startMount() error {
	mount, err := faultfs.Start(r.ctx, faultfs.Config{
		Backing: r.backing, Mountpoint: r.mnt, Seed: r.cfg.Seed,
		Trace: filepath.Join(r.dir, oracle.TraceFile), Control: filepath.Join(r.work, "ctl"), Stderr: r.cfg.Stderr,
		Stacks: filepath.Join(r.dir, StacksDir),
	})
	if err != nil {
		return fmt.Errorf("%w: faultfs: %v", ErrSetup, err)
	}
	r.mount, r.ctl = mount, mount.Client()
	r.procs.setServer(mount)
	return nil
}

// runBounded runs the script under the scenario's wall-time limit, so that
// a wedged role cannot hang the matrix, and returns its error.
func (r *Script) runBounded() error {
	ctx := r.ctx
	sctx, cancel := context.WithTimeout(ctx, r.sc.wallLimit(r.cfg))
	r.ctx = sctx
	stopProgress := r.progressLoop()
	err := r.runScript()
	cancel()
	stopProgress()
	r.ctx = ctx
	return err
}

// judge loads the finished run directory, runs the oracle, states the
// run's facts (faults fired, precondition, hung roles, script error or
// deadline) and the cell's expectation, lets the one judge decide, and
// writes report.json, summary.md and runner.log.
func (r *Script) judge(res *Result, scriptErr error) error {
	in, err := oracle.Load(r.dir)
	if err != nil {
		return fmt.Errorf("judge: %v", err)
	}
	res.Results = oracle.Judge(in)
	run := reports.NewReport(in, res.Results)
	r.mu.Lock()
	planUsed := r.planUsed
	r.mu.Unlock()
	run.Facts = verdict.Facts{Fired: run.FaultsFired, Precondition: r.sc.precondition(in, res.Results, planUsed),
		Incomplete: in.Missing()}
	for _, h := range res.Hung {
		run.Facts.Hung = append(run.Facts.Hung, h.String())
	}
	in.Close()
	if scriptErr != nil {
		if errors.Is(scriptErr, context.DeadlineExceeded) && r.ctx.Err() == nil {
			run.Facts.Deadline = true
		} else {
			run.Facts.ScriptErr = scriptErr.Error()
		}
	}
	res.Notes = append(res.Notes, r.notes...)
	run.Expect = r.sc.Cell(r.cfg.Profile, r.cfg.Driver)
	run.Started, run.Elapsed = r.start, res.Wall
	run.Replay = ReplayCommand(r.dir)
	run.Judge()
	res.Report = run
	res.Outcome, res.Expected = Outcome{Verdict: run.Verdict(), Why: run.Why}, run.Expect.String()
	if err := reports.WriteReport(r.dir, run); err != nil {
		r.note("report: %v", err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "runner.log"), []byte(strings.Join(res.Notes, "\n")+"\n"), 0o644); err != nil {
		r.note("runner.log: %v", err)
	}
	return nil
}

// setup creates the board in the backing directory, fault-free and before
// anything is mounted: the schema through kanbancore with the run's
// profile, the commit counter and ledger, and the scenario's seed rows.
// Its commits go to histories/setup.jsonl like any process's.
func (r *Script) setup(sw kanbancore.Switches) error {
	if err := os.MkdirAll(r.backing, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(r.mnt, 0o755); err != nil {
		return err
	}
	h, err := history.Create(filepath.Join(r.dir, oracle.HistoriesDir, "setup.jsonl"), "setup")
	if err != nil {
		return err
	}
	defer h.Close()
	h.Write(history.Event{Type: history.TypeStart, Data: &history.Data{Role: "setup", Profile: r.cfg.Profile, Driver: r.cfg.Driver, Seed: new(r.cfg.Seed)}})
	opts := kanbancore.Options{Driver: kanbancore.Driver(r.cfg.Driver), Switches: sw, Observer: &ledger.Observer{H: h}, Clock: r.clock}
	c, err := kanbancore.Open(r.ctx, filepath.Join(r.backing, oracle.DBName), opts)
	if err != nil {
		return err
	}
	if err := ledger.Create(r.ctx, c); err != nil {
		c.Close()
		return err
	}
	if r.sc.Setup != nil {
		rl := &role{ctx: r.ctx, spec: RoleSpec{Proc: "setup", Seed: r.cfg.Seed, Args: map[string]string{}}, clock: r.clock, h: h, obs: &ledger.Observer{H: h}, sw: sw,
			rng: newRand(r.cfg.Seed, "setup")}
		if err := r.sc.Setup(rl, c); err != nil {
			c.Close()
			return err
		}
	}
	if err := c.Close(); err != nil {
		return err
	}
	h.Write(history.Event{Type: history.TypeExit})
	return nil
}

// runScript runs the scenario's phases and waits for its background jobs.
func (r *Script) runScript() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("script panic: %v", p)
		}
	}()
	err = r.sc.Script(r)
	r.bg.Wait()
	if err == nil && len(r.bgErrs) > 0 {
		err = errors.Join(r.bgErrs...)
	}
	if errors.Is(err, context.DeadlineExceeded) && r.ctx.Err() != nil {
		r.note("scenario hit its wall limit %v; judged as it stood", r.sc.wallLimit(r.cfg))
	}
	return err
}

// teardown stops the faults, then every role (by pid, SIGTERM then SIGKILL,
// group included), then unmounts. It is idempotent.
func (r *Script) teardown() {
	if r.ctl != nil {
		r.mu.Lock()
		loaded := r.loaded
		r.mu.Unlock()
		if loaded {
			if err := r.Clear(); err != nil {
				r.note("clear faults: %v", err)
			}
		}
		r.accumulateFired()
	}
	r.procs.stopAll(time.Second)
	for _, s := range r.procs.exitSummary() {
		r.note("process %s", s)
	}
	if r.mount != nil {
		if r.ctl != nil {
			r.ctl.Mark("teardown")
			r.ctl.Flush()
		}
		if err := r.mount.Stop(); err != nil {
			r.note("unmount: %v", err)
		}
		r.mount, r.ctl = nil, nil
	}
}

// copyFiles copies the board's files from the backing directory after
// unmount and before anything opens them again.
func (r *Script) copyFiles() error {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		src := filepath.Join(r.backing, oracle.DBName+suffix)
		b, err := os.ReadFile(src)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(r.dir, oracle.FilesDir, oracle.DBName+suffix), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (r *Script) writeMeta(sw kanbancore.Switches) error {
	var m runnerMeta
	m.Scenario, m.Profile, m.Driver, m.Seed = r.sc.Name, r.cfg.Profile, r.cfg.Driver, r.cfg.Seed
	m.Ledger = oracle.DefaultLedger
	m.Bounds = r.sc.Bounds
	m.Switches = map[string]string{}
	for _, s := range sw.List() {
		m.Switches[s.Name] = s.Value
	}
	r.mu.Lock()
	m.Plan = strings.Join(r.plans, "")
	m.Runner.Plans = append([]string(nil), r.plans...)
	r.mu.Unlock()
	m.Runner.PlanTemplate = r.mainPlan
	m.Runner.Sets = r.cfg.Sets
	m.Runner.Scale = r.cfg.Scale
	if r.cfg.Duration > 0 {
		m.Runner.Duration = r.cfg.Duration.String()
	}
	m.Runner.Replay = ReplayCommand(r.dir)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.dir, "plan.txt"), []byte(r.mainPlan), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.dir, oracle.MetaFile), append(b, '\n'), 0o644)
}

// ReplayCommand is the exact command that re-runs the run saved in dir
// (reports.ReplayCommand).
func ReplayCommand(dir string) string { return reports.ReplayCommand(dir) }

// RunCommand is the exact command that re-runs a cell from its seed (and
// the saved plan, when the run's plan differs from the scenario's).
func RunCommand(cfg Config, planFile string) string {
	return reports.RunCommand(reports.RunArgs{Scenario: cfg.Scenario, Profile: cfg.Profile, Driver: cfg.Driver, Seed: cfg.Seed,
		Duration: cfg.Duration, Sets: cfg.Sets, PlanFile: planFile})
}

func (r *Script) note(format string, args ...any) {
	r.mu.Lock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *Script) progressLoop() (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r.mu.Lock()
				ph := r.phase
				r.mu.Unlock()
				r.cfg.Progress(Progress{Cell: r.cfg.Cell(), Elapsed: time.Since(r.start), Fired: r.firedNow(), Phase: ph})
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// ---- the Script API ----

// Ctx is the run's context (cancelled on SIGINT or at the wall limit).
func (r *Script) Ctx() context.Context { return r.ctx }

// Clock is the run's scaled board clock.
func (r *Script) Clock() Clock { return r.clock }

// Phase names the current phase for the progress line and marks it in the
// trace.
func (r *Script) Phase(name string) {
	r.mu.Lock()
	r.phase = name
	r.mu.Unlock()
	r.Mark("phase:" + name)
}

// Sleep waits a board-time duration.
func (r *Script) Sleep(board time.Duration) error {
	return sleepBoard(r.ctx, r.clock, board)
}

// LoadDuration is the scenario's load duration in board time: the
// configured --duration (wall) scaled, or def.
func (r *Script) LoadDuration(def time.Duration) time.Duration {
	if r.cfg.Duration > 0 {
		return r.clock.Board(r.cfg.Duration)
	}
	return def
}

// Mark writes a mark into the faultfs trace.
func (r *Script) Mark(s string) error {
	if r.ctl == nil {
		return nil
	}
	return r.ctl.Mark(s)
}

// MainPlan returns the run's main plan (the scenario's, or --plan's).
func (r *Script) MainPlan() string {
	r.mu.Lock()
	r.planUsed = true
	r.mu.Unlock()
	return r.mainPlan
}

// LoadPlan parses the plan template, binds its placeholders ({pid:PROC}
// from the started processes, {dbsize} and {dbpages} from the database
// file) and loads the concrete plan through the control socket, replacing
// the running plan.
func (r *Script) LoadPlan(tmpl string) error {
	p, err := r.bind(tmpl)
	if err != nil {
		return err
	}
	text := p.String()
	r.accumulateFired()
	if err := r.ctl.LoadPlan(text); err != nil {
		return err
	}
	r.mu.Lock()
	r.plans = append(r.plans, text)
	r.loaded = len(p.Rules) > 0
	r.mu.Unlock()
	return nil
}

// Clear removes every fault and writes the "faults-cleared" mark the
// liveness checker measures from.
func (r *Script) Clear() error {
	r.accumulateFired()
	if err := r.ctl.Clear(); err != nil {
		return err
	}
	r.mu.Lock()
	r.loaded = false
	r.mu.Unlock()
	return r.ctl.Mark(oracle.MarkFaultsCleared)
}

// Fired is the number of faults fired so far in this run.
func (r *Script) Fired() uint64 { return r.firedNow() }

func (r *Script) firedNow() uint64 {
	r.mu.Lock()
	base := r.fired
	ctl := r.ctl
	r.mu.Unlock()
	if ctl == nil {
		return base
	}
	cs, err := ctl.Counters()
	if err != nil {
		return base
	}
	var n uint64
	for _, c := range cs {
		n += c.Fired
	}
	return base + n
}

// accumulateFired folds the running plan's counters into the total before
// the plan is replaced (counters restart on load).
func (r *Script) accumulateFired() {
	if r.ctl == nil {
		return
	}
	cs, err := r.ctl.Counters()
	if err != nil {
		return
	}
	var n uint64
	for _, c := range cs {
		n += c.Fired
	}
	r.mu.Lock()
	r.fired += n
	r.mu.Unlock()
}

func (r *Script) firedTotal() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fired
}

// checkTemplate checks a plan template before the run starts: it must
// parse (its placeholders are bound when it is loaded).
func checkTemplate(t string) error {
	_, err := plan.Parse(t)
	return err
}

// bind parses a plan template and binds its placeholders (resolve).
func (r *Script) bind(tmpl string) (*plan.Plan, error) {
	t, err := plan.Parse(tmpl)
	if err != nil {
		return nil, err
	}
	return t.Bind(r.resolve)
}

// resolve gives a placeholder its value: a started process's pid, or the
// database file's size in bytes or 4096-byte pages.
func (r *Script) resolve(v plan.Var) (int64, error) {
	if v.Kind == plan.VarPid {
		p := r.procs.get(v.Proc)
		if p == nil {
			return 0, fmt.Errorf("no process %q in this run", v.Proc)
		}
		return int64(p.pid()), nil
	}
	// Reading the backing file's size never touches the mount.
	fi, err := os.Stat(filepath.Join(r.backing, oracle.DBName))
	if err != nil {
		return 0, err
	}
	switch v.Kind {
	case plan.VarDBSize:
		return fi.Size(), nil
	case plan.VarDBPages:
		return fi.Size() / 4096, nil
	}
	return 0, fmt.Errorf("unknown placeholder %s", v)
}

// spec fills in a role spec's run-wide fields.
func (r *Script) spec(s RoleSpec) RoleSpec {
	s.DB = r.db
	s.Profile = r.cfg.Profile
	s.Driver = r.cfg.Driver
	s.Switches = append(append(append([]string(nil), r.sc.Sets...), r.cfg.Sets...), s.Switches...)
	s.Seed = r.cfg.Seed
	s.Clock = r.clock.String()
	s.HistDir = filepath.Join(r.dir, oracle.HistoriesDir)
	s.WorkDir = filepath.Join(r.work, "ws")
	if s.Role == "" {
		s.Role = RoleWorker
	}
	return s
}

// Start starts a long-lived role process named s.Proc.
func (r *Script) Start(s RoleSpec) error {
	if s.Proc == "" {
		return errors.New("scenarios: role spec without Proc")
	}
	_, err := r.procs.start(r.spec(s))
	return err
}

// Stop stops one role process by pid (SIGTERM, SIGKILL after a second);
// the workers it spawned keep running, as after a gateway restart.
func (r *Script) Stop(name string) error { return r.procs.stopOne(name, time.Second) }

// Pid returns a role's pid (0 if unknown).
func (r *Script) Pid(name string) int {
	if p := r.procs.get(name); p != nil {
		return p.pid()
	}
	return 0
}

// WaitExit waits until the role process exits (or the run ends) and
// returns its exit code.
func (r *Script) WaitExit(name string) (int, error) {
	p := r.procs.get(name)
	if p == nil {
		return -1, fmt.Errorf("scenarios: no process %q", name)
	}
	select {
	case <-p.done:
		return p.exitCode(), nil
	case <-r.ctx.Done():
		return -1, r.ctx.Err()
	}
}

// CLI runs one short-lived CLI process (a fresh first connection, one
// operation) and waits for it; it returns the process's exit code.
func (r *Script) CLI(op BoardOp, args map[string]string) (int, error) {
	r.mu.Lock()
	r.cliN++
	name := fmt.Sprintf("cli-%d", r.cliN)
	r.mu.Unlock()
	s := RoleSpec{Role: RoleCLI, Proc: name, Op: op, Args: args}
	if t, ok := args["task"]; ok {
		s.Task = t
	}
	if err := r.Start(s); err != nil {
		return -1, err
	}
	return r.WaitExit(name)
}

// CLILoop runs CLI processes one after another, ops cycling, every
// interval (board time) for the given board duration.
func (r *Script) CLILoop(ops []BoardOp, interval, d time.Duration, args map[string]string) error {
	end := time.Now().Add(r.clock.Wall(d))
	for i := 0; time.Now().Before(end); i++ {
		if _, err := r.CLI(ops[i%len(ops)], args); err != nil {
			return err
		}
		if err := r.Sleep(interval); err != nil {
			return err
		}
	}
	return nil
}

// Go runs f in the background; the run waits for it before teardown.
func (r *Script) Go(f func() error) {
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		if err := f(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			r.mu.Lock()
			r.bgErrs = append(r.bgErrs, err)
			r.mu.Unlock()
		}
	}()
}

// Events returns the events of one process's history so far: none when
// the process has not written any yet. Of a history that does not read (a
// malformed line) it returns the events before the bad line and drops the
// error: the judge reads the same file and refuses the run with it (the
// error Execute returns), so a note here would never reach a report.
func (r *Script) Events(proc string) []history.Event {
	evs, _ := history.ReadFile(filepath.Join(r.dir, oracle.HistoriesDir, proc+".jsonl"))
	return evs
}

// Count counts the events of type typ (and op, when op is not "") in a
// process's history so far.
func (r *Script) Count(proc, typ, op string) int {
	n := 0
	for _, e := range r.Events(proc) {
		if e.Type == typ && (op == "" || e.Op == op) {
			n++
		}
	}
	return n
}

// WaitUntil polls cond every 10 ms (wall) until it holds or the board-time
// limit passes; it reports whether cond held.
func (r *Script) WaitUntil(limit time.Duration, cond func() bool) (bool, error) {
	end := time.Now().Add(r.clock.Wall(limit))
	for {
		if cond() {
			return true, nil
		}
		if time.Now().After(end) {
			return false, nil
		}
		select {
		case <-r.ctx.Done():
			return false, r.ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// StartConnected starts a long-lived role and waits (up to 60 s board
// time) until its first connect returned, so that long-lived roles come up
// one at a time, as they do when a gateway and its threads start before
// the traffic. It returns an error when the role could not start or did
// not connect in time (the script then fails: the cell is inconclusive).
func (r *Script) StartConnected(s RoleSpec) error {
	if err := r.Start(s); err != nil {
		return err
	}
	ok, err := r.waitStarted(func() bool { return r.Count(s.Proc, history.TypeReturn, "connect") > 0 })
	if err == nil && !ok {
		err = fmt.Errorf("%s did not connect within %v", s.Proc, r.startLimit())
	}
	return err
}

// startLimit is how long a role gets to start and connect: 60 s of board
// time, but never less than 10 s of wall time, since starting a process
// (exec, runtime init, the driver's first open) takes wall time that a
// loaded machine stretches, whatever the board clock's scale.
func (r *Script) startLimit() time.Duration { return max(r.clock.Wall(60*time.Second), 10*time.Second) }

// waitStarted polls cond until it holds or startLimit passes.
func (r *Script) waitStarted(cond func() bool) (bool, error) {
	return r.WaitUntil(r.clock.Board(r.startLimit()), cond)
}
