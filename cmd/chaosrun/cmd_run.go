package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sqlchaos/sqlchaos/internal/reexec"
	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/reports"
	"github.com/sqlchaos/sqlchaos/scenarios"
	"github.com/sqlchaos/sqlchaos/verdict"
)

func init() {
	register(command{name: "list", summary: "list the scenario catalog (one per corruption class)", run: cmdList})
	register(command{name: "run", summary: "run one scenario under one profile and driver, judge it", run: cmdRun})
	register(command{name: "matrix", summary: "run scenarios × profiles × drivers and print the matrix", run: cmdMatrix})
	register(command{name: "replay", summary: "re-run a saved run from its meta.json (seed, plan, profile, driver)", run: cmdReplay})
	register(command{name: "role", summary: "run a scenario role process by hand (internal)", hidden: true, run: cmdRole})
}

const listUsage = `Usage: chaosrun list [--long]

Lists the scenario catalog: one scenario per corruption class of the seed,
with the fix it belongs to, the profiles the default matrix runs it under and
what each profile is expected to do. --long adds each scenario's doc and plan.

Examples:
  chaosrun list
  chaosrun list --long
`

func cmdList(args []string) int {
	fl := flag.NewFlagSet("chaosrun list", flag.ContinueOnError)
	long := fl.Bool("long", false, "print each scenario's doc, roles and plan")
	fl.Usage = func() { fmt.Fprint(fl.Output(), listUsage) }
	if err := fl.Parse(args); err != nil {
		return usageExit(err)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	if !*long {
		fmt.Fprintln(w, "SCENARIO\tFIX\tEXPECTED")
	}
	for _, sc := range scenarios.All() {
		var exp []string
		for _, p := range sc.MatrixProfiles() {
			if e, ok := sc.Expect[p]; ok {
				x := p + " → " + e.String()
				var pinned []string
				for _, d := range []string{"modernc", "mattn"} {
					if sc.Cell(p, d).Finding != nil {
						pinned = append(pinned, d)
					}
				}
				if len(pinned) > 0 {
					x += " [finding pinned on " + strings.Join(pinned, ", ") + "]"
				}
				exp = append(exp, x)
			}
		}
		if !*long {
			fix, _, _ := strings.Cut(sc.Fix, ":")
			fmt.Fprintf(w, "%s\t%s\t%s\n", sc.Name, fix, strings.Join(exp, "; "))
			continue
		}
		fmt.Fprintf(w, "%s\n  fix:   %s\n  roles: %s\n", sc.Name, sc.Fix, sc.Roles)
		for _, e := range exp {
			fmt.Fprintf(w, "  expect %s\n", e)
		}
		for _, p := range sc.MatrixProfiles() {
			for _, d := range []string{"modernc", "mattn"} {
				if f := sc.Cell(p, d).Finding; f != nil {
					fmt.Fprintf(w, "  finding %s/%s: %s\n    why: %s\n", p, d, f.What, f.Why)
				}
			}
		}
		plan := strings.TrimSpace(sc.Plan)
		if plan == "" {
			plan = "(none: the defect is in the code)"
		}
		fmt.Fprintf(w, "  plan:\n    %s\n", strings.ReplaceAll(plan, "\n", "\n    "))
		fmt.Fprintf(w, "  %s\n\n", strings.ReplaceAll(sc.Doc, "\n", "\n  "))
	}
	w.Flush()
	return 0
}

const runUsage = `Usage: chaosrun run SCENARIO --profile P --driver D --seed N [--duration D] [--out DIR] [--plan FILE] [--set k=v]...

Runs one cell: mounts faultfs over a fresh board, runs the scenario's roles as
separate processes through its phases, stops everything, unmounts, copies the
database files, judges the run with every oracle checker and writes
report.json and summary.md into the run directory.

Flags:
  --profile P     legacy | pr32857 | merged33482 | hardened (default legacy)
  --driver D      modernc | mattn (default modernc)
  --seed N        seed of every random choice (default 1)
  --duration D    wall-clock length of the load phase (default: the scenario's)
  --out DIR       run directory (default: a new temporary directory, kept)
  --plan FILE     replace the scenario's main fault plan (e.g. a found plan)
  --set k=v       override a profile switch (repeatable)

Exit status: 0 the outcome matches the expectation (reproduced or held),
1 unexpected, 2 usage or setup error (no FUSE, bad flags).

Examples:
  chaosrun run eio-wal-downgrade --profile legacy --driver modernc --seed 1
  chaosrun run rollback-shadow --profile hardened --driver mattn --seed 7 --out /tmp/rs
  chaosrun run soak --profile hardened --driver modernc --seed 3 --duration 10m
  chaosrun run torn-extend --profile legacy --driver modernc --seed 1 --plan found.plan
`

func cmdRun(args []string) int {
	fl := flag.NewFlagSet("chaosrun run", flag.ContinueOnError)
	profile := fl.String("profile", kanbancore.ProfileLegacy, "profile")
	driver := fl.String("driver", "modernc", "driver")
	seed := fl.Int64("seed", 1, "seed")
	duration := fl.Duration("duration", 0, "load phase length (wall clock)")
	out := fl.String("out", "", "run directory")
	planFile := fl.String("plan", "", "plan file replacing the scenario's main plan")
	var sets multiFlag
	fl.Var(&sets, "set", "switch override k=v (repeatable)")
	fl.Usage = func() { fmt.Fprint(fl.Output(), runUsage) }
	pos, err := parseInterleaved(fl, args)
	if err != nil {
		return usageExit(err)
	}
	if len(pos) != 1 {
		fmt.Fprintln(os.Stderr, "chaosrun run: give exactly one SCENARIO (see chaosrun list)")
		return 2
	}
	cfg := scenarios.Config{Scenario: pos[0], Profile: *profile, Driver: *driver, Seed: *seed,
		Duration: *duration, Out: *out, Sets: sets}
	if *planFile != "" {
		b, err := os.ReadFile(*planFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "chaosrun run: %v\n", err)
			return 2
		}
		cfg.PlanOverride = string(b)
		if strings.TrimSpace(cfg.PlanOverride) == "" {
			cfg.PlanOverride = "# empty plan\n"
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, code := runCell(ctx, cfg, *planFile)
	if res == nil {
		return code
	}
	printResults(os.Stdout, res)
	return code
}

// runCell runs one cell with a progress line and prints its verdict line;
// it returns the exit status that cell alone would give.
func runCell(ctx context.Context, cfg scenarios.Config, planFile string) (*scenarios.Result, int) {
	p := newProgress(os.Stderr)
	cfg.Progress = p.update
	p.begin(cfg.Cell())
	res, err := scenarios.Execute(ctx, cfg)
	p.end()
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaosrun: %s: %v\n", cfg.Cell(), err)
		if errors.Is(err, scenarios.ErrSetup) {
			return nil, 2
		}
		fmt.Fprintf(os.Stderr, "  seed %d; replay: %s\n", cfg.Seed, scenarios.RunCommand(cfg, planFile))
		return nil, 1
	}
	fmt.Fprintf(os.Stderr, "%-55s %-12s %6.1fs  fired=%-4d %s\n", cfg.Cell(), res.Outcome.Verdict, res.Wall.Seconds(), res.Fired, res.Dir)
	if !res.Outcome.Verdict.OK() {
		fmt.Fprintf(os.Stderr, "  %s (expected %s): %s\n", strings.ToUpper(string(res.Outcome.Verdict)), res.Expected, res.Outcome.Why)
		fmt.Fprintf(os.Stderr, "  seed %d; replay: %s\n  or: %s\n", cfg.Seed, reports.ReplayCommand(res.Dir),
			scenarios.RunCommand(cfg, filepath.Join(res.Dir, "plan.txt")))
		return res, 1
	}
	return res, 0
}

func printResults(w io.Writer, res *scenarios.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range res.Results {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.Checker, r.Verdict, r.Summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "outcome: %s (expected %s)", res.Outcome.Verdict, res.Expected)
	if res.Outcome.Why != "" {
		fmt.Fprintf(w, ": %s", res.Outcome.Why)
	}
	fmt.Fprintf(w, "\nrun directory: %s\n", res.Dir)
	for _, n := range res.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

const matrixUsage = `Usage: chaosrun matrix [--scenarios a,b] [--profiles legacy,hardened] [--drivers modernc,mattn] [--out DIR] [--seed N] [--duration D] [--repeat N] [--jobs N] [--compare-jobs N]

Runs every (scenario, profile, driver) cell and prints the matrix. Each
cell's verdict is one of:

  reproduced    the profile broke as its story says
  held          it held as the story says (or detected the damage)
  finding       it shows the finding pinned to the cell: measurement that
                contradicts the story, explained in the scenario's doc
  unexpected    nothing predicted this; the evidence is in the run directory
  inconclusive  the run could not decide (its fault never fired, the script
                failed or hit its deadline, a needed checker undecided)
  hung          a process had to be killed at its deadline

Without --profiles each scenario runs under the profiles its expectation
names (legacy and hardened, plus the PR-era profile for the PR-era defects).
--repeat N runs each cell N times with seeds derived from --seed (the first
is --seed itself) and judges the cell over its runs: a cell whose runs do
not all agree is unexpected unless the scenario declares it a rate cell,
which must reach its rate. Writes matrix.md (with the per-cell table under
--repeat), index.html, junit.xml and cells.json into the output directory.
--jobs N runs N cells at once, each with its own mount and run directory
(default: four per core, at most 16). --compare-jobs M then runs the same
cells again, M at once, into DIR/jobs-M, and prints the wall-time ratio of
the two runs and every run whose verdict differs (exit 1 if one does):
--compare-jobs 1 shows what parallel cells buy and that they change no
verdict.

Exit status: 0 when every cell is reproduced, held or finding; 1 when any
is unexpected, inconclusive or hung (or failed to run); 2 on usage or setup
errors (no FUSE, bad flags).

Examples:
  chaosrun matrix
  chaosrun matrix --scenarios eio-wal-downgrade,rollback-shadow --drivers modernc
  chaosrun matrix --repeat 5 --jobs 3 --out /tmp/m5
  chaosrun matrix --compare-jobs 1 --out /tmp/ratio
  chaosrun matrix --profiles legacy,pr32857,merged33482,hardened --out /tmp/m --seed 7
`

// DeriveSeed returns the seed of the i-th repeat of a cell run from seed:
// seed itself for i = 0, then a splitmix64 mix of (seed, i), positive.
func DeriveSeed(seed int64, i int) int64 {
	if i == 0 {
		return seed
	}
	z := uint64(seed) + uint64(i)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return int64(z >> 1)
}

func cmdMatrix(args []string) int {
	var a matrixArgs
	fl := a.flags()
	pos, err := parseInterleaved(fl, args)
	if err != nil {
		return usageExit(err)
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "chaosrun matrix: %v\n", err)
		return 2
	}
	if len(pos) != 0 {
		return fail(fmt.Errorf("unexpected argument %q", pos[0]))
	}
	scs, err := a.check()
	if err != nil {
		return fail(err)
	}
	dir, err := outputDir(a.out, "sqlchaos-matrix-")
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return fail(err)
	}
	cfgs := a.configs(scs, dir)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "matrix: seed %d, %d runs (%d per cell), %d at once, output %s\n", a.seed, len(cfgs), a.repeat, a.jobs, dir)
	start := time.Now()
	results, code := runCells(ctx, cfgs, a.jobs)
	if code == 2 {
		return 2
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "matrix: interrupted")
		return 1
	}
	elapsed := time.Since(start)
	fmt.Fprintf(os.Stderr, "matrix: %d runs in %s\n", len(cfgs), elapsed.Round(time.Second))
	cellCode, err := writeMatrix(os.Stdout, dir, results, a.repeat > 1)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaosrun matrix: report: %v\n", err)
		return 1
	}
	code = max(code, cellCode)
	if a.compareJobs > 0 {
		code = max(code, compareJobs(ctx, a, cfgs, results, elapsed))
	}
	return code
}

