package kanbancore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"regexp"
	"syscall"
	"time"
)

// ProcessOps are the process-level effects of the sweeps: liveness probes,
// signals and the polling sleep. The zero value uses the real ones
// (kill(pid,0) plus /proc/<pid>/status, syscall.Kill, time.Sleep, 10 polls
// of 500 ms); tests replace them, as the original's tests patch _pid_alive.
type ProcessOps struct {
	Alive            func(pid int) bool
	Signal           func(pid int, sig syscall.Signal) error
	Sleep            func(time.Duration)
	TermPolls        int           // default 10
	TermPollInterval time.Duration // default 500 ms
}

// PidAlive reports whether pid is a live process: kill(pid, 0) succeeds (or
// fails with EPERM) and, on Linux, /proc/<pid>/status does not say
// "State: Z" (a zombie counts as dead).
func PidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return !os.IsNotExist(err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("State:")) {
			return !bytes.Contains(line[6:], []byte("Z"))
		}
	}
	return true
}

func (p ProcessOps) alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if p.Alive != nil {
		return p.Alive(pid)
	}
	return PidAlive(pid)
}

func (p ProcessOps) signal(pid int, sig syscall.Signal) error {
	if p.Signal != nil {
		return p.Signal(pid, sig)
	}
	return syscall.Kill(pid, sig)
}

func (p ProcessOps) sleep(d time.Duration) {
	if p.Sleep != nil {
		p.Sleep(d)
		return
	}
	time.Sleep(d)
}

type terminateResult struct {
	pid        int
	signals    []string
	terminated bool
	survived   bool
}

func (r terminateResult) metadata() map[string]any {
	if r.pid == 0 {
		return nil
	}
	return map[string]any{"termination": map[string]any{"pid": r.pid, "signals": r.signals,
		"terminated": r.terminated, "survived": r.survived}}
}

// terminate is _terminate_reclaimed_worker: SIGTERM, then TermPolls
// liveness polls, then SIGKILL. ESRCH (the process is gone) counts as
// terminated.
func (p ProcessOps) terminate(pid int) terminateResult {
	r := terminateResult{pid: pid}
	polls := p.TermPolls
	if polls <= 0 {
		polls = 10
	}
	interval := p.TermPollInterval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	r.signals = append(r.signals, "SIGTERM")
	if err := p.signal(pid, syscall.SIGTERM); errors.Is(err, syscall.ESRCH) {
		r.terminated = true
		return r
	}
	for i := 0; i < polls; i++ {
		p.sleep(interval)
		if !p.alive(pid) {
			r.terminated = true
			return r
		}
	}
	r.signals = append(r.signals, "SIGKILL")
	if err := p.signal(pid, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
		r.terminated = true
		return r
	}
	p.sleep(interval)
	r.terminated = !p.alive(pid)
	r.survived = !r.terminated
	return r
}

// SweepOptions configure the dispatcher's sweeps.
type SweepOptions struct {
	Proc         ProcessOps
	FailureLimit int           // 0 = DefaultFailureLimit
	TTL          time.Duration // claim extension; 0 = Switches.ClaimTTL
}

type runningRow struct {
	id, lock, assignee string
	pid                int
	expires, hb        sql.NullInt64
	started, runStart  sql.NullInt64
	maxRuntime         sql.NullInt64
	failures           int64
}

// activeSince is when the task's active run started, or its first claim
// when it has no current run.
func (r runningRow) activeSince() int64 {
	if !r.runStart.Valid {
		return r.started.Int64
	}
	return r.runStart.Int64
}

func selectRunning(ctx context.Context, q querier, where string, args ...any) ([]runningRow, error) {
	return queryAll(ctx, q, func(s rowScanner) (runningRow, error) {
		var r runningRow
		err := s.Scan(&r.id, &r.lock, &r.assignee, &r.pid, &r.expires, &r.hb, &r.started, &r.runStart, &r.maxRuntime, &r.failures)
		return r, err
	}, `SELECT t.id, COALESCE(t.claim_lock,''), COALESCE(t.assignee,''), COALESCE(t.worker_pid,0),
		t.claim_expires, t.last_heartbeat_at, t.started_at,
		(SELECT r.started_at FROM task_runs r WHERE r.id=t.current_run_id), t.max_runtime_seconds, t.consecutive_failures
		FROM tasks t WHERE t.status='running' AND `+where+` ORDER BY t.id`, args...)
}

