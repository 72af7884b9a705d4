// Package prop is sqlchaos's property-based layer (issue 5): gopter
// generators for fault plans (plan.Plan values in canonical form), kanban
// workloads over several role processes, profiles and switch sets;
// shrinkers that reduce a failing case to the fewest rules, smallest
// counts and shortest workload; a search driver that runs a property over
// generated cases within a budget, shrinks the first failure (the plan
// first, then a scenario case's load-phase duration, halved down to a
// floor), re-runs it to count how often it reproduces (cross-process
// timing is not set by the seed), and saves it as a scenario-shaped plan
// file under testdata/found/ that `chaosrun run SCENARIO --plan FILE`
// replays.
//
// The properties are ordinary go tests in this package (names with "Prop"
// run under make soak):
//
//	TestPropPlanRoundTrip              generated plans round-trip through plan.Parse
//	TestPropShrinkCandidates           shrink candidates round-trip, shrink, stay in the space
//	TestPropModelAgreement             kanbancore in several processes, no faults: the
//	                                   commit ledger replays cleanly and (partitioned
//	                                   workloads) kanbancore/model reaches the same state
//	TestPropDetectorHonesty            error-fidelity: single read faults, write_txn legacy
//	                                   vs hardened, checker vs the library's ground truth
//	TestPropDetectorHonestyPageCount   page-count: torn page writes, check off vs raw-read
//	TestPropDetectorHonestyCatalog     every catalog scenario whose legacy expectation
//	                                   names failing checkers (HonestyTargets): single-
//	                                   fault variants of its main rule (target kept;
//	                                   count/nth/after/keep/errno/p varied), legacy K
//	                                   times and hardened via scenarios.Execute;
//	                                   hardened must not fail the checkers, legacy must
//	                                   fail them in K runs of a predicted variant (the
//	                                   main rule itself is case 0); cells the doc
//	                                   records as unexpected are excluded, printed
//	TestPropHardenedNeverSilent        any honest plan (HonestSpace): hardened gives no
//	                                   silent, lost-commit or shadowed-cause verdict
//	TestPlantedBugShrinks              write_txn=legacy planted under hardened: the
//	                                   property fails, shrinks to <= 2 rules, replays
//	FuzzPlanFromSeed, FuzzDetectorHonesty  go test -fuzz over the seed
//
// Seeds: -seed N (a flag of this package's tests) or SQLCHAOS_SEED=N seeds
// every generator; case i of a run uses CaseSeed(seed, property, i), so
// Sample(gen, CaseSeed(...)) regenerates it alone. Every failure prints the
// seed and the replay commands. Budgets: -short runs a handful of cases, a
// plain go test a few more, SQLCHAOS_SOAK=1 (make soak) runs long;
// -cases/-reruns/-duration/-scenario/-honesty-scenarios (or
// SQLCHAOS_PROP_CASES and SQLCHAOS_PROP_RERUNS) override. Failures are saved to
// SQLCHAOS_FOUND_DIR, default testdata/found at the module root.
//
// # Where each idea lives
//
// gen_plan.go and gen_workload.go: the generators and shrinkers; search.go:
// the search driver; scenario.go: properties over catalog scenarios;
// honesty.go and honesty_catalog.go: detector honesty (plans held as
// templates of the plan language, bound by the runner); modelrun.go: the
// ledger replay against the pure model (kanbancore/model); found.go:
// found plans (internal/found says where they go); budget.go: budgets and
// seeds. Children of the test binary get typed specs through
// internal/reexec and record through internal/ledger, as scenario roles do.
package prop
