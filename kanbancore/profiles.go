package kanbancore

import (
	"fmt"
	"strings"
	"time"
)

// Profile is a named set of switch values: one point in the seed's history.
type Profile struct {
	Name     string   `json:"name"`
	Summary  string   `json:"summary"`
	Switches Switches `json:"-"`
}

// Profile names.
const (
	ProfileLegacy      = "legacy"
	ProfilePR32857     = "pr32857"
	ProfileMerged33482 = "merged33482"
	ProfileHardened    = "hardened"
)

// Legacy returns the switches of the board before PR #32857: always-set WAL
// with EIO → DELETE downgrade, synchronous=NORMAL, unguarded ROLLBACK, no
// page-count check, no init flock, no crash grace, a permanent corrupt-board
// latch, the reaper inside dispatch_once, header and integrity guards on
// every connect with timestamped backups, connect(timeout=30).
func Legacy() Switches {
	return Switches{
		WALPolicy:         WALPolicyLegacy,
		Synchronous:       SynchronousNormal,
		SecureDelete:      false,
		CellSizeCheck:     false,
		WALAutocheckpoint: 0,
		BusyTimeout:       30 * time.Second,
		WriteTxn:          WriteTxnLegacy,
		PageCountCheck:    PageCountOff,
		InitFlock:         InitFlockNone,
		InitFlockTimeout:  10 * time.Second,
		FastPath:          false,
		HeaderCheck:       true,
		IntegrityGuard:    true,
		GuardBackup:       GuardBackupTimestamp,
		CrashGrace:        0,
		ClaimTTL:          900 * time.Second,
		CorruptLatch:      CorruptLatchPermanent,
		Quarantine:        300 * time.Second,
		BackoffInitial:    30 * time.Second,
		BackoffMax:        900 * time.Second,
		ReaperHoisted:     false,
		DispatchLock:      false,
		JournalMode:       JournalEnvWAL,
	}
}

// PR32857 returns the switches of PR #32857 as submitted: all 8 commits on
// top of Legacy, commit 5 (backoff latch with quick_check and header
// recheck) included. It does not contain #32759 (the init flock and the
// 120 s busy timeout are a separate PR; the PR text names that PR as
// "defense-in-depth on top"), so init_flock stays none and busy_timeout 30 s.
func PR32857() Switches {
	s := Legacy()
	s.Synchronous, s.SecureDelete, s.CellSizeCheck = SynchronousFull, true, true // commit 1
	s.WALPolicy = WALPolicyPR                                                    // commits 2 and 8
	s.WriteTxn = WriteTxnGuarded                                                 // commit 3
	s.CrashGrace = 30 * time.Second                                              // commit 4
	s.CorruptLatch = CorruptLatchBackoff                                         // commit 5
	s.PageCountCheck, s.WALAutocheckpoint = PageCountRawRead, 100                // commit 6
	s.ReaperHoisted = true                                                       // commit 7
	return s
}

// Merged33482 returns the switches of #33482 as merged: PR32857 without
// commit 5, so the latch is main's flat 300 s quarantine (c94ad8981/#33412).
func Merged33482() Switches {
	s := PR32857()
	s.CorruptLatch = CorruptLatchQuarantine
	return s
}

// Hardened returns every fix plus the later corrections: the newest WAL
// policy (HSW-new), the busy-retrying write_txn, the safe page-count check
// (pragma page_count + stat, skipped in WAL, #71724/KDC-new), the bounded
// first-connect init flock with the fast path (#32759, #36644, #50353),
// the single-dispatcher flock on <db>.dispatch.lock (#50331),
// the 120 s busy timeout, content-addressed backups (#33804) and the backoff
// latch of commit 5.
func Hardened() Switches {
	s := Merged33482()
	s.WALPolicy = WALPolicyNewest
	s.WriteTxn = WriteTxnHardened
	s.PageCountCheck = PageCountSkipInWAL
	s.InitFlock = InitFlockBounded
	s.FastPath = true
	s.DispatchLock = true
	s.BusyTimeout = 120 * time.Second
	s.GuardBackup = GuardBackupContent
	s.CorruptLatch = CorruptLatchBackoff
	return s
}

// Profiles returns the four profiles in historical order.
func Profiles() []Profile {
	return []Profile{
		{ProfileLegacy, "before PR #32857", Legacy()},
		{ProfilePR32857, "PR #32857 as submitted (8 commits, commit 5 included)", PR32857()},
		{ProfileMerged33482, "#33482 as merged (7 commits, flat 300 s quarantine)", Merged33482()},
		{ProfileHardened, "all fixes plus later corrections (safe page-count check, bounded init flock, newest WAL policy, backoff latch, dispatch lock)", Hardened()},
	}
}

// ProfileNames returns the profile names in historical order.
func ProfileNames() []string {
	var out []string
	for _, p := range Profiles() {
		out = append(out, p.Name)
	}
	return out
}

// ProfileByName returns a profile's switches; an unknown name is an error
// listing the valid ones.
func ProfileByName(name string) (Switches, error) {
	for _, p := range Profiles() {
		if strings.EqualFold(p.Name, strings.TrimSpace(name)) {
			return p.Switches, nil
		}
	}
	return Switches{}, fmt.Errorf("kanbancore: unknown profile %q (valid: %s)", name, strings.Join(ProfileNames(), ", "))
}
