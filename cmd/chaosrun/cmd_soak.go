package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sqlchaos/sqlchaos/reports"
	"github.com/sqlchaos/sqlchaos/scenarios"
	"github.com/sqlchaos/sqlchaos/soak"
	"github.com/sqlchaos/sqlchaos/verdict"
)

func init() {
	register(command{name: "soak", summary: "run one shard of a many-seed soak (scenarios × profiles × drivers × seeds)", run: cmdSoak})
}

const soakUsage = `Usage: chaosrun soak [--shard I/N | --shards N] (--seeds A..B | --budget D | both) --out DIR
                    [--scenarios a,b] [--profiles p,q] [--drivers modernc,mattn] [--duration D]
                    [--keep all|failing] [--record-only] [--jobs N]

Runs one shard of a soak: the cases (scenario, profile, driver, seed) of the
catalog's cells × the seed range that belong to shard I of N, in order,
up to --jobs at once, each into DIR/<scenario>-<profile>-<driver>-<seed>/,
and keeps DIR/shard.json current: the cases given, which are running,
which finished, which errored, start and end. N shards run together
exactly the cases one unsharded run would, each once: a case belongs to
the shard its hash points at.
` + "`chaosrun merge`" + ` turns the shard directories into one report.

Flags:
  --shard I/N       this shard, 0 <= I < N (default 0/1: the whole soak)
  --shards N        the shard count when I comes from $JOB_COMPLETION_INDEX
                    (a Kubernetes Indexed Job); $SQLCHAOS_SHARDS also sets N
  --seeds A..B      seeds A to B inclusive; A.. is open-ended (needs --budget)
  --budget D        start no case after D (e.g. 30m); the rest are recorded as
                    not run. Without --seeds the range is 1.. (open)
  --out DIR         the shard's directory (default: a new temporary directory)
  --scenarios a,b   scenarios (default: the whole catalog)
  --profiles p,q    profiles (default: each scenario's matrix profiles)
  --drivers d,e     drivers (default modernc,mattn)
  --duration D      load phase per case (default: the scenario's)
  --keep WHAT       all: keep every run's evidence (default); failing: keep
                    the database copies, trace and histories only of runs
                    outside reproduced/held/finding (report.json, meta.json
                    and plan.txt always stay)
  --jobs N          cases run at once, each with its own mount and directory
                    (default: four per core, at most 16; a case mostly waits
                    on its board clock). The first case runs alone, and so
                    does each case after a setup error
  --record-only     exit 0 once every case is recorded, whatever the verdicts
                    (for engines that retry failed pods or jobs: the merge
                    gives the verdict); an interrupted shard still exits 1

On a terminal a live line shows cases done/total, reproduced, held, finding,
unexpected so far and the ETA; otherwise one line per case.

Exit status: 0 every case ran and is reproduced, held or finding; 1 some case
is not, errored, or the shard was interrupted; 2 usage error, or cases cannot
be set up here (no FUSE: three setup errors in a row stop the shard).

Examples:
  chaosrun soak --seeds 1..30 --out /tmp/soak
  chaosrun soak --shard 1/3 --seeds 1..30 --out /tmp/soak/shard-1
  chaosrun soak --budget 30m --seeds 20261201.. --scenarios rollback-shadow,torn-extend --out /tmp/s
  JOB_COMPLETION_INDEX=2 chaosrun soak --shards 8 --seeds 1..1000 --out /data/shard-2
`

// soakList is a comma-separated flag value.
type soakList []string

func (l *soakList) String() string     { return strings.Join(*l, ",") }
func (l *soakList) Set(v string) error { *l = splitList(v); return nil }

// soakEnv names the environment variables soak reads.
const (
	envCompletionIndex = "JOB_COMPLETION_INDEX"
	envShards          = "SQLCHAOS_SHARDS"
)

// newSoakRunner makes the case runner for a soak (replaced in tests).
var newSoakRunner = func(duration time.Duration, tick func()) soak.Runner {
	r := soak.ScenarioRunner{Duration: duration}
	if tick != nil {
		r.Progress = func(scenarios.Progress) { tick() }
	}
	return r
}

func cmdSoak(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runSoak(ctx, args, os.Getenv, os.Stdout, os.Stderr, isTerminal(os.Stderr))
}