// compareJobs runs cfgs again, a.compareJobs at a time, into a
// subdirectory of each run's parent, and prints the wall-time ratio of the
// two runs and every run whose verdict differs: 1 when one does (or a run
// failed), else 0.
func compareJobs(ctx context.Context, a matrixArgs, cfgs []scenarios.Config, results []*scenarios.Result, elapsed time.Duration) int {
	again := slices.Clone(cfgs)
	for i := range again {
		again[i].Out = filepath.Join(filepath.Dir(cfgs[i].Out), fmt.Sprintf("jobs-%d", a.compareJobs), filepath.Base(cfgs[i].Out))
	}
	fmt.Fprintf(os.Stderr, "matrix: the same %d runs again, %d at once\n", len(again), a.compareJobs)
	start := time.Now()
	other, code := runCells(ctx, again, a.compareJobs)
	took := time.Since(start)
	if code == 2 || ctx.Err() != nil {
		return 1
	}
	same := 0
	for i := range cfgs {
		v, w := verdictOf(results[i]), verdictOf(other[i])
		if v == w && v != "" {
			same++
			continue
		}
		fmt.Printf("differs: %s seed %d: %s at --jobs %d, %s at --jobs %d\n", cfgs[i].Cell(), cfgs[i].Seed, cmp.Or(v, "(failed)"), a.jobs, cmp.Or(w, "(failed)"), a.compareJobs)
	}
	fmt.Printf("--jobs %d: %s; --jobs %d: %s; ratio %.2fx; the same verdict in %d of %d runs\n",
		a.jobs, elapsed.Round(time.Second), a.compareJobs, took.Round(time.Second), took.Seconds()/elapsed.Seconds(), same, len(cfgs))
	if same != len(cfgs) {
		return 1
	}
	return code
}

