package main

import (
	"strings"
	"testing"
)

// TestMatrixArgsCheck: bad counts are refused before anything mounts.
func TestMatrixArgsCheck(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // "" for accepted
	}{
		{nil, ""},
		{[]string{"--jobs", "0"}, "--repeat and --jobs"},
		{[]string{"--repeat", "0"}, "--repeat and --jobs"},
		{[]string{"--compare-jobs", "-1"}, "--compare-jobs"},
		{[]string{"--compare-jobs", "1", "--jobs", "3"}, ""},
		{[]string{"--scenarios", "nope"}, "unknown scenario"},
		{[]string{"--drivers", "sqlite"}, "unknown driver"},
	} {
		var a matrixArgs
		if err := a.flags().Parse(c.args); err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		_, err := a.check()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v, want accepted", c.args, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: %v, want an error naming %s", c.args, err, c.want)
		}
	}
}

// TestDefaultJobs: four cells per core, never below 4 nor above 16.
func TestDefaultJobs(t *testing.T) {
	if j := defaultJobs(); j < 4 || j > 16 {
		t.Errorf("defaultJobs() = %d, want 4..16", j)
	}
}
