package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/reports"
)

func init() {
	register(command{
		name:    "check",
		summary: "re-judge a saved run directory and rewrite its report",
		run: func(args []string) int {
			return runCheck(args, os.Stdout, os.Stderr)
		},
	})
}

const checkUsage = `Usage: chaosrun check [--quiet] DIR

check re-judges the saved run in DIR with every oracle checker: it reads
meta.json, histories/*.jsonl and trace.jsonl, opens a private copy of
files/kanban.db (with its -wal/-shm) on a fresh fault-free connection,
and never modifies files/. It then rewrites DIR/report.json and
DIR/summary.md and prints one line per checker.

The expectation comes from the saved report.json (its "expect" map, or the
runner's "outcome.expected" text); without one the outcome is "observed".

Exit status: 0 when the outcome matches the expectation (reproduced, held
or observed), 1 when it is unexpected, 2 on bad usage or an unreadable DIR.

Examples:
  chaosrun check /tmp/sqlchaos-run-123
  chaosrun check --quiet out/eio-wal-downgrade-legacy-modernc && echo as expected
`

// runCheck runs "chaosrun check ARGS".
func runCheck(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("chaosrun check", flag.ContinueOnError)
	fl.SetOutput(stderr)
	quiet := fl.Bool("quiet", false, "print only the outcome line")
	fl.Usage = func() { fmt.Fprint(fl.Output(), checkUsage) }
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, checkUsage)
			return 0
		}
		return 2
	}
	if fl.NArg() != 1 {
		fmt.Fprint(stderr, checkUsage)
		return 2
	}
	dir := fl.Arg(0)
	start := time.Now()
	in, err := oracle.Load(dir)
	if err != nil {
		fmt.Fprintf(stderr, "chaosrun check: %v\n", err)
		return 2
	}
	defer in.Close()
	results := oracle.Judge(in)
	run := reports.NewRun(in, results)
	if old, err := reports.ReadRun(dir); err == nil {
		run.Expect, run.Detects, run.Started, run.Elapsed = old.Expect, old.Detects, old.Started, old.Elapsed
		if old.Replay != "" {
			run.Replay = old.Replay
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "chaosrun check: ignoring the saved report: %v\n", err)
	}
	run.Outcome, run.Why = reports.Classify(run)
	if err := reports.WriteRun(dir, run); err != nil {
		fmt.Fprintf(stderr, "chaosrun check: %v\n", err)
		return 2
	}
	if !*quiet {
		for _, n := range in.Notes {
			fmt.Fprintf(stdout, "note: %s\n", n)
		}
		for _, r := range results {
			exp := string(run.Expect[r.Checker])
			if exp == "" {
				exp = "-"
			}
			fmt.Fprintf(stdout, "%-15s %-12s (expected %-12s) %s\n", r.Checker, r.Verdict, exp, r.Summary)
		}
	}
	fmt.Fprintf(stdout, "%s: %s — %s (judged in %s)\n", run.Cell(), run.Outcome, run.Why, time.Since(start).Round(time.Millisecond))
	if run.Outcome == reports.Unexpected {
		fmt.Fprintf(stdout, "seed %d; replay: %s\n", run.Seed, run.Replay)
		return 1
	}
	return 0
}
