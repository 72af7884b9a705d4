package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMountFlags: `chaosrun mount`'s exit status for bad usage (it returns
// before mounting, so it is safe to call in-process).
func TestMountFlags(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.plan")
	os.WriteFile(bad, []byte("eio op=nope\n"), 0o644)
	// A template parses, but a mount has no processes to bind it to: it
	// must be refused, not served as a plan that never fires.
	tmpl := filepath.Join(dir, "template.plan")
	os.WriteFile(tmpl, []byte("eio op=write pid={pid:writer-1}\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--help"}, 0},
		{nil, 2},
		{[]string{"--backing", dir}, 2},
		{[]string{"--backing", dir, "--mountpoint", filepath.Join(dir, "missing")}, 2},
		{[]string{"--backing", dir, "--mountpoint", dir}, 2},
		{[]string{"--backing", dir, "--mountpoint", t.TempDir(), "--plan", bad}, 2},
		{[]string{"--backing", dir, "--mountpoint", t.TempDir(), "--plan", tmpl}, 2},
		{[]string{"--bogus"}, 2},
	} {
		if got := runMount(tc.args); got != tc.want {
			t.Errorf("runMount(%q) = %d, want %d", tc.args, got, tc.want)
		}
	}
}
