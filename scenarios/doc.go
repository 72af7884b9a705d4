// Package scenarios is sqlchaos's multi-process scenario runner and its
// catalog: one scenario per corruption class of the seed, each reproducing
// its class in seconds from a seed, under a profile (legacy, pr32857,
// merged33482, hardened) and a driver (modernc, mattn).
//
// # The runner
//
// Execute runs one cell. It creates the board fault-free in a backing
// directory (kanbancore with the run's profile, plus the commit counter and
// ledger that every write transaction of every process bumps and appends
// to), starts faultfs over it in its own process with a trace, and runs the
// scenario's Script. A script starts roles — each a separate OS process of
// the same binary, re-executed through internal/reexec (chaosrun, or the
// test binary under go test) — and drives phases: it loads, changes and
// clears fault plans through faultfs's control socket and writes marks
// ("faults-cleared") into the trace. At the end, always (also on failure or
// SIGINT), it clears the faults, stops every role by pid (SIGTERM, then
// SIGKILL to its process group, which holds the workers a dispatcher
// spawned), unmounts, copies kanban.db and its sidecars into files/, writes
// meta.json, judges the run with every oracle checker and writes report.json
// and summary.md through the reports package.
//
// Board time runs DefaultScale (100) times faster than the wall clock: every
// process shares a Clock anchored at the run's start (passed to children in
// their RoleSpec), kanbancore measures its constants on it (a 30 s crash
// grace passes in 300 ms, a 60 s gateway tick in 600 ms), and the roles'
// periods (notifier 5 s, dashboard 10 s) are board time too.
//
// # Roles
//
//	scn-dispatcher  the gateway: kanbancore.Gateway ticks (one connect per board per
//	                tick, DispatchOnce, the corrupt-board latch); spawns workers as
//	                real child processes; records each tick, TypeSpawn and, per tick,
//	                TypeReap with the defunct children counted from /proc
//	scn-worker      heartbeats its task, then completes, blocks or crashes (seeded)
//	scn-launcher    a spawn pid that hands the task to the real worker and exits
//	scn-watcher     notifier (5 s) or dashboard (10 s): one long-lived connection
//	scn-cli         one short-lived process, one operation, a fresh first connection
//	scn-writer      one long-lived connection writing in a loop
//
// Every role writes histories/<proc>.jsonl: start, every call and return
// (with the error's class and SQLite code), every commit with its ledger
// sequence number and what it changed, every surfaced error, the journal
// mode each connection ended up in, and its exit.
//
// # Verdicts
//
// Each scenario states, per profile, its story (Expect): which checkers
// must fail (the class is reproduced), or that the profile holds (named
// checkers must pass outright, none may fail), or that the fix detects the
// damage (the detection named in the evidence). Where measurement
// contradicts the story, Findings pins, per profile/driver, what was
// measured instead, the evidence it must show and why; Rates declares the
// cells whose verdict is not stable run to run, with the rate they must
// reach under `chaosrun matrix --repeat`. Pre is the scenario's
// precondition (every scenario that loads its main plan also needs a rule
// of it to fire). The runner hands all of it, with the run's facts (script
// error, deadline, hung processes, incomplete input), to the one judge,
// package verdict, which also judges `chaosrun check` and the properties.
//
// # Where each idea lives
//
// catalog.go: the catalog, one list in the seed's order (a scenario is
// listed there and nowhere else); scn_*.go: one scenario each (story,
// findings, plan, script). runner.go: Execute and the Script a scenario's
// script drives (mount, processes, plans, clock); plan templates are the
// plan language's (faultfs/plan: Parse keeps {pid:NAME}, {dbsize},
// {dbpages}; the Script binds them with Plan.Bind when it loads a plan).
// proc.go, roles*.go, role_*.go: the role processes, started through
// internal/reexec with a typed RoleSpec (spec.go), recording through
// internal/ledger. expect.go: a cell's expectation as data for package
// verdict, the one judge. powercut.go: power cuts during a run.
package scenarios
