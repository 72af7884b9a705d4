package scenarios

import (
	"time"

	"github.com/sqlchaos/sqlchaos/kanbancore"
)

func init() {
	add(&Scenario{
		Name: "header-peek-lock-drop",
		Fix:  "PR-era defect of fix 6 (#32300, corrected by #71724): the raw-read page-count check cancels POSIX locks",
		Doc: `No fault is injected: the defect is in the check. The PR-era post-commit page-count
check opens the database file, reads bytes 28-31 and closes it; close(2) drops every
POSIX lock the process holds on the file, including the SHARED lock its SQLite
connection keeps in WAL mode. A long-lived writer with that check therefore looks
absent to other processes: the next CLI process to close its last connection gets the
EXCLUSIVE lock, checkpoints and unlinks -wal and -shm while the writer still has them
open (lock_cancellation_experiment.md). The writer then commits into a deleted WAL and
acknowledged commits are lost. Legacy has no such check; the hardened check reads the
count through SQLite and is skipped in WAL mode.

Measured here: the lock drop is real (the writer's lock_probe returns show 0 POSIX
locks on the database file after its first commit under the raw-read check), but
SQLite 3.51.0 added unixIsSharingShmNode: a closing connection that gets the
EXCLUSIVE lock still refuses to act as the last one while another process holds the
-shm dead-man-switch lock, which the writer keeps. Both Go drivers embed 3.54.1, so
in WAL mode nothing is unlinked and no commit is lost; the experiment's outcome needs
SQLite < 3.51 (python3's 3.40.1 there).`,
		Roles:    "gateway, 1 long-lived writer (records its db-file locks after each op), CLI processes",
		Plan:     "",
		Profiles: []string{kanbancore.ProfileLegacy, kanbancore.ProfileMerged33482, kanbancore.ProfileHardened},
		Expect: map[string]Expect{
			kanbancore.ProfileLegacy:      {Pass: []string{"durability", "sidecars"}, Why: "no page-count check, no peek"},
			kanbancore.ProfileMerged33482: {Fail: []string{"durability", "sidecars"}, Why: "sidecars unlinked under the writer; its commits lost"},
			kanbancore.ProfilePR32857:     {Fail: []string{"durability", "sidecars"}, Why: "same check as merged"},
			kanbancore.ProfileHardened:    {Pass: []string{"durability", "sidecars"}, Why: "the safe check never opens the file"},
		},
		Setup: seedTasks(4),
		Script: func(r *Run) error {
			r.Phase("load")
			if err := startGateway(r, "gateway-1", nil); err != nil {
				return err
			}
			if err := r.StartConnected(RoleSpec{Role: RoleWriter, Proc: "writer-1", Interval: 15 * time.Second,
				Args: map[string]string{"ops": "create,heartbeat"}}); err != nil {
				return err
			}
			if err := r.Sleep(20 * time.Second); err != nil {
				return err
			}
			if err := r.CLILoop([]string{"create", "list", "complete"}, 8*time.Second, r.LoadDuration(600*time.Second), nil); err != nil {
				return err
			}
			r.Phase("stop-writer")
			// A clean stop: the writer closes its connection, which is when
			// a writer that kept a deleted WAL checkpoints it or loses it.
			return r.Stop("writer-1")
		},
	})
}
