package kanbancore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Gateway is the original's kanban dispatcher watcher: every tick it
// (optionally) reaps zombies first, then for each board under Root opens
// one fresh connection, runs DispatchOnce and closes it. A board whose
// connect or dispatch fails with a corrupt-board error is latched according
// to Switches.CorruptLatch:
//
//   - "permanent" (#26490/#28439): latched on the fingerprint (resolved
//     path, mtime ns, size) and retried only when the fingerprint changes;
//   - "quarantine" (as merged in #33482): retried after a flat
//     Switches.Quarantine or on fingerprint change;
//   - "backoff" (the dropped commit 5): the error is first confirmed —
//     header magic recheck (ValidateHeader, safe while connections are
//     open) and PRAGMA quick_check through SQLite; a board that passes both
//     is not latched. Confirmed corruption latches for BackoffInitial,
//     doubling per same-fingerprint failure up to BackoffMax; a successful
//     dispatch clears it.
//
// Other errors ("disk I/O error" included) are logged and retried on the
// next tick.
type Gateway struct {
	Root     string
	Opts     Options         // Open options for every board (driver, switches, observer, clock)
	Dispatch DispatchOptions // template for every board's DispatchOnce
	// SpawnerFor builds a board's spawner; nil uses Dispatch.Spawner.
	SpawnerFor func(board, dbPath string) Spawner
	// OpenFn opens a board; nil = Open. Tests inject connect failures here.
	OpenFn func(ctx context.Context, path string, opts Options) (*Conn, error)
	Logf   func(format string, args ...any)

	mu      sync.Mutex
	latches map[string]*latch
}

type fingerprint struct {
	path    string
	mtimeNs int64
	size    int64
}

type latch struct {
	form    CorruptLatch
	fp      fingerprint
	until   time.Time // zero for permanent
	backoff time.Duration
	err     string
}

// BoardTick is what a tick did for one board.
type BoardTick struct {
	Board       string          `json:"board"`
	Skipped     bool            `json:"skipped,omitempty"` // latched, not attempted
	Dispatched  bool            `json:"dispatched,omitempty"`
	Result      *DispatchResult `json:"result,omitempty"`
	Err         string          `json:"error,omitempty"`
	Latched     bool            `json:"latched,omitempty"`     // this tick latched the board
	Unconfirmed bool            `json:"unconfirmed,omitempty"` // backoff: corruption not confirmed, not latched
}

// TickResult is what one Gateway tick did.
type TickResult struct {
	Reaped []int       `json:"reaped,omitempty"`
	Boards []BoardTick `json:"boards"`
}

func (g *Gateway) now() time.Time {
	if g.Opts.Clock != nil {
		return g.Opts.Clock.Now()
	}
	return time.Now()
}

func (g *Gateway) logf(format string, args ...any) {
	if g.Logf != nil {
		g.Logf(format, args...)
	}
}

// LatchState reports whether a board is latched and until when (board
// time; zero for the permanent latch).
func (g *Gateway) LatchState(board string) (latched bool, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.latches[board]
	if l == nil {
		return false, time.Time{}
	}
	if l.form == CorruptLatchPermanent {
		return true, time.Time{}
	}
	return g.now().Before(l.until), l.until
}

// LatchBackoff returns the backoff latch's current backoff for a board (0
// when not latched or not in backoff form).
func (g *Gateway) LatchBackoff(board string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if l := g.latches[board]; l != nil {
		return l.backoff
	}
	return 0
}

