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
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sqlchaos/sqlchaos/crashes"
	"github.com/sqlchaos/sqlchaos/oracle"
)

func init() {
	register(command{
		name:    "crashes",
		summary: "explore the database images a power cut could have left in a captured run",
		run: func(args []string) int {
			return runCrashes(args, os.Stdout, os.Stderr)
		},
	})
}

const crashesUsage = `Usage: chaosrun crashes RUNDIR [--budget N] [--seed N] [--jobs N] [--classes LIST]
                        [--sector N] [--db NAME] [--journal wal|delete] [--sync full|normal|off]
                        [--save] [--json] [--no-shrink]
       chaosrun crashes RUNDIR --state ID [--out DIR] [--oracle]

crashes rebuilds, offline and without FUSE, the database images a power cut
could have left during a run recorded in capture mode, opens each with SQLite
(modernc, on a private copy with its -wal/-journal, so SQLite recovers) in
parallel, and judges it. Record a run with capture on:
  SQLCHAOS_CAPTURE=1 chaosrun run SCENARIO ... --out RUNDIR
  (or faultfs.Config.CaptureDir, or chaosrun mount --trace F --capture DIR)

Crash points are the moments just before each fsync of the main database, its
-wal or its -journal completes, and the end of the recording. At each point the
states are, by class:
  clean        nothing lost
  synced       every write since its file's last fsync lost
  lost         one write since its file's last fsync lost
  torn         one such write torn at sector boundaries (a prefix, a suffix,
               or all but one sector kept)
  random       seeded random subsets: each unsynced write kept, lost or torn
  lost-synced  one write that a fsync had reported durable lost (a lying fsync
               or disk cache); durability is not judged, and damage SQLite
               reports counts as detected, not failed
  torn-synced  one such write torn like torn (a prefix kept: new page head
               over the old tail; a suffix: old head over the new cells);
               judged like lost-synced
  dir-lost     the creates, unlinks and renames of the db, -wal and -journal
               since the last fsync of anything are lost from one of them on
               (ext4 commits directory ops in order with any fsync): a
               journal unlinked after its commit comes back hot
clean, synced, lost, torn, dir-lost and random are an honest disk. SQLite
promises all of them pass, except dir-lost in rollback-journal mode below
synchronous=EXTRA: there the commit before the cut may roll back (its
journal's unlink is not directory-synced; documented).
Every class runs in full when --budget allows, else a seeded uniform sample;
the budget is shared fairly between the classes.

Each image is judged: PRAGMA integrity_check; durability (at
synchronous=FULL, or NORMAL with a rollback journal, every commit
acknowledged before the cut is in the image's chaos_ledger; otherwise the
ledger must be a prefix with no holes); and rows: no row a commit in the image
deleted is back (resurrected), none it inserted is missing, none only a
later commit inserted is present, every task's status is its last transition.
The durability rule comes from RUNDIR/meta.json (switches journal_mode and
synchronous); --journal and --sync override it.

The smallest failing state (fewest altered writes, then fewest bytes) is
printed with the command that rebuilds its files, and saved, with the report,
under RUNDIR/crashes/ (minimal-state.json, report.json); --save also copies it
to testdata/found/ (or $SQLCHAOS_FOUND_DIR). A state ID is "<point>" (the
barrier's trace seq, or "end") followed by "/d<seq>" for each lost write and
"/t<seq>:<hex mask>" for each torn one (bit i set: sector piece i kept).

--state ID rebuilds that state's files into --out DIR (kanban.db with its
-wal or -journal, as SQLite would find them after the cut), judges a private
copy and prints the verdict; DIR itself is never opened by SQLite. With
--oracle the oracle's own durability, resurrection and structure checkers
judge the image too (on the histories and trace up to the cut; the oracle
knows no crash points, so it wants every commit acknowledged before the cut).
The smallest failing state of an exploration gets that second opinion
always (printed, and saved in minimal-state.json).

The rate is printed as states per second, states per minute per core by the
wall clock (jobs used), and states per CPU-minute (the process's CPU time:
the rate of one fully used core, independent of other load on the machine).

Exit status: 0 no failing state; 1 a failing state was found (or --state
names one); 2 bad usage, or a run directory without a capture.

Examples:
  SQLCHAOS_CAPTURE=1 chaosrun run soak --profile hardened --driver modernc --seed 3 --duration 20s --out /tmp/soak
  chaosrun crashes /tmp/soak
  chaosrun crashes /tmp/soak --budget 50000 --jobs 2 --seed 7 --save
  chaosrun crashes /tmp/soak --classes clean,synced,lost,torn,random      # an honest disk only
  chaosrun crashes /tmp/soak --state end/d308 --out /tmp/image && sqlite3 /tmp/image/kanban.db 'select count(*) from tasks'

Flags:
`

