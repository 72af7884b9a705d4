package kanbancore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// execPragma runs one journal-mode pragma and returns its first column. It
// is the seam through which tests make a pragma fail with a driver error
// (an injected "disk I/O error") without FUSE; production code never
// replaces it.
var execPragma = func(ctx context.Context, c *Conn, q string) (string, error) {
	return c.pragmaString(ctx, q)
}

// walWarned remembers, per process, which databases already logged the
// "falling back to journal_mode=DELETE" warning (the original warns once
// per db_label per process).
var walWarned sync.Map

// The WAL-incompatibility markers of each generation.
var (
	legacyWALMarkers = []string{"locking protocol", "not authorized", "disk i/o error"}
	prWALMarkers     = []string{"locking protocol", "not authorized"}
	newestWALMarkers = []string{"locking protocol", "not authorized", "disk i/o error"}
)

func hasMarker(err error, markers []string) bool {
	m := strings.ToLower(err.Error())
	for _, k := range markers {
		if strings.Contains(m, k) {
			return true
		}
	}
	return false
}

// ErrWALRefused is returned by the newest WAL policy when SQLite would not
// switch the file to WAL and the on-disk mode forbids a downgrade.
var ErrWALRefused = errors.New("WAL refused and downgrade unsafe")

// applyWAL runs apply_wal_with_fallback in the generation the WALPolicy
// switch names and returns the journal mode the connection ended up in
// ("wal", "delete", …, or "unknown" when the newest policy could not read
// it and touched nothing).
//
// Under journal_mode=delete (an environment switch, not a fix) the board's
// filesystem refuses WAL: a file found in WAL is first put in DELETE mode
// (such a filesystem never holds a WAL database), and every PRAGMA
// journal_mode=WAL the policy issues fails as SQLite fails it on NFS/SMB,
// with SQLITE_PROTOCOL "locking protocol" — so each generation takes its
// own fallback path and the connection ends in rollback-journal mode.
func (c *Conn) applyWAL(ctx context.Context) (string, error) {
	if c.opts.Switches.JournalMode == JournalEnvDelete {
		if err := c.leaveWAL(ctx); err != nil {
			return "", err
		}
	}
	switch c.opts.Switches.WALPolicy {
	case WALPolicyLegacy:
		return c.walLegacy(ctx)
	case WALPolicyPR:
		return c.walPR(ctx)
	case WALPolicyNewest, "":
		return c.walNewest(ctx)
	}
	return "", fmt.Errorf("kanbancore: unknown wal_policy %q", c.opts.Switches.WALPolicy)
}

// codeProtocol is SQLITE_PROTOCOL, what a WAL switch answers when the
// filesystem's locks cannot back WAL's shared memory.
const codeProtocol = 15

// setWALPragma is the statement the WAL policies issue to enable WAL.
const setWALPragma = "PRAGMA journal_mode=WAL"

// journalPragma runs one journal-mode pragma of a WAL policy through the
// execPragma seam; under journal_mode=delete it refuses PRAGMA
// journal_mode=WAL without running it, as a filesystem without WAL support
// does (an OperationalError carrying the "locking protocol" marker).
func (c *Conn) journalPragma(ctx context.Context, q string) (string, error) {
	if q == setWALPragma && c.opts.Switches.JournalMode == JournalEnvDelete {
		return "", &Error{Code: codeProtocol, Op: q,
			Err: errors.New("locking protocol (journal_mode=delete: this filesystem refuses WAL)")}
	}
	return execPragma(ctx, c, q)
}

// leaveWAL puts a file found in WAL mode into DELETE mode (the
// journal_mode=delete environment). It needs the file to itself: with
// another connection open it fails (BUSY), and connect fails with it.
func (c *Conn) leaveWAL(ctx context.Context) error {
	m, err := c.pragmaString(ctx, "PRAGMA journal_mode")
	if err != nil || !strings.EqualFold(m, "wal") {
		return nil // unreadable: the policy's own probe handles it
	}
	c.logf("kanbancore: journal_mode=delete: %s is in WAL mode; switching it to DELETE", c.path)
	got, err := c.pragmaString(ctx, "PRAGMA journal_mode=DELETE")
	if err != nil {
		return fmt.Errorf("kanbancore: journal_mode=delete: %s: PRAGMA journal_mode=DELETE: %w", c.path, err)
	}
	if !strings.EqualFold(got, "delete") {
		return fmt.Errorf("kanbancore: journal_mode=delete: %s stays in %q mode", c.path, got)
	}
	return nil
}

