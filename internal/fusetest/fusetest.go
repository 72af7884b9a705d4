// Package fusetest helps tests that mount faultfs: Require skips them where
// FUSE cannot be mounted (or fails them when SQLCHAOS_REQUIRE_FUSE=1), and
// Mount starts a server process that is always stopped at cleanup.
package fusetest

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/sqlchaos/sqlchaos/faultfs"
)

// RequireEnv names the variable that turns a skip into a failure (CI sets it).
const RequireEnv = "SQLCHAOS_REQUIRE_FUSE"

var sweepOnce sync.Once

// Reason returns why FUSE cannot be mounted here, or "" if it can.
func Reason() string {
	if os.Geteuid() != 0 {
		return "FUSE tests need root (faultfs mounts straight from /dev/fuse)"
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return "FUSE tests need /dev/fuse: " + err.Error()
	}
	return ""
}

// Require skips t with a one-line reason when FUSE cannot be mounted, or fails
// it instead when SQLCHAOS_REQUIRE_FUSE=1. The first call in a test binary
// that can mount clears what dead runs left behind (faultfs.SweepOrphans:
// their mounts, processes and zombies; live runs of other test binaries are
// not touched) and logs what it cleared.
func Require(t testing.TB) {
	t.Helper()
	r := Reason()
	if r == "" {
		sweepOnce.Do(func() {
			rep, err := faultfs.SweepOrphans()
			if err != nil || !rep.Empty() {
				t.Logf("fusetest: cleared what a dead run left: %v (err %v)", rep, err)
			}
		})
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s (%s=1)", r, RequireEnv)
	}
	t.Skip(r)
}

// Mount calls Require, makes temporary backing and mount directories for the
// ones cfg leaves empty, starts faultfs and registers a cleanup that stops it
// (unmounting and reaping the server) and reports a failed stop or a server
// that died on its own (use Mount.Kill to crash it on purpose). The test
// binary's TestMain must call reexec.Init.
func Mount(t *testing.T, cfg faultfs.Config) *faultfs.Mount {
	t.Helper()
	Require(t)
	if cfg.Backing == "" {
		cfg.Backing = t.TempDir()
	}
	if cfg.Mountpoint == "" {
		// Not t.TempDir: its RemoveAll would walk the mount if Stop failed.
		dir, err := os.MkdirTemp("", "faultfs-mnt-")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Mountpoint = dir
		t.Cleanup(func() { os.Remove(dir) })
	}
	if cfg.Stderr == nil {
		cfg.Stderr = testWriter{t}
	}
	m, err := faultfs.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("faultfs.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Stop(); err != nil {
			t.Errorf("faultfs stop: %v", err)
		}
		if err := m.Died(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return m
}

// testWriter sends the server's stderr to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("faultfs server: %s", p)
	return len(p), nil
}
