// Package reexec lets a binary (chaosrun, or a test binary) start copies of
// itself in another role: the faultfs server, a kanban worker, a watcher.
// Every process that may be re-executed calls Init first thing in main or
// TestMain.
//
// # The protocol
//
// There is one way to start a child of the same binary: Command(role, spec)
// in the parent, Register(role, main) in the child, where main takes the
// spec's type. The role's name travels in $SQLCHAOS_REEXEC and the spec,
// encoded as JSON, in $SQLCHAOS_REEXEC_SPEC; the child decodes it strictly
// (unknown fields and trailing data are errors, exit status 2), so a parent
// and child that drifted apart fail loudly instead of running with zeroed
// fields. A role that needs only a few strings takes a []string.
//
// The spec goes into the environment, not a pipe or a file: it needs no file
// descriptor or temporary file to set up and clean up (a worker's launcher
// exits while the worker it started runs on), it survives proctree's
// starter thread and Pdeathsig unchanged, it can be read back for
// debugging from /proc/PID/environ, and a person can run a role by hand
// with the variable set. The one limit is the kernel's bound on one
// environment string (MAX_ARG_STRLEN, 128 KiB): Command refuses a larger
// spec rather than letting exec fail with E2BIG.
//
// The anchor rides along: Command names this process's anchor in the
// child's environment (proctree.WithAnchor), and Init starts the anchor
// watch, so every child exits when the anchor does, whoever started it.
package reexec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"

	"github.com/sqlchaos/sqlchaos/internal/proctree"
)

// EnvVar names the role a re-executed process must run.
const EnvVar = "SQLCHAOS_REEXEC"

// SpecEnv carries the role's spec, JSON-encoded by Command.
const SpecEnv = "SQLCHAOS_REEXEC_SPEC"

// MaxSpec is the largest encoded spec Command accepts: one environment
// string ("SQLCHAOS_REEXEC_SPEC=" + spec + NUL) must fit in the kernel's
// MAX_ARG_STRLEN (32 pages of 4 KiB).
const MaxSpec = 128<<10 - len(SpecEnv) - 2

var (
	mu    sync.Mutex
	roles = map[string]func(spec []byte) int{}
)

// Register makes a role available to Init: a process started by
// Command(name, spec) decodes the spec into a T (strictly: see Decode) and
// exits with main's status, or with status 2 when the spec does not decode.
// Register panics on a duplicate name.
func Register[T any](name string, main func(spec T) int) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := roles[name]; dup {
		panic("reexec: duplicate role " + name)
	}
	roles[name] = func(raw []byte) int {
		var spec T
		if err := Decode(raw, &spec); err != nil {
			fmt.Fprintf(os.Stderr, "reexec: role %s: %v\n", name, err)
			return 2
		}
		return main(spec)
	}
}

// Decode decodes one JSON value from raw into v, as Init does for a role:
// an unknown object field, a type mismatch or anything after the value is
// an error.
func Decode(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad spec: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("bad spec: data after the JSON value")
	}
	return nil
}

// Init runs the registered role named by $SQLCHAOS_REEXEC, if any, with the
// spec in $SQLCHAOS_REEXEC_SPEC, and exits with its status. It returns only
// when the process is not a re-executed role. In every process (role or
// not) it first starts the anchor watch (proctree.WatchAnchor): a process
// whose environment names an anchor ($SQLCHAOS_ANCHOR, set by Command)
// exits when that anchor does. Both variables are removed from the role's
// environment, so what it starts inherits neither.
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
	spec, ok := os.LookupEnv(SpecEnv)
	if !ok {
		fmt.Fprintf(os.Stderr, "reexec: role %q started without $%s (start roles with reexec.Command)\n", name, SpecEnv)
		os.Exit(2)
	}
	os.Unsetenv(EnvVar)
	os.Unsetenv(SpecEnv)
	os.Exit(f([]byte(spec)))
}

// Command returns a command that runs this same executable in role name
// with spec (JSON-encoded; nil encodes as null, which decodes to the zero
// value of any type). The caller sets Stdout/Stderr/SysProcAttr and starts
// it (best with proctree.Start or proctree.StartChild). Its environment
// names this process's anchor (proctree.Anchor: the inherited one, or this
// process), so the child exits when the anchor does, whoever starts it.
func Command(name string, spec any) (*exec.Cmd, error) {
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("reexec: role %s: encode spec: %w", name, err)
	}
	if len(js) > MaxSpec {
		return nil, fmt.Errorf("reexec: role %s: spec of %d bytes, over the %d an environment string holds", name, len(js), MaxSpec)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("reexec: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(proctree.WithAnchor(nil), EnvVar+"="+name, SpecEnv+"="+string(js))
	return cmd, nil
}
