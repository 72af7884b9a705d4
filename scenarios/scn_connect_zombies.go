package scenarios

import (
	"fmt"
	"time"

	"github.com/sqlchaos/sqlchaos/history"

	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
)

// connectEIOZombies is the connect-eio-zombies scenario.
var connectEIOZombies = &Scenario{
	Name: "connect-eio-zombies",
	Fix:  "fix 7 (#32301): hoist the zombie reaper out of dispatch_once",
	Doc: `The gateway's board connect fails with EIO on every tick for a while (the open(2) of
the database file by the gateway process fails; other processes are unaffected), while
the workers it spawned finish. The legacy reaper runs inside dispatch_once, after the
connect, so no tick reaps and the finished workers stay defunct children of the
gateway. The hoisted reaper runs at the top of every tick whatever the board does.`,
	Roles: "gateway with 6 short workers, CLI",
	Plan:  "errno op=open path=kanban.db pid={pid:gateway-1} errno=EIO\n",
	Expect: map[string]Expect{
		kanbancore.ProfileLegacy:   {Fail: []string{oracle.Zombies}, Why: "defunct workers pile up while the connect fails"},
		kanbancore.ProfileHardened: {Pass: []string{oracle.Zombies}, Why: "reaped at the top of every tick"},
	},
	Bounds: oracleBounds(4),
	Pre:    atLeast(6, "gateway-1", history.TypeSpawn, "", "workers the gateway spawned before the fault"),
	Setup:  seedTasks(6),
	Script: func(r *Script) error {
		r.Phase("spawn")
		if err := r.Start(RoleSpec{Role: RoleDispatcher, Proc: "gateway-1", Interval: 10 * time.Second, MaxSpawn: 6,
			Worker: &WorkerTemplate{Heartbeats: 1, HeartbeatsJitter: 6, Interval: 10 * time.Second}}); err != nil {
			return err
		}
		r.Mark("gateway started")
		// The first tick spawns the workers; they finish 10-70 s later,
		// spread over several 10 s ticks. Fault the connect once they run.
		// 300 s of board time, and at least 15 s of wall time: spawns
		// are process starts, which a loaded machine slows.
		if ok, err := r.WaitUntil(max(300*time.Second, r.Clock().Board(15*time.Second)), func() bool {
			return r.Count("gateway-1", history.TypeSpawn, "") >= 6
		}); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("the gateway spawned %d workers before the deadline, need 6", r.Count("gateway-1", history.TypeSpawn, ""))
		}
		r.Phase("fault")
		if err := r.LoadPlan(r.MainPlan()); err != nil {
			return err
		}
		if err := r.Sleep(200 * time.Second); err != nil {
			return err
		}
		if err := r.Clear(); err != nil {
			return err
		}
		r.Phase("after")
		return r.CLILoop([]BoardOp{OpList}, 30*time.Second, r.LoadDuration(150*time.Second), nil)
	},
}