// verdictOf is a run's verdict, "" for a run that failed to run.
func verdictOf(r *scenarios.Result) string {
	if r == nil {
		return ""
	}
	return string(r.Outcome.Verdict)
}

// matrixArgs are the flags of "chaosrun matrix".
type matrixArgs struct {
	scenarios, profiles, drivers, out string
	seed                              int64
	duration                          time.Duration
	repeat, jobs, compareJobs         int
}

func (a *matrixArgs) flags() *flag.FlagSet {
	fl := flag.NewFlagSet("chaosrun matrix", flag.ContinueOnError)
	fl.StringVar(&a.scenarios, "scenarios", "", "comma-separated scenarios (default all)")
	fl.StringVar(&a.profiles, "profiles", "", "comma-separated profiles (default: each scenario's)")
	fl.StringVar(&a.drivers, "drivers", "modernc,mattn", "comma-separated drivers")
	fl.StringVar(&a.out, "out", "", "output directory (default: a new temporary directory)")
	fl.Int64Var(&a.seed, "seed", 1, "seed of every cell (the first repeat's)")
	fl.DurationVar(&a.duration, "duration", 0, "load phase length per cell (wall clock)")
	fl.IntVar(&a.repeat, "repeat", 1, "runs per cell, each with a seed derived from --seed")
	fl.IntVar(&a.jobs, "jobs", defaultJobs(), "cells run at once, each with its own mount and run directory")
	fl.IntVar(&a.compareJobs, "compare-jobs", 0, "then run the same cells again, this many at once, and print the wall-time ratio and every verdict that differs (exit 1 if one does)")
	fl.Usage = func() { fmt.Fprint(fl.Output(), matrixUsage) }
	return fl
}

