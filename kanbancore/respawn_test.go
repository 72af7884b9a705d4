package kanbancore

import (
	"slices"
	"testing"
	"time"
)

// guardOf runs CheckRespawnGuard on the ready lane with the default cooldown.
func (b *testBoard) guardOf(id string) string {
	b.t.Helper()
	r, err := CheckRespawnGuard(b.ctx, b.c, id, GuardOptions{})
	if err != nil {
		b.t.Fatalf("CheckRespawnGuard(%s): %v", id, err)
	}
	return r
}

// endedRun inserts a closed run with the given outcome that ended ago
// before board now.
func (b *testBoard) endedRun(id, outcome string, ago time.Duration) {
	b.t.Helper()
	end := b.clock.Now().Add(-ago).Unix()
	b.exec(`INSERT INTO task_runs(task_id, status, outcome, started_at, ended_at) VALUES(?,?,?,?,?)`,
		id, outcome, outcome, end-60, end)
}

// TestBoardRespawnGuard ports the nine check_respawn_guard tests of T-KDB
// (subtests carry their names) plus the rate-limit cooldown ones, on the
// hardened profile, both drivers, board time from the fake clock.
func TestBoardRespawnGuard(t *testing.T) {
	cases := []struct {
		name  string
		setup func(b *testBoard, id string)
		want  string
	}{
		{"none_on_fresh_task", func(b *testBoard, id string) {}, ""},
		{"blocker_auth_on_quota_error", func(b *testBoard, id string) {
			b.exec(`UPDATE tasks SET last_failure_error=? WHERE id=?`, "API quota exceeded: rate limit hit", id)
		}, GuardBlockerAuth},
		{"blocker_auth_on_auth_error", func(b *testBoard, id string) {
			b.exec(`UPDATE tasks SET last_failure_error=? WHERE id=?`, "403 Forbidden: unauthorized to access resource", id)
		}, GuardBlockerAuth},
		{"blocker_auth_on_authentication_error", func(b *testBoard, id string) {
			b.exec(`UPDATE tasks SET last_failure_error=? WHERE id=?`, "Authentication failed: invalid credentials", id)
		}, GuardBlockerAuth},
		{"blocker_auth_on_authorization_error", func(b *testBoard, id string) {
			b.exec(`UPDATE tasks SET last_failure_error=? WHERE id=?`, "authorization denied for scope repo", id)
		}, GuardBlockerAuth},
		{"ordinary_crash_text_not_guarded", func(b *testBoard, id string) {
			b.exec(`UPDATE tasks SET last_failure_error=? WHERE id=?`, "worker pid 4242 exited with code 1", id)
		}, ""},
		{"recent_success", func(b *testBoard, id string) { b.endedRun(id, "completed", 60*time.Second) }, GuardRecentSuccess},
		{"stale_success_not_guarded", func(b *testBoard, id string) {
			b.endedRun(id, "completed", (RespawnGuardSuccessWindow+60)*time.Second)
		}, ""},
		{"recent_success_bypassed_by_requeue_after_it", func(b *testBoard, id string) {
			b.endedRun(id, "completed", 60*time.Second)
			b.exec(`INSERT INTO task_events(task_id, kind, created_at) VALUES(?, 'promoted', ?)`, id, b.clock.Now().Unix()-30)
		}, ""},
		{"active_pr_in_comment", func(b *testBoard, id string) {
			must[int64](b.t)(AddComment(b.ctx, b.c, id, "worker", "PR created: https://github.com/totemx-AI/subsidysmart/pull/42"))
		}, GuardActivePR},
		{"old_pr_comment_not_guarded", func(b *testBoard, id string) {
			b.exec(`INSERT INTO task_comments(task_id, author, body, created_at) VALUES(?, 'worker', ?, ?)`,
				id, "PR: https://github.com/totemx-AI/subsidysmart/pull/10", b.clock.Now().Unix()-RespawnGuardPRWindow-60)
		}, ""},
		{"defers_rate_limited_within_cooldown", func(b *testBoard, id string) {
			b.endedRun(id, "rate_limited", 100*time.Second)
			b.exec(`UPDATE tasks SET last_failure_error=? WHERE id=?`, "429 rate limit: quota exhausted", id)
		}, GuardRateLimitCooldown},
		{"rate_limited_after_cooldown_skips_blocker_auth", func(b *testBoard, id string) {
			b.endedRun(id, "rate_limited", 301*time.Second)
			b.exec(`UPDATE tasks SET last_failure_error=? WHERE id=?`, "429 rate limit: quota exhausted", id)
		}, ""},
	}
	eachDriver(t, func(t *testing.T, d Driver) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				b := newTestBoard(t, d)
				id := b.create(CreateOptions{Title: tc.name, Assignee: "alice"})
				tc.setup(b, id)
				if got := b.guardOf(id); got != tc.want {
					t.Fatalf("guard %q, want %q", got, tc.want)
				}
			})
		}
		t.Run("rate_limit_cooldown_zero_allows_immediately", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.create(CreateOptions{Title: "rl", Assignee: "alice"})
			b.endedRun(id, "rate_limited", time.Second)
			b.exec(`UPDATE tasks SET last_failure_error=? WHERE id=?`, "rate limit: quota", id)
			t.Setenv(EnvRateLimitCooldown, "0")
			if got := b.guardOf(id); got != "" {
				t.Fatalf("cooldown 0 via env: %q", got)
			}
			if got := must[string](t)(CheckRespawnGuard(b.ctx, b.c, id, GuardOptions{RateLimitCooldown: -1})); got != "" {
				t.Fatalf("cooldown off via option: %q", got)
			}
			if got := must[string](t)(CheckRespawnGuard(b.ctx, b.c, id, GuardOptions{RateLimitCooldown: time.Hour})); got != GuardRateLimitCooldown {
				t.Fatalf("explicit 1 h cooldown: %q", got)
			}
		})
		t.Run("review_lane_skips_recent_success_and_active_pr", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.create(CreateOptions{Title: "rv", Assignee: "alice"})
			b.endedRun(id, "completed", 60*time.Second)
			must[int64](t)(AddComment(b.ctx, b.c, id, "worker", "https://github.com/o/r/pull/7"))
			if got := must[string](t)(CheckRespawnGuard(b.ctx, b.c, id, GuardOptions{Lane: "review"})); got != "" {
				t.Fatalf("review lane guarded %q", got)
			}
			b.exec(`UPDATE tasks SET last_failure_error='invalid api key' WHERE id=?`, id)
			if got := must[string](t)(CheckRespawnGuard(b.ctx, b.c, id, GuardOptions{Lane: "review"})); got != GuardBlockerAuth {
				t.Fatalf("review lane ignores blocker_auth: %q", got)
			}
		})
	})
}

