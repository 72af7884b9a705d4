package faultfs_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
	"github.com/sqlchaos/sqlchaos/internal/proctree"
)

// These tests drive faultfs the way a user does: the chaosrun binary
// (`chaosrun mount`, `chaosrun umount`) and the stock sqlite3 shell, plus the
// Go API's cleanup after a killed server.

// mountedAt reports whether /proc/self/mountinfo lists a faultfs mount at
// dir. It never touches dir itself (a dead mount would hang a stat).
func mountedAt(t *testing.T, dir string) bool {
	t.Helper()
	ms, err := proctree.ReadMountinfo()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Mountpoint == dir && m.FsType == "fuse."+faultfs.FsName {
			return true
		}
	}
	return false
}

func waitExit(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not exit within 10s", what)
	}
}

// TestKilledServerUnmount: SIGKILL of the server process leaves a stale
// mount behind (a dead FUSE connection); faultfs.Unmount clears it without
// touching it, also while a client still holds a file open on it.
func TestKilledServerUnmount(t *testing.T) {
	for _, holdFD := range []bool{false, true} {
		name := "idle"
		if holdFD {
			name = "fd-held"
		}
		t.Run(name, func(t *testing.T) {
			m := startKillable(t)
			dir := m.Dir()
			if holdFD {
				f, err := os.Create(filepath.Join(dir, "held.db"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
			}
			if err := syscall.Kill(m.Pid(), syscall.SIGKILL); err != nil {
				t.Fatalf("kill %d: %v", m.Pid(), err)
			}
			waitExit(t, m.Exited(), "the killed server")
			if !mountedAt(t, dir) {
				t.Fatalf("%s is not listed right after SIGKILL; the test would prove nothing", dir)
			}
			if err := faultfs.Unmount(dir); err != nil {
				t.Fatalf("Unmount(%s) after SIGKILL: %v", dir, err)
			}
			if mountedAt(t, dir) {
				t.Fatalf("%s still mounted after Unmount", dir)
			}
			if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(m.Pid()))); !os.IsNotExist(err) {
				t.Fatalf("server pid %d still in /proc (err %v)", m.Pid(), err)
			}
		})
	}
}

// startKillable starts a mount with faultfs.Start (not fusetest.Mount,
// whose cleanup reports the expected "exited before Stop" as an error); its
// cleanup still stops the server and clears the mount.
func startKillable(t *testing.T) *faultfs.Mount {
	t.Helper()
	fusetest.Require(t)
	mnt, err := os.MkdirTemp("", "faultfs-kill-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	m, err := faultfs.Start(context.Background(), faultfs.Config{
		Backing: t.TempDir(), Mountpoint: mnt, Seed: 1, Stderr: io.Discard})
	if err != nil {
		os.Remove(mnt)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Stop() // after a SIGKILL it reports the kill; the mount check below is what counts
		if mountedAt(t, m.Dir()) {
			t.Errorf("%s still mounted after Stop", m.Dir())
			faultfs.Unmount(m.Dir())
		}
		os.Remove(mnt)
	})
	return m
}

// buildChaosrun builds cmd/chaosrun into a temp dir and returns its path.
func buildChaosrun(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	if _, err := os.Stat(gobin); err != nil {
		t.Fatalf("no go tool to build chaosrun: %v", err)
	}
	out := filepath.Join(t.TempDir(), "chaosrun")
	cmd := exec.Command(gobin, "build", "-o", out, "./cmd/chaosrun")
	cmd.Dir = ".." // the module root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/chaosrun: %v\n%s", err, b)
	}
	return out
}

// cliMount is a `chaosrun mount` process.
type cliMount struct {
	cmd    *exec.Cmd
	dir    string
	exited chan struct{}
	err    error
	stderr *bytes.Buffer
}

