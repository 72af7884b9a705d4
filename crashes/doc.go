// Package crashes explores, offline and without FUSE, the database images a
// power cut could have left during a recorded run, and judges each with a
// fault-free SQLite connection (`chaosrun crashes RUNDIR`).
//
// A run recorded with faultfs capture mode (faultfs.Config.CaptureDir, or
// SQLCHAOS_CAPTURE=1) holds a snapshot of the backing directory at mount,
// the bytes of every write, and the fsync barriers, creates, unlinks and
// renames in trace order. The explorer replays them and, at every crash
// point — just before each fsync of the main database, its -wal or its
// -journal completes, and at the end — builds the images of several state
// classes (see Class): nothing lost, everything unsynced lost, every single
// unsynced write lost, every single unsynced write torn at sector
// boundaries (prefix, suffix, all but one sector), seeded random subsets,
// and every single write a fsync had reported durable lost (a lying fsync
// or disk cache: the lost-write class behind resurrected rows).
//
// Each image is opened on a private copy (with its -wal or -journal, so
// SQLite recovers) and judged: integrity_check; durability (with
// synchronous=FULL, or NORMAL in rollback-journal mode, every commit
// acknowledged before the cut is in the image's ledger; otherwise the
// ledger must be a prefix, no holes); and rows: the image's rows must be
// what its own ledger implies (no deleted row back, no inserted row
// missing, no row of a commit the image lacks, every task's status its
// last transition). The judgements are pure functions over the histories
// and what the connection read (judge.go), mirroring the oracle's
// durability, resurrection and structure checkers but relative to the
// commits the image holds.
//
// A state is named by an ID (State.ID) from which `chaosrun crashes RUNDIR
// --state ID --out DIR` rebuilds its files.
//
// Where each idea lives: record.go loads a recording (LoadRecording: the
// capture's snapshot and writes, and the trace's ops); timeline.go
// resolves it into file objects, crash points and the synced writes whose
// loss is explored (newTimeline, claims); state.go names states (Class,
// Alt, State IDs, sector pieces and torn masks); image.go is the replayer
// that builds a state's image (and the naive reference the tests compare
// it with); wal.go finds how much of a -wal SQLite's recovery reads;
// judge.go is the judgement, pure (what the histories expect, then per
// image the ledger, durability, rows predicted then compared, statuses);
// sqlite.go places an image and reads its facts with SQLite; explore.go
// is the explorer (Open, Plan: the states each class contributes and the
// budget's fair shares; Run: placing and judging in parallel, tallying,
// shrinking; Rebuild, CrossCheck, Save). The row key rendering is shared
// with the oracle (internal/rowkey), the found directory with the
// properties (internal/found).
package crashes
