// Package reexec lets a binary (chaosrun, or a test binary) start copies of
// itself in another role: the faultfs server, a kanban worker, a watcher.
// Every process that may be re-executed calls Init first thing in main or
// TestMain.
package reexec

import (
	"fmt"
	"os"
	"os/exec"
	"sync"

	"github.com/sqlchaos/sqlchaos/internal/proctree"
)

// EnvVar names the role a re-executed process must run.
const EnvVar = "SQLCHAOS_REEXEC"

var (
	mu    sync.Mutex
	roles = map[string]func(args []string) int{}
)

// Register makes a role available to Init. It panics on a duplicate name.
func Register(name string, main func(args []string) int) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := roles[name]; dup {
		panic("reexec: duplicate role " + name)
	}
	roles[name] = main
}

// Init runs the registered role named by $SQLCHAOS_REEXEC, if any, with
// os.Args[1:], and exits with its status. It returns only when the process
// is not a re-executed role. In every process (role or not) it first starts
// the anchor watch (proctree.WatchAnchor): a process whose environment names
// an anchor ($SQLCHAOS_ANCHOR, set by Command) exits when that anchor does.
func Init() {
	proctree.WatchAnchor()
	name := os.Getenv(EnvVar)
	if name == "" {
		return
	}
	mu.Lock()
	f := roles[name]
	mu.Unlock()
	if f == nil {
		fmt.Fprintf(os.Stderr, "reexec: unknown role %q\n", name)
		os.Exit(2)
	}
	os.Unsetenv(EnvVar)
	os.Exit(f(os.Args[1:]))
}

// Command returns a command that runs this same executable in role name with
// args. The caller sets Stdout/Stderr/Env additions and starts it (best
// with proctree.Start or proctree.StartChild). Its environment names this
// process's anchor (proctree.Anchor: the inherited one, or this process), so
// the child exits when the anchor does, whoever starts it.
func Command(name string, args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("reexec: %w", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(proctree.WithAnchor(nil), EnvVar+"="+name)
	return cmd, nil
}
