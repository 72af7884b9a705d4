package kanbancore

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The enumerated switches take values of these named types, so a
// misspelt value in a comparison or a profile does not compile. The
// strings are the values profiles, --set arguments, the README and
// report.json show.

// WALPolicy names the apply_wal_with_fallback generation (wal_policy).
type WALPolicy string

// WALPolicy values.
const (
	WALPolicyLegacy WALPolicy = "legacy" // always sets WAL, downgrades to DELETE on EIO
	WALPolicyPR     WALPolicy = "pr"     // post-#33482: probes first, re-raises EIO
	WALPolicyNewest WALPolicy = "newest" // retries, never touches an unknown mode
)

// Synchronous is the PRAGMA synchronous level set on every connect.
type Synchronous string

// Synchronous values.
const (
	SynchronousNormal Synchronous = "NORMAL"
	SynchronousFull   Synchronous = "FULL"
	SynchronousExtra  Synchronous = "EXTRA" // also syncs the directory after a rollback journal's unlink
)

// WriteTxnMode names how write transactions begin, roll back and commit
// (write_txn).
type WriteTxnMode string

// WriteTxnMode values.
const (
	WriteTxnLegacy   WriteTxnMode = "legacy"   // unguarded ROLLBACK, whose error replaces the cause
	WriteTxnGuarded  WriteTxnMode = "guarded"  // guarded ROLLBACK only (PR #32857 commit 3)
	WriteTxnHardened WriteTxnMode = "hardened" // guarded, BEGIN/COMMIT busy retry, rollback after a failed COMMIT
)

// PageCountCheck names the post-commit page-count check (page_count_check,
// fix 6).
type PageCountCheck string

// PageCountCheck values.
const (
	PageCountOff        PageCountCheck = "off"
	PageCountRawRead    PageCountCheck = "raw-read"    // opens and closes the db file (cancels POSIX locks)
	PageCountPragmaStat PageCountCheck = "pragma-stat" // PRAGMA page_count against stat
	PageCountSkipInWAL  PageCountCheck = "skip-in-wal" // pragma-stat, skipped in WAL mode
)

// InitFlock names the flock on <db>.init.lock around first-connect init
// (init_flock).
type InitFlock string

// InitFlock values.
const (
	InitFlockNone      InitFlock = "none"
	InitFlockUnbounded InitFlock = "unbounded" // #32759: blocks forever
	InitFlockBounded   InitFlock = "bounded"   // #36644: proceeds after InitFlockTimeout
)

// CorruptLatch names the gateway's corrupt-board latch (corrupt_latch).
type CorruptLatch string

// CorruptLatch values.
const (
	CorruptLatchPermanent  CorruptLatch = "permanent"  // pre-fix: disabled until the file changes
	CorruptLatchQuarantine CorruptLatch = "quarantine" // flat quarantine, as merged
	CorruptLatchBackoff    CorruptLatch = "backoff"    // commit 5: exponential, quick_check and header recheck
)

// GuardBackup names the integrity guard's backup (guard_backup).
type GuardBackup string

// GuardBackup values.
const (
	GuardBackupTimestamp GuardBackup = "timestamp" // a new copy per refusal
	GuardBackupContent   GuardBackup = "content"   // sha256-named: same bytes, one copy (#33804)
)

// JournalEnv is the journal_mode environment switch: whether the board's
// filesystem lets the WAL policy enable WAL.
type JournalEnv string

// JournalEnv values.
const (
	JournalEnvWAL    JournalEnv = "wal"    // WAL works (every profile)
	JournalEnvDelete JournalEnv = "delete" // the filesystem refuses WAL (NFS/SMB)
)