// check validates the counts, profiles and drivers and returns the
// scenarios the matrix runs (the whole catalog by default).
func (a *matrixArgs) check() ([]*scenarios.Scenario, error) {
	if a.repeat < 1 || a.jobs < 1 {
		return nil, errors.New("--repeat and --jobs must be at least 1")
	}
	if a.compareJobs < 0 {
		return nil, errors.New("--compare-jobs must not be negative")
	}
	var scs []*scenarios.Scenario
	if a.scenarios == "" {
		scs = scenarios.All()
	}
	for _, n := range splitList(a.scenarios) {
		sc, ok := scenarios.Lookup(n)
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q (see chaosrun list)", n)
		}
		scs = append(scs, sc)
	}
	for _, p := range splitList(a.profiles) {
		if _, err := kanbancore.ProfileByName(p); err != nil {
			return nil, err
		}
	}
	for _, d := range splitList(a.drivers) {
		if d != "modernc" && d != "mattn" {
			return nil, fmt.Errorf("unknown driver %q (want modernc or mattn)", d)
		}
	}
	return scs, nil
}

// configs lists the matrix's runs: each scenario under each profile (its
// own by default) and driver, repeat times with derived seeds, each into
// its own directory under dir.
func (a *matrixArgs) configs(scs []*scenarios.Scenario, dir string) []scenarios.Config {
	var cfgs []scenarios.Config
	for _, sc := range scs {
		profiles := splitList(a.profiles)
		if len(profiles) == 0 {
			profiles = sc.MatrixProfiles()
		}
		for _, p := range profiles {
			for _, d := range splitList(a.drivers) {
				for i := 0; i < a.repeat; i++ {
					name := fmt.Sprintf("%s-%s-%s", sc.Name, p, d)
					if a.repeat > 1 {
						name += fmt.Sprintf("-r%d", i+1)
					}
					cfgs = append(cfgs, scenarios.Config{Scenario: sc.Name, Profile: p, Driver: d, Seed: DeriveSeed(a.seed, i),
						Duration: a.duration, Out: filepath.Join(dir, name)})
				}
			}
		}
	}
	return cfgs
}

