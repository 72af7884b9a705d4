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
		run:     faultfs.Serve,
	})
	register(command{
		name:    "umount",
		summary: "clear a faultfs mount, even a stale or hung one",
		run:     runUmount,
	})
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
