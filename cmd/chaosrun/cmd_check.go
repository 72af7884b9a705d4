package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

const checkUsage = `Usage: chaosrun check [--quiet] DIR...

check re-judges the saved run in each DIR with every oracle checker: it reads
meta.json, histories/*.jsonl and trace.jsonl, opens a private copy of
files/kanban.db (with its -wal/-shm) on a fresh fault-free connection,
and never modifies files/. It then judges the cell with the same judge the
run used (package verdict), from the expectation and run facts saved in
report.json, rewrites DIR/report.json and DIR/summary.md, and prints one
line per checker. A run directory missing any input (meta.json, histories,
trace, files/kanban.db) is inconclusive.

A matrix output directory (one without meta.json, holding run directories)
stands for all its runs: each is re-judged and compared with the verdict
saved in its report.json, and any disagreement is reported (exit 1): the
verdict of a saved cell must not depend on who judges it.

Exit status: 0 when every verdict is reproduced, held, finding or observed
(and agrees with the saved one); 1 when one is unexpected, inconclusive or
hung, or differs from the saved verdict; 2 on bad usage or an unreadable
DIR.

Examples:
  chaosrun check /tmp/sqlchaos-run-123
  chaosrun check --quiet out/eio-wal-downgrade-legacy-modernc && echo as expected
  chaosrun check --quiet /tmp/sqlchaos-matrix-123
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
	if fl.NArg() == 0 {
		fmt.Fprint(stderr, checkUsage)
		return 2
	}
	code := 0
	for _, arg := range fl.Args() {
		dirs, matrix, err := runDirs(arg)
		if err != nil {
			fmt.Fprintf(stderr, "chaosrun check: %v\n", err)
			return 2
		}
		for _, dir := range dirs {
			c := checkOne(dir, matrix, *quiet, stdout, stderr)
			if c == 2 {
				return 2
			}
			code = max(code, c)
		}
	}
	return code
}

// runDirs expands arg: a run directory (it has meta.json, or is empty) is
// itself; a matrix directory stands for its run directories.
func runDirs(arg string) (dirs []string, matrix bool, err error) {
	st, err := os.Stat(arg)
	if err != nil {
		return nil, false, err
	}
	if !st.IsDir() {
		return nil, false, fmt.Errorf("%s is not a directory", arg)
	}
	if _, err := os.Stat(filepath.Join(arg, oracle.MetaFile)); err == nil {
		return []string{arg}, false, nil
	}
	ents, err := os.ReadDir(arg)
	if err != nil {
		return nil, false, err
	}
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(arg, e.Name(), reports.ReportFile)); e.IsDir() && err == nil {
			dirs = append(dirs, filepath.Join(arg, e.Name()))
		}
	}
	if len(dirs) == 0 {
		return []string{arg}, false, nil // an empty or broken run directory: judged as such
	}
	return dirs, true, nil
}

// checkOne re-judges one run directory; in a matrix it compares the
// verdict with the saved one.
func checkOne(dir string, matrix, quiet bool, stdout, stderr io.Writer) int {
	start := time.Now()
	var saved *reports.Report
	if matrix {
		var err error
		if saved, err = reports.ReadReport(dir); err != nil {
			fmt.Fprintf(stderr, "chaosrun check: %v\n", err)
			return 2
		}
	}
	run, err := reports.Recheck(dir)
	if err != nil {
		fmt.Fprintf(stderr, "chaosrun check: %v\n", err)
		return 2
	}
	if err := reports.WriteReport(dir, run); err != nil {
		fmt.Fprintf(stderr, "chaosrun check: %v\n", err)
		return 2
	}
	if !quiet {
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
	code := 0
	if saved != nil && (saved.Outcome != run.Outcome || saved.Why != run.Why) {
		fmt.Fprintf(stdout, "  DIFFERS from the saved verdict %s (%s)\n", saved.Outcome, saved.Why)
		code = 1
	}
	if !run.Verdict().OK() {
		fmt.Fprintf(stdout, "seed %d; replay: %s\n", run.Seed, run.Replay)
		code = 1
	}
	return code
}