// defaultJobs is how many cells the matrix, and how many cases a soak
// shard, runs at once by default: four per core, at most 16. A cell
// mostly waits on its scaled board clock: on 2 cores, 8 at once ran the
// default matrix in 55 s with the same verdict as one at a time in every
// cell, and every cell gave the same verdict 5 times out of 5 under
// --repeat 5 (see the README).
func defaultJobs() int { return min(4*runtime.NumCPU(), 16) }

// runCells runs the cells, jobs at a time, and returns their results in
// the order of cfgs (nil for a cell that failed to run) and an exit
// status: 1 when a cell failed to run, 2 on a setup error (which stops the
// matrix).
func runCells(ctx context.Context, cfgs []scenarios.Config, jobs int) ([]*scenarios.Result, int) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]*scenarios.Result, len(cfgs))
	p := newMatrixProgress(os.Stderr, len(cfgs))
	var mu sync.Mutex
	code := 0
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				cfg := cfgs[i]
				var logf *os.File
				if err := os.MkdirAll(cfg.Out, 0o755); err == nil {
					if logf, err = os.Create(filepath.Join(cfg.Out, "stderr.log")); err == nil {
						cfg.Stderr = logf
					}
				}
				p.started(cfg.Cell())
				res, err := scenarios.Execute(ctx, cfg)
				if logf != nil {
					logf.Close()
				}
				mu.Lock()
				switch {
				case err != nil && errors.Is(err, scenarios.ErrSetup) && ctx.Err() == nil:
					fmt.Fprintf(os.Stderr, "chaosrun: %s: %v\n", cfg.Cell(), err)
					code = 2 // a setup error (e.g. no FUSE) would repeat in every cell
					cancel()
				case err != nil:
					if ctx.Err() == nil {
						fmt.Fprintf(os.Stderr, "chaosrun: %s: %v\n  seed %d; replay: %s\n", cfg.Cell(), err, cfg.Seed, scenarios.RunCommand(cfg, ""))
						code = max(code, 1)
					}
				default:
					results[i] = res
				}
				mu.Unlock()
				p.finished(cfg, res)
			}
		}()
	}
	for i := range cfgs {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	p.end()
	return results, code
}

const replayUsage = `Usage: chaosrun replay DIR [--out DIR2]

Re-runs the run saved in DIR from its meta.json: the same scenario, profile,
driver, seed, switch overrides and main plan (plan.txt), into a new run
directory, and prints the saved and the new outcome side by side. Faults on
one file are deterministic for a seed; how processes interleave is not, so a
replay reproduces the faults, and usually the outcome.

Exit status as for chaosrun run.

Examples:
  chaosrun replay /tmp/sqlchaos-matrix-123/rollback-shadow-legacy-mattn
`