func runSoak(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, tty bool) int {
	var a soakArgs
	fl := a.flags(stderr)
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "chaosrun soak: "+format+"\n", a...)
		return 2
	}
	if err := fl.Parse(args); err != nil {
		return usageExit(err)
	}
	if fl.NArg() > 0 {
		return usage("unexpected argument %q (flags only; see chaosrun soak --help)", fl.Arg(0))
	}
	o, err := a.options(getenv)
	if err != nil {
		return usage("%v", err)
	}
	label := "soak " + o.Shard.String()
	p := soak.NewProgress(stderr, tty, label, o.Budget)
	var tick func()
	if tty {
		tick = p.Tick
	}
	o.Runner, o.Progress = newSoakRunner(o.Duration, tick), p.Update
	if err := o.Validate(); err != nil {
		return usage("%v", err)
	}
	announceSoak(stderr, label, o)
	rec, err := soak.RunShard(ctx, o)
	p.Close()
	if err != nil {
		fmt.Fprintf(stderr, "chaosrun soak: %v\n", err)
		return 1
	}
	return soakSummary(stdout, rec, o.Out, a.recordOnly)
}

// soakArgs are the flags of "chaosrun soak".
type soakArgs struct {
	shard, seeds, out, keep string
	shards, jobs            int
	budget, duration        time.Duration
	scns, profiles, drivers soakList
	recordOnly              bool
}

