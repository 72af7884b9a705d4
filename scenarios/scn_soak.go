package scenarios

import (
	"time"

	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
)

// soakAll is the soak scenario.
var soakAll = &Scenario{
	Name: "soak",
	Fix:  "all fixes together: every role, mixed low-rate faults, for as long as asked (--duration)",
	Doc: `Every role at once — notifier and dashboard watchers, the gateway and its workers (some
crash, some block), a writer, two streams of CLI processes — under a mixed plan of
seeded low-probability faults: WAL write and fsync EIO, short WAL reads, page-read EIO,
slow fsyncs — the transient faults the fixes claim to handle. Torn writes that report
success are left to their own scenarios: no profile can keep data through them, the
fixes only claim to detect them. The default load phase
is 10 s; --duration sets it (make soak runs 10 minutes). The hardened board must keep
its data and surface every fault; the legacy board is expected at least to shadow
I/O errors behind "cannot rollback".`,
	Roles: "all: watchers, gateway + workers, writer, 2 CLI streams",
	Plan: `eio op=write path=kanban.db-wal minlen=4096 p=0.002
eio op=fsync path=kanban.db-wal p=0.005
short op=read path=kanban.db-wal keep=0 p=0.003
eio op=read path=kanban.db minlen=4096 p=0.001
delay op=fsync delay=1ms p=0.2
`,
	Expect: map[string]Expect{
		kanbancore.ProfileLegacy:   {Fail: []string{oracle.ErrorFidelity}, Why: `I/O errors shadowed by "cannot rollback"`},
		kanbancore.ProfileHardened: {Pass: []string{oracle.Durability, oracle.JournalMode, oracle.ErrorFidelity}, Why: "every fault surfaced, nothing lost"},
	},
	Setup: seedTasks(8),
	Script: func(r *Script) error {
		r.Phase("start")
		if err := r.StartConnected(RoleSpec{Role: RoleWatcher, Proc: "notifier", Watch: WatchNotifier, Interval: 5 * time.Second}); err != nil {
			return err
		}
		if err := r.StartConnected(RoleSpec{Role: RoleWatcher, Proc: "dashboard", Watch: WatchDashboard, Interval: 10 * time.Second}); err != nil {
			return err
		}
		if err := startGateway(r, "gateway-1", &WorkerTemplate{Heartbeats: 2, HeartbeatsJitter: 3, Interval: 5 * time.Second,
			FailP: 0.15, BlockP: 0.1}); err != nil {
			return err
		}
		if err := r.StartConnected(RoleSpec{Role: RoleWriter, Proc: "writer-1", Interval: 3 * time.Second,
			Args: map[string]string{"ops": "create,heartbeat,complete,delete", "body": "1200"}}); err != nil {
			return err
		}
		r.Phase("soak")
		if err := r.LoadPlan(r.MainPlan()); err != nil {
			return err
		}
		d := r.LoadDuration(1000 * time.Second)
		r.Go(func() error {
			return r.CLILoop([]BoardOp{OpCreate, OpComplete, OpBlock, OpArchive, OpDelete}, 5*time.Second, d, map[string]string{"body": "900"})
		})
		if err := r.CLILoop([]BoardOp{OpList, OpHeartbeat, OpCreate, OpRecompute}, 5*time.Second, d, nil); err != nil {
			return err
		}
		r.bg.Wait()
		return clearThenListCreate(r, 100*time.Second)
	},
}