func TestResolveRateLimitCooldownHandlesBadEnv(t *testing.T) {
	for _, v := range []string{"notanumber", "-5", "", "  "} {
		t.Setenv(EnvRateLimitCooldown, v)
		if got := ResolveRateLimitCooldown(); got != DefaultRateLimitCooldown {
			t.Errorf("env %q: %v, want %v", v, got, DefaultRateLimitCooldown)
		}
	}
	t.Setenv(EnvRateLimitCooldown, "42")
	if got := ResolveRateLimitCooldown(); got != 42*time.Second {
		t.Errorf("env 42: %v", got)
	}
}

// TestBoardDispatchRespawnGuard ports the six dispatch_once respawn-guard
// tests of T-KDB.
func TestBoardDispatchRespawnGuard(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		dispatch := func(b *testBoard, o DispatchOptions) (DispatchResult, *countingSpawner) {
			sp := &countingSpawner{}
			if !o.DryRun {
				o.Spawner = sp
			}
			o.WorkspacesRoot = b.t.TempDir()
			return must[DispatchResult](b.t)(DispatchOnce(b.ctx, b.c, o)), sp
		}
		guarded := func(res DispatchResult, id, reason string) bool {
			return slices.Contains(res.RespawnGuarded, GuardedTask{id, reason})
		}
		t.Run("defers_auth_error_without_auto_block", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.create(CreateOptions{Title: "quota-storm", Assignee: "alice"})
			b.exec(`UPDATE tasks SET last_failure_error=? WHERE id=?`, "rate limit exceeded: 429 Too Many Requests", id)
			res, sp := dispatch(b, DispatchOptions{})
			if slices.Contains(res.AutoBlocked, id) || !guarded(res, id, GuardBlockerAuth) || slices.Contains(sp.spawned, id) {
				t.Fatalf("%+v spawned %v", res, sp.spawned)
			}
			b.wantStatus(id, StatusReady)
		})
		t.Run("skips_recent_success", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.create(CreateOptions{Title: "recent-winner", Assignee: "alice"})
			b.endedRun(id, "completed", 60*time.Second)
			res, sp := dispatch(b, DispatchOptions{})
			if !guarded(res, id, GuardRecentSuccess) || len(sp.spawned) != 0 || len(res.AutoBlocked) != 0 {
				t.Fatalf("%+v", res)
			}
			b.wantStatus(id, StatusReady)
		})
		t.Run("skips_active_pr", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.create(CreateOptions{Title: "has-pr", Assignee: "alice"})
			must[int64](t)(AddComment(b.ctx, b.c, id, "worker", "Opened https://github.com/totemx-AI/subsidysmart/pull/99"))
			res, sp := dispatch(b, DispatchOptions{})
			if !guarded(res, id, GuardActivePR) || len(sp.spawned) != 0 || len(res.AutoBlocked) != 0 {
				t.Fatalf("%+v", res)
			}
			b.wantStatus(id, StatusReady)
		})
		t.Run("dry_run_no_auto_block", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.create(CreateOptions{Title: "dry-quota", Assignee: "alice"})
			b.exec(`UPDATE tasks SET last_failure_error='quota exceeded' WHERE id=?`, id)
			before := len(b.kinds(id))
			res, _ := dispatch(b, DispatchOptions{DryRun: true})
			if !guarded(res, id, GuardBlockerAuth) || len(res.AutoBlocked) != 0 || slices.Contains(res.WouldSpawn, id) {
				t.Fatalf("%+v", res)
			}
			b.wantStatus(id, StatusReady)
			if after := len(b.kinds(id)); after != before {
				t.Fatalf("dry run wrote events: %v", b.kinds(id))
			}
		})
		t.Run("allows_clean_task", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.create(CreateOptions{Title: "clean-task", Assignee: "alice"})
			res, sp := dispatch(b, DispatchOptions{})
			if !slices.Equal(sp.spawned, []string{id}) || len(res.RespawnGuarded) != 0 || len(res.AutoBlocked) != 0 {
				t.Fatalf("%+v", res)
			}
		})
		t.Run("emits_event_for_skipped_task", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.create(CreateOptions{Title: "event-check", Assignee: "alice"})
			b.endedRun(id, "completed", 60*time.Second)
			dispatch(b, DispatchOptions{})
			evs := must[[]TaskEvent](t)(ListEvents(b.ctx, b.c, id))
			last := evs[len(evs)-1]
			if last.Kind != "respawn_guarded" || last.Payload["reason"] != GuardRecentSuccess {
				t.Fatalf("events %+v", evs)
			}
			// A second guarded tick does not add a duplicate event; a new
			// reason does.
			dispatch(b, DispatchOptions{})
			if n := len(must[[]TaskEvent](t)(ListEvents(b.ctx, b.c, id))); n != len(evs) {
				t.Fatalf("second tick added %d events", n-len(evs))
			}
			b.exec(`UPDATE tasks SET last_failure_error='unauthorized' WHERE id=?`, id)
			dispatch(b, DispatchOptions{})
			evs2 := must[[]TaskEvent](t)(ListEvents(b.ctx, b.c, id))
			if len(evs2) != len(evs)+1 || evs2[len(evs2)-1].Payload["reason"] != GuardBlockerAuth {
				t.Fatalf("new reason not recorded: %+v", evs2)
			}
		})
		t.Run("rate_limited_worker_waits_out_cooldown", func(t *testing.T) {
			// End to end: a worker exits 75, the crash sweep requeues it
			// without a failure, and the guard holds it for the cooldown.
			b := newTestBoard(t, d, func(s *Switches) { s.CrashGrace = 0 })
			id := b.running("rl", exitedChild(t, RateLimitExitCode))
			res, sp := dispatch(b, DispatchOptions{})
			if !slices.Equal(res.RateLimited, []string{id}) || !guarded(res, id, GuardRateLimitCooldown) || len(sp.spawned) != 0 {
				t.Fatalf("%+v", res)
			}
			b.clock.Advance(DefaultRateLimitCooldown + time.Second)
			res, sp = dispatch(b, DispatchOptions{})
			if !slices.Equal(sp.spawned, []string{id}) || b.task(id).ConsecutiveFailures != 0 {
				t.Fatalf("after cooldown %+v spawned %v", res, sp.spawned)
			}
		})
		t.Run("no_respawn_guard_option", func(t *testing.T) {
			b := newTestBoard(t, d)
			id := b.create(CreateOptions{Title: "x", Assignee: "alice"})
			b.endedRun(id, "completed", 60*time.Second)
			res, sp := dispatch(b, DispatchOptions{NoRespawnGuard: true})
			if !slices.Equal(sp.spawned, []string{id}) || len(res.RespawnGuarded) != 0 {
				t.Fatalf("%+v", res)
			}
		})
	})
}
