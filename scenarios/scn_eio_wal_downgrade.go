package scenarios

import (
	"time"

	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/verdict"
)

// eioWALDowngrade is the eio-wal-downgrade scenario.
var eioWALDowngrade = &Scenario{
	Name: "eio-wal-downgrade",
	Fix:  "fix 2 (#31294): never silently downgrade WAL to DELETE on a transient EIO",
	Doc: `A CLI process's first connection meets one transient read EIO on the database's
page 1 while the board is idle (no other process has it open). The legacy WAL policy
always issues PRAGMA journal_mode=WAL, sees "disk I/O error", takes it for an
unsupported filesystem and runs PRAGMA journal_mode=DELETE: with nobody else holding
the file, SQLite flips header bytes 18-19 from 2/2 to 1/1 for good (measured in
feasibility Q5e). The hardened policy probes the mode read-only, retries the EIO and
never downgrades a file whose header says WAL.

Measured with mattn: its connector runs PRAGMA synchronous=NORMAL and
PRAGMA locking_mode=NORMAL when it opens, which already reads page 1 and opens the
WAL; kanbancore's PRAGMA journal_mode=WAL that follows does no file I/O at all on an
idle board, so the transient EIO cannot reach the pragma: it fails the connect instead
(SQLITE_IOERR_CORRUPTFS 8458), which no WAL policy treats. With modernc the pragma is
the connection's first statement and reads page 1 itself.`,
	Roles: "CLI processes (the board idle during the fault), then a gateway and a writer",
	// The page-1 read of the first statement on the process's main
	// connection: the legacy connect first runs the integrity guard's
	// probe connection (page-1 read #1), then the main connection's WAL
	// pragma (page-1 read #2).
	Plan: "eio op=read path=kanban.db off=0 minlen=4096 nth=3 count=1\n",
	Expect: map[string]Expect{
		kanbancore.ProfileLegacy:   {Fail: []string{oracle.JournalMode}, Why: "the header flips WAL→DELETE"},
		kanbancore.ProfileHardened: {Pass: []string{oracle.JournalMode, oracle.Durability}, Why: "EIO re-raised or retried; the file stays WAL"},
	},
	Findings: map[string]verdict.Pinned{
		kanbancore.ProfileLegacy + "/mattn": {
			What: "the transient EIO fails mattn's connect (surfaced as an error) and never reaches the legacy WAL→DELETE fallback: the file stays WAL",
			Why: "mattn's connector reads page 1 (PRAGMA synchronous, locking_mode) before kanbancore's journal_mode=WAL, which then does no I/O on an " +
				"idle board; the downgrade needs the pragma to meet the EIO, as it does on modernc",
			// Legacy's unguarded ROLLBACK may shadow the EIO when it lands
			// inside a write transaction: rollback-shadow's class.
			Measured: Expect{Pass: []string{oracle.JournalMode, oracle.Silent}, Evidence: map[string][]string{oracle.Silent: {"surfaced as errors"}},
				Allow: []string{oracle.ErrorFidelity}},
		},
	},
	Setup: seedTasks(4),
	Script: func(r *Script) error {
		r.Phase("warm")
		for _, op := range []BoardOp{OpCreate, OpList} {
			if _, err := r.CLI(op, nil); err != nil {
				return err
			}
		}
		r.Phase("fault")
		if err := r.LoadPlan(r.MainPlan()); err != nil {
			return err
		}
		if _, err := r.CLI(OpCreate, nil); err != nil {
			return err
		}
		if err := r.Clear(); err != nil {
			return err
		}
		// Keep using the board: writers in both processes, so a mode
		// mix (one connection WAL, the file DELETE) has its chance.
		r.Phase("after")
		if err := startGateway(r, "gateway-1", nil); err != nil {
			return err
		}
		if err := r.StartConnected(RoleSpec{Role: RoleWriter, Proc: "writer-1", Interval: 5 * time.Second,
			Args: map[string]string{"ops": "create,heartbeat"}}); err != nil {
			return err
		}
		return r.CLILoop([]BoardOp{OpCreate, OpComplete, OpList}, 10*time.Second, r.LoadDuration(200*time.Second), nil)
	},
}
