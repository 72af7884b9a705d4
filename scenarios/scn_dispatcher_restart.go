package scenarios

import (
	"time"

	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
)

// dispatcherRestartRace is the dispatcher-restart-race scenario.
var dispatcherRestartRace = &Scenario{
	Name: "dispatcher-restart-race",
	Fix:  "fix 4 (#30727): crash grace period in detect_crashed_workers",
	Doc: `A gateway restart: a second dispatcher starts while the first is still ticking, and
the workers of the first are slow to start. The original's liveness probe can say
"dead" for a freshly spawned worker (fork → /proc visibility lag, psutil races); here
that false negative is made deterministic: the pid the dispatcher records is a launcher
that hands the task to the real worker and exits, so the recorded pid is dead while
the worker lives. Without the crash grace, the second dispatcher's crash sweep reclaims
the task and spawns a duplicate worker (and the first dispatcher does the same on its
next tick): two live workers on one task, respawns piling up. With the 30 s grace the
sweep skips tasks claimed less than 30 s ago, and the workers finish within it.`,
	Roles: "gateway-1 (launcher spawns), gateway-2 started 8 s later (overlapping), slow-starting workers, CLI",
	Plan:  "",
	Expect: map[string]Expect{
		kanbancore.ProfileLegacy:   {Fail: []string{oracle.Workers}, Why: "duplicate workers on one task after the second dispatcher's sweep"},
		kanbancore.ProfileHardened: {Pass: []string{oracle.Workers}, Why: "the crash grace skips tasks claimed within 30 s"},
	},
	// At 100× a worker process's start-up (~0.15 s wall) alone would be
	// 15 s of the 30 s grace; at 20× it is 3 s, as on a real host
	// where a 30 s grace dwarfs process start-up.
	// 10× (not 100×): the 30 s crash grace is 3 s of wall time, more
	// than a slow worker's process start takes on a loaded machine (at
	// 20× the hardened cells flipped under three parallel cells).
	Scale: 10,
	Pre: allOf(atLeast(1, "gateway-2", history.TypeStart, "", "second dispatcher started"),
		atLeast(4, "gateway-", history.TypeSpawn, "", "workers spawned")),
	Setup: seedTasks(4),
	Script: func(r *Script) error {
		w := &WorkerTemplate{StartDelay: 5 * time.Second, Heartbeats: 3, Interval: 4 * time.Second}
		spec := func(name string) RoleSpec {
			return RoleSpec{Role: RoleDispatcher, Proc: name, Interval: 20 * time.Second, Worker: w,
				MaxSpawn: 4, Launcher: true}
		}
		r.Phase("gateway-1")
		if err := r.Start(spec("gateway-1")); err != nil {
			return err
		}
		if err := r.Sleep(8 * time.Second); err != nil {
			return err
		}
		r.Phase("restart")
		if err := r.Start(spec("gateway-2")); err != nil {
			return err
		}
		if err := r.Sleep(10 * time.Second); err != nil {
			return err
		}
		if err := r.Stop("gateway-1"); err != nil {
			return err
		}
		r.Phase("after")
		return r.CLILoop([]BoardOp{OpCreate, OpList}, 15*time.Second, r.LoadDuration(60*time.Second), nil)
	},
}
