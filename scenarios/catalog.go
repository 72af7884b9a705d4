package scenarios

import (
	"maps"
	"strconv"
	"time"

	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/verdict"
)

// Scenario is one entry of the catalog: one corruption class of the seed,
// the workload and faults that provoke it, and what each profile is
// expected to do.
type Scenario struct {
	Name string
	// Fix names the seed fix (or PR-era defect) the class belongs to.
	Fix string
	// Doc explains the class, the mechanism the scenario uses, and what
	// was measured where it contradicts the story.
	Doc string
	// Roles summarises the processes the scenario runs.
	Roles string
	// Plan is the main fault plan (a template: {pid:PROC}, {dbsize} and
	// {dbpages} are filled in when it is loaded). --plan replaces it.
	Plan string
	// Profiles are the profiles the default matrix runs it under (default
	// legacy and hardened).
	Profiles []string
	// Expect states, per profile, which checkers must fail or that all
	// must hold: the story.
	Expect map[string]Expect
	// Findings pin, per "profile/driver" (or per profile, for every
	// driver), what was measured where it contradicts the story; such a
	// cell's verdict is finding when the run shows it again.
	Findings map[string]verdict.Pinned
	// Rates declare rate cells, keyed like Findings: cells whose verdict
	// is not stable run to run, with the rate their target must reach.
	Rates map[string]verdict.Rate
	// Pre is the scenario's precondition (besides "a fault of the main
	// plan fired", checked for every scenario that loads its main plan):
	// when it does not hold the cell is inconclusive.
	Pre Precondition
	// Sets are switch assignments ("journal_mode=delete") applied on top
	// of the profile in every process of every run of this scenario,
	// before the run's own --set flags: the environment the class needs.
	Sets []string
	// Bounds tune the oracle's time-based checkers.
	Bounds oracle.Bounds
	// Setup seeds the board fault-free before the mount (may be nil).
	Setup func(r *role, c *kanbancore.Conn) error
	// Script drives the run: roles, phases, plans.
	Script func(r *Script) error
	// Limit bounds the script's wall time (default 90 s + --duration).
	Limit time.Duration
	// Scale overrides DefaultScale for scenarios whose story depends on a
	// board-time window that real process start-up latency (0.1-0.2 s of
	// wall time, 10-20 s of board time at 100×) would swallow.
	Scale float64
}

func (sc *Scenario) wallLimit(cfg Config) time.Duration {
	l := sc.Limit
	if l == 0 {
		l = 90 * time.Second
	}
	return l + 2*cfg.Duration
}

// DefaultProfiles are the profiles of the default matrix.
var DefaultProfiles = []string{kanbancore.ProfileLegacy, kanbancore.ProfileHardened}

// MatrixProfiles returns the profiles the default matrix runs sc under.
func (sc *Scenario) MatrixProfiles() []string {
	if len(sc.Profiles) > 0 {
		return sc.Profiles
	}
	return DefaultProfiles
}

// catalog is every scenario, in the order of the seed's story (issue 4).
// A scenario is listed here and nowhere else.
var catalog []*Scenario

func init() {
	catalog = []*Scenario{eioWALDowngrade, tornWriteResurrection, lostWriteResurrection, tornExtend, rollbackShadow,
		dispatcherRestartRace, transientHeaderLatch, connectEIOZombies, redundantWALPragma,
		headerPeekLockDrop, pageCountWALFalseAlarm, firstConnectWALInit, powercutWAL, powercutDelete, soakAll}
}

// Lookup returns the scenario named name.
func Lookup(name string) (*Scenario, bool) {
	for _, sc := range catalog {
		if sc.Name == name {
			return sc, true
		}
	}
	return nil, false
}

// All returns the catalog in order.
func All() []*Scenario { return append([]*Scenario(nil), catalog...) }

// seedTasks is a Setup that creates n ready tasks.
func seedTasks(n int) func(r *role, c *kanbancore.Conn) error { return seedTasksBody(n, "") }

// seedTasksBody is seedTasks with task bodies of body bytes (the role's
// default when "").
func seedTasksBody(n int, body string) func(r *role, c *kanbancore.Conn) error {
	return func(r *role, c *kanbancore.Conn) error {
		if body != "" {
			r.spec.Args["body"] = body
		}
		for i := 0; i < n; i++ {
			if err := r.boardOp(c, OpCreate); err != nil {
				return err
			}
		}
		return nil
	}
}

// startGateway starts the gateway (dispatcher) role with workers that
// heartbeat a few times and complete.
func startGateway(r *Script, name string, w *WorkerTemplate) error {
	if w == nil {
		w = &WorkerTemplate{Heartbeats: 2, Interval: 10 * time.Second}
	}
	return r.Start(RoleSpec{Role: RoleDispatcher, Proc: name, Interval: 60 * time.Second, Worker: w, MaxSpawn: 2})
}

// startWriters starts n connected writer roles, writer-1 to writer-n, each
// running its ops (args, a copy each) every interval.
func startWriters(r *Script, n int, interval time.Duration, args map[string]string) error {
	for i := 1; i <= n; i++ {
		if err := r.StartConnected(RoleSpec{Role: RoleWriter, Proc: "writer-" + strconv.Itoa(i), Interval: interval,
			Args: maps.Clone(args)}); err != nil {
			return err
		}
	}
	return nil
}

// deleteAndCheckpoint deletes n tasks, one CLI process each, then runs a
// checkpoint in another, so that the pages the deletes freed are in the
// database file.
func deleteAndCheckpoint(r *Script, n int) error {
	for i := 0; i < n; i++ {
		if _, err := r.CLI(OpDelete, nil); err != nil {
			return err
		}
	}
	_, err := r.CLI(OpCheckpoint, nil)
	return err
}

// clearThenListCreate clears the plan and, in phase "after", keeps listing
// and creating tasks through CLI processes every 10 s for d: the board is
// used again once the faults stop.
func clearThenListCreate(r *Script, d time.Duration) error {
	if err := r.Clear(); err != nil {
		return err
	}
	r.Phase("after")
	return r.CLILoop([]BoardOp{OpList, OpCreate}, 10*time.Second, d, nil)
}

// oracleBounds returns bounds with MaxDefunct set.
func oracleBounds(maxDefunct int) oracle.Bounds {
	return oracle.Bounds{MaxDefunct: maxDefunct}
}
