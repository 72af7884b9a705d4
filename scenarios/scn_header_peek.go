package scenarios

import (
	"fmt"
	"time"

	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
)

// headerPeekLockDrop is the header-peek-lock-drop scenario.
var headerPeekLockDrop = &Scenario{
	Name: "header-peek-lock-drop",
	Fix:  "PR-era defect of fix 6 (#32300, corrected by #71724): the raw-read page-count check cancels POSIX locks",
	Doc: `No fault is injected: the defect is in the check. The PR-era post-commit page-count
check opens the database file, reads bytes 28-31 and closes it; close(2) drops every
POSIX lock the process holds on the file, including the SHARED lock its SQLite
connection keeps in WAL mode. A long-lived writer with that check therefore looks
absent to other processes: the next peer to close its last connection gets the
EXCLUSIVE lock, checkpoints and unlinks -wal and -shm while the writer still has them
open (lock_cancellation_experiment.md). The writer then commits into a deleted WAL,
processes that open the board afterwards start a new one from the main file, and the
writer's own checkpoints and close overwrite their pages: acknowledged commits are
lost. Legacy has no such check; the hardened check reads the count through SQLite and
is skipped in WAL mode.

The peer that unlinks is the stock sqlite3 shell (` + ShellPath + `, Debian's 3.40.1),
run as a short-lived process that reads and exits, like an operator or another tool
peeking at the board; the seed's fleet shares the board with such builds (Python's,
the shell). Measured here: the lock drop is real (the writer's lock_probe returns show
0 POSIX locks on the database file after its first commit under the raw-read check).
With Go peers only, nothing is unlinked and no commit is lost: both drivers embed
SQLite 3.54.1, and since 3.51.0 (unixIsSharingShmNode) a closing connection that gets
the EXCLUSIVE lock still refuses to act as the last one while another process holds
the -shm dead-man-switch lock, which the writer keeps. A 3.40.1 peer has no such
check: its close unlinks the sidecars under the writer. The run fails setup (exit 2)
when the shell is missing.

Measured with the shell peer (seed 1, both drivers, several runs): under merged33482
and pr32857 every run has shell processes unlinking -wal and -shm while the writer (and
later the workers and CLIs, whose own checks dropped their locks too) held them, and
tens of acknowledged commits missing from the final ledger; integrity_check often fails
as well. legacy and hardened hold. The histories fork: processes that open the board
after an unlink continue the commit counter from the main file while the writer
continues it in its deleted WAL, so one seq is acknowledged by two processes. The
durability checker matches every acknowledgement against the ledger row's process
and op and reports seqs acknowledged twice as a forked history: every run judged
here lost 51-129 acknowledged commits with 47-71 forked seqs
(TestHeaderPeekShellLosesCommits counts the same loss independently).`,
	Roles:    "gateway, 1 long-lived Go writer (records its db-file locks after each commit), a sqlite3-shell peer reading and exiting every 10 s, Go CLI processes",
	Plan:     "",
	Profiles: []string{kanbancore.ProfileLegacy, kanbancore.ProfileMerged33482, kanbancore.ProfileHardened},
	Pre: allOf(atLeast(10, "shell-", history.TypeReturn, "", "sqlite3-shell peeks"),
		atLeast(10, "writer-1", history.TypeCommit, "", "commits by the long-lived writer")),
	Expect: map[string]Expect{
		kanbancore.ProfileLegacy:      {Pass: []string{oracle.Durability, oracle.Sidecars}, Why: "no page-count check, no peek: the writer's SHARED lock keeps the shell from acting as the last connection"},
		kanbancore.ProfileMerged33482: {Fail: []string{oracle.Durability, oracle.Sidecars}, Why: "the shell (SQLite 3.40.1) unlinks the sidecars under the writer; acknowledged commits lost"},
		kanbancore.ProfilePR32857:     {Fail: []string{oracle.Durability, oracle.Sidecars}, Why: "same check as merged"},
		kanbancore.ProfileHardened:    {Pass: []string{oracle.Durability, oracle.Sidecars}, Why: "the safe check never opens the file"},
	},
	Setup: func(r *role, c *kanbancore.Conn) error {
		v, minor, err := ShellVersion()
		if err != nil {
			return err
		}
		// The shell's SQLite is part of the run's facts: >= 3.51
		// protects the writer's sidecars, older does not.
		id := r.h.NextID()
		r.h.Write(history.Event{Type: history.TypeCall, ID: id, Op: "shell_version"})
		r.h.Write(history.Event{Type: history.TypeReturn, ID: id, Op: "shell_version", Data: &history.Data{
			Path: shellPath, Version: v, SharesShmCheck: new(minor >= 51)}})
		return seedTasks(4)(r, c)
	},
	Script: func(r *Script) error {
		r.Phase("load")
		if err := startGateway(r, "gateway-1", nil); err != nil {
			return err
		}
		if err := r.StartConnected(RoleSpec{Role: RoleWriter, Proc: "writer-1", Interval: 15 * time.Second,
			Args: map[string]string{"ops": "create,complete"}}); err != nil {
			return err
		}
		if err := r.Start(RoleSpec{Role: RoleShell, Proc: "shell-1", Interval: 10 * time.Second}); err != nil {
			return err
		}
		if err := r.CLILoop([]BoardOp{OpCreate, OpList, OpComplete}, 8*time.Second, r.LoadDuration(600*time.Second), nil); err != nil {
			return err
		}
		r.Phase("stop-writer")
		if err := r.Stop("shell-1"); err != nil {
			return fmt.Errorf("stop shell: %w", err)
		}
		// A clean stop: the writer closes its connection, which is when
		// a writer that kept a deleted WAL checkpoints it over the
		// main file.
		return r.Stop("writer-1")
	},
}