// deferReclaim, in its own write transaction op, pushes a running task's
// claim_expires ReclaimDeferGraceSeconds ahead (CAS on its claim lock) after
// its worker survived termination, with a `reclaim_deferred` event carrying
// worker_pid, expires and key: value.
func deferReclaim(ctx context.Context, c *Conn, op string, r runningRow, key string, value any) error {
	return c.WriteTxn(ctx, op, func(tx *Tx) error {
		newExp := tx.Now().Unix() + ReclaimDeferGraceSeconds
		if one, err := tx.execOne(ctx, `UPDATE tasks SET claim_expires=? WHERE id=? AND status='running' AND claim_lock IS ?`, newExp, r.id, nullStr(r.lock)); err != nil || !one {
			return err
		}
		tx.Updated("tasks", r.id)
		return addEvent(ctx, tx, r.id, 0, EventReclaimDeferred, map[string]any{"worker_pid": r.pid, "expires": newExp, key: value})
	})
}

// releaseRunning, in its own write transaction op, moves a running task back
// to ready (CAS on its claim lock), ends its run with end and emits event
// kind with payload(tx), built after the run is ended. It reports whether the
// compare-and-swap won.
func releaseRunning(ctx context.Context, c *Conn, op string, r runningRow, end runEnd, kind EventKind, payload func(tx *Tx) map[string]any) (bool, error) {
	var won bool
	err := c.WriteTxn(ctx, op, func(tx *Tx) error {
		var err error
		won, err = moveEndingRun(ctx, tx, r.id, StatusRunning, StatusReady,
			`UPDATE tasks SET status='ready', claim_lock=NULL, claim_expires=NULL, worker_pid=NULL
			WHERE id=? AND status='running' AND claim_lock IS ?`, []any{r.id, nullStr(r.lock)},
			end, kind, func() map[string]any { return payload(tx) })
		return err
	})
	return won, err
}

// ReleaseStaleClaims handles running tasks whose claim expired: a host-local
// live worker with a fresh heartbeat gets its claim extended
// (`claim_extended`); otherwise the worker is terminated (host-local only)
// and the task released to ready with its run closed as `reclaimed`; a
// host-local worker that survives termination defers the reclaim by 120 s
// (`reclaim_deferred`). The SELECT runs outside any transaction and each
// action in its own, as in the original. Returns the number reclaimed.
func ReleaseStaleClaims(ctx context.Context, c *Conn, o SweepOptions) (int, error) {
	now := c.Now().Unix()
	rows, err := selectRunning(ctx, c, `t.claim_expires IS NOT NULL AND t.claim_expires < ?`, now)
	if err != nil {
		return 0, err
	}
	ttl := c.claimTTL(o.TTL)
	reclaimed := 0
	for _, r := range rows {
		hostLocal := isHostLocal(r.lock)
		hbStale := r.hb.Valid && now-r.hb.Int64 > ClaimHeartbeatMaxStaleSeconds
		if hostLocal && r.pid > 0 && o.Proc.alive(r.pid) && !hbStale {
			err := c.WriteTxn(ctx, "release_stale_claims_extend", func(tx *Tx) error {
				newExp := tx.Now().Unix() + ttl
				if one, err := tx.execOne(ctx, `UPDATE tasks SET claim_expires=? WHERE id=? AND status='running' AND claim_lock=? AND claim_expires=?`,
					newExp, r.id, r.lock, r.expires.Int64); err != nil || !one {
					return err
				}
				tx.Updated("tasks", r.id)
				if _, err := tx.ExecContext(ctx, `UPDATE task_runs SET claim_expires=? WHERE id=(SELECT current_run_id FROM tasks WHERE id=?)`, newExp, r.id); err != nil {
					return err
				}
				return addEvent(ctx, tx, r.id, 0, EventClaimExtended, map[string]any{"reason": "pid_alive", "worker_pid": r.pid,
					"old_expires": r.expires.Int64, "expires": newExp})
			})
			if err != nil {
				return reclaimed, err
			}
			continue
		}
		term := terminateResult{}
		if hostLocal && r.pid > 0 {
			term = o.Proc.terminate(r.pid)
		}
		if term.survived {
			if err := deferReclaim(ctx, c, "release_stale_claims_defer", r, "signals", term.signals); err != nil {
				return reclaimed, err
			}
			continue
		}
		won, err := releaseRunning(ctx, c, "release_stale_claims", r,
			runEnd{outcome: OutcomeReclaimed, errText: "stale_lock=" + r.lock, metadata: term.metadata()}, EventReclaimed,
			func(tx *Tx) map[string]any {
				return map[string]any{"stale_lock": r.lock, "worker_pid": nullInt(int64(r.pid)),
					"claim_expires": r.expires.Int64, "last_heartbeat_at": nullInt(r.hb.Int64), "now": tx.Now().Unix(),
					"host_local": hostLocal, "heartbeat_stale": hbStale}
			})
		if err != nil {
			return reclaimed, err
		}
		if won {
			reclaimed++
		}
	}
	return reclaimed, nil
}