// Switches holds every hardening fix of the seed as a named switch, so the
// pre-fix and post-fix behaviours both exist. The package doc describes each.
// Durations are board time (see Clock), so a harness can scale them.
type Switches struct {
	// WALPolicy: "legacy" | "pr" (post-#33482) | "newest".
	WALPolicy WALPolicy
	// Synchronous: "NORMAL" | "FULL" | "EXTRA".
	Synchronous Synchronous
	// SecureDelete sets PRAGMA secure_delete=ON on every connect.
	SecureDelete bool
	// CellSizeCheck sets PRAGMA cell_size_check=ON on every connect.
	CellSizeCheck bool
	// WALAutocheckpoint in pages; 0 leaves SQLite's default (1000).
	WALAutocheckpoint int
	// BusyTimeout for the connection.
	BusyTimeout time.Duration
	// WriteTxn: "legacy" (unguarded ROLLBACK) | "guarded" (guarded ROLLBACK
	// only, as PR #32857 commit 3) | "hardened" (guarded, BEGIN/COMMIT busy
	// retry, rollback after a failed COMMIT).
	WriteTxn WriteTxnMode
	// PageCountCheck after COMMIT: "off" | "raw-read" | "pragma-stat" | "skip-in-wal".
	PageCountCheck PageCountCheck
	// InitFlock around first-connect init: "none" | "unbounded" | "bounded".
	InitFlock InitFlock
	// InitFlockTimeout bounds the "bounded" init flock (10 s in the original).
	InitFlockTimeout time.Duration
	// HeaderCheck validates the 16-byte header magic before connecting.
	HeaderCheck bool
	// IntegrityGuard runs integrity_check before first init and backs up
	// (content-addressed name) and refuses a malformed file.
	IntegrityGuard bool
	// CrashGrace: detect_crashed_workers skips tasks claimed less than this
	// long ago (0 = no grace, the legacy behaviour).
	CrashGrace time.Duration
	// ClaimTTL is the default claim lifetime (900 s).
	ClaimTTL time.Duration
	// CorruptLatch: "permanent" | "quarantine" | "backoff".
	CorruptLatch CorruptLatch
	// Quarantine is the flat quarantine of the "quarantine" latch (300 s).
	Quarantine time.Duration
	// BackoffInitial and BackoffMax bound the "backoff" latch (30 s → 900 s).
	BackoffInitial, BackoffMax time.Duration
	// ReaperHoisted reaps zombies at the top of every gateway tick, before
	// any board connect (fix 7); false reaps only inside dispatch_once.
	ReaperHoisted bool
	// FastPath (#50353): connects after the first one in this process skip
	// the header check, the integrity guard and the init flock, and only set
	// the pragmas. false runs the whole sequence on every connect, as the
	// code before #50353 did.
	FastPath bool
	// GuardBackup names the integrity guard's backup: "timestamp"
	// (<name>.corrupt.<YYYYmmdd_HHMMSS>[.<n>].bak, a new copy per refusal) |
	// "content" (<name>.corrupt.<sha256[:16]>.bak, same bytes → one copy, #33804).
	GuardBackup GuardBackup
	// DispatchLock (#50331): dispatch_once first takes a non-blocking flock
	// on <db>.dispatch.lock and skips the tick (DispatchResult.SkippedLocked)
	// when another dispatcher holds it. false lets several dispatchers run
	// their sweeps and spawn loops on one board at once, as before #50331.
	DispatchLock bool
	// JournalMode is an environment switch, not a fix: "wal" (every
	// profile) lets the WAL policy run as the board's filesystem allows;
	// "delete" models a filesystem that refuses WAL (NFS/SMB: "locking
	// protocol", "not authorized"), where every generation of
	// apply_wal_with_fallback ends in rollback-journal (DELETE) mode.
	JournalMode JournalEnv
}

// switchKind is the kind of a switch's values, as List shows it.
type switchKind string

// The switch kinds.
const (
	kindEnum     switchKind = "enum"
	kindBool     switchKind = "bool"
	kindInt      switchKind = "int"
	kindDuration switchKind = "duration"
)

// switchDef describes one switch: its snake_case name, a one-line doc, the
// values it accepts (nil for free-form), and accessors.
type switchDef struct {
	name   string
	doc    string
	values []string // enumerated values; nil for bool/int/duration
	kind   switchKind
	get    func(s *Switches) string
	set    func(s *Switches, v string) error
}

// enumSwitch is a switch of a named string type taking one of values
// (any case on input).
func enumSwitch[T ~string](name, doc string, p func(*Switches) *T, values ...T) switchDef {
	names := make([]string, len(values))
	for i, v := range values {
		names[i] = string(v)
	}
	parse := func(v string) (T, bool) {
		for _, ok := range values {
			if strings.EqualFold(v, string(ok)) {
				return ok, true
			}
		}
		return "", false
	}
	format := func(v T) string { return string(v) }
	return parsedSwitch(name, doc, kindEnum, p, format, parse, strings.Join(names, " | "), names)
}

// parsedSwitch is a switch whose value format prints and parse reads
// (false: invalid; valid says what is valid, in the error).
func parsedSwitch[T any](name, doc string, kind switchKind, p func(*Switches) *T, format func(T) string, parse func(string) (T, bool), valid string, values []string) switchDef {
	return switchDef{name: name, doc: doc, values: values, kind: kind,
		get: func(s *Switches) string { return format(*p(s)) },
		set: func(s *Switches, v string) error {
			x, ok := parse(v)
			if !ok {
				return fmt.Errorf("kanbancore: switch %s: invalid value %q (valid: %s)", name, v, valid)
			}
			*p(s) = x
			return nil
		}}
}

