package scenarios

import (
	"time"

	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/verdict"
)

// lostWriteResurrection is the lost-write-resurrection scenario: the
// resurrection class where it is true (issue 9's measurement), next to
// torn-write-resurrection where it is not.
var lostWriteResurrection = &Scenario{
	Name: "lost-write-resurrection",
	Fix:  "fix 1 (#31208): secure_delete, cell_size_check, synchronous=FULL — against a lost page write",
	Doc: `Tasks with recognisable bodies are created and checkpointed into the database file. Then
four are deleted (each delete acknowledged to its process) and a TRUNCATE checkpoint
copies the changed pages from the WAL into the database file — and the disk loses those
page writes: each reports success, none reaches the platter (a lying disk or write cache
losing a batch of writes; "lost" in the plan). The checkpoint then truncates the WAL, so
from here on every process reads the database file: an old snapshot, consistent in
itself, whose pages still hold the deleted rows. A dashboard process holds a connection
throughout, so the WAL survives each CLI's close until that checkpoint; nothing writes
afterwards (a later commit would reuse the lost commits' counter values).

The story of fix 1 is that secure_delete (freed cells zeroed) and cell_size_check (damaged
cells become read errors) keep a deleted row from coming back. A lost write leaves the old
page, which is a valid page: nothing is zeroed, nothing is malformed, and the deleted
rows are back as live data with integrity_check ok — under legacy and hardened alike,
with no error in any process (silent), the acknowledged deletes lost with them
(durability). This is the seed's resurrection, from lost writes rather than torn ones
(torn-write-resurrection shows torn pages are caught by integrity_check). A single lost
leaf page among index pages that did land is caught by integrity_check too (the indexes
disagree; chaosrun crashes shows it); a whole lost checkpoint is not, and no setting the
board has detects it.`,
	Roles: "a dashboard watcher, CLI processes (delete, checkpoint)",
	Plan:  "lost op=write path=kanban.db minlen=4096\n",
	Expect: map[string]Expect{
		kanbancore.ProfileLegacy: {Fail: []string{oracle.Resurrection}, Pass: []string{oracle.Structure},
			Why:      "a deleted row comes back as live data, in a database that checks ok",
			Evidence: map[string][]string{oracle.Resurrection: {"is present at the end"}}},
		kanbancore.ProfileHardened: {Pass: []string{oracle.Resurrection},
			Why: "secure_delete and cell_size_check keep deleted rows from coming back"},
	},
	Findings: map[string]verdict.Pinned{
		kanbancore.ProfileHardened: {
			What: "the deleted rows are back as live data with integrity_check ok, exactly as under legacy, and no process saw an error",
			Why: "a lost write leaves the old page, a valid page holding the rows: secure_delete zeroes cells only in pages it writes, " +
				"and cell_size_check finds nothing wrong with a well-formed page; nothing in reach (integrity_check included) detects a stale page",
			Measured: Expect{Fail: []string{oracle.Resurrection}, Pass: []string{oracle.Structure},
				Evidence: map[string][]string{oracle.Resurrection: {"is present at the end"}},
				Allow:    []string{oracle.Durability, oracle.Silent}},
		},
	},
	Setup: seedTasksBody(40, "1500"),
	Script: func(r *Script) error {
		r.Phase("fault")
		// A long-lived reader keeps the WAL from being checkpointed and
		// removed at each CLI's close: the TRUNCATE checkpoint below is the
		// only one (four deletes, about 60 WAL pages, stay under hardened's 100-page
		// autocheckpoint).
		if err := r.StartConnected(RoleSpec{Role: RoleWatcher, Proc: "dashboard", Watch: WatchDashboard, Interval: 10 * time.Second}); err != nil {
			return err
		}
		if err := r.LoadPlan(r.MainPlan()); err != nil {
			return err
		}
		if err := deleteAndCheckpoint(r, 4); err != nil {
			return err
		}
		if err := r.Clear(); err != nil {
			return err
		}
		// Nothing writes afterwards: a commit now would reuse the lost
		// commits' counter values (a fork the checkers cannot order).
		r.Phase("after")
		return r.Sleep(30 * time.Second)
	},
}