func (a *soakArgs) flags(stderr io.Writer) *flag.FlagSet {
	fl := flag.NewFlagSet("chaosrun soak", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.StringVar(&a.shard, "shard", "", "this shard, I/N")
	fl.IntVar(&a.shards, "shards", 0, "shard count (with $JOB_COMPLETION_INDEX)")
	fl.StringVar(&a.seeds, "seeds", "", "seed range A..B or A..")
	fl.DurationVar(&a.budget, "budget", 0, "start no case after this long")
	fl.StringVar(&a.out, "out", "", "the shard's output directory")
	fl.Var(&a.scns, "scenarios", "comma-separated scenarios")
	fl.Var(&a.profiles, "profiles", "comma-separated profiles")
	fl.Var(&a.drivers, "drivers", "comma-separated drivers")
	fl.Var(&a.scns, "scenario", "alias of --scenarios")
	fl.Var(&a.profiles, "profile", "alias of --profiles")
	fl.Var(&a.drivers, "driver", "alias of --drivers")
	fl.DurationVar(&a.duration, "duration", 0, "load phase per case")
	fl.StringVar(&a.keep, "keep", "all", "all or failing")
	fl.BoolVar(&a.recordOnly, "record-only", false, "exit 0 once every case is recorded")
	fl.IntVar(&a.jobs, "jobs", defaultJobs(), "cases run at once, each with its own mount and directory")
	fl.Usage = func() { fmt.Fprint(stderr, soakUsage) }
	return fl
}

// options resolves the flags into a shard's options: the shard, the seed
// range, the keep policy, the cells and the output directory (created
// when not given). The caller sets the runner and the progress display.
func (a *soakArgs) options(getenv func(string) string) (soak.Options, error) {
	sh, err := soakShard(a.shard, a.shards, getenv)
	if err != nil {
		return soak.Options{}, err
	}
	var seeds soak.Seeds
	switch {
	case a.seeds != "":
		if seeds, err = soak.ParseSeeds(a.seeds); err != nil {
			return soak.Options{}, fmt.Errorf("--%v", err)
		}
	case a.budget > 0:
		seeds = soak.Seeds{First: 1, Open: true}
	default:
		return soak.Options{}, errors.New("give --seeds A..B, --budget D, or both")
	}
	if a.jobs < 1 {
		return soak.Options{}, fmt.Errorf("--jobs %d: want at least 1", a.jobs)
	}
	if a.budget < 0 {
		return soak.Options{}, fmt.Errorf("--budget %v: want a positive duration", a.budget)
	}
	var keepFn func(*reports.Report) bool
	switch a.keep {
	case "all":
	case "failing":
		keepFn = func(r *reports.Report) bool { return !soakPassing(r.Outcome) }
	default:
		return soak.Options{}, fmt.Errorf("--keep %q: want all or failing", a.keep)
	}
	cells, err := soak.Cells(soak.Filter{Scenarios: a.scns, Profiles: a.profiles, Drivers: a.drivers})
	if err != nil {
		return soak.Options{}, err
	}
	dir, err := outputDir(a.out, "sqlchaos-soak-")
	if err != nil {
		return soak.Options{}, err
	}
	return soak.Options{Out: dir, Shard: sh, Cells: cells, Seeds: seeds, Budget: a.budget, Duration: a.duration, Jobs: a.jobs, Keep: keepFn}, nil
}

// announceSoak prints the shard's first line: seeds, cells, the cases
// given (counted for a closed range), the budget, the cases run at once
// and the output directory.
func announceSoak(w io.Writer, label string, o soak.Options) {
	given := "open-ended"
	if !o.Seeds.Open {
		n := 0
		for range soak.Cases(o.Cells, o.Seeds, o.Shard) {
			n++
		}
		given = strconv.Itoa(n) + " cases"
	}
	fmt.Fprintf(w, "%s: seeds %s, %d cells, %s", label, o.Seeds, len(o.Cells), given)
	if o.Budget > 0 {
		fmt.Fprintf(w, ", budget %v", o.Budget)
	}
	fmt.Fprintf(w, ", %d at once, output %s\n", o.Jobs, o.Out)
}

// soakShard resolves the shard from --shard, or from $JOB_COMPLETION_INDEX
// with --shards or $SQLCHAOS_SHARDS.
func soakShard(flagShard string, flagShards int, getenv func(string) string) (soak.Shard, error) {
	if flagShard != "" {
		if flagShards != 0 {
			return soak.Shard{}, errors.New("give --shard I/N or --shards N (with $JOB_COMPLETION_INDEX), not both")
		}
		return soak.ParseShard(flagShard)
	}
	idx, n := getenv(envCompletionIndex), flagShards
	if n == 0 && getenv(envShards) != "" {
		v, err := strconv.Atoi(getenv(envShards))
		if err != nil {
			return soak.Shard{}, fmt.Errorf("$%s=%q: want a shard count", envShards, getenv(envShards))
		}
		n = v
	}
	switch {
	case idx == "" && n == 0:
		return soak.Shard{Index: 0, Count: 1}, nil
	case idx == "":
		return soak.Shard{}, fmt.Errorf("a shard count of %d but no index: give --shard I/N, or set $%s (a Kubernetes Indexed Job sets it)", n, envCompletionIndex)
	case n == 0:
		return soak.Shard{}, fmt.Errorf("$%s=%s but no shard count: give --shards N or set $%s", envCompletionIndex, idx, envShards)
	}
	i, err := strconv.Atoi(idx)
	if err != nil {
		return soak.Shard{}, fmt.Errorf("$%s=%q: want an integer", envCompletionIndex, idx)
	}
	return soak.NewShard(i, n)
}

func soakPassing(outcome string) bool { return verdict.Verdict(outcome).OK() }

// soakSummary prints the shard's counts and returns its exit status.
func soakSummary(w io.Writer, rec *soak.ShardRecord, dir string, recordOnly bool) int {
	counts := map[string]int{}
	bad := 0
	for _, c := range rec.Cases {
		switch c.Status {
		case soak.Finished:
			counts[c.Outcome]++
			if !soakPassing(c.Outcome) {
				bad++
			}
		case soak.Errored, soak.NotRun:
			counts[c.Status]++
			if c.Status == soak.Errored {
				bad++
			}
		}
	}
	var parts []string
	for _, k := range []string{"reproduced", "held", "finding", "unexpected", "inconclusive", "hung", "observed", soak.Errored, soak.NotRun} {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
			delete(counts, k)
		}
	}
	for k, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, k))
	}
	fmt.Fprintf(w, "shard %s stopped (%s) after %s: %s\nrecord: %s/%s\nmerge:  chaosrun merge --out MERGED %s [other shard directories]\n",
		rec.Shard, rec.Stopped, rec.Ended.Sub(rec.Started).Round(time.Second), strings.Join(parts, ", "), dir, soak.ShardFile, dir)
	switch {
	case rec.Stopped == soak.StopSetup:
		return 2
	case rec.Stopped == soak.StopInterrupted:
		return 1
	case bad > 0 && !recordOnly:
		return 1
	}
	return 0
}