// runCrashes runs "chaosrun crashes ARGS".
func runCrashes(args []string, stdout, stderr io.Writer) int {
	var a crashesArgs
	pos, err := parseInterleaved(a.flags(stderr), args) // flags may follow RUNDIR
	if err != nil {
		return usageExit(err)
	}
	bad := func(err error) int {
		fmt.Fprintf(stderr, "chaosrun crashes: %v\n", err)
		return 2
	}
	if len(pos) != 1 {
		return bad(fmt.Errorf("want exactly one RUNDIR, got %d arguments (see --help)", len(pos)))
	}
	opts, err := a.options(pos[0], stderr)
	if err != nil {
		return bad(err)
	}
	e, err := crashes.Open(opts)
	if err != nil {
		return bad(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	mode, src := e.Mode()
	fmt.Fprintf(stderr, "chaosrun crashes: %s: %s, %s (%s), seed %d\n", pos[0], e.DB(), mode, src, a.seed)
	if a.state != "" {
		return a.judgeState(ctx, e, stdout, stderr)
	}
	return a.explore(ctx, e, stdout, stderr)
}

// crashesArgs are the flags of "chaosrun crashes".
type crashesArgs struct {
	budget, jobs                                       int
	seed, sector                                       int64
	classes, db, capDir, journal, syncMode, state, out string
	save, asJSON, noShrink, withOracle                 bool
	progress                                           time.Duration
}

func (a *crashesArgs) flags(stderr io.Writer) *flag.FlagSet {
	fl := flag.NewFlagSet("chaosrun crashes", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.IntVar(&a.budget, "budget", 10000, "states to judge (0: every systematic state, no random ones)")
	fl.Int64Var(&a.seed, "seed", 1, "seed of every random choice (sampling and random states)")
	fl.IntVar(&a.jobs, "jobs", 0, "parallel judges (default GOMAXPROCS)")
	fl.StringVar(&a.classes, "classes", "all", "comma-separated classes: clean,synced,lost,lost-synced,torn,torn-synced,dir-lost,random")
	fl.Int64Var(&a.sector, "sector", 512, "sector size of torn writes (512 or 4096)")
	fl.StringVar(&a.db, "db", "", "main database name in the recording (default kanban.db, or the only one)")
	fl.StringVar(&a.capDir, "capture", "", "capture directory (default RUNDIR/capture)")
	fl.StringVar(&a.journal, "journal", "", "journal mode for the durability rule: wal | delete (default from meta.json)")
	fl.StringVar(&a.syncMode, "sync", "", "synchronous setting for the durability rule: full | normal | off (default from meta.json)")
	fl.StringVar(&a.state, "state", "", "rebuild and judge this state ID instead of exploring")
	fl.StringVar(&a.out, "out", "", "with --state: write the state's files into this directory")
	fl.BoolVar(&a.save, "save", false, "also save the minimal failing state under testdata/found/")
	fl.BoolVar(&a.asJSON, "json", false, "print the report as JSON on stdout")
	fl.BoolVar(&a.noShrink, "no-shrink", false, "do not shrink failing multi-write states")
	fl.BoolVar(&a.withOracle, "oracle", false, "with --state: also judge the image with the oracle's durability, resurrection and structure checkers")
	fl.DurationVar(&a.progress, "progress", 5*time.Second, "interval of progress lines on stderr (0: none)")
	setUsage(fl, crashesUsage, "")
	return fl
}

// options checks the flags and turns them into the explorer's options for
// the run in runDir, with progress lines on stderr.
func (a *crashesArgs) options(runDir string, stderr io.Writer) (crashes.Options, error) {
	cls, err := crashes.ParseClasses(a.classes)
	if err != nil {
		return crashes.Options{}, fmt.Errorf("--classes: %v", err)
	}
	switch {
	case a.sector <= 0 || a.sector%512 != 0:
		return crashes.Options{}, fmt.Errorf("--sector must be a positive multiple of 512, got %d", a.sector)
	case a.jobs < 0:
		return crashes.Options{}, errors.New("--jobs must not be negative")
	case a.out != "" && a.state == "":
		return crashes.Options{}, errors.New("--out needs --state ID")
	}
	opts := crashes.Options{RunDir: runDir, CaptureDir: a.capDir, DB: a.db, Budget: a.budget, Seed: a.seed, Jobs: a.jobs,
		Sector: a.sector, Classes: cls, NoShrink: a.noShrink}
	if a.progress > 0 {
		opts.Progress, opts.ProgressEvery = stderr, a.progress
	}
	if a.journal != "" || a.syncMode != "" {
		j, s := strings.ToLower(a.journal), strings.ToLower(a.syncMode)
		if j != "" && j != "wal" && j != "delete" {
			return crashes.Options{}, fmt.Errorf("--journal must be wal or delete, got %q", a.journal)
		}
		if s != "" && s != "full" && s != "normal" && s != "off" && s != "extra" {
			return crashes.Options{}, fmt.Errorf("--sync must be full, normal or off, got %q", a.syncMode)
		}
		opts.Mode = &crashes.Mode{Journal: j, Sync: s}
	}
	return opts, nil
}

// judgeState rebuilds the state --state names (into --out when given),
// judges it, with --oracle the oracle's checkers too, and prints the
// verdict; the exit status is 1 when the state fails.
func (a *crashesArgs) judgeState(ctx context.Context, e *crashes.Explorer, stdout, stderr io.Writer) int {
	f, err := e.Rebuild(ctx, a.state, a.out)
	if err != nil {
		fmt.Fprintf(stderr, "chaosrun crashes: %v\n", err)
		return 2
	}
	var res []oracle.Result
	var oerr error
	if a.withOracle {
		res, oerr = e.CrossCheck(ctx, a.state)
	}
	if a.asJSON {
		writeJSON(stdout, map[string]any{"state": f, "oracle": res})
	} else {
		printFinding(stdout, "state", f)
		if a.out != "" {
			fmt.Fprintf(stdout, "  files written to %s\n", a.out)
		}
		if a.withOracle {
			errText := ""
			if oerr != nil {
				errText = oerr.Error()
			}
			printOracle(stdout, "the oracle on this state", res, errText)
		}
	}
	if f.Judgement.Verdict == crashes.Fail {
		return 1
	}
	return 0
}

// explore judges the run's crash states, saves the smallest failing one
// (and with --save a copy under testdata/found/) and prints the report;
// the exit status is 1 when a state fails.
func (a *crashesArgs) explore(ctx context.Context, e *crashes.Explorer, stdout, stderr io.Writer) int {
	rep, err := e.Run(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "chaosrun crashes: %v\n", err)
		return 2
	}
	found := ""
	if a.save {
		found = crashes.FoundDir()
	}
	paths, saved, err := e.Save(rep, found)
	if err != nil {
		fmt.Fprintf(stderr, "chaosrun crashes: saving: %v\n", err)
	}
	if a.asJSON {
		writeJSON(stdout, rep)
	} else {
		printReport(stdout, rep)
		if saved != nil {
			printOracle(stdout, "the oracle on the smallest failing state", saved.Oracle, saved.OracleError)
		}
		for _, p := range paths {
			fmt.Fprintf(stdout, "saved %s\n", p)
		}
	}
	if rep.Failing > 0 {
		return 1
	}
	return 0
}

func writeJSON(w io.Writer, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintf(w, "%s\n", b)
}

func printReport(w io.Writer, rep *crashes.Report) {
	fmt.Fprintf(w, "%s: %s, %s (%s); %d ops, %d writes, %d barriers, %d crash points; seed %d, budget %d, %d jobs, %d-byte sectors\n",
		rep.Run, rep.DB, rep.Mode, rep.ModeSource, rep.Ops, rep.Writes, rep.Barriers, rep.Points, rep.Seed, rep.Budget, rep.Jobs, rep.Sector)
	fmt.Fprintf(w, "%-12s %10s %7s %7s %6s %8s %12s %5s\n", "class", "candidates", "run", "pass", "fail", "detected", "inconclusive", "error")
	for _, c := range rep.Classes {
		fmt.Fprintf(w, "%-12s %10d %7d %7d %6d %8d %12d %5d\n", c.Class, c.Candidates, c.Run, c.Pass, c.Fail, c.Detected, c.Unsure, c.Errors)
	}
	fmt.Fprintf(w, "%d states in %s: %.0f states/s, %.0f states per minute per core (wall clock, %d jobs), %.0f states per CPU-minute (%.1f CPU-s)\n",
		rep.States, rep.Elapsed, rep.PerSecond, rep.PerMinuteCore, rep.Jobs, rep.PerCPUMinute, rep.CPUSeconds)
	fmt.Fprintf(w, "%d distinct images opened by SQLite (%.0f per CPU-minute); the other %d states had the bytes of one of them at the same cut\n",
		rep.Opened, rep.OpenedPerCPUMinute, rep.States-rep.Opened)
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if rep.Detected > 0 {
		fmt.Fprintf(w, "detected: %d lost-synced/torn-synced states where SQLite reported the damage; their rows: %s\n",
			rep.Detected, kindList(rep.DetectedKinds))
		fmt.Fprintf(w, "  %d of them pass quick_check (only integrity_check sees the damage); their rows: %s\n",
			rep.QuickCheckOK, kindList(rep.QuickCheckOKKinds))
		printSmallest(w, "smallest detected", rep.MinimalDetected, "")
	}
	if rep.Failing == 0 {
		fmt.Fprintln(w, "no failing state")
		return
	}
	fmt.Fprintf(w, "FAILING: %d states (%s)\n", rep.Failing, kindList(rep.Kinds))
	printFinding(w, "smallest failing state", rep.Minimal)
	printSmallest(w, "smallest", rep.MinimalByKind, rep.Minimal.ID)
}

func kindList(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var kinds []string
	for k, n := range m {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	return strings.Join(kinds, ", ")
}

// printSmallest prints each distinct finding of byKind once (titled with
// every kind it is the smallest of), skipping the one already printed.
func printSmallest(w io.Writer, title string, byKind map[string]*crashes.Finding, printed string) {
	var ks []string
	for k := range byKind {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	seen := map[string][]string{}
	var order []*crashes.Finding
	for _, k := range ks {
		f := byKind[k]
		if _, ok := seen[f.ID]; !ok {
			order = append(order, f)
		}
		seen[f.ID] = append(seen[f.ID], k)
	}
	for _, f := range order {
		if f.ID != printed {
			printFinding(w, title+" "+strings.Join(seen[f.ID], ", "), f)
		}
	}
}

// printOracle prints the oracle's second opinion on one state.
func printOracle(w io.Writer, title string, res []oracle.Result, errText string) {
	if errText != "" {
		fmt.Fprintf(w, "%s: not judged: %s\n", title, errText)
		return
	}
	fmt.Fprintf(w, "%s (histories and trace up to the cut):\n", title)
	for _, r := range res {
		fmt.Fprintf(w, "  %s: %s: %s\n", r.Checker, r.Verdict, r.Summary)
	}
}

func printFinding(w io.Writer, title string, f *crashes.Finding) {
	fmt.Fprintf(w, "%s: %s (%s)\n", title, f.ID, f.Class)
	if f.Point == 0 {
		fmt.Fprintf(w, "  cut: at the end of the recording\n")
	} else {
		fmt.Fprintf(w, "  cut: just before the fsync of %s (trace seq %d) completed\n", f.PointFile, f.Point)
	}
	for _, a := range f.Alts {
		page := ""
		if a.Page > 0 {
			page = fmt.Sprintf(" (page %d)", a.Page)
		}
		synced := ""
		if a.Synced {
			synced = ", though a fsync had reported it durable"
		}
		fmt.Fprintf(w, "  write seq %d: %s at %d, %d bytes%s: %s%s\n", a.Seq, a.Path, a.Off, a.Len, page, a.What, synced)
	}
	for _, d := range f.DirOps {
		fmt.Fprintf(w, "  directory op %s\n", d)
	}
	if f.ShrunkFrom != "" {
		fmt.Fprintf(w, "  shrunk from %s\n", f.ShrunkFrom)
	}
	fmt.Fprintf(w, "  verdict: %s\n", f.Judgement.Summary())
	for _, p := range f.Judgement.Problems {
		for _, ex := range p.Examples {
			fmt.Fprintf(w, "    %s: %s\n", p.Kind, ex)
		}
	}
	for _, n := range f.Judgement.Notes {
		fmt.Fprintf(w, "    note: %s\n", n)
	}
	fmt.Fprintf(w, "  rebuild: %s\n", f.Rebuild)
}