// CrashReport is what DetectCrashedWorkers found.
type CrashReport struct {
	Crashed     []string `json:"crashed,omitempty"`
	AutoBlocked []string `json:"auto_blocked,omitempty"`
	RateLimited []string `json:"rate_limited,omitempty"`
}

var (
	fpPid = regexp.MustCompile(`pid \d+`)
	fpTS  = regexp.MustCompile(`\b\d{9,}\b`)
)

// failureFingerprint normalises pids and timestamps out of an error text.
func failureFingerprint(s string) string {
	return fpTS.ReplaceAllString(fpPid.ReplaceAllString(s, "pid N"), "T")
}

// systemicCrashThreshold is how many identical crash fingerprints in one
// sweep make a failure systemic (breaker trips at once).
const systemicCrashThreshold = 3

// DetectCrashedWorkers sweeps running tasks with a worker pid and a
// host-local lock, all inside ONE write transaction (liveness probes
// included, as the original). Rows whose tasks.started_at — the FIRST claim
// ever, so the grace protects only the first spawn — is younger than
// Switches.CrashGrace are skipped, as are live pids. A dead worker is
// classified from the reap registry: rc 0 → `protocol_violation` (breaker
// limit 1), rc 75 → released to ready as `rate_limited` without counting a
// failure, anything else → `crashed`. After the transaction every crash goes
// through the failure counter; ≥3 crashes sharing a fingerprint in one sweep
// are systemic and trip the breaker at once.
func DetectCrashedWorkers(ctx context.Context, c *Conn, o SweepOptions) (CrashReport, error) {
	var rep CrashReport
	var crashes []workerExit
	grace := int64(c.opts.Switches.CrashGrace / time.Second)
	err := c.WriteTxn(ctx, "detect_crashed_workers", func(tx *Tx) error {
		rep, crashes = CrashReport{}, nil
		rows, err := selectRunning(ctx, tx.Conn, `t.worker_pid IS NOT NULL AND t.claim_lock LIKE ?`, Hostname()+":%")
		if err != nil {
			return err
		}
		now := tx.Now().Unix()
		for _, r := range rows {
			if grace > 0 && now-r.started.Int64 < grace {
				continue
			}
			if o.Proc.alive(r.pid) {
				continue
			}
			ex := classifyExit(r)
			won, err := releaseCrashed(ctx, tx, r, ex)
			if err != nil {
				return err
			}
			switch {
			case !won:
			case ex.class == ExitRateLimited:
				rep.RateLimited = append(rep.RateLimited, r.id)
			default:
				rep.Crashed = append(rep.Crashed, r.id)
				crashes = append(crashes, ex)
			}
		}
		return nil
	})
	if err != nil {
		return CrashReport{}, err
	}
	err = countCrashes(ctx, c, crashes, o.FailureLimit, &rep)
	return rep, err
}

// workerExit is how a running task's dead worker ended.
type workerExit struct {
	id      string // the task
	class   string // ClassifyWorkerExit's class
	code    int
	errText string
	outcome RunOutcome // the run's outcome
	kind    EventKind  // the event's kind
}

// classifyExit classifies the exit of r's dead worker from the reap
// registry.
func classifyExit(r runningRow) workerExit {
	class, code := ClassifyWorkerExit(r.pid)
	ex := workerExit{id: r.id, class: class, code: code, outcome: OutcomeCrashed, kind: EventCrashed}
	switch class {
	case ExitClean:
		ex.errText = fmt.Sprintf("worker pid %d exited 0 while the task was still running (protocol violation)", r.pid)
		ex.kind = EventProtocolViolation
	case ExitRateLimited:
		ex.errText = fmt.Sprintf("worker pid %d exited with code %d (rate limited)", r.pid, code)
		ex.outcome, ex.kind = OutcomeRateLimited, EventRateLimited
	case ExitNonzero:
		ex.errText = fmt.Sprintf("worker pid %d exited with code %d", r.pid, code)
	case ExitSignaled:
		ex.errText = fmt.Sprintf("worker pid %d killed by signal %d", r.pid, code)
	default:
		ex.errText = fmt.Sprintf("worker pid %d is gone (exit status unknown)", r.pid)
	}
	return ex
}