func (c *Conn) warnFallback(err error) {
	if _, dup := walWarned.LoadOrStore(c.key, true); !dup {
		c.logf("kanbancore: WAL journal_mode unsupported on this filesystem for %s (%v); falling back to journal_mode=DELETE", c.path, err)
	}
}

// walLegacy (HS-pre): always PRAGMA journal_mode=WAL; an OperationalError
// with a marker, "disk i/o error" included, downgrades to DELETE.
func (c *Conn) walLegacy(ctx context.Context) (string, error) {
	mode, err := c.journalPragma(ctx, setWALPragma)
	if err == nil {
		return strings.ToLower(mode), nil
	}
	if !isOperational(err) || !hasMarker(err, legacyWALMarkers) {
		return "", err
	}
	c.warnFallback(err)
	if _, err := c.journalPragma(ctx, "PRAGMA journal_mode=DELETE"); err != nil {
		return "", err
	}
	return "delete", nil
}

// walPR (HS-post, PR #32857 commits 2 and 8): read-only probe first, probe
// errors fall through to the set; EIO is re-raised; a marker downgrades only
// when the on-disk mode is not WAL.
func (c *Conn) walPR(ctx context.Context) (string, error) {
	if mode, err := c.journalPragma(ctx, "PRAGMA journal_mode"); err == nil && strings.EqualFold(mode, "wal") {
		return "wal", nil
	}
	mode, err := c.journalPragma(ctx, setWALPragma)
	if err == nil {
		return strings.ToLower(mode), nil
	}
	if !isOperational(err) || !hasMarker(err, prWALMarkers) {
		return "", err
	}
	if disk, derr := c.journalPragma(ctx, "PRAGMA journal_mode"); derr == nil && strings.EqualFold(disk, "wal") {
		return "", err // refuse to downgrade a WAL file
	}
	c.warnFallback(err)
	if _, err := c.journalPragma(ctx, "PRAGMA journal_mode=DELETE"); err != nil {
		return "", err
	}
	return "delete", nil
}

// walNewest (HSW-new): the probe retries I/O errors up to 4 times and an
// unreadable mode touches nothing; WAL is never enabled on builds with the
// WAL-reset bug or on virtiofs/9p; the set retries BUSY (journal-mode
// changes ignore busy_timeout, feasibility Q2/Q5e) and "disk i/o error"
// twice; a WAL pragma that silently answers another mode counts as a
// refusal; no downgrade when the on-disk mode is WAL or unknown, and the
// DELETE is issued with busy_timeout=0 so that any other opener makes it fail.
func (c *Conn) walNewest(ctx context.Context) (string, error) {
	mode, err := c.probeJournalMode(ctx)
	if err != nil {
		c.logf("kanbancore: journal mode of %s unknown (%v); leaving it untouched", c.path, err)
		return "unknown", nil
	}
	if mode == "wal" {
		return "wal", nil
	}
	if reason := c.walForbidden(ctx); reason != "" {
		c.logf("kanbancore: not enabling WAL on %s: %s", c.path, reason)
		return mode, nil
	}
	got, err := c.setWALRetrying(ctx)
	if err == nil && got == "wal" {
		return "wal", nil
	}
	if err != nil && (!isOperational(err) || !hasMarker(err, newestWALMarkers)) {
		return "", err
	}
	cause := err
	if cause == nil {
		cause = fmt.Errorf("PRAGMA journal_mode=WAL answered %q", got)
	}
	disk, derr := c.probeJournalMode(ctx)
	if derr != nil || disk == "wal" {
		return "", fmt.Errorf("kanbancore: %s: %w (on-disk mode %q): %w", c.path, ErrWALRefused, disk, cause)
	}
	if disk == "delete" {
		return "delete", nil
	}
	c.warnFallback(cause)
	if err := c.deleteNoWait(ctx); err != nil {
		return "", err
	}
	return "delete", nil
}

