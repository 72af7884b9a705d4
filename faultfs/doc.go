// Package faultfs is sqlchaos's fault-injecting FUSE filesystem: a loopback
// over a backing directory that consults a fault plan (package plan) on every
// operation, applies what the plan decides (errno, torn write, lost write,
// short read, bit flip, delay, failing open/create, power cut), and writes
// an op trace (package trace).
//
// # Process model
//
// The server always runs in its own process, never in one that runs SQLite
// (they deadlock). Start re-executes the current binary in role ServerRole,
// with a ServerConfig as its reexec spec (every main and TestMain calls
// reexec.Init first), and waits for its "mounted <dir>" line; `chaosrun
// mount` parses its flags into a ServerConfig and runs the same server,
// Serve, in the foreground. Stop unmounts and reaps it, escalating to lazy unmount, fusectl
// abort and SIGKILL when it does not answer; Unmount and CleanStale clear
// mounts left by a dead or hung server without ever touching the mount point.
//
// # What the kernel must not hide
//
// Files are opened without kernel passthrough (the open handle does not
// expose go-fuse's PassthroughFd, so every READ and WRITE reaches the
// server), and every file except a "-shm" one is opened with FOPEN_DIRECT_IO,
// so each SQLite pread/pwrite is exactly one FUSE op with SQLite's own offset
// and length and reads are never served from the page cache. "-shm" files
// stay page-cached because SQLite mmaps them (their dirty pages come back as
// writes by pid 0). POSIX locks stay in the kernel (EnableLocks off): they
// are correct across processes on one host, and go-fuse's forwarding to OFD
// locks breaks SQLite. Entry and attribute cache timeouts are 0 by default,
// so edits of the backing directory are seen at once.
//
// # The trace
//
// The first record is kind "mount" (Seed, Path = mount point, To = backing
// dir), then a "plan" record with the canonical plan; every later plan load
// or clear adds another. Each op is one "op" record (all ops by default, only
// the faulted ones with Config.TraceFaultsOnly) carrying the caller's process
// id (the request header's thread id mapped to its thread group), op, path
// relative to the mount (op "readdir" is the opening of a directory, also
// for fsync of it), offset, length, result ("ok" or an errno name), the
// bytes really persisted or returned (N), and the rule and fault when one
// fired. Ops that a power cut stopped are not traced (they never ran); the
// power cut adds records of kinds "powercut", "unsynced" and "recover" (see
// TraceKindPowerCut). Lookups that fail with ENOENT are traced only when a rule fired.
// Unlink, rename and truncate of a "-wal" or "-shm" file list in Holders the
// other processes that still had it open. A write at offset 0 of a database
// file (not -wal/-shm/-journal) whose data starts with the SQLite magic and
// that changes header bytes 18-19 of an existing file adds a "header" record
// with OldMode/NewMode such as "2/2" (WAL) and "1/1" (rollback).
//
// # Control
//
// While mounted, a unix socket takes one JSON request per line (see Client):
// load or clear a plan, read counters, write a mark, switch rules or all
// injection on and off, flush the trace, stop; and for power cuts: track,
// powercut, recover, state.
//
// # The unsynced-write model
//
// Writes reach the backing file at once (the server writes it within the
// op, and db, WAL and journal files are opened with FOPEN_DIRECT_IO), so
// what a power cut loses has to be remembered. While the model is on
// (Client.Track(true), the server flag --track-unsynced, or a loaded plan
// with a powercut or drop=unsynced rule; off by default), the server keeps,
// per file (backing inode), an undo log of the writes, truncates and
// size-growing fallocates not yet covered by a successful fsync or
// fdatasync of that file: for each, the bytes it persisted, the bytes it
// overwrote and the file's size before it. It also keeps the creates,
// mkdirs, unlinks and renames not yet covered by a successful fsync of
// their directory (of both directories for a rename), holding an unlinked
// (or renamed-over) file open so that it can be brought back. What is on
// the backing when the model is switched on counts as synced. An fsync
// that a `lost op=fsync` rule swallows syncs nothing; an fsync failed by an
// errno rule syncs nothing either, and with drop=unsynced it reverts the
// file's unsynced writes at once (traced as "unsynced" records, Result
// "dropped"), as Linux drops the dirty pages of a failed writeback, so the
// next fsync succeeds over lost data. (Linux's page cache may still serve
// the new bytes until they are evicted; here readers see the old bytes at
// once.)
// Directory fsyncs (FSYNCDIR) are the op "fsync" on the directory's path,
// so op=fsync rules match them too. Not modelled: rmdir, renames with
// flags (RENAME_EXCHANGE...), fallocate modes that punch or zero ranges,
// and changes made to the backing dir behind the mount's back. The model's
// memory is the unsynced bytes, twice (old and new): small with
// synchronous=FULL, up to a checkpoint's worth of WAL with NORMAL,
// unbounded with OFF.
//
// Cost: with the model off every op pays an atomic load and an uncontended
// shared lock (the freeze gate), about 30 ns: 40 -> 70 ns for the op hook
// without rules (BenchmarkOpHook). With it on, each write also fstats the
// file, reads the bytes it overwrites and copies both: about 15 us more per
// 4 KiB write on the 2-core CI VM (BenchmarkWritePath), which is +4-19% per
// acknowledged commit of the sqlite3 shell in WAL+FULL (0.83 -> 0.86-0.99
// ms) and about +35% in WAL+NORMAL (0.25 -> 0.34 ms) (BenchmarkShellCommit).
//
// # Power cut
//
// A power cut comes from the control request {"cmd":"powercut"}
// (Client.PowerCut, Mount.PowerCut), from a powercut rule firing on an op
// (the op does not run), or from a timed rule's timer (`powercut
// after=2s`). The server waits for the ops in flight, freezes the mount and
// writes a "powercut" trace record. While frozen, every op waits until the
// recover and then fails with EIO without having run: it never fails
// early, so no process sees an error it could act on, as with a real power
// cut. An op whose process is SIGKILLed meanwhile is interrupted by the
// kernel and ends at once. Three kinds of op do not wait: release and flush
// (they change no data, and the kernel sends them from dying processes
// without letting them be interrupted), and ops of the kernel itself (pid
// 0: the writeback of a page-cached, mmapped -shm), which fail with EIO at
// once because a process exiting with such a mapping waits for that
// writeback. A lookup that waited and failed is retried by the kernel after
// the recover, so a path lookup then sees the recovered files.
//
// The runner SIGKILLs every process using the mount (and never touches the
// mount point itself meanwhile: a stat would wait), then sends
// {"cmd":"recover"} (Client.Recover, Mount.Recover). The recover undoes the
// unsynced directory ops that do not survive, newest first (a file created
// since its directory's last fsync disappears, an unlinked file comes back
// at its name with its content, a rename goes back), then reverts each
// file's unsynced writes from its undo log and replays, in their order,
// those the cut's keep mode keeps:
//
//	keep=none     nothing unsynced survives (the default)
//	keep=all      everything survives
//	keep=random   each write or truncate survives whole, with seeded
//	              probability 1/2
//	keep=sectors  each write keeps a seeded subset of its blocks of sector=S
//	              bytes aligned to file offsets (S = 512 by default; the
//	              first and last may be partial), any subset, not only a
//	              prefix; a truncate survives whole or not
//
// With keep=random and keep=sectors the unsynced directory ops that survive
// are a seeded prefix of them, in op order (a journaling filesystem commits
// metadata in order). Every decision is an "unsynced" trace record (file,
// off, len, the writer's pid, kept/dropped/torn and the kept sector
// indices), and a "recover" record ends them; see TraceKindUnsynced. The
// draws use the plan engine's seeded hash (plan.Draw; "Determinism" in
// package plan), so the same seed and the same per-file writes give
// byte-identical files. After the recover everything on the backing counts
// as synced and the mount serves ops again: roles can restart and SQLite
// recovers. A mount stopped while frozen keeps the files as they were at
// the cut.
//
// A runner's sequence:
//
//	m, _ := faultfs.Start(ctx, cfg)   // cfg.Plan may hold a powercut rule
//	m.Track(true)                     // only for a control-request cut without such a plan
//	// ... start the roles, run the load ...
//	m.PowerCut(faultfs.PowerCutOptions{Keep: plan.CutRandom}) // or, for a plan's cut: m.WaitCut(ctx)
//	// ... SIGKILL every role by pid and reap it ...
//	res, _ := m.Recover()             // files reset, mount unfrozen
//	// ... restart the roles, or stop the mount and check the files ...
//
// State (control "state", Client.State, Mount.PowerState) says whether the
// model is on, whether the mount is frozen, the current or last cut
// (trigger, rule, op, path, pid, keep), how many ops wait, what is
// unsynced now and the last recover's counts.
//
// What SQLite 3.40.1 does under it (tests with the stock shell): in WAL
// mode with synchronous=FULL every acknowledged commit survives; with
// NORMAL the survivors are a prefix of the acknowledged commits (keep=none,
// random, sectors). In rollback-journal (DELETE) mode with FULL, a cut
// right after a commit loses that acknowledged commit: the journal's unlink
// that committed it is not followed by a directory fsync (only
// synchronous=EXTRA does that), so the journal comes back hot and the next
// opener rolls the commit back.
//
// # Where each idea lives
//
// server.go: ServerConfig and Serve, the server process; mount.go: Start,
// Stop and the clean-up of stale mounts (the process tree and mountinfo
// parsing are internal/proctree's); node.go: the passthrough nodes and the
// one place every operation asks the plan engine; powercut.go and
// powercut_node.go: the unsynced-write model and power cuts; control.go:
// the control socket and Client; capture.go: --capture for the crash
// explorer; pid.go: caller pids. The rules and their engine are
// faultfs/plan; the trace record is faultfs/trace.
package faultfs
