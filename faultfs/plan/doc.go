// Package plan is the fault plan language of faultfs: rules, their parser and
// canonical printer, and the deterministic engine that decides, for one
// filesystem operation, which rule (if any) fires and what it does.
//
// It imports nothing from go-fuse so that generators (gopter), the oracle and
// the CLI can use plans without a mount.
//
// # Grammar
//
// A plan is text with one rule per line. A '#' starts a comment that runs to
// the end of the line, so '#' may begin a line or follow a rule; blank lines
// are ignored. A rule is a fault kind followed by key=value words separated
// by spaces or tabs:
//
//	plan  = { line "\n" }
//	line  = [ rule ] [ "#" comment ]
//	rule  = kind { key "=" value }
//	kind  = "errno" | "eio" | "torn" | "lost" | "short" | "flip" | "delay" | "powercut"
//
// Keys, kinds and op names are lower case. Each key appears at most once per
// rule. Values contain no spaces and no '#'. Examples:
//
//	eio   op=write path=*-wal nth=1 count=1                        # the first WAL write fails once
//	torn  op=write path=*.db minlen=4096 keep=512 then=ok count=3  # three page writes keep 512 bytes
//	short op=read path=*.db off=0..100 keep=0 count=1              # one header read returns 0 bytes
//	errno op=open path=*.db errno=EIO count=1                      # opening the database fails once
//	errno op=write path=*-wal errno=ENOSPC after=10                # the disk fills after 10 WAL writes
//	flip  op=read path=*.db minlen=4096 p=0.01                     # 1% of page reads see one bit flipped
//	delay op=fsync delay=20ms jitter=10ms                          # every fsync takes 20-30ms
//	torn  op=write path=*.db keep=512 from=tail count=1            # one write keeps only its last 512 bytes
//	torn  op=write path=*.db sectors=random sector=512 count=1     # one write keeps a seeded subset of its sectors
//	eio   op=fsync path=*-wal drop=unsynced count=1                # an fsync fails and its unsynced writes are lost
//	powercut op=fsync path=*-wal nth=40                            # the power fails instead of the 40th WAL fsync
//	powercut after=2s keep=sectors sector=4096                     # the power fails 2s after the plan was loaded
//
// # Kinds
//
//	errno  fail the op with errno=NAME (required)
//	eio    fail the op with EIO; the same as errno errno=EIO, and printed as eio
//	torn   a write persists part of its data, then reports then=ok (the
//	       default: success, as if all was written) or then=ERRNO. Which part:
//	       keep=N its first N bytes (from=head, the default), keep=N from=tail
//	       its last N bytes, or sectors=random [sector=S] a seeded subset of
//	       its sectors (any subset, not only a prefix; sectors are S-byte
//	       blocks aligned to file offsets, S=512 by default, a write's first
//	       and last sector may be partial). keep= or sectors= is required.
//	lost   a write reports success and persists nothing; with op=fsync, an
//	       fsync reports success and syncs nothing (a lost fsync: faultfs's
//	       unsynced-write model keeps the file's writes unsynced)
//	short  a read returns only its first keep=N bytes (default 0)
//	flip   one bit of the data read or written is flipped: bit=N (an index
//	       into the op's data, bit 0 = least significant bit of byte 0) or,
//	       without bit=, a seeded bit within the op's data
//	delay  the op sleeps delay=DURATION (required) plus a seeded amount in
//	       [0, jitter], then proceeds normally
//	powercut
//	       the power fails: the op the rule fired on does not run, the mount
//	       freezes (every later op waits, see faultfs), and a later recover
//	       resets every file to its last fsynced content plus the part of the
//	       unsynced writes keep= says (faultfs's unsynced-write model):
//	         keep=none     nothing unsynced survives (the default)
//	         keep=all      everything survives (the cut loses nothing)
//	         keep=random   a seeded subset of whole writes survives
//	         keep=sectors [sector=S]  a seeded subset of each write's S-byte
//	                       sectors survives (S = 512 by default)
//	       A powercut rule fires once (count=1) unless count= says otherwise.
//	       `powercut after=DURATION` with no selection key and no nth, every
//	       or p is fired by a timer DURATION after the plan was loaded, even
//	       when no op comes; with a selection key it fires on the first
//	       matching op after DURATION.
//
// torn acts on writes, lost on writes and fsyncs, short on reads and flip
// on reads and writes: without op= these kinds get op=write, op=write,
// op=read and op=read|write, and any other op is an error. errno, eio, delay and powercut act on any op.
//
// # Keys
//
// Selection keys, allowed with every kind (a rule matches an op when all of
// its selection keys do):
//
//	op=NAME[|NAME...]  the op kinds: open, create, read, write, fsync, flush,
//	                   release, unlink, rename, setattr, truncate, fallocate,
//	                   getattr, lookup, mkdir, readdir; or any (the default)
//	path=GLOB          path.Match glob over the base name of the file, e.g.
//	                   *.db, *-wal, *-shm, *-journal, test.db (no '/')
//	off=LO..HI, off=N  the op's byte range [off, off+len) must meet the
//	                   inclusive range [LO, HI]; an op without a range
//	                   (len 0) is the single point at its offset (0 for ops
//	                   such as open or fsync)
//	minlen=N           the op's length is at least N bytes
//	pid=N              the caller's pid is N
//
// A plan may be a template (see Templates): pid={pid:NAME}, and an off=
// bound written {dbsize} or {dbpages}.
//
// Firing keys, allowed with every kind:
//
//	nth=N    the first match that may fire is the N-th (N >= 1)
//	after=N  the first N matches never fire (N >= 0)
//	after=DURATION  a Go duration with its unit (2s, 1.5s, 300ms): matches
//	         before DURATION has passed since the plan was loaded are not
//	         counted at all, so nth, every and count count from then on. A
//	         value without a unit is always the count N above; after takes
//	         one of the two, never both.
//	every=N  then only every N-th match may fire (N >= 1)
//	p=F      each match that may fire does so with seeded probability F,
//	         0 < F <= 1 (default 1)
//	count=N  fire at most N times; 0 or absent means persistent
//	state=on|off  off: the rule is present but switched off (default on)
//
// Effect keys: errno=NAME (errno), drop=unsynced (errno and eio with
// op=fsync exactly: the failed fsync also reverts the file's writes not yet
// covered by an fsync, as Linux drops the dirty pages of a failed writeback;
// nothing is left to sync, so the next fsync succeeds), keep=N (torn, short),
// from=head|tail and sectors=random (torn), keep=none|all|random|sectors
// (powercut), sector=S (torn with sectors=random, powercut with
// keep=sectors: a power of two from 512 to 1M), then=ok|ERRNO (torn), bit=N
// (flip), delay=DURATION and jitter=DURATION (delay). Any other kind/key
// combination is an error.
//
// Sizes (off, minlen, keep, sector) are decimal byte counts that may end in K or KiB
// (1024), M or MiB, G or GiB: 4K is 4096. Durations are Go durations (10ms,
// 1.5s). Errno names are matched without regard to case (eio, ENOSPC); see
// ErrnoNames for the table.
//
// # Canonical form
//
// Plan.String prints one rule per line: the kind, then the keys in the order
// op, path, off, minlen, pid, nth, after, every, p, errno, drop, keep, from,
// sectors, sector, then, bit, delay, jitter, count, state, separated by
// single spaces, without comments. Defaults are left out (op=any, p=1,
// count=0 and for powercut count=1, state=on, jitter=0, from=head, and the
// ops a kind implies are spelled out), keep is always printed for short,
// powercut and a torn rule without sectors=random, sector= always with
// sectors=random and keep=sectors, then always for torn; a powercut rule
// with count=0 prints it. Sizes are plain integers, durations print as Go
// prints them (after=2s, after=1m30s), errno names upper case, multiple ops
// are listed in the order above. Parse(p.String()) is deep-equal
// to p for every parsed plan, and printing is idempotent. The first four
// example lines of the Grammar section are their own canonical form (up to
// spacing and comments).
//
// # Templates
//
// A value that is known only when the plan runs is written as a
// placeholder, and a plan holding one is a template (Plan.Templated):
//
//	pid={pid:NAME}        the pid of the process NAME (letters, digits, _ . -)
//	off={dbsize}..HI      an off= bound: the database file's size in bytes
//	off=LO..{dbpages}     or in pages; either bound, or both, or off={dbsize}
//
// for example
//
//	short op=read path=kanban.db-wal pid={pid:writer-1} keep=0 count=16
//	torn op=write path=kanban.db off={dbsize}..1G keep=512 count=1
//
// Parse keeps a placeholder in the rule (Rule.PidVar, Rule.OffLoVar,
// Rule.OffHiVar) and String prints it back as written, so templates
// round-trip like any plan; LO <= HI is checked once both bounds are
// numbers. Plan.Bind(resolve) returns the concrete plan, asking resolve
// for each placeholder's value (the scenario runner knows its processes
// and the database file); it fails for a name resolve does not know, a
// value that is not a pid, or an off= range that comes out empty. A
// template never runs: Engine.Load refuses it with an error wrapping
// ErrUnbound, so a placeholder is never read as 0.
//
// # Errors
//
// Parse reports errors as "plan:LINE:COL: MSG" (ParseFile: "FILE:LINE:COL:
// MSG"), with 1-based lines and byte columns pointing at the offending word,
// and MSG saying what was expected, for example:
//
//	plan:1:1: unknown fault kind "tron" (expected one of: errno, eio, torn, lost, short, flip, delay, powercut)
//	plan:2:7: unknown key "nht" (expected one of: op, path, off, minlen, pid, nth, ...)
//	plan:3:14: bad value for nth: "x" (expected a positive integer)
//
// Parsing continues at the next line, so one call reports the first error of
// every faulty line (up to 20), as an ErrorList; a single error is a
// *ParseError.
//
// # Engine semantics
//
// Engine.Decide offers one Call to the rules in plan order. A rule matches
// an event when it is on and every selection key matches (flip also needs
// data to flip: len > 0, and len*8 > bit with bit=). Each rule counts its
// matches, m = 1, 2, 3, ...; every rule sees every event, so a rule's count
// does not depend on which other rules fired. With base = max(nth, after+1)
// (1 when neither is given), match m may fire when
//
//	m >= base  and  (m - base) % every == 0  and  fired < count (if count > 0)
//
// and then the probability draw passes (u < p). So nth=3 every=2 fires at
// matches 3, 5, 7, ...; after=2 every=3 at 3, 6, 9, ...
//
// The first rule in plan order that may fire does fire: it alone counts a
// firing and its Decision is returned; the rules after it count the match
// but neither draw nor fire. A delay rule is no exception: when it fires,
// the op sleeps and then proceeds without any other fault.
//
// A rule with after=DURATION neither matches nor counts until DURATION has
// passed since Load (Engine reads the wall clock only when a loaded rule has
// after=DURATION). A timed powercut rule (Rule.Timed) never matches ops:
// the server arms a timer at Load and calls FireTimed, which fires it once.
// Time-based firing is, of course, not reproducible from the seed.
//
// Note that nth, after, every and count count matches across all paths a
// rule's glob selects, in the order the engine sees them; a rule whose glob
// selects a single file is therefore as deterministic as that file's ops.
//
// # Determinism
//
// Every random draw (p, the flipped bit, the jitter, the sectors a torn
// sectors=random write keeps) is a pure function of
// (seed, rule index, event path, per-path op index, purpose), where the
// per-path op index counts every event the engine has seen on that exact
// path since the plan was loaded (0 for the first), whether or not a rule
// matched it. No draw comes from a shared random stream, so the faults on one
// file do not depend on how other files' ops interleave with it. The function
// is FNV-1a 64 over the seed (8 bytes, little-endian), the 1-based rule index
// (8 bytes LE), the path's bytes, a 0 byte, the op index (8 bytes LE) and a
// purpose byte (1 p, 2 flip, 3 jitter, 4 torn sectors, 5-7 power cut, see
// below), followed by the splitmix64 finalizer; u = (h >> 11) / 2^53 for p,
// h mod (len*8) for the flipped bit, h mod (jitter+1) nanoseconds for the
// jitter. For torn sectors=random the value h picks the kept sectors (see
// KeptSectors): sector k of the write (k = 0 for the sector holding its
// first byte) is kept when bit k%64 of w(k/64) is 1, with w(0) = h and
// w(j+1) = splitmix64(w(j)).
//
// Power-cut choices use the same function (exported as Draw) with the
// powercut rule's index (0 for a cut asked for by a control request), but
// their op index counts the file's unsynced-write model instead of the
// engine's events: it is the ordinal (0 for the first) of the write or
// truncate among all those recorded on that path since tracking started
// (faultfs keeps it; the path is the one the write was made under). For
// keep=random the write survives when the top bit of h (purpose 5) is 0;
// for keep=sectors its sectors are picked as above from h (purpose 6). The
// unsynced directory ops that survive are a prefix of them in op order, of
// length h mod (n+1) for n pending ops, h taken over the empty path with the
// cut's 1-based ordinal as index (purpose 7); keep=none keeps none and
// keep=all all of them. So the same seed and the same per-file sequence of
// writes give byte-identical files after the cut, whatever the interleaving
// of files.
//
// The engine only keeps per-path indices while the loaded plan has a rule
// that draws (p < 1, flip without bit=, delay with jitter), which keeps
// Decide cheap otherwise; Load resets them with the counters. SetEnabled(false)
// stops all firing, SetRule switches one rule; a rule that is off neither
// matches nor counts.
package plan
