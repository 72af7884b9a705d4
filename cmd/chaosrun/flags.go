package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// multiFlag is a repeatable flag: each use appends its value (--set k=v
// --set k2=v2, --parent ID --parent ID2).
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// isTerminal reports whether f is a terminal (live progress lines).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// outputDir is dir, or, when dir is empty, a new temporary directory
// named after pattern (os.MkdirTemp).
func outputDir(dir, pattern string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	return os.MkdirTemp("", pattern)
}

// setUsage makes fl's usage print head, the flags' defaults and tail on
// fl's output.
func setUsage(fl *flag.FlagSet, head, tail string) {
	fl.Usage = func() {
		fmt.Fprint(fl.Output(), head)
		fl.PrintDefaults()
		fmt.Fprint(fl.Output(), tail)
	}
}
