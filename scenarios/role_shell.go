package scenarios

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/internal/ledger"
	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

// RoleShell is a peer that is not Go at all: it runs the stock sqlite3
// command-line shell (ShellPath), once per Interval, as a new short-lived
// process each time, like an operator or another tool peeking at the
// board. The shell carries its own SQLite build (Debian's 3.40.1 here),
// older than the 3.54.1 both Go drivers embed.
const RoleShell = "scn-shell"

// ShellPath is the stock sqlite3 shell the shell role runs.
const ShellPath = "/usr/bin/sqlite3"

// shellPath is the shell actually run (tests point it elsewhere).
var shellPath = ShellPath

// DefaultShellSQL is what a shell peer runs unless Args "sql" says
// otherwise: a read, then exit.
const DefaultShellSQL = "select count(*) from tasks;"

func init() {
	reexec.Register(RoleShell, roleMain(runShell))
}

var shellVersionRE = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)`)

// ShellVersion runs `ShellPath --version` and returns its version string
// ("3.40.1") and its minor version (40). A missing or broken shell is an
// error naming the path and what to install.
func ShellVersion() (string, int, error) {
	if _, err := os.Stat(shellPath); err != nil {
		return "", 0, fmt.Errorf("the sqlite3 shell is required (an older SQLite build as a peer process): %v (install the sqlite3 package)", err)
	}
	out, err := exec.Command(shellPath, "--version").Output()
	if err != nil {
		return "", 0, fmt.Errorf("%s --version: %v", shellPath, err)
	}
	m := shellVersionRE.FindStringSubmatch(strings.TrimSpace(string(out)))
	if m == nil {
		return "", 0, fmt.Errorf("%s --version: unrecognised output %q", shellPath, strings.TrimSpace(string(out)))
	}
	minor, _ := strconv.Atoi(m[2])
	return m[0], minor, nil
}

// runShell runs the sqlite3 shell against the board every Interval (board
// time), Count times or until stopped. Each run is one call/return in the
// history (op "shell_read", or "shell_write" with Args "write"="1"); a
// failing run's return carries the shell's stderr (or exit status) as its
// error, and Data holds the shell's pid, exit code and output.
//
// With "write" the shell runs one write transaction that bumps the commit
// counter and appends a ledger row, like every writer, and prints the seq
// through RETURNING. A TypeCommit is logged only after the shell exited 0:
// with -bail the shell stops at the first failing statement and exits
// non-zero, so exit 0 means COMMIT returned SQLITE_OK, which is what an
// acknowledgement is for every other writer too. A shell that fails after
// its COMMIT (it cannot: COMMIT is last) or is killed leaves at most an
// unacknowledged ledger row.
func runShell(r *role) error {
	interval := r.spec.Interval
	if interval == 0 {
		interval = 10 * time.Second
	}
	write := r.arg("write", "") == "1"
	for n := 0; r.spec.Count == 0 || n < r.spec.Count; n++ {
		if err := r.sleep(interval); err != nil {
			return err
		}
		if write {
			r.shellWrite()
		} else {
			r.shellRun("shell_read", r.arg("sql", DefaultShellSQL))
		}
	}
	return nil
}

// shellResult is one finished shell process.
type shellResult struct {
	pid    int
	code   int
	stdout string
	err    error // the shell's stderr (or exit status) as an error; nil on exit 0
}

// shellRun runs the shell once on sql, recording call and return.
func (r *role) shellRun(op, sql string) shellResult {
	id := r.h.NextID()
	r.h.Write(history.Event{Type: history.TypeCall, ID: id, Op: op})
	res := r.shellExec(sql)
	ev := ledger.ErrEvent(history.TypeReturn, id, op, "", res.err)
	ev.Data = &history.Data{Pid: res.pid, Exit: new(res.code), Stdout: res.stdout}
	r.h.Write(ev)
	return res
}

// shellExec runs `sqlite3 -bail -batch -cmd ".timeout 5000" DB SQL`.
func (r *role) shellExec(sql string) shellResult {
	ctx, cancel := context.WithTimeout(r.ctx, r.clock.Wall(60*time.Second)+5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shellPath, "-bail", "-batch", "-cmd", ".timeout 5000", r.spec.DB, sql)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Start()
	res := shellResult{code: -1}
	if err != nil {
		res.err = err
		return res
	}
	res.pid = cmd.Process.Pid
	err = cmd.Wait()
	res.stdout = strings.TrimSpace(stdout.String())
	if cmd.ProcessState != nil {
		res.code = cmd.ProcessState.ExitCode()
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		var ee *exec.ExitError
		switch {
		case msg != "":
			res.err = errors.New(msg)
		case errors.As(err, &ee):
			res.err = fmt.Errorf("sqlite3 shell: %v", ee)
		default:
			res.err = err
		}
	} else if msg := strings.TrimSpace(stderr.String()); msg != "" {
		// Exit 0 with stderr is not an acknowledgement anyone can trust.
		res.err = errors.New(msg)
	}
	return res
}

// shellWrite runs one ledger-bumping write transaction through the shell
// and logs its TypeCommit only after the shell exited 0 with the seq.
func (r *role) shellWrite() {
	proc := strings.ReplaceAll(r.spec.Proc, "'", "''")
	sql := fmt.Sprintf(`BEGIN IMMEDIATE;
UPDATE chaos_counter SET n = n + 1 WHERE id = 1 RETURNING n;
INSERT INTO chaos_ledger(seq, proc, op, t) SELECT n, '%s', 'shell_write', %d FROM chaos_counter WHERE id = 1;
COMMIT;`, proc, history.Now())
	res := r.shellRun("shell_write", sql)
	if res.err != nil {
		return
	}
	seq, err := strconv.ParseInt(res.stdout, 10, 64)
	if err != nil || seq <= 0 {
		r.h.Write(history.Event{Type: history.TypeError, Op: "shell_write",
			Err: fmt.Sprintf("shell exited 0 without a commit seq (stdout %q): not acknowledged", res.stdout)})
		return
	}
	r.h.Write(history.Event{Type: history.TypeCommit, Op: "shell_write", Seq: seq, Data: &history.Data{Pid: res.pid}})
}
