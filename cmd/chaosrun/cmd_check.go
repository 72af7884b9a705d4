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
and never modifies files/. It then judges the cell with the same judge the
run used (package verdict), from the expectation and run facts saved in
report.json, rewrites DIR/report.json and DIR/summary.md, and prints one
line per checker. A run directory missing any input (meta.json, histories,
trace, files/kanban.db) is inconclusive.

Exit status: 0 when the verdict is reproduced, held, finding or observed;
1 when it is unexpected, inconclusive or hung; 2 on bad usage or an
unreadable DIR.

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
	run, err := recheck(dir)
	if err != nil {
		fmt.Fprintf(stderr, "chaosrun check: %v\n", err)
		return 2
	}
	if err := reports.WriteRun(dir, run); err != nil {
		fmt.Fprintf(stderr, "chaosrun check: %v\n", err)
		return 2
	}
	if !*quiet {
		wants := run.Expect.Wants()
		for _, r := range run.Results {
			exp := string(wants[r.Checker])
			if exp == "" {
				exp = "-"
			}
			fmt.Fprintf(stdout, "%-15s %-12s (expected %-12s) %s\n", r.Checker, r.Verdict, exp, r.Summary)
		}
	}
	fmt.Fprintf(stdout, "%s: %s — %s (judged in %s)\n", run.Cell(), run.Outcome, run.Why, time.Since(start).Round(time.Millisecond))
	if !run.Verdict().OK() {
		fmt.Fprintf(stdout, "seed %d; replay: %s\n", run.Seed, run.Replay)
		return 1
	}
	return 0
}

// recheck judges the saved run in dir again: the oracle's checkers on its
// files, then the one judge with the expectation and facts report.json
// saved (a run directory without a report is judged with no expectation).
func recheck(dir string) (*reports.Run, error) {
	if st, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a run directory", dir)
	}
	in, err := oracle.Load(dir)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	run := reports.NewRun(in, oracle.Judge(in))
	if old, err := reports.ReadRun(dir); err == nil {
		run.Expect, run.Facts, run.Started, run.Elapsed = old.Expect, old.Facts, old.Started, old.Elapsed
		if old.Replay != "" {
			run.Replay = old.Replay
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	} else {
		run.Facts.Fired = run.FaultsFired
	}
	run.Facts.Incomplete = in.Missing()
	run.Judge()
	return run, nil
}