// releaseCrashed moves r back to ready (CAS on its worker pid and claim
// lock; a rate-limited exit also records its error), ends its run with the
// exit's outcome and emits the exit's event. It reports whether the CAS
// won.
func releaseCrashed(ctx context.Context, tx *Tx, r runningRow, ex workerExit) (bool, error) {
	q := `UPDATE tasks SET status='ready', claim_lock=NULL, claim_expires=NULL, worker_pid=NULL
				WHERE id=? AND status='running' AND worker_pid=? AND claim_lock IS ?`
	args := []any{r.id, r.pid, nullStr(r.lock)}
	if ex.class == ExitRateLimited {
		q = `UPDATE tasks SET status='ready', claim_lock=NULL, claim_expires=NULL, worker_pid=NULL, last_failure_error=?
				WHERE id=? AND status='running' AND worker_pid=? AND claim_lock IS ?`
		args = append([]any{ex.errText}, args...)
	}
	if one, err := tx.execOne(ctx, q, args...); err != nil || !one {
		return false, err
	}
	tx.Transition(r.id, StatusRunning, StatusReady)
	rid, err := endRun(ctx, tx, r.id, runEnd{outcome: ex.outcome, errText: ex.errText,
		metadata: map[string]any{"exit_class": ex.class, "exit_code": ex.code}})
	if err != nil {
		return false, err
	}
	return true, addEvent(ctx, tx, r.id, rid, ex.kind, map[string]any{"worker_pid": r.pid, "exit_class": ex.class,
		"exit_code": ex.code, "error": ex.errText})
}

// countCrashes puts every crash through the failure counter, each in its
// own transaction: a protocol violation, or a crash sharing its
// fingerprint with systemicCrashThreshold or more in this sweep, trips the
// breaker at once (limit 1). Blocked tasks go to rep.AutoBlocked.
func countCrashes(ctx context.Context, c *Conn, crashes []workerExit, failureLimit int, rep *CrashReport) error {
	counts := map[string]int{}
	for _, cr := range crashes {
		counts[failureFingerprint(cr.errText)]++
	}
	for _, cr := range crashes {
		limit := failureLimit
		protocol := cr.class == ExitClean
		systemic := counts[failureFingerprint(cr.errText)] >= systemicCrashThreshold
		if protocol || systemic {
			limit = 1
		}
		blocked, err := recordTaskFailure(ctx, c, cr.id, cr.errText, failureOpts{outcome: OutcomeCrashed, limit: limit,
			extra: map[string]any{"systemic": systemic, "protocol_violation": protocol}})
		if err != nil {
			return err
		}
		if blocked {
			rep.AutoBlocked = append(rep.AutoBlocked, cr.id)
		}
	}
	return nil
}

type failureOpts struct {
	outcome      RunOutcome
	limit        int // caller's failure_limit; 0 = DefaultFailureLimit
	releaseClaim bool
	endRun       bool
	extra        map[string]any
}

