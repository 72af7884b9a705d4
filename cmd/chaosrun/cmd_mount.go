package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/sqlchaos/sqlchaos/faultfs"
)

func init() {
	register(command{
		name:    "mount",
		summary: "mount faultfs over a backing dir (foreground; prints 'mounted <dir>')",
		run:     runMount,
	})
	register(command{
		name:    "umount",
		summary: "clear a faultfs mount, even a stale or hung one",
		run:     runUmount,
	})
}

// mountUsage is the help text of `chaosrun mount`; the flags follow it.
const mountUsage = `Usage: chaosrun mount --backing DIR --mountpoint DIR [--plan FILE] [--seed N]
                      [--trace FILE] [--control SOCK] [--trace-faults-only]
                      [--track-unsynced]

Mounts faultfs (type fuse.chaosfs) at --mountpoint, passing every operation
through to --backing after consulting the fault plan. Runs in the foreground,
prints one line "mounted <dir>" on stdout when ready, and unmounts on SIGINT,
SIGTERM or the control command "stop" (exit 0 after a clean unmount).
Must run as root (mounts straight from /dev/fuse). Never run SQLite in this
process.

Examples:
  # pass-through mount with an op trace
  chaosrun mount --backing /tmp/back --mountpoint /tmp/mnt --trace /tmp/ops.jsonl

  # fail the first WAL write once with EIO; change faults at run time via the socket
  echo 'eio op=write path=*-wal nth=1 count=1' > /tmp/plan.txt
  chaosrun mount --backing /tmp/back --mountpoint /tmp/mnt --plan /tmp/plan.txt \
      --seed 7 --trace /tmp/ops.jsonl --control /tmp/faultfs.sock

  # power-cut the mount after 2s of load, keeping a seeded subset of the
  # unsynced writes; after killing every user of the mount, reset the files
  # with the control request {"cmd":"recover"}
  echo 'powercut after=2s keep=random' > /tmp/plan.txt
  chaosrun mount --backing /tmp/back --mountpoint /tmp/mnt --plan /tmp/plan.txt \
      --seed 7 --trace /tmp/ops.jsonl --control /tmp/faultfs.sock

  # clear a stale or hung mount
  chaosrun umount /tmp/mnt

Flags:
`

// runMount is `chaosrun mount`: it parses the flags into a
// faultfs.ServerConfig and runs the server in this process (faultfs.Serve).
// Exit status: 0 after --help or a clean unmount, 1 when the mount or the
// unmount failed, 2 on bad flags, directories or plan.
func runMount(args []string) int {
	cfg, code, ok := parseMountFlags(args)
	if !ok {
		return code
	}
	return faultfs.Serve(cfg)
}

// parseMountFlags parses `chaosrun mount`'s flags. ok is false when there
// is nothing to serve: after --help (code 0) or bad usage (code 2).
func parseMountFlags(args []string) (cfg faultfs.ServerConfig, code int, ok bool) {
	fl := flag.NewFlagSet("chaosrun mount", flag.ContinueOnError)
	fl.SetOutput(os.Stderr)
	fl.StringVar(&cfg.Backing, "backing", "", "backing directory (must exist)")
	fl.StringVar(&cfg.Mountpoint, "mountpoint", "", "mount point (must exist, an empty directory)")
	fl.StringVar(&cfg.PlanFile, "plan", "", "fault plan file (default: no rules)")
	fl.Int64Var(&cfg.Seed, "seed", 0, "seed of every random fault decision (default: time-based, printed on stderr)")
	fl.StringVar(&cfg.Trace, "trace", "", "write the op trace (JSONL) to this file")
	fl.StringVar(&cfg.Control, "control", "", "listen for control commands on this unix socket")
	fl.BoolVar(&cfg.TraceFaultsOnly, "trace-faults-only", false, "trace only operations a rule fired on (and holders)")
	fl.BoolVar(&cfg.TrackUnsynced, "track-unsynced", false, "keep the unsynced-write model from the start (a power cut by control request needs it; a plan with a powercut or drop=unsynced rule switches it on by itself)")
	fl.BoolVar(&cfg.NoDirectIO, "no-direct-io", false, "open db/wal/journal files page-cached (faults become unreliable; for benchmarks)")
	fl.BoolVar(&cfg.Debug, "debug", false, "log every FUSE request on stderr")
	fl.StringVar(&cfg.Capture, "capture", "", "record every write's bytes and a snapshot of the backing dir in this directory, for offline crash-state exploration (needs --trace)")
	fl.DurationVar(&cfg.CacheTimeout, "cache-timeout", 0, "kernel entry/attr cache timeout (0: every lookup/stat reaches the server; keep 0 when anything touches the backing dir while mounted)")
	setUsage(fl, mountUsage, "")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, 0, false
		}
		return cfg, 2, false
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "chaosrun mount: unexpected arguments %q\n", fl.Args())
		return cfg, 2, false
	}
	cfg.ClockSeed = true
	fl.Visit(func(f *flag.Flag) { cfg.ClockSeed = cfg.ClockSeed && f.Name != "seed" })
	return cfg, 0, true
}

const umountUsage = `Usage: chaosrun umount DIR
       chaosrun umount --under ROOT

Clears the FUSE mount at DIR without touching it: lazy unmount (MNT_DETACH),
then abort of its FUSE connection through fusectl, so that processes blocked
on a dead or hung server fail instead of hanging. With --under, clears every
faultfs (fuse.chaosfs) mount at or below ROOT.

Exit status: 0 cleared, 1 not mounted or failed, 2 bad usage.

Examples:
  chaosrun umount /tmp/mnt
  chaosrun umount --under /tmp/sqlchaos-run
`

func runUmount(args []string) int {
	fl := flag.NewFlagSet("chaosrun umount", flag.ContinueOnError)
	under := fl.String("under", "", "clear every faultfs mount at or below this directory")
	fl.Usage = func() {
		fmt.Fprint(fl.Output(), umountUsage)
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *under != "" {
		if fl.NArg() != 0 {
			fmt.Fprintln(os.Stderr, "chaosrun umount: give DIR or --under ROOT, not both")
			return 2
		}
		done, err := faultfs.CleanStale(*under)
		for _, d := range done {
			fmt.Printf("unmounted %s\n", d)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "chaosrun umount: %v\n", err)
			return 1
		}
		return 0
	}
	if fl.NArg() != 1 {
		fl.Usage()
		return 2
	}
	dir := fl.Arg(0)
	if err := faultfs.Unmount(dir); err != nil {
		fmt.Fprintf(os.Stderr, "chaosrun umount: %v\n", err)
		return 1
	}
	fmt.Printf("unmounted %s\n", dir)
	return 0
}
