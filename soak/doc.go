// Package soak runs many seeds of the scenario matrix as shards and merges
// what the shards found into one report.
//
// A soak is the set of cases (scenario, profile, driver, seed) that the
// catalog's cells × a seed range give. Shard I of N runs the cases whose
// hash points at I (see Owner), so N shards started anywhere — one machine,
// a GitHub Actions matrix, a Kubernetes Indexed Job — run together exactly
// the cases one unsharded run would, each once, with no coordination. Each
// shard writes one directory per case and shard.json, a record of the cases
// it was given and what became of each, kept current as it runs: a shard
// that died leaves a record without an end.
//
// Merge reads shard directories (and plain run directories) and aggregates
// them per cell: runs, outcome counts, reproduction rate, median time to
// reproduce; the plans that broke something, deduplicated by their
// canonical form; and the shards and cases that did not finish, which are
// never counted as held.
//
// # Where each idea lives
//
// case.go: cells, seed ranges, shards and the case partition (Owner,
// Cases); shard.go: running a shard and its shard.json record; runner.go:
// the scenario runner behind a shard; progress.go: the live line;
// merge.go: loading and aggregating directories; render.go: matrix.md,
// index.html, junit.xml and report.json of a merge, written with the
// reports package's grids, JUnit types and command lines.
package soak
