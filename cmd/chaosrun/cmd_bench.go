package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sqlchaos/sqlchaos/bench"
)

func init() {
	register(command{
		name:    "bench",
		summary: "measure SQLite commits/s on the bare dir and through faultfs",
		run:     runBench,
	})
}

const benchUsage = `Usage: chaosrun bench [flags]

Measures commits/s of a 1-row INSERT loop (one process, autocommit) for each
driver, journal mode and synchronous level, on four targets in one run:
  bare    the backing directory itself
  fuse    a faultfs mount with no rules
  fuse20  a faultfs mount with 20 rules loaded that never fire
  trace   a faultfs mount with no rules and the op trace on
and prints the medians with the ratios fuse/bare, fuse20/fuse (goal >= 0.90)
and trace/fuse (goal >= 0.50). The SQLite loop runs in this process; each
mount is served by its own faultfs process. Needs root and /dev/fuse for the
fuse targets. Progress goes to stderr, the table (or JSON) to stdout.

Flags:
`

const benchExamples = `
Examples:
  chaosrun bench
  chaosrun bench --n 500 --repeat 1 --drivers modernc --modes wal --sync full
  chaosrun bench --targets bare,fuse,fuse20 --json > bench.json
`

func runBench(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	setUsage(fs, benchUsage, benchExamples)
	n := fs.Int("n", 2000, "timed commits per measurement")
	repeat := fs.Int("repeat", 3, "measurements per cell (the median is reported)")
	drivers := fs.String("drivers", "modernc,mattn", "comma-separated drivers: modernc, mattn")
	modes := fs.String("modes", "wal,delete", "comma-separated journal modes: wal, delete")
	syncs := fs.String("sync", "full,normal", "comma-separated synchronous levels: full, normal")
	targets := fs.String("targets", strings.Join(bench.Targets, ","), "comma-separated targets: bare, fuse, fuse20, trace")
	dir := fs.String("dir", "", "parent directory for the backing and mount dirs (default: a temp dir, removed after)")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "chaosrun bench: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	opts := bench.Options{
		N: *n, Repeat: *repeat, Dir: *dir,
		Drivers: benchList(*drivers), Modes: benchList(*modes),
		Syncs: benchList(*syncs), Targets: benchList(*targets),
		Stderr: os.Stderr,
	}
	if !*quiet {
		opts.Progress = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, opts)
	if rep != nil {
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(rep); jerr != nil {
				fmt.Fprintln(os.Stderr, "chaosrun bench:", jerr)
				return 1
			}
		} else if terr := rep.WriteTable(os.Stdout); terr != nil {
			fmt.Fprintln(os.Stderr, "chaosrun bench:", terr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaosrun bench:", err)
		return 1
	}
	return 0
}

// benchList splits a comma-separated flag value, dropping empty items.
func benchList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(strings.ToLower(f)); f != "" {
			out = append(out, f)
		}
	}
	return out
}