func boardFingerprint(path string) fingerprint {
	p := path
	if r, err := filepath.EvalSymlinks(path); err == nil {
		p = r
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	fp := fingerprint{path: p}
	if st, err := os.Stat(p); err == nil {
		fp.mtimeNs, fp.size = st.ModTime().UnixNano(), st.Size()
	}
	return fp
}

// Tick runs one gateway iteration over every board under Root.
func (g *Gateway) Tick(ctx context.Context) TickResult {
	var res TickResult
	if g.Opts.Switches.ReaperHoisted {
		// Fix 7: reap first, regardless of how the boards fare.
		res.Reaped = ReapWorkerZombies()
		if len(res.Reaped) > 0 {
			g.logf("kanban gateway: reaped %d zombie worker(s), pids=%v", len(res.Reaped), res.Reaped)
		}
	}
	boards, err := ListBoards(g.Root)
	if err != nil {
		g.logf("kanban gateway: list boards: %v", err)
	}
	for _, b := range boards {
		if ctx.Err() != nil {
			break
		}
		bt := g.tickBoard(ctx, b)
		if bt.Result != nil {
			res.Reaped = append(res.Reaped, bt.Result.Reaped...)
		}
		res.Boards = append(res.Boards, bt)
	}
	return res
}

func (g *Gateway) tickBoard(ctx context.Context, board string) BoardTick {
	bt := BoardTick{Board: board}
	path, err := BoardPath(g.Root, board)
	if err != nil {
		bt.Err = err.Error()
		return bt
	}
	fp := boardFingerprint(path)
	g.mu.Lock()
	if l := g.latches[board]; l != nil {
		switch {
		case l.fp != fp:
			// The file changed: retry now (keep backoff memory only for the same fingerprint).
			if l.form == CorruptLatchPermanent {
				delete(g.latches, board)
			}
		case l.form == CorruptLatchPermanent || g.now().Before(l.until):
			g.mu.Unlock()
			bt.Skipped = true
			return bt
		}
	}
	g.mu.Unlock()

	open := g.OpenFn
	if open == nil {
		open = Open
	}
	conn, err := open(ctx, path, g.Opts)
	if err != nil {
		g.fail(ctx, board, path, err, &bt)
		return bt
	}
	opts := g.Dispatch
	if g.SpawnerFor != nil {
		opts.Spawner = g.SpawnerFor(board, path)
	}
	if opts.WorkspacesRoot == "" {
		opts.WorkspacesRoot, _ = WorkspacesRoot(g.Root, board)
	}
	r, err := DispatchOnce(ctx, conn, opts)
	conn.Close() // before any confirmation reads the file
	bt.Result = &r
	if err != nil {
		g.fail(ctx, board, path, err, &bt)
		return bt
	}
	bt.Dispatched = true
	g.mu.Lock()
	if l := g.latches[board]; l != nil {
		g.logf("kanban gateway: board %s dispatched again, latch (%s) cleared", board, l.form)
		delete(g.latches, board)
	}
	g.mu.Unlock()
	return bt
}

func (g *Gateway) fail(ctx context.Context, board, path string, err error, bt *BoardTick) {
	bt.Err = err.Error()
	if !IsCorruptBoardError(err) {
		g.logf("kanban gateway: board %s: %v (retrying next tick)", board, err)
		return
	}
	sw := g.Opts.Switches
	fp := boardFingerprint(path)
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.latches == nil {
		g.latches = map[string]*latch{}
	}
	prev := g.latches[board]
	switch sw.CorruptLatch {
	case CorruptLatchPermanent:
		g.latches[board] = &latch{form: CorruptLatchPermanent, fp: fp, err: bt.Err}
		g.logf("kanban gateway: board %s is corrupt, disabled until the file changes: %v", board, err)
	case CorruptLatchQuarantine:
		q := sw.Quarantine
		if q <= 0 {
			q = 300 * time.Second
		}
		g.latches[board] = &latch{form: CorruptLatchQuarantine, fp: fp, until: now.Add(q), backoff: q, err: bt.Err}
		g.logf("kanban gateway: board %s is corrupt, quarantined for %s: %v", board, q, err)
	case CorruptLatchBackoff:
		g.mu.Unlock()
		confirmed, why := g.confirmCorruption(ctx, path)
		g.mu.Lock()
		if !confirmed {
			bt.Unconfirmed = true
			g.logf("kanban gateway: board %s: %v, but %s: treating as transient", board, err, why)
			return
		}
		b := sw.BackoffInitial
		if b <= 0 {
			b = 30 * time.Second
		}
		if prev != nil && prev.fp == fp && prev.backoff > 0 {
			b = prev.backoff * 2
		}
		if mx := sw.BackoffMax; mx > 0 && b > mx {
			b = mx
		}
		g.latches[board] = &latch{form: CorruptLatchBackoff, fp: fp, until: now.Add(b), backoff: b, err: bt.Err}
		g.logf("kanban gateway: board %s is corrupt (%s), backing off %s: %v", board, why, b, err)
	default:
		g.logf("kanban gateway: board %s: %v (no latch)", board, err)
		return
	}
	bt.Latched = true
}

// confirmCorruption is commit 5's _confirm_corruption plus the header
// recheck: the header magic must be intact and PRAGMA quick_check must say
// ok for the error to count as transient. Both read through SQLite or
// through ValidateHeader, never with an open+close of the database file in
// a process that holds a connection on it.
func (g *Gateway) confirmCorruption(ctx context.Context, path string) (bool, string) {
	if err := ValidateHeader(path); err != nil {
		var he *HeaderError
		if errors.As(err, &he) {
			return true, "header magic is invalid"
		}
		return true, "header unreadable: " + err.Error()
	}
	c, err := openRaw(ctx, path, Options{Driver: g.Opts.Driver, Clock: g.Opts.Clock})
	if err != nil {
		return true, "quick_check could not open: " + err.Error()
	}
	defer c.Close()
	var res string
	if err := c.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&res); err != nil {
		return true, "quick_check failed: " + err.Error()
	}
	if res != "ok" {
		return true, fmt.Sprintf("quick_check: %s", res)
	}
	return false, "header magic intact and quick_check ok"
}

// Run ticks every interval (sleeping in slices of at most 1 s) until ctx is
// done. The first tick runs at once.
func (g *Gateway) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = 60 * time.Second
	}
	for {
		g.Tick(ctx)
		deadline := time.Now().Add(interval)
		for {
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(min(left, time.Second)):
			}
		}
	}
}
