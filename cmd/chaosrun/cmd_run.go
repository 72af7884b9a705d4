package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sqlchaos/sqlchaos/internal/reexec"
	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/reports"
	"github.com/sqlchaos/sqlchaos/scenarios"
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
				exp = append(exp, p+" → "+e.String())
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

type setFlag []string

func (s *setFlag) String() string     { return strings.Join(*s, ",") }
func (s *setFlag) Set(v string) error { *s = append(*s, v); return nil }

func cmdRun(args []string) int {
	fl := flag.NewFlagSet("chaosrun run", flag.ContinueOnError)
	profile := fl.String("profile", kanbancore.ProfileLegacy, "profile")
	driver := fl.String("driver", "modernc", "driver")
	seed := fl.Int64("seed", 1, "seed")
	duration := fl.Duration("duration", 0, "load phase length (wall clock)")
	out := fl.String("out", "", "run directory")
	planFile := fl.String("plan", "", "plan file replacing the scenario's main plan")
	var sets setFlag
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
		fmt.Fprintf(os.Stderr, "  %s (expected %s): %s\n", strings.ToUpper(string(res.Outcome.Verdict)), res.Outcome.Expected, res.Outcome.Why)
		fmt.Fprintf(os.Stderr, "  seed %d; replay: %s\n  or: %s\n", cfg.Seed, scenarios.ReplayCommand(res.Dir),
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
	fmt.Fprintf(w, "outcome: %s (expected %s)", res.Outcome.Verdict, res.Outcome.Expected)
	if res.Outcome.Why != "" {
		fmt.Fprintf(w, ": %s", res.Outcome.Why)
	}
	fmt.Fprintf(w, "\nrun directory: %s\n", res.Dir)
	for _, n := range res.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

const matrixUsage = `Usage: chaosrun matrix [--scenarios a,b] [--profiles legacy,hardened] [--drivers modernc,mattn] [--out DIR] [--seed N] [--duration D]

Runs every (scenario, profile, driver) cell one after another and prints the
matrix: per cell, reproduced (the profile broke as its story says), held (it
passed), or unexpected (reality contradicts the story; the evidence is in
the cell's run directory). Without --profiles each scenario runs under the
profiles its expectation names (legacy and hardened, plus the PR-era profile
for the PR-era defects). Writes the matrix (Markdown, HTML, JUnit XML) into
the output directory.

Exit status: 0 every cell matches its expectation, 1 some cell is
unexpected or failed to run, 2 usage or setup error.

Examples:
  chaosrun matrix
  chaosrun matrix --scenarios eio-wal-downgrade,rollback-shadow --drivers modernc
  chaosrun matrix --profiles legacy,pr32857,merged33482,hardened --out /tmp/m --seed 7
`

func cmdMatrix(args []string) int {
	fl := flag.NewFlagSet("chaosrun matrix", flag.ContinueOnError)
	scnFlag := fl.String("scenarios", "", "comma-separated scenarios (default all)")
	profFlag := fl.String("profiles", "", "comma-separated profiles (default: each scenario's)")
	drvFlag := fl.String("drivers", "modernc,mattn", "comma-separated drivers")
	out := fl.String("out", "", "output directory (default: a new temporary directory)")
	seed := fl.Int64("seed", 1, "seed of every cell")
	duration := fl.Duration("duration", 0, "load phase length per cell (wall clock)")
	fl.Usage = func() { fmt.Fprint(fl.Output(), matrixUsage) }
	pos, err := parseInterleaved(fl, args)
	if err != nil {
		return usageExit(err)
	}
	if len(pos) != 0 {
		fmt.Fprintf(os.Stderr, "chaosrun matrix: unexpected argument %q\n", pos[0])
		return 2
	}
	var scs []*scenarios.Scenario
	if *scnFlag == "" {
		scs = scenarios.All()
	} else {
		for _, n := range splitList(*scnFlag) {
			sc, ok := scenarios.Lookup(n)
			if !ok {
				fmt.Fprintf(os.Stderr, "chaosrun matrix: unknown scenario %q (see chaosrun list)\n", n)
				return 2
			}
			scs = append(scs, sc)
		}
	}
	for _, p := range splitList(*profFlag) {
		if _, err := kanbancore.ProfileByName(p); err != nil {
			fmt.Fprintf(os.Stderr, "chaosrun matrix: %v\n", err)
			return 2
		}
	}
	drivers := splitList(*drvFlag)
	for _, d := range drivers {
		if d != "modernc" && d != "mattn" {
			fmt.Fprintf(os.Stderr, "chaosrun matrix: unknown driver %q (want modernc or mattn)\n", d)
			return 2
		}
	}
	dir := *out
	if dir == "" {
		if dir, err = os.MkdirTemp("", "sqlchaos-matrix-"); err != nil {
			fmt.Fprintf(os.Stderr, "chaosrun matrix: %v\n", err)
			return 2
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "chaosrun matrix: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "matrix: seed %d, output %s\n", *seed, dir)
	var results []*scenarios.Result
	code := 0
	for _, sc := range scs {
		profiles := splitList(*profFlag)
		if len(profiles) == 0 {
			profiles = sc.MatrixProfiles()
		}
		for _, p := range profiles {
			for _, d := range drivers {
				if ctx.Err() != nil {
					fmt.Fprintln(os.Stderr, "matrix: interrupted")
					return 1
				}
				cfg := scenarios.Config{Scenario: sc.Name, Profile: p, Driver: d, Seed: *seed, Duration: *duration,
					Out: filepath.Join(dir, fmt.Sprintf("%s-%s-%s", sc.Name, p, d))}
				res, c := runCell(ctx, cfg, "")
				if c == 2 && res == nil && ctx.Err() == nil {
					// A setup error in one cell (e.g. no FUSE) would repeat in all.
					return 2
				}
				if c > code {
					code = c
				}
				if res != nil {
					results = append(results, res)
				}
			}
		}
	}
	if err := writeMatrix(os.Stdout, dir, results); err != nil {
		fmt.Fprintf(os.Stderr, "chaosrun matrix: report: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
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
	if saved, err := reports.ReadRun(src); err == nil {
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
	fmt.Printf("saved outcome: %s; replayed outcome: %s\n", orNone(savedOutcome), res.Outcome.Verdict)
	return code
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// cmdRole runs a scenario role in this process's place: the runner starts
// roles through reexec; this lets a person run one by hand with the spec in
// $SQLCHAOS_SCN_SPEC.
func cmdRole(args []string) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(os.Stderr, "Usage: SQLCHAOS_SCN_SPEC='{...}' chaosrun role scn-dispatcher|scn-worker|scn-launcher|scn-watcher|scn-cli|scn-writer")
		return 2
	}
	cmd, err := reexec.Command(args[0])
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

func newProgress(w *os.File) *progress {
	_, err := unix.IoctlGetTermios(int(w.Fd()), unix.TCGETS)
	return &progress{w: w, tty: err == nil}
}

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

// writeMatrix writes matrix.md, index.html and junit.xml into dir and
// prints the matrix and where the HTML is.
func writeMatrix(w io.Writer, dir string, results []*scenarios.Result) error {
	var runs []*reports.Run
	for _, r := range results {
		if r.Run != nil {
			runs = append(runs, r.Run)
		}
	}
	if err := reports.WriteMatrix(dir, runs); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, reports.MatrixMarkdown(runs))
	fmt.Fprintf(w, "\nmatrix: %s\nHTML:   %s\nJUnit:  %s\n", filepath.Join(dir, reports.MatrixFile),
		filepath.Join(dir, reports.HTMLFile), filepath.Join(dir, reports.JUnitFile))
	return nil
}
