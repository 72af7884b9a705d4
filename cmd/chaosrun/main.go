// Command chaosrun is sqlchaos's command line: it mounts the fault-injecting
// filesystem, operates kanban boards, runs scenarios and judges them.
//
// Each subcommand lives in its own cmd_*.go file and registers itself with
// register in an init function.
//
// # Where each idea lives
//
// Each subcommand parses its flags into a struct, checks them, then runs in
// named steps; flags.go holds the helpers they share (multiFlag, the one
// repeatable flag; outputDir; parseInterleaved lives in cmd_run.go). The
// libraries do not parse command lines: `chaosrun mount` builds a
// faultfs.ServerConfig (cmd_mount.go), and child processes of this binary
// get typed specs through internal/reexec, never flags.
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

// command is one chaosrun subcommand.
type command struct {
	name    string
	summary string // one line for the top-level help
	hidden  bool
	run     func(args []string) int // exit status: 0 ok, 1 failure, 2 usage/setup error
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("duplicate command " + c.name)
	}
	commands[c.name] = c
}

func usage() {
	var b strings.Builder
	b.WriteString("chaosrun: chaos and fault injection for SQLite durability\n\nUsage:\n  chaosrun <command> [flags]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  %-10s %s\n", n, commands[n].summary)
	}
	b.WriteString("\nRun 'chaosrun <command> --help' for a command's flags and examples.\n")
	fmt.Fprint(os.Stderr, b.String())
}

func main() {
	reexec.Init()
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "-h" || name == "--help" || name == "help" {
		usage()
		os.Exit(0)
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "chaosrun: unknown command %q\n\n", name)
		usage()
		os.Exit(2)
	}
	os.Exit(c.run(os.Args[2:]))
}
