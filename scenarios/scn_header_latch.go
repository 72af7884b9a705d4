package scenarios

import (
	"time"

	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
)

// transientHeaderLatch is the transient-header-latch scenario.
var transientHeaderLatch = &Scenario{
	Name: "transient-header-latch",
	Fix:  "fix 5 (#31932, dropped from #33482): backoff + quick_check instead of a permanent corrupt-board latch",
	Doc: `One page-1 read of the gateway's tick comes back with one bit flipped in the
header magic ("SQLite format 3" → "RQLite format 3"), once: SQLite says "file is not a
database". The legacy gateway latches the board permanently on that message (until the
file's mtime or size changes) and never dispatches again; its integrity guard, when the
flip lands in its probe, even backs the healthy file up as corrupt. The backoff latch of
commit 5 first re-checks the header and runs quick_check through SQLite, finds the board
healthy and does not latch; the next tick dispatches. The board is checkpointed and quiet
just before the fault so that page 1 is read from the database file, not the WAL.`,
	Roles: "gateway (unassigned tasks: it ticks, nothing to spawn), CLI",
	Plan:  "flip op=read path=kanban.db off=0..15 minlen=4096 pid={pid:gateway-1} bit=0 count=1\n",
	Expect: map[string]Expect{
		kanbancore.ProfileLegacy:   {Fail: []string{oracle.Liveness}, Why: "the board stays latched after the fault clears"},
		kanbancore.ProfileHardened: {Pass: []string{oracle.Liveness}, Why: "quick_check ok: not latched, dispatching again"},
	},
	Setup: func(r *role, c *kanbancore.Conn) error {
		r.spec.Args["assignee"] = "" // nothing to spawn: the gateway only ticks
		return seedTasks(4)(r, c)
	},
	Script: func(r *Script) error {
		r.Phase("warm")
		if err := r.Start(RoleSpec{Role: RoleDispatcher, Proc: "gateway-1", Interval: 60 * time.Second}); err != nil {
			return err
		}
		if err := r.Sleep(90 * time.Second); err != nil {
			return err
		}
		if _, err := r.CLI(OpCheckpoint, nil); err != nil {
			return err
		}
		r.Phase("fault")
		if err := r.LoadPlan(r.MainPlan()); err != nil {
			return err
		}
		// Wait for the flip to fire (a few ticks at most), then clear.
		for i := 0; i < 10 && r.Fired() == 0; i++ {
			if err := r.Sleep(30 * time.Second); err != nil {
				return err
			}
		}
		if err := r.Clear(); err != nil {
			return err
		}
		r.Phase("after")
		return r.Sleep(r.LoadDuration(900 * time.Second))
	},
}