func cmdReplay(args []string) int {
	fl := flag.NewFlagSet("chaosrun replay", flag.ContinueOnError)
	out := fl.String("out", "", "new run directory (default: a new temporary directory)")
	fl.Usage = func() { fmt.Fprint(fl.Output(), replayUsage) }
	pos, err := parseInterleaved(fl, args)
	if err != nil {
		return usageExit(err)
	}
	if len(pos) != 1 {
		fl.Usage()
		return 2
	}
	src := pos[0]
	var meta struct {
		oracle.Meta
		Runner struct {
			PlanTemplate string   `json:"plan_template"`
			Sets         []string `json:"sets"`
			Scale        float64  `json:"scale"`
			Duration     string   `json:"duration"`
		} `json:"runner"`
	}
	b, err := os.ReadFile(filepath.Join(src, oracle.MetaFile))
	if err == nil {
		err = json.Unmarshal(b, &meta)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaosrun replay: %v\n", err)
		return 2
	}
	cfg := scenarios.Config{Scenario: meta.Scenario, Profile: meta.Profile, Driver: meta.Driver, Seed: meta.Seed,
		Out: *out, Sets: meta.Runner.Sets, Scale: meta.Runner.Scale, PlanOverride: meta.Runner.PlanTemplate}
	if cfg.PlanOverride == "" {
		cfg.PlanOverride = "# empty plan\n"
	}
	if meta.Runner.Duration != "" {
		cfg.Duration, _ = time.ParseDuration(meta.Runner.Duration)
	}
	savedOutcome := ""
	if saved, err := reports.ReadReport(src); err == nil {
		savedOutcome = saved.Outcome
	}
	fmt.Fprintf(os.Stderr, "replaying %s: %s seed %d\n", src, cfg.Cell(), cfg.Seed)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, code := runCell(ctx, cfg, filepath.Join(src, "plan.txt"))
	if res == nil {
		return code
	}
	printResults(os.Stdout, res)
	fmt.Printf("saved outcome: %s; replayed outcome: %s\n", cmp.Or(savedOutcome, "(none)"), res.Outcome.Verdict)
	return code
}

// roleSpecEnv carries the RoleSpec (JSON) of a role run by hand.
const roleSpecEnv = "SQLCHAOS_SCN_SPEC"

// cmdRole runs a scenario role in this process's place: the runner starts
// roles through reexec; this lets a person run one by hand with the spec in
// $SQLCHAOS_SCN_SPEC, passed on as the role's reexec spec.
func cmdRole(args []string) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(os.Stderr, "Usage: "+roleSpecEnv+"='{...}' chaosrun role scn-dispatcher|scn-worker|scn-launcher|scn-watcher|scn-cli|scn-writer")
		return 2
	}
	spec := os.Getenv(roleSpecEnv)
	if spec == "" {
		fmt.Fprintf(os.Stderr, "chaosrun role: %s not set (role processes are started by the runner)\n", roleSpecEnv)
		return 2
	}
	cmd, err := reexec.Command(args[0], json.RawMessage(spec))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var ee interface{ ExitCode() int }
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

// parseInterleaved parses flags that may come before or after positional
// arguments ("run SCENARIO --profile P").
func parseInterleaved(fl *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fl.Parse(args); err != nil {
			return nil, err
		}
		if fl.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fl.Arg(0))
		args = fl.Args()[1:]
	}
}

func usageExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// progress draws a live line on a terminal (cell, elapsed, faults fired)
// and stays quiet otherwise (the caller prints plain lines).
type progress struct {
	w    io.Writer
	tty  bool
	cell string
}

func newProgress(w *os.File) *progress { return &progress{w: w, tty: isTerminal(w)} }

func (p *progress) begin(cell string) {
	p.cell = cell
	if !p.tty {
		fmt.Fprintf(p.w, "running %s\n", cell)
	}
}

