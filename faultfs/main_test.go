package faultfs_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}

// holdRole is a helper process: it opens a file (and with "lock" takes a
// POSIX write lock on all of it), prints "ready", and holds it until its
// stdin closes.
const holdRole = "faultfs-test-hold"

func init() {
	reexec.Register(holdRole, func(args []string) int {
		if len(args) != 2 {
			fmt.Fprintln(os.Stderr, "usage: hold PATH open|lock")
			return 2
		}
		f, err := os.OpenFile(args[0], os.O_RDWR, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		if args[1] == "lock" {
			lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
			if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
				fmt.Fprintln(os.Stderr, "lock:", err)
				return 1
			}
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		return 0
	})
}

// startHolder runs a holdRole process on path and returns its pid and a
// function that makes it close the file and exit (also run at cleanup).
func startHolder(t *testing.T, path, mode string) (int, func()) {
	t.Helper()
	cmd, err := reexec.Command(holdRole, []string{path, mode})
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	release := func() {
		if done {
			return
		}
		done = true
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("holder %s: %v: %s", path, err, stderr.String())
		}
	}
	t.Cleanup(release)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		release()
		t.Fatalf("holder %s did not get ready: %q %v: %s", path, line, err, stderr.String())
	}
	return cmd.Process.Pid, release
}