func boolSwitch(name, doc string, p func(*Switches) *bool) switchDef {
	parse := func(v string) (bool, bool) {
		switch strings.ToLower(v) {
		case "true", "on", "1", "yes":
			return true, true
		case "false", "off", "0", "no":
			return false, true
		}
		return false, false
	}
	return parsedSwitch(name, doc, kindBool, p, strconv.FormatBool, parse, "true | false, also on/off", nil)
}

func intSwitch(name, doc string, p func(*Switches) *int) switchDef {
	parse := func(v string) (int, bool) {
		n, err := strconv.Atoi(v)
		return n, err == nil && n >= 0
	}
	return parsedSwitch(name, doc, kindInt, p, strconv.Itoa, parse, "a non-negative integer", nil)
}

func durSwitch(name, doc string, p func(*Switches) *time.Duration) switchDef {
	parse := func(v string) (time.Duration, bool) {
		d, err := time.ParseDuration(v)
		return d, err == nil && d >= 0
	}
	return parsedSwitch(name, doc, kindDuration, p, time.Duration.String, parse, "a non-negative Go duration such as 300ms, 30s, 15m", nil)
}

// switchDefs lists every switch in display order.
var switchDefs = []switchDef{
	enumSwitch("wal_policy", "apply_wal_with_fallback generation: legacy always sets WAL and downgrades on EIO; pr probes first and re-raises EIO; newest retries, never touches an unknown mode",
		func(s *Switches) *WALPolicy { return &s.WALPolicy }, WALPolicyLegacy, WALPolicyPR, WALPolicyNewest),
	enumSwitch("synchronous", "PRAGMA synchronous on every connect (fix 1: NORMAL → FULL; EXTRA also syncs the directory after a rollback journal's unlink)",
		func(s *Switches) *Synchronous { return &s.Synchronous }, SynchronousNormal, SynchronousFull, SynchronousExtra),
	boolSwitch("secure_delete", "PRAGMA secure_delete=ON on every connect (fix 1): freed pages are zeroed",
		func(s *Switches) *bool { return &s.SecureDelete }),
	boolSwitch("cell_size_check", "PRAGMA cell_size_check=ON on every connect (fix 1): corrupt cells become read errors",
		func(s *Switches) *bool { return &s.CellSizeCheck }),
	intSwitch("wal_autocheckpoint", "PRAGMA wal_autocheckpoint in pages (fix 6: 100); 0 keeps SQLite's default 1000",
		func(s *Switches) *int { return &s.WALAutocheckpoint }),
	durSwitch("busy_timeout", "PRAGMA busy_timeout (legacy connect(timeout=30); #32759: 120 s)",
		func(s *Switches) *time.Duration { return &s.BusyTimeout }),
	enumSwitch("write_txn", "write_txn: legacy unguarded ROLLBACK replaces the cause; guarded swallows rollback errors (fix 3); hardened adds BEGIN/COMMIT busy retry",
		func(s *Switches) *WriteTxnMode { return &s.WriteTxn }, WriteTxnLegacy, WriteTxnGuarded, WriteTxnHardened),
	enumSwitch("page_count_check", "post-commit page-count check (fix 6): raw-read opens+closes the db file (cancels POSIX locks); pragma-stat and skip-in-wal do not",
		func(s *Switches) *PageCountCheck { return &s.PageCountCheck }, PageCountOff, PageCountRawRead, PageCountPragmaStat, PageCountSkipInWAL),
	enumSwitch("init_flock", "flock on <db>.init.lock around connect init: unbounded (#32759) blocks forever, bounded proceeds after init_flock_timeout (#36644)",
		func(s *Switches) *InitFlock { return &s.InitFlock }, InitFlockNone, InitFlockUnbounded, InitFlockBounded),
	durSwitch("init_flock_timeout", "bound of the bounded init flock (10 s)",
		func(s *Switches) *time.Duration { return &s.InitFlockTimeout }),
	boolSwitch("fast_path", "connects after the first in this process skip header check, integrity guard and init flock (#50353)",
		func(s *Switches) *bool { return &s.FastPath }),
	boolSwitch("header_check", "validate the 16-byte SQLite header magic before any connection opens",
		func(s *Switches) *bool { return &s.HeaderCheck }),
	boolSwitch("integrity_guard", "integrity_check before init; on corruption back up and refuse (KanbanDbCorruptError)",
		func(s *Switches) *bool { return &s.IntegrityGuard }),
	enumSwitch("guard_backup", "integrity-guard backup name: timestamp (a copy per refusal) or content (sha256, one copy per distinct bytes, #33804)",
		func(s *Switches) *GuardBackup { return &s.GuardBackup }, GuardBackupTimestamp, GuardBackupContent),
	durSwitch("crash_grace", "detect_crashed_workers skips tasks started less than this ago (fix 4: 30 s; 0 = none)",
		func(s *Switches) *time.Duration { return &s.CrashGrace }),
	durSwitch("claim_ttl", "default claim lifetime (900 s)",
		func(s *Switches) *time.Duration { return &s.ClaimTTL }),
	enumSwitch("corrupt_latch", "gateway corrupt-board latch: permanent (pre-fix), quarantine (flat, as merged), backoff (commit 5: exponential + quick_check + header recheck)",
		func(s *Switches) *CorruptLatch { return &s.CorruptLatch }, CorruptLatchPermanent, CorruptLatchQuarantine, CorruptLatchBackoff),
	durSwitch("quarantine", "flat quarantine of the quarantine latch (300 s)",
		func(s *Switches) *time.Duration { return &s.Quarantine }),
	durSwitch("backoff_initial", "first backoff of the backoff latch (30 s)",
		func(s *Switches) *time.Duration { return &s.BackoffInitial }),
	durSwitch("backoff_max", "cap of the backoff latch (900 s)",
		func(s *Switches) *time.Duration { return &s.BackoffMax }),
	boolSwitch("dispatch_lock", "dispatch_once takes a non-blocking flock on <db>.dispatch.lock and skips the tick when another dispatcher holds it (#50331)",
		func(s *Switches) *bool { return &s.DispatchLock }),
	boolSwitch("reaper_hoisted", "reap zombie workers at the top of every gateway tick, before any board connect (fix 7)",
		func(s *Switches) *bool { return &s.ReaperHoisted }),
	enumSwitch("journal_mode", "environment, not a fix: wal lets the WAL policy run; delete models a filesystem that refuses WAL (NFS/SMB), so connect ends in rollback-journal mode and no policy can enable WAL",
		func(s *Switches) *JournalEnv { return &s.JournalMode }, JournalEnvWAL, JournalEnvDelete),
}