func (p *progress) update(pr scenarios.Progress) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s  %5.1fs  fired=%d  %s", pr.Cell, pr.Elapsed.Seconds(), pr.Fired, pr.Phase)
	}
}

func (p *progress) end() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// writeMatrix writes matrix.md, index.html, junit.xml and cells.json into
// dir from the runs that ran (results holds nil for one that failed to
// run), prints the matrix (and, for repeated runs, the per-cell table) and
// returns the exit status the cells give: 0 when every cell's verdict is
// reproduced, held, finding or observed, else 1.
func writeMatrix(w io.Writer, dir string, results []*scenarios.Result, repeated bool) (int, error) {
	var runs []*reports.Report
	for _, r := range results {
		if r != nil && r.Report != nil {
			runs = append(runs, r.Report)
		}
	}
	if err := reports.WriteMatrix(dir, runs); err != nil {
		return 1, err
	}
	cells := reports.Cells(runs)
	b, err := json.MarshalIndent(cells, "", "  ")
	if err != nil {
		return 1, err
	}
	if err := os.WriteFile(filepath.Join(dir, "cells.json"), append(b, '\n'), 0o644); err != nil {
		return 1, err
	}
	md := reports.MatrixMarkdown(runs)
	if repeated { // matrix.md gets the per-cell table too
		md += "\n" + reports.CellsMarkdown(cells)
		if err := os.WriteFile(filepath.Join(dir, reports.MatrixFile), []byte(md), 0o644); err != nil {
			return 1, err
		}
	}
	fmt.Fprint(w, "\n"+md)
	fmt.Fprintf(w, "\nmatrix: %s\nHTML:   %s\nJUnit:  %s\n", filepath.Join(dir, reports.MatrixFile),
		filepath.Join(dir, reports.HTMLFile), filepath.Join(dir, reports.JUnitFile))
	code := 0
	for _, c := range cells {
		if !c.Result.Verdict.OK() {
			code = 1
		}
	}
	return code, nil
}

// matrixProgress shows a live line on a terminal (runs done/total, the
// verdicts so far, an ETA) and, off a terminal, one line per finished run.
type matrixProgress struct {
	w     io.Writer
	tty   bool
	total int
	start time.Time

	mu      sync.Mutex
	done    int
	running int
	tally   verdict.Tally
}

func newMatrixProgress(w *os.File, total int) *matrixProgress {
	return &matrixProgress{w: w, tty: isTerminal(w), total: total, start: time.Now(), tally: verdict.Tally{}}
}

func (p *matrixProgress) started(cell string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running++
	p.draw()
}

func (p *matrixProgress) finished(cfg scenarios.Config, res *scenarios.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running--
	p.done++
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	if res != nil {
		p.tally[res.Outcome.Verdict]++
		fmt.Fprintf(p.w, "[%d/%d] %-55s %-12s %6.1fs  fired=%-4d %s\n", p.done, p.total, cfg.Cell(), res.Outcome.Verdict, res.Wall.Seconds(), res.Fired, res.Dir)
		if !res.Outcome.Verdict.OK() {
			fmt.Fprintf(p.w, "  %s (expected %s): %s\n  seed %d; replay: %s\n", strings.ToUpper(string(res.Outcome.Verdict)), res.Expected,
				res.Outcome.Why, cfg.Seed, reports.ReplayCommand(res.Dir))
		}
	}
	p.draw()
}

func (p *matrixProgress) draw() {
	if !p.tty {
		return
	}
	eta := "?"
	if p.done > 0 {
		el := time.Since(p.start)
		eta = (el * time.Duration(p.total-p.done) / time.Duration(p.done)).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r\033[K%d/%d done, %d running · %d reproduced, %d held, %d finding, %d unexpected, %d inconclusive, %d hung · ETA %s",
		p.done, p.total, p.running, p.tally[verdict.Reproduced], p.tally[verdict.Held], p.tally[verdict.Finding],
		p.tally[verdict.Unexpected], p.tally[verdict.Inconclusive], p.tally[verdict.Hung], eta)
}

func (p *matrixProgress) end() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
