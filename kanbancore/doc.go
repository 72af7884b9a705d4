// Package kanbancore is sqlchaos's system under test: a multi-process kanban
// board on one SQLite file per board, re-implemented in Go from the
// behavioural spec of the original (hermes-agent's kanban_db.py), on either
// SQLite driver (modernc.org/sqlite or github.com/mattn/go-sqlite3). Every
// hardening fix of the seed story — PR #32857 as submitted, #33482 as merged,
// and the later corrections — is a named switch, so the same board runs with
// the pre-fix and the post-fix behaviour and the harness can show which one
// loses or corrupts data.
//
// # Connections
//
// Open is the original's connect(): header magic check, integrity guard,
// first-connect init flock, apply_wal_with_fallback, the pragma set and, on
// the first connect per process, the schema migration. WriteTxn is
// write_txn: BEGIN IMMEDIATE … COMMIT with the Observer hooks the harness
// uses to write its acknowledged-operation history, then the post-commit
// page-count check. A Conn is one SQLite connection, never a pool.
//
// Outside the raw-read page-count check, which reproduces the defect on
// purpose, no code in a process that holds a connection opens and closes
// the database file: close(2) of any descriptor cancels every POSIX lock the
// process holds on the file, SQLite's included. Header reads and backups go
// through ReadFilePrefix, which reads in-process only while no connection of
// this process has the file open and otherwise in a child process.
//
// # Errors
//
// Classify maps errors from both drivers to one taxonomy (IOERR with its
// extended code, CORRUPT, NOTADB, BUSY, LOCKED, FULL, CANTOPEN, READONLY,
// TORN_EXTEND, OTHER); *Error keeps the driver's error reachable with
// errors.Is/As. Two traps measured on this stack: a transient read EIO
// surfaces as SQLITE_CORRUPT, so only a fault-free integrity_check tells
// real corruption apart (the corrupt-board latch's job); and an EIO on the
// read-write open makes SQLite silently fall back to a read-only
// connection, which Open detects (modernc: sqlite3_db_readonly; mattn, which
// does not expose it: a descriptor on the file opened O_RDONLY in
// /proc/self/fdinfo), reopens once, and then refuses with ClassReadOnly.
//
// # Switches
//
// Each paragraph: what the legacy code did, what the fix changes, and the
// oracle check that catches the difference. Profiles bundle them: legacy
// (before #32857), pr32857 (8 commits), merged33482 (7 commits), hardened
// (all fixes and corrections); `chaosrun profiles` prints the table and
// `--set name=value` overrides any switch.
//
// wal_policy (fixes 2 and 8). legacy runs PRAGMA journal_mode=WAL on every
// connect and, on an OperationalError mentioning "locking protocol", "not
// authorized" or "disk i/o error", switches the file to DELETE — one
// transient EIO while the file happens to be idle flips it to DELETE for
// every process (header bytes 18/19 become 1/1). pr probes read-only first
// and returns at once on WAL, swallows a probe error and falls through to
// the set, re-raises EIO, and downgrades on the remaining markers only when
// the on-disk mode is not WAL. newest retries the probe, touches nothing
// when the mode cannot be read, never enables WAL on SQLite builds with the
// WAL-reset bug or on virtiofs/9p, retries BUSY (journal-mode changes ignore
// busy_timeout) and EIO, and downgrades only a provably non-WAL file with
// busy_timeout=0. Caught by the journal-mode checker (header 18/19 stay
// 2/2, no connection reports delete) and, for the mixed-mode corruption
// that follows, by structure and durability.
//
// synchronous, secure_delete, cell_size_check (fix 1). legacy runs
// synchronous=NORMAL with neither secure_delete nor cell_size_check; the
// fix sets FULL, ON, ON on every connect. Caught by the resurrection
// checker (deleted rows' text must not survive in freed pages, so a torn
// write cannot bring them back), durability (NORMAL may lose the last
// commits on power loss) and silent (a damaged cell must become an error,
// never wrong data).
//
// wal_autocheckpoint (fix 6). legacy keeps SQLite's 1000 pages; the fix
// checkpoints every 100. More checkpoints mean more main-file writes under
// faults; caught by structure and page-count.
//
// busy_timeout. legacy's connect(timeout=30) waits 30 s for locks; #32759
// waits 120 s. Caught by liveness (how long writers stall) and
// error-fidelity (BUSY surfaced instead of waiting).
//
// write_txn (fix 3). legacy issues an unguarded ROLLBACK after a failure:
// when SQLite already rolled back (EIO, BUSY, malformed) the ROLLBACK fails
// and "cannot rollback - no transaction is active" replaces the cause
// (*RollbackError keeps both in the chain). guarded swallows the rollback
// error; hardened also retries BEGIN IMMEDIATE and COMMIT five times with
// seeded 20–150 ms jitter on "database is locked/busy" and rolls back after
// a COMMIT that still fails. Caught by error-fidelity (surfaced error names
// the cause, never "cannot rollback") and liveness.
//
// page_count_check (fix 6). legacy has none: a torn extend (header page
// count above the file's) is found hours later as "malformed". raw-read is
// the PR-era check, kept faithful: open the file, read bytes 28–31, close —
// and the close cancels the process's POSIX locks (#71724): in DELETE mode a
// contender gets an exclusive lock while a connection of this process is
// still reading, and in WAL mode a peer with SQLite older than 3.51 then
// checkpoints and unlinks the -wal under live connections and an
// acknowledged commit is lost (SQLite 3.51+ peers refuse, see
// unixIsSharingShmNode); it also false-alarms in WAL mode, where bytes
// 28–31 lag until a checkpoint. pragma-stat takes PRAGMA page_count (read
// inside the transaction, just before COMMIT) and stat(2), without opening
// the file; in WAL mode it false-alarms on every commit that grows the
// database. skip-in-wal is pragma-stat skipped in WAL mode (KDC-new). Every
// form raises *TornExtendError after a successful, durable commit. Caught by
// page-count (the torn extend reported at commit time), durability and
// sidecars (the -wal unlinked or replaced under a live holder), and
// error-fidelity (false alarms on healthy databases).
//
// init_flock and init_flock_timeout. legacy takes no cross-process lock, so
// the first connects of several processes race on WAL activation (BUSY) and
// migration. unbounded (#32759) takes a blocking flock on <db>.init.lock on
// every connect and can hang a dispatcher forever (#36644); bounded polls
// for init_flock_timeout (10 s) and then proceeds without it. Caught by
// liveness (hung connects) and journal-mode/error-fidelity (BUSY from
// concurrent first WAL switches).
//
// fast_path (#50353). false runs the header check, integrity guard and init
// flock on every connect; true only on the first connect per process.
// Caught by liveness (connect cost) and sidecars (guard backups per
// connect).
//
// header_check. On in every profile, as in the original: the first 16
// bytes must be "SQLite format 3\x00", otherwise Open refuses with the
// original's "file is not a database: invalid SQLite header …" message,
// naming a TLS record header (#29507) when there is one. Off, the foreign
// file reaches SQLite and the connect sequence (journal-mode switch,
// pragmas, migration) runs against it until SQLite itself refuses, with a
// less specific error. Caught by structure (no schema written on top of
// foreign bytes) and error-fidelity (the refusal names the cause).
//
// integrity_guard and guard_backup. A probe runs integrity_check before
// init; a DatabaseError-class result (CORRUPT, NOTADB, a non-ok row) backs
// the file and its sidecars up and refuses with *CorruptError (the
// original's KanbanDbCorruptError); an OperationalError such as BUSY is
// returned as is, so a locked healthy board is not corrupt. timestamp
// backups make a new copy per refusal; content backups
// (<name>.corrupt.<sha256[:16]>.bak, #33804) reuse one copy per distinct
// bytes. Caught by sidecars (backup count and bytes) and structure (the
// original bytes unchanged).
//
// crash_grace (fix 4). legacy reclaims a running task whose worker pid
// fails the liveness probe at once, so a second dispatcher during a restart
// respawns duplicates; the fix skips tasks started less than 30 s ago
// (measured from the first claim's started_at, so only the first spawn is
// protected). Caught by workers (at most one live worker per task).
//
// claim_ttl. The claim lifetime (900 s) after which release_stale_claims
// frees a claim. Caught by workers and liveness.
//
// corrupt_latch, quarantine, backoff_initial, backoff_max (fix 5).
// permanent latches a board on a corrupt-looking error until its file's
// fingerprint changes or the gateway restarts, so one transient EIO that
// short-reads the header strands it; quarantine (as merged) retries after a
// flat 300 s; backoff (commit 5, dropped from the merge) doubles 30 s up to
// 900 s, confirms with quick_check and a header-magic recheck before
// latching, and clears on success. Caught by liveness (a healthy board left
// undispatched) and sidecars (no backup per tick).
//
// dispatch_lock (#50331). legacy lets every dispatcher on a board run
// dispatch_once at the same time: two gateways' sweeps interleave, one
// reclaims or counts a crash for a task the other has just claimed and
// spawned, and their small transactions contend for the write lock every
// tick. The fix takes a non-blocking flock on <db>.dispatch.lock first and
// skips the whole tick (SkippedLocked, no reap, no write) when another
// dispatcher holds it; the lock is flock(2) on a separate file, so it never
// touches SQLite's POSIX locks. Off in legacy, pr32857 and merged33482 (it
// came later), on in hardened. Caught by workers (at most one live worker
// per task), error-fidelity and liveness (BUSY between dispatchers).
//
// reaper_hoisted (fix 7). legacy reaps zombie workers only inside
// dispatch_once, after the board connect, so failing connects let zombies
// pile up and pid-liveness misread them; the fix reaps at the top of every
// gateway tick. Caught by zombies (no <defunct> children across ticks).
//
// # Environment switches
//
// journal_mode is not a fix: it says what the board's filesystem allows.
// wal (every profile) lets wal_policy run as written. delete models a
// filesystem that refuses WAL — NFS or SMB, where the original's
// apply_wal_with_fallback sees "locking protocol" or "not authorized" and
// falls back to journal_mode=DELETE. Every PRAGMA journal_mode=WAL a policy
// issues then fails with SQLITE_PROTOCOL "locking protocol" without
// running, so legacy and pr take their own fallback (a warning once per
// file per process, then DELETE) and newest, which sees a provably non-WAL
// file, keeps DELETE; a file found in WAL is put in DELETE mode first (it
// needs the file to itself, otherwise connect fails). No policy can switch
// the file to WAL. In rollback-journal mode a COMMIT writes its pages into
// the database file itself, so a torn write that extends the file leaves it
// short of its header's page count at commit time: the case the
// page-count check (fix 6) was written for, and skip-in-wal runs here.
//
// # Dispatcher behaviour that is not a switch
//
// These follow the hardened reference (KDB-b405) in every profile:
// check_respawn_guard holds a ready or review task back for the tick, with
// a `respawn_guarded` event and never an auto-block (rate_limit_cooldown,
// blocker_auth, recent_success, active_pr; DispatchOptions.NoRespawnGuard
// turns it off); the review column is claimed with ClaimReviewTask and
// spawned with skills ["sdlc-review"]; max_spawn, max_in_progress and the
// per-profile cap bound the running tasks; default_assignee is persisted
// with an `assigned` event; CompleteTask removes a scratch workspace only
// under the managed workspaces root and only once no child task is
// unfinished; GCEvents drops events older than 30 days of done and
// archived tasks only. A spawn failure of a review task releases it to
// ready, as KDB-b405 does (KDB-new returns it to review).
//
// Durations are board time (Options.Clock), so a harness can run the 30 s
// crash grace in 300 ms without changing behaviour.
//
// # Where each idea lives
//
// Connecting: connect.go (Open), conn.go (Conn, Tx, the write transaction),
// header.go and guard.go (the header check and the integrity guard),
// wal.go (journal-mode handling), initlock.go (the first-connect flock),
// pagecount.go and rawfile.go (the commit-time page-count checks).
// The board: schema.go, tasks.go, links.go, runs.go (TaskRun), events.go
// (TaskEvent), comments.go, review.go, maintenance.go; errors.go holds
// the board's error values and the SQLite error taxonomy. The dispatcher:
// gateway.go (ticks), dispatch.go, dispatchlock.go, spawner.go, crash.go
// (crash detection), reaper.go (zombie reaping), respawn.go. Switches and
// profiles: switches.go (every fix a switch, its values a named type) and
// profiles.go. Observer (api.go) is how a harness records commits without
// kanbancore knowing of it; the pure state machine is kanbancore/model.
package kanbancore
