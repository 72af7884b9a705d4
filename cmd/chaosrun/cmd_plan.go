package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
)

func init() {
	register(command{
		name:    "plan",
		summary: "check a fault plan (plan check FILE) or print its canonical form (plan fmt FILE)",
		run: func(args []string) int {
			return runPlan(args, os.Stdin, os.Stdout, os.Stderr)
		},
	})
}

const planUsage = `Usage: chaosrun plan check FILE
       chaosrun plan fmt FILE

check parses the fault plan in FILE, prints its canonical form and
"ok: N rules", and exits 0. On errors it prints one "FILE:LINE:COL: MSG"
line per faulty line and exits 1.

fmt prints only the canonical form (one rule per line, keys in a fixed
order, defaults and comments left out), e.g. to compare two plans.

A template (pid={pid:NAME}, off={dbsize}..HI, as the catalog's plans and
found files have them) is checked and printed with its placeholders; a
scenario binds them when it loads the plan.

FILE may be - for standard input. The plan language is documented in
'go doc github.com/sqlchaos/sqlchaos/faultfs/plan' and testdata/plans/.

Exit status: 0 ok, 1 the plan has errors, 2 bad usage or unreadable FILE.

Examples:
  chaosrun plan check testdata/plans/torn-db-pages.plan
  echo 'eio op=write path=*-wal nth=1 count=1' | chaosrun plan check -
  chaosrun plan fmt testdata/plans/mixed-soak.plan
`

// runPlan runs "chaosrun plan ARGS".
func runPlan(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, planUsage)
		return 2
	}
	sub := args[0]
	switch sub {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, planUsage)
		return 0
	case "check", "fmt":
	default:
		fmt.Fprintf(stderr, "chaosrun plan: unknown subcommand %q (expected check or fmt)\n\n%s", sub, planUsage)
		return 2
	}
	fl := flag.NewFlagSet("chaosrun plan "+sub, flag.ContinueOnError)
	fl.SetOutput(io.Discard) // errors and help are printed below
	if err := fl.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, planUsage)
			return 0
		}
		fmt.Fprintf(stderr, "chaosrun plan %s: %v\n\n%s", sub, err, planUsage)
		return 2
	}
	if fl.NArg() != 1 {
		fmt.Fprintf(stderr, "chaosrun plan %s: want exactly one FILE, got %d arguments\n\n%s", sub, fl.NArg(), planUsage)
		return 2
	}
	name := fl.Arg(0)
	var src []byte
	var err error
	if name == "-" {
		name = "<stdin>"
		src, err = io.ReadAll(stdin)
	} else {
		src, err = os.ReadFile(name)
	}
	if err != nil {
		fmt.Fprintf(stderr, "chaosrun plan %s: %v\n", sub, err)
		return 2
	}
	p, err := plan.ParseNamed(name, string(src))
	if err != nil {
		// ParseError and ErrorList print one "FILE:LINE:COL: MSG" per line.
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprint(stdout, p.String())
	if sub == "check" {
		fmt.Fprintf(stdout, "ok: %d rules\n", len(p.Rules))
	}
	return 0
}