func lookupSwitch(name string) (switchDef, bool) {
	n := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), "-", "_")
	for _, d := range switchDefs {
		if d.name == n {
			return d, true
		}
	}
	return switchDef{}, false
}

// SwitchNames returns every switch's snake_case name in display order.
func SwitchNames() []string {
	out := make([]string, len(switchDefs))
	for i, d := range switchDefs {
		out[i] = d.name
	}
	return out
}

// Set sets one switch by its snake_case name, validating the value. It takes
// either one "name=value" assignment (as --set passes it) or the name and the
// value as two arguments:
//
//	s.Set("page_count_check=raw-read")
//	s.Set("page_count_check", "raw-read")
//
// An unknown name or an invalid value is an error naming the valid ones.
func (s *Switches) Set(assignment string, value ...string) error {
	name, v := assignment, ""
	switch len(value) {
	case 0:
		var ok bool
		name, v, ok = strings.Cut(assignment, "=")
		if !ok {
			return fmt.Errorf("kanbancore: switch assignment %q: want name=value", assignment)
		}
	case 1:
		v = value[0]
	default:
		return fmt.Errorf("kanbancore: Set(%q, …): at most one value", assignment)
	}
	d, ok := lookupSwitch(name)
	if !ok {
		names := SwitchNames()
		sort.Strings(names)
		return fmt.Errorf("kanbancore: unknown switch %q (valid: %s)", name, strings.Join(names, ", "))
	}
	return d.set(s, strings.TrimSpace(v))
}

// Get returns a switch's value as Set accepts it.
func (s Switches) Get(name string) (string, error) {
	d, ok := lookupSwitch(name)
	if !ok {
		return "", fmt.Errorf("kanbancore: unknown switch %q", name)
	}
	return d.get(&s), nil
}

// SwitchInfo is one row of List.
type SwitchInfo struct {
	Name   string   `json:"name"`
	Value  string   `json:"value"`
	Doc    string   `json:"doc"`
	Values []string `json:"values,omitempty"` // valid values of an enumerated switch
	Kind   string   `json:"kind"`             // enum | bool | int | duration
}

// List returns every switch with its current value and a one-line doc, in
// display order.
func (s Switches) List() []SwitchInfo {
	out := make([]SwitchInfo, len(switchDefs))
	for i, d := range switchDefs {
		out[i] = SwitchInfo{Name: d.name, Value: d.get(&s), Doc: d.doc, Values: d.values, Kind: string(d.kind)}
	}
	return out
}

// Validate checks that every enumerated switch holds a valid value.
func (s Switches) Validate() error {
	for _, d := range switchDefs {
		if d.kind != kindEnum {
			continue
		}
		t := s
		if err := d.set(&t, d.get(&s)); err != nil {
			return err
		}
	}
	return nil
}

// ApplySets applies a list of "name=value" assignments in order (the CLI's
// repeated --set flags).
func (s *Switches) ApplySets(assignments []string) error {
	for _, a := range assignments {
		if err := s.Set(a); err != nil {
			return err
		}
	}
	return nil
}