// startCLIMount runs `chaosrun mount` with args plus --backing and
// --mountpoint, waits for its "mounted <dir>" line, and registers a cleanup
// that kills it by pid and clears the mount.
func startCLIMount(t *testing.T, bin, backing string, args ...string) *cliMount {
	t.Helper()
	dir, err := os.MkdirTemp("", "faultfs-cli-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ = filepath.EvalSymlinks(dir)
	args = append([]string{"mount", "--backing", backing, "--mountpoint", dir}, args...)
	c := &cliMount{cmd: exec.Command(bin, args...), dir: dir, exited: make(chan struct{}), stderr: &bytes.Buffer{}}
	c.cmd.Stderr = c.stderr
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.exited
		if mountedAt(t, dir) {
			faultfs.Unmount(dir)
		}
		os.Remove(dir)
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	select {
	case l := <-line:
		if l != "mounted "+dir {
			t.Fatalf("chaosrun mount said %q, want %q; stderr: %s", l, "mounted "+dir, c.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("chaosrun mount: no \"mounted\" line in 15s; stderr: %s", c.stderr)
	}
	return c
}

// TestChaosrunSQLiteShell is the acceptance check, done as a user
// would: `chaosrun mount` with the plan `eio op=write path=*-wal nth=1
// count=1`, the stock sqlite3 shell on a WAL database fails its first
// INSERT with "disk I/O error" and succeeds on the retry, and the fault is
// in the trace. A second subtest SIGKILLs `chaosrun mount` and clears the
// stale mount with `chaosrun umount`.
func TestChaosrunSQLiteShell(t *testing.T) {
	fusetest.Require(t)
	shell, err := exec.LookPath("sqlite3")
	if err != nil {
		if os.Getenv(fusetest.RequireEnv) == "1" {
			t.Fatalf("the sqlite3 shell is not installed (%s=1; CI installs it)", fusetest.RequireEnv)
		}
		t.Skip("the stock sqlite3 shell is not installed")
	}
	bin := buildChaosrun(t)

	t.Run("wal-eio-then-retry", func(t *testing.T) {
		backing := t.TempDir()
		// The database exists in WAL mode before the mount, with no -wal
		// file: the first -wal write through the mount is the first INSERT's.
		prep := exec.Command(shell, "-init", "/dev/null", filepath.Join(backing, "shell.db"),
			"PRAGMA journal_mode=WAL; CREATE TABLE t(x);")
		if b, err := prep.CombinedOutput(); err != nil || strings.TrimSpace(string(b)) != "wal" {
			t.Fatalf("preparing the database: %v: %q", err, b)
		}
		planFile := filepath.Join(t.TempDir(), "plan.txt")
		if err := os.WriteFile(planFile, []byte("eio op=write path=*-wal nth=1 count=1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		tracePath := filepath.Join(t.TempDir(), "trace.jsonl")
		m := startCLIMount(t, bin, backing, "--plan", planFile, "--seed", "1", "--trace", tracePath)

		sh := exec.Command(shell, "-init", "/dev/null", filepath.Join(m.dir, "shell.db"))
		sh.Stdin = strings.NewReader("INSERT INTO t VALUES(1);\nINSERT INTO t VALUES(1);\nSELECT count(*) FROM t;\n")
		var stdout, stderr bytes.Buffer
		sh.Stdout, sh.Stderr = &stdout, &stderr
		shErr := sh.Run()
		t.Logf("sqlite3: exit %v; stdout %q; stderr %q", shErr, stdout.String(), stderr.String())
		if n := strings.Count(stderr.String(), "disk I/O error"); n != 1 {
			t.Fatalf("sqlite3 stderr says %q %d times, want once:\n%s", "disk I/O error", n, stderr.String())
		}
		if got := strings.TrimSpace(stdout.String()); got != "1" {
			t.Fatalf("count after the failed INSERT and its retry: %q, want 1", got)
		}

		// A clean stop (SIGTERM) unmounts and exits 0.
		if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitExit(t, m.exited, "chaosrun mount after SIGTERM")
		if m.err != nil {
			t.Fatalf("chaosrun mount exit after SIGTERM: %v; stderr: %s", m.err, m.stderr)
		}
		if mountedAt(t, m.dir) {
			t.Fatalf("%s still mounted after chaosrun mount exited", m.dir)
		}

		recs, err := trace.ReadFile(tracePath)
		if err != nil {
			t.Fatal(err)
		}
		var fired []trace.Record
		for _, r := range recs {
			if r.Rule > 0 {
				fired = append(fired, r)
			}
		}
		if len(fired) != 1 {
			t.Fatalf("trace has %d fired records, want 1: %+v", len(fired), fired)
		}
		if f := fired[0]; f.Rule != 1 || f.Op != "write" || f.Path != "shell.db-wal" || f.Result != "EIO" {
			t.Fatalf("fired record %+v: want rule 1, write to shell.db-wal, EIO", f)
		}
		t.Logf("trace: %+v", fired[0])
	})

	t.Run("kill-then-umount", func(t *testing.T) {
		m := startCLIMount(t, bin, t.TempDir(), "--seed", "1")
		if err := m.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitExit(t, m.exited, "chaosrun mount after SIGKILL")
		if !mountedAt(t, m.dir) {
			t.Fatalf("%s not listed after SIGKILL; the test would prove nothing", m.dir)
		}
		out, err := exec.Command(bin, "umount", m.dir).CombinedOutput()
		if err != nil {
			t.Fatalf("chaosrun umount %s: %v\n%s", m.dir, err, out)
		}
		if mountedAt(t, m.dir) {
			t.Fatalf("%s still mounted after chaosrun umount (output %q)", m.dir, out)
		}
	})
}