// recordTaskFailure increments the failure counter in its own transaction.
// At the limit (max_retries if set, else the caller's limit, else 2) the
// task is blocked with a `gave_up` event; below it, with releaseClaim, a
// running task goes back to ready with an `<outcome>` event. It returns
// whether the breaker tripped.
func recordTaskFailure(ctx context.Context, c *Conn, id, errText string, f failureOpts) (bool, error) {
	var tripped bool
	err := c.WriteTxn(ctx, "record_task_failure", func(tx *Tx) error {
		tripped = false
		t, err := getTask(ctx, tx.Conn, id)
		if err != nil || t == nil {
			return err
		}
		limit, source := int64(f.limit), "dispatcher"
		if limit <= 0 {
			limit = DefaultFailureLimit
		}
		if t.MaxRetries > 0 {
			limit, source = t.MaxRetries, "task"
		}
		failures := t.ConsecutiveFailures + 1
		release := ""
		if f.releaseClaim {
			release = `, claim_lock=NULL, claim_expires=NULL, worker_pid=NULL`
		}
		if failures >= limit && (t.Status == StatusRunning || t.Status == StatusReady) {
			if one, err := tx.execOne(ctx, `UPDATE tasks SET status='blocked', consecutive_failures=?, last_failure_error=?`+release+`
				WHERE id=? AND status=?`, failures, errText, id, t.Status); err != nil || !one {
				return err
			}
			tripped = true
			tx.Transition(id, t.Status, StatusBlocked)
			var rid int64
			if f.endRun {
				if rid, err = endRun(ctx, tx, id, runEnd{outcome: OutcomeGaveUp, errText: errText}); err != nil {
					return err
				}
			}
			p := map[string]any{"failures": failures, "effective_limit": limit, "limit_source": source,
				"error": errText, "trigger_outcome": f.outcome}
			for k, v := range f.extra {
				p[k] = v
			}
			return addEvent(ctx, tx, id, rid, EventGaveUp, p)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tasks SET consecutive_failures=?, last_failure_error=? WHERE id=?`, failures, errText, id); err != nil {
			return err
		}
		tx.Updated("tasks", id)
		if f.releaseClaim && t.Status == StatusRunning {
			if one, err := tx.execOne(ctx, `UPDATE tasks SET status='ready', claim_lock=NULL, claim_expires=NULL, worker_pid=NULL
				WHERE id=? AND status='running' AND claim_lock IS ?`, id, nullStr(t.ClaimLock)); err != nil || !one {
				return err
			}
			tx.Transition(id, StatusRunning, StatusReady)
			var rid int64
			if f.endRun {
				if rid, err = endRun(ctx, tx, id, runEnd{outcome: f.outcome, errText: errText}); err != nil {
					return err
				}
			}
			return addEvent(ctx, tx, id, rid, f.outcome.event(), map[string]any{"error": errText, "failures": failures})
		}
		return nil
	})
	return tripped, err
}

// EnforceMaxRuntime terminates host-local workers whose active run (not the
// first claim) has lasted max_runtime_seconds, releases the task to ready
// with outcome `timed_out` and counts a failure. Returns the ids.
func EnforceMaxRuntime(ctx context.Context, c *Conn, o SweepOptions) ([]string, error) {
	return sweepRunning(ctx, c, func(r runningRow, now, elapsed int64) (bool, error) {
		if elapsed < r.maxRuntime.Int64 {
			return false, nil
		}
		term := terminateResult{}
		if r.pid > 0 {
			term = o.Proc.terminate(r.pid)
		}
		errText := fmt.Sprintf("max runtime %ds exceeded after %ds (pid %d)", r.maxRuntime.Int64, elapsed, r.pid)
		won, err := releaseRunning(ctx, c, "enforce_max_runtime", r,
			runEnd{outcome: OutcomeTimedOut, errText: errText, metadata: term.metadata()}, EventTimedOut,
			func(*Tx) map[string]any {
				return map[string]any{"elapsed": elapsed, "limit": r.maxRuntime.Int64,
					"worker_pid": nullInt(int64(r.pid))}
			})
		if err != nil || !won {
			return false, err
		}
		_, err = recordTaskFailure(ctx, c, r.id, errText, failureOpts{outcome: OutcomeTimedOut, limit: o.FailureLimit})
		return true, err
	}, `t.max_runtime_seconds IS NOT NULL AND t.max_runtime_seconds > 0 AND t.claim_lock LIKE ?`, Hostname()+":%")
}

// sweepRunning selects the running tasks matching where and calls visit
// on each in turn, with the board time and how long its active run has
// lasted; it returns the ids of the tasks visit acted on (true), up to the
// first error.
func sweepRunning(ctx context.Context, c *Conn, visit func(r runningRow, now, elapsed int64) (bool, error), where string, args ...any) ([]string, error) {
	rows, err := selectRunning(ctx, c, where, args...)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rows {
		now := c.Now().Unix()
		acted, err := visit(r, now, now-r.activeSince())
		if acted {
			out = append(out, r.id)
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// DetectStaleRunning reclaims running tasks that have run longer than
// timeout with no heartbeat in the last hour (or none at all): outcome and
// event `stale`, NO failure counted. A host-local worker is terminated
// first; one that survives defers the reclaim. Off when timeout is 0.
func DetectStaleRunning(ctx context.Context, c *Conn, timeout time.Duration, o SweepOptions) ([]string, error) {
	if timeout <= 0 {
		return nil, nil
	}
	limit := int64(timeout / time.Second)
	return sweepRunning(ctx, c, func(r runningRow, now, elapsed int64) (bool, error) {
		if elapsed <= limit {
			return false, nil
		}
		if r.hb.Valid && now-r.hb.Int64 <= ClaimHeartbeatMaxStaleSeconds {
			return false, nil
		}
		term := terminateResult{}
		if isHostLocal(r.lock) && r.pid > 0 {
			term = o.Proc.terminate(r.pid)
		}
		if term.survived {
			return false, deferReclaim(ctx, c, "detect_stale_running_defer", r, "reason", "stale")
		}
		won, err := releaseRunning(ctx, c, "detect_stale_running", r,
			runEnd{outcome: OutcomeStale, metadata: term.metadata()}, EventStale,
			func(*Tx) map[string]any {
				return map[string]any{"worker_pid": nullInt(int64(r.pid)),
					"last_heartbeat_at": nullInt(r.hb.Int64), "timeout": limit}
			})
		return won && err == nil, err
	}, `1=1`)
}
