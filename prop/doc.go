// Package prop is sqlchaos's property-based layer (issue 5): gopter
// generators for fault plans (plan.Plan values), kanban workloads over
// several role processes, profiles and switch sets; shrinkers that reduce a
// failing case to the fewest rules, smallest counts and shortest workload;
// a search driver that runs a property over generated cases within a
// budget, shrinks the first failure, re-runs it to count how often it
// reproduces (cross-process timing is not set by the seed), and saves it as
// a scenario-shaped plan file under testdata/found/ that
// `chaosrun run SCENARIO --plan FILE` replays.
//
// The properties themselves are ordinary go tests in this package:
//
//	TestPropPlanRoundTrip        generated plans round-trip through plan.Parse
//	TestPropModelAgreement       kanbancore in several processes, no faults,
//	                             ends in a state the commit-replay model accepts
//	TestPropDetectorHonesty      single faults aimed at a checker's target: the
//	                             checker fires on the legacy switch, not on the fix
//	TestPropHardenedNeverSilent  any honest generated plan: the hardened profile
//	                             gives no silent, shadowed or lost-commit verdict
//	TestPlantedBugShrinks        write_txn=legacy planted under hardened: the
//	                             property fails, shrinks to <= 2 rules, replays
//
// Seeds: -seed N (flag of this package's tests) or SQLCHAOS_SEED=N sets the
// seed of every generator; every failure prints it with the replay command.
// SQLCHAOS_SOAK=1 (make soak) lifts the case and shrink budgets.
package prop
