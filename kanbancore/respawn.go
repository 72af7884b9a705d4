package kanbancore

import (
	"context"
	"database/sql"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Respawn-guard reasons (check_respawn_guard's return values).
const (
	GuardRateLimitCooldown = "rate_limit_cooldown"
	GuardBlockerAuth       = "blocker_auth"
	GuardRecentSuccess     = "recent_success"
	GuardActivePR          = "active_pr"
)

// Respawn-guard windows of the original, in board seconds.
const (
	RespawnGuardSuccessWindow = 3600  // a completed run this recent is proof of success
	RespawnGuardPRWindow      = 86400 // a PR URL in a comment this recent blocks a respawn
	DefaultRateLimitCooldown  = 300 * time.Second
	EnvRateLimitCooldown      = "SQLCHAOS_KANBAN_RATE_LIMIT_COOLDOWN_SECONDS"
	reviewLane, readyLane     = "review", "ready"
)

// respawnGuardRequeueKindsIn lists, for a SQL IN, the events that put a
// task back to work after its last success.
var respawnGuardRequeueKindsIn = sqlKinds(EventStatus, EventPromoted, EventUnblocked, EventReclaimed)

// respawnBlockerRE matches a last failure that reads like a quota or auth
// wall (the KDB-b405 form, auth\w* included).
var respawnBlockerRE = regexp.MustCompile(`(?i)\b(quota|rate[\s_\-]?limit|429|403|auth\w*|unauthorized|forbidden|billing|subscription|access[\s_]denied|permission[\s_]denied|invalid[\s_]api[\s_]key)\b`)

// prURLRE matches a GitHub pull-request URL in a comment.
var prURLRE = regexp.MustCompile(`(?i)https?://github\.com/[^/\s]+/[^/\s]+/pull/\d+`)

// ResolveRateLimitCooldown returns the rate-limit cooldown from
// $SQLCHAOS_KANBAN_RATE_LIMIT_COOLDOWN_SECONDS (a non-negative integer;
// 0 disables the cooldown); anything else — unset, blank, negative, not a
// number — gives the default 300 s.
func ResolveRateLimitCooldown() time.Duration {
	v := strings.TrimSpace(os.Getenv(EnvRateLimitCooldown))
	if v == "" {
		return DefaultRateLimitCooldown
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return DefaultRateLimitCooldown
	}
	return time.Duration(n) * time.Second
}

// GuardOptions are check_respawn_guard's arguments.
type GuardOptions struct {
	// Lane is "ready" (default) or "review". The review lane skips
	// recent_success and active_pr: a completed run and a PR comment are
	// the inputs of a review handoff, not signs of duplicate work.
	Lane string
	// RateLimitCooldown: 0 = ResolveRateLimitCooldown(); negative = none.
	RateLimitCooldown time.Duration
}

// CheckRespawnGuard returns why a ready (or review) task must not be
// spawned this tick, or "" when it may be. In priority order:
//   - rate_limit_cooldown: the latest ended run is rate_limited and ended
//     less than the cooldown ago. A rate-limited latest run past the
//     cooldown (or with the cooldown off) allows the spawn at once, so the
//     quota-flavoured last_failure_error it stamped cannot trap the task;
//   - blocker_auth: last_failure_error matches a quota/auth pattern (the
//     failure counter still trips the breaker eventually);
//   - recent_success (ready lane): a completed run ended within the last
//     hour and no re-queue event (status, promoted, unblocked, reclaimed)
//     came after it;
//   - active_pr (ready lane): a comment of the last 24 h holds a GitHub
//     PR URL.
//
// An unknown task gives "". Stale claim locks are never a guard reason.
func CheckRespawnGuard(ctx context.Context, c *Conn, id string, o GuardOptions) (string, error) {
	var lastErr sql.NullString
	err := c.QueryRowContext(ctx, `SELECT last_failure_error FROM tasks WHERE id=?`, id).Scan(&lastErr)
	if err == sql.ErrNoRows {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	now := c.Now().Unix()
	cooldown := o.RateLimitCooldown
	if cooldown == 0 {
		cooldown = ResolveRateLimitCooldown()
	}
	var outcome sql.NullString
	var ended sql.NullInt64
	err = c.QueryRowContext(ctx, `SELECT outcome, ended_at FROM task_runs WHERE task_id=? AND ended_at IS NOT NULL
		ORDER BY ended_at DESC, id DESC LIMIT 1`, id).Scan(&outcome, &ended)
	if err != nil && err != sql.ErrNoRows {
		return "", err
	}
	if err == nil && RunOutcome(outcome.String) == OutcomeRateLimited {
		if cooldown > 0 && now-ended.Int64 < int64(cooldown/time.Second) {
			return GuardRateLimitCooldown, nil
		}
		return "", nil
	}
	if lastErr.Valid && respawnBlockerRE.MatchString(lastErr.String) {
		return GuardBlockerAuth, nil
	}
	if o.Lane == reviewLane {
		return "", nil
	}
	var completedAt int64
	err = c.QueryRowContext(ctx, `SELECT ended_at FROM task_runs WHERE task_id=? AND outcome='completed' AND ended_at>=?
		ORDER BY ended_at DESC LIMIT 1`, id, now-RespawnGuardSuccessWindow).Scan(&completedAt)
	if err != nil && err != sql.ErrNoRows {
		return "", err
	}
	if err == nil {
		var n int
		if err := c.QueryRowContext(ctx, `SELECT COUNT(*) FROM task_events WHERE task_id=? AND created_at>=?
			AND kind IN (`+respawnGuardRequeueKindsIn+`)`, id, completedAt).Scan(&n); err != nil {
			return "", err
		}
		if n == 0 {
			return GuardRecentSuccess, nil
		}
	}
	bodies, err := column(ctx, c, `SELECT body FROM task_comments WHERE task_id=? AND created_at>=?`, id, now-RespawnGuardPRWindow)
	if err != nil {
		return "", err
	}
	for _, b := range bodies {
		if prURLRE.MatchString(b) {
			return GuardActivePR, nil
		}
	}
	return "", nil
}

// recordRespawnGuarded emits `respawn_guarded {reason, lane}` unless the
// task's newest event already says the same thing, so a task parked by the
// guard for many ticks does not grow its event log by one row per tick.
func recordRespawnGuarded(ctx context.Context, c *Conn, id, reason, lane string) error {
	return c.WriteTxn(ctx, "respawn_guarded", func(tx *Tx) error {
		var kind EventKind
		var payload sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT kind, payload FROM task_events WHERE task_id=? ORDER BY id DESC LIMIT 1`, id).Scan(&kind, &payload)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		if kind == EventRespawnGuarded && strings.Contains(payload.String, `"reason":"`+reason+`"`) {
			return nil
		}
		return addEvent(ctx, tx, id, 0, EventRespawnGuarded, map[string]any{"reason": reason, "lane": lane})
	})
}
