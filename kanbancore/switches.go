package kanbancore

import "time"

// Switches holds every hardening fix of the seed as a named switch, so the
// pre-fix and post-fix behaviours both exist. The package doc describes each.
type Switches struct {
	// WALPolicy: "legacy" | "pr" (post-#33482) | "newest".
	WALPolicy string
	// Synchronous: "NORMAL" | "FULL".
	Synchronous string
	// SecureDelete sets PRAGMA secure_delete=ON on every connect.
	SecureDelete bool
	// CellSizeCheck sets PRAGMA cell_size_check=ON on every connect.
	CellSizeCheck bool
	// WALAutocheckpoint in pages; 0 leaves SQLite's default (1000).
	WALAutocheckpoint int
	// BusyTimeout for the connection.
	BusyTimeout time.Duration
	// WriteTxn: "legacy" (unguarded ROLLBACK) | "hardened" (guarded, busy retry).
	WriteTxn string
	// PageCountCheck after COMMIT: "off" | "raw-read" | "pragma-stat" | "skip-in-wal".
	PageCountCheck string
	// InitFlock around first-connect init: "none" | "unbounded" | "bounded".
	InitFlock string
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
	CorruptLatch string
	// Quarantine is the flat quarantine of the "quarantine" latch (300 s).
	Quarantine time.Duration
	// BackoffInitial and BackoffMax bound the "backoff" latch (30 s → 900 s).
	BackoffInitial, BackoffMax time.Duration
	// ReaperHoisted reaps zombies at the top of every gateway tick, before
	// any board connect (fix 7); false reaps only inside dispatch_once.
	ReaperHoisted bool
}