// probeJournalMode reads the journal mode, retrying I/O errors up to 4
// times.
func (c *Conn) probeJournalMode(ctx context.Context) (string, error) {
	var err error
	for i := 0; i <= 4; i++ {
		var mode string
		mode, err = c.journalPragma(ctx, "PRAGMA journal_mode")
		if err == nil {
			return strings.ToLower(mode), nil
		}
		if cl := Classify(err); cl != ClassIOErr && cl != ClassCorrupt {
			return "", err
		}
		if !c.sleep(ctx, 10*time.Millisecond<<i) {
			return "", ctx.Err()
		}
	}
	return "", err
}

// setWALRetrying issues PRAGMA journal_mode=WAL, retrying BUSY/LOCKED for up
// to the busy timeout (board time) and I/O errors twice.
func (c *Conn) setWALRetrying(ctx context.Context) (string, error) {
	start := c.Now()
	ioRetries := 0
	for {
		mode, err := c.journalPragma(ctx, setWALPragma)
		if err == nil {
			return strings.ToLower(mode), nil
		}
		switch Classify(err) {
		case ClassBusy, ClassLocked:
			if c.Now().Sub(start) >= c.opts.Switches.BusyTimeout {
				return "", err
			}
		case ClassIOErr:
			if ioRetries >= 2 {
				return "", err
			}
			ioRetries++
		default:
			return "", err
		}
		if !c.sleep(ctx, c.jitter()) {
			return "", ctx.Err()
		}
	}
}

// deleteNoWait sets journal_mode=DELETE with busy_timeout=0 and restores the
// busy timeout afterwards.
func (c *Conn) deleteNoWait(ctx context.Context) error {
	if _, err := c.ExecContext(ctx, "PRAGMA busy_timeout=0"); err != nil {
		return err
	}
	_, err := c.journalPragma(ctx, "PRAGMA journal_mode=DELETE")
	if _, rerr := c.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout=%d", c.opts.Switches.BusyTimeout.Milliseconds())); err == nil {
		err = rerr
	}
	return err
}

// walForbidden returns why WAL must not be enabled on this file, or "".
func (c *Conn) walForbidden(ctx context.Context) string {
	if v, err := c.pragmaString(ctx, "SELECT sqlite_version()"); err == nil && walResetBug(v) {
		return "SQLite " + v + " has the WAL-reset bug (3.7.0–3.51.2)"
	}
	switch t := fsType(filepath.Dir(c.key)); t {
	case "virtiofs", "9p":
		return t + " does not support WAL's shared memory"
	}
	return ""
}

// walResetBug reports whether SQLite version v (e.g. "3.54.1") is in the
// range with the WAL-reset bug: 3.7.0 up to 3.51.2.
func walResetBug(v string) bool {
	var p [3]int
	for i, f := range strings.SplitN(v, ".", 3) {
		p[i], _ = strconv.Atoi(f)
	}
	n := p[0]*1_000_000 + p[1]*1_000 + p[2]
	return n >= 3_007_000 && n <= 3_051_002
}

// fsType returns the filesystem type of the mount holding dir, from
// /proc/self/mountinfo ("" if unknown).
func fsType(dir string) string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	best, typ := -1, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		mp := fields[4]
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > best {
			best, typ = len(mp), fields[sep+1]
		}
	}
	return typ
}

// jitter returns a seeded 20–150 ms pause (the original's retry jitter).
func (c *Conn) jitter() time.Duration {
	return 20*time.Millisecond + time.Duration(c.rng.Int63n(int64(130*time.Millisecond)+1))
}

// sleep pauses for d of real time unless ctx ends first.
func (c *Conn) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// JournalMode returns the connection's current journal mode (a read-only
// PRAGMA journal_mode).
func (c *Conn) JournalMode(ctx context.Context) (string, error) {
	m, err := c.pragmaString(ctx, "PRAGMA journal_mode")
	return strings.ToLower(m), err
}
