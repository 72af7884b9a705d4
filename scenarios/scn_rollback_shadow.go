package scenarios

import (
	"time"

	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
)

// rollbackShadow is the rollback-shadow scenario.
var rollbackShadow = &Scenario{
	Name: "rollback-shadow",
	Fix:  "fix 3 (#31310): preserve the original exception when write_txn's ROLLBACK fails",
	Doc: `Reads of WAL frames come back short (0 bytes) while several processes write. A
statement inside a write transaction that needs a page from the WAL fails with
SQLITE_IOERR_SHORT_READ; an IOERR makes SQLite roll the transaction back by itself,
so the legacy write_txn's unguarded ROLLBACK raises "cannot rollback - no transaction
is active" and that is what the caller sees. The guarded ROLLBACK of the fix lets the
original "disk I/O error" through. (A read EIO would not do: SQLite reports it as
SQLITE_CORRUPT, which does not auto-roll back. WAL writes happen only at COMMIT,
outside the body.) The short reads hit a long-lived writer, whose every op is a write
transaction, and one read in ten: a short read in a reader (a list, the
dispatcher's scan) surfaces as a plain I/O error and shadows nothing, and neither does
one on a transaction's first WAL read (before anything changed). Spread over every
process, or at one read in two (every transaction then fails on its first read, the WAL
stops moving, and the same frame fails again and again), one legacy run in five
shadowed nothing (matrix --repeat 5); now 6-11 of the 16 faults are shadowed in every run.`,
	Roles: "gateway (dispatcher + workers), 2 long-lived writers, CLI processes",
	Plan:  "short op=read path=kanban.db-wal pid={pid:writer-1} keep=0 p=0.1 count=16\n",
	Expect: map[string]Expect{
		kanbancore.ProfileLegacy:   {Fail: []string{oracle.ErrorFidelity}, Why: `callers see "cannot rollback" instead of the I/O error`},
		kanbancore.ProfileHardened: {Pass: []string{oracle.ErrorFidelity, oracle.Durability}, Why: "the original error surfaces"},
	},
	Setup: seedTasks(8),
	Script: func(r *Script) error {
		r.Phase("warm")
		if err := startGateway(r, "gateway-1", nil); err != nil {
			return err
		}
		if err := startWriters(r, 2, 4*time.Second, map[string]string{"ops": "create,heartbeat,complete"}); err != nil {
			return err
		}
		if err := r.Sleep(30 * time.Second); err != nil {
			return err
		}
		r.Phase("fault")
		if err := r.LoadPlan(r.MainPlan()); err != nil {
			return err
		}
		if err := r.CLILoop([]BoardOp{OpCreate, OpBlock, OpComplete}, 5*time.Second, r.LoadDuration(300*time.Second), nil); err != nil {
			return err
		}
		if err := r.Clear(); err != nil {
			return err
		}
		r.Phase("after")
		return r.CLILoop([]BoardOp{OpCreate, OpList}, 5*time.Second, 50*time.Second, nil)
	},
}
