package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sqlchaos/sqlchaos/reports"
	"github.com/sqlchaos/sqlchaos/soak"
)

func init() {
	register(command{name: "merge", summary: "merge soak shards (and run directories) into one report", run: cmdMerge})
}

const mergeUsage = `Usage: chaosrun merge [--out DIR] SHARD_DIR...

Merges what soak shards found into one report: matrix.md, index.html,
junit.xml and report.json in the output directory. Per cell: runs, counts
per verdict, reproduction rate and median time to reproduce. The plans that
broke something, deduplicated by their canonical form, each with its replay
command. Shards that died (shard.json without an end), shards missing from
the inputs, and cases that errored or have no report are listed as such and
never counted as held.

Each argument is a shard directory (it holds shard.json), a run directory
(report.json), or a directory whose subdirectories are either: downloaded
CI artifacts, one directory per shard, or a chaosrun matrix output.

Exit status: 0 every run is reproduced, held or finding and every shard
finished; 1 otherwise; 2 usage error or unreadable input.

Examples:
  chaosrun merge --out /tmp/merged /tmp/soak/shard-0 /tmp/soak/shard-1 /tmp/soak/shard-2
  chaosrun merge --out merged artifacts/
`

func cmdMerge(args []string) int { return runMerge(args, os.Stdout, os.Stderr) }

func runMerge(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("chaosrun merge", flag.ContinueOnError)
	fl.SetOutput(stderr)
	out := fl.String("out", "", "output directory (default: a new temporary directory)")
	fl.Usage = func() { fmt.Fprint(stderr, mergeUsage) }
	dirs, err := parseInterleaved(fl, args) // flags may follow the directories
	if err != nil {
		return usageExit(err)
	}
	if len(dirs) == 0 {
		fmt.Fprintln(stderr, "chaosrun merge: give at least one shard directory (see chaosrun merge --help)")
		return 2
	}
	srcs, err := soak.Load(dirs)
	if err != nil {
		fmt.Fprintf(stderr, "chaosrun merge: %v\n", err)
		return 2
	}
	m := soak.Aggregate(srcs)
	m.Generated = time.Now().UTC()
	dir, err := outputDir(*out, "sqlchaos-merge-")
	if err != nil {
		fmt.Fprintf(stderr, "chaosrun merge: %v\n", err)
		return 2
	}
	if err := soak.Write(dir, m, soak.Runs(srcs)); err != nil {
		fmt.Fprintf(stderr, "chaosrun merge: %v\n", err)
		return 2
	}
	fmt.Fprint(stdout, soak.Markdown(m))
	fmt.Fprintf(stdout, "\nmatrix: %s\nHTML:   %s\nJUnit:  %s\nJSON:   %s\n", filepath.Join(dir, reports.MatrixFile),
		filepath.Join(dir, reports.HTMLFile), filepath.Join(dir, reports.JUnitFile), filepath.Join(dir, reports.ReportFile))
	if !m.OK {
		return 1
	}
	return 0
}
