package kanbancore

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/kanbancore/model"
)

// agreementSeed is the base seed; SQLCHAOS_SEED overrides it.
func agreementSeed(t *testing.T) int64 {
	if s := os.Getenv("SQLCHAOS_SEED"); s != "" && s != "random" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("SQLCHAOS_SEED: %v", err)
		}
		return v
	}
	return 20260527
}

func errClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrUnknownTask), errors.Is(err, ErrUnknownParent), errors.Is(err, model.ErrUnknown):
		return "unknown"
	case errors.Is(err, ErrCycle), errors.Is(err, model.ErrCycle):
		return "cycle"
	case errors.Is(err, ErrSelfLink), errors.Is(err, model.ErrSelf):
		return "self"
	case errors.Is(err, ErrParentsNotDone), errors.Is(err, model.ErrParents):
		return "parents"
	}
	return "other: " + err.Error()
}

// TestModelAgreement runs seeded random operation sequences on the pure
// model and on SQLite (both drivers) and compares, after every operation,
// the operation's result, every task's status, the links, each task's open
// run, run count and consecutive failures, and the run invariant. The
// operations include the review column, the operator's promote, and worker
// crashes found by DetectCrashedWorkers, which drive the failure counter
// and the circuit breaker.
func TestModelAgreement(t *testing.T) {
	base := agreementSeed(t)
	sequences, steps := 12, 80
	if testing.Short() {
		sequences, steps = 4, 60
	}
	eachDriver(t, func(t *testing.T, d Driver) {
		for s := 0; s < sequences; s++ {
			seed := base + int64(s)
			if !runAgreement(t, d, seed, steps) {
				t.Fatalf("model and SQLite disagree: driver %s seed %d (rerun with SQLCHAOS_SEED=%d)", d, seed, seed)
			}
		}
	})
}

func runAgreement(t *testing.T, d Driver, seed int64, steps int) bool {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	b := newTestBoard(t, d, func(s *Switches) { s.CrashGrace = 0 })
	m := model.New()
	var ids []string
	next := 0
	pick := func() string {
		if len(ids) == 0 || rng.Intn(12) == 0 {
			return "t_missing"
		}
		return ids[rng.Intn(len(ids))]
	}
	// pickWhere biases the choice towards tasks the model says are in a
	// useful state (3 times out of 4), so rare paths — a reviewer's claim, a
	// second crash that trips the breaker — are reached.
	pickWhere := func(pred func(*model.Task) bool) string {
		var cands []string
		for _, id := range ids {
			if mt := m.Task(id); mt != nil && pred(mt) {
				cands = append(cands, id)
			}
		}
		if len(cands) == 0 || rng.Intn(4) == 0 {
			return pick()
		}
		return cands[rng.Intn(len(cands))]
	}
	local := Hostname() + ":4242" // host-local: the crash sweep looks at its tasks
	claimers := []string{local, "host-b:2"}
	dead := ProcessOps{Alive: func(int) bool { return false }}
	var log []string
	fail := func(format string, args ...any) bool {
		for _, l := range log {
			t.Log(l)
		}
		t.Errorf("seed %d: "+format, append([]any{seed}, args...)...)
		return false
	}
	for step := 0; step < steps; step++ {
		b.clock.Advance(time.Second)
		var op, got, want string
		switch r := rng.Intn(125); {
		case r < 18 || len(ids) < 2:
			next++
			id := fmt.Sprintf("t_%08x", next)
			var parents []string
			for i := rng.Intn(3); i > 0 && len(ids) > 0; i-- {
				parents = append(parents, pick())
			}
			parents = dedupe(parents)
			triage, blocked := rng.Intn(10) == 0, rng.Intn(10) == 0
			maxRetries := 0
			if rng.Intn(5) == 0 {
				maxRetries = 1 + rng.Intn(3)
			}
			op = fmt.Sprintf("create %s parents=%v triage=%v blocked=%v max_retries=%d", id, parents, triage, blocked, maxRetries)
			o := CreateOptions{ID: id, Title: id, Parents: parents, Triage: triage, MaxRetries: int64(maxRetries)}
			if blocked {
				o.InitialStatus = StatusBlocked
			}
			_, err := CreateTask(b.ctx, b.c, o)
			got = errClass(err)
			want = errClass(m.Create(id, parents, triage, blocked, maxRetries))
			if err == nil {
				ids = append(ids, id)
			}
		case r < 28:
			p, c := pick(), pick()
			op = "link " + p + " " + c
			got, want = errClass(LinkTasks(b.ctx, b.c, p, c)), errClass(m.Link(p, c))
		case r < 33:
			p, c := pick(), pick()
			op = "unlink " + p + " " + c
			ok, err := UnlinkTasks(b.ctx, b.c, p, c)
			got, want = fmt.Sprint(ok, errClass(err)), fmt.Sprint(m.Unlink(p, c), "ok")
		case r < 50:
			id, cl := pickWhere(func(t *model.Task) bool { return t.Status == "ready" }), claimers[rng.Intn(2)]
			op = "claim " + id + " by " + cl
			tk, err := ClaimTask(b.ctx, b.c, id, ClaimOptions{Claimer: cl})
			got, want = fmt.Sprint(tk != nil, errClass(err)), fmt.Sprint(m.Claim(id, cl), "ok")
		case r < 55:
			id, cl := pick(), claimers[rng.Intn(2)]
			op = "heartbeat " + id + " by " + cl
			ok, err := HeartbeatClaim(b.ctx, b.c, id, HeartbeatOptions{Claimer: cl})
			got, want = fmt.Sprint(ok, errClass(err)), fmt.Sprint(m.Heartbeat(id, cl), "ok")
		case r < 68:
			id := pick()
			op = "complete " + id
			ok, err := CompleteTask(b.ctx, b.c, id, CompleteOptions{Result: "r"})
			got, want = fmt.Sprint(ok, errClass(err)), fmt.Sprint(m.Complete(id), "ok")
		case r < 78:
			id := pick()
			kind := []string{"", "", "dependency", "auth", "quota"}[rng.Intn(5)]
			op = "block " + id + " kind=" + kind
			ok, err := BlockTask(b.ctx, b.c, id, BlockOptions{Kind: kind, Reason: "x"})
			got, want = fmt.Sprint(ok, errClass(err)), fmt.Sprint(m.Block(id, kind), "ok")
		case r < 86:
			id := pick()
			op = "unblock " + id
			ok, err := UnblockTask(b.ctx, b.c, id)
			got, want = fmt.Sprint(ok, errClass(err)), fmt.Sprint(m.Unblock(id), "ok")
		case r < 90:
			id := pick()
			op = "archive " + id
			ok, err := ArchiveTask(b.ctx, b.c, id)
			got, want = fmt.Sprint(ok, errClass(err)), fmt.Sprint(m.Archive(id), "ok")
		case r < 93:
			id := pick()
			op = "delete " + id
			ok, err := DeleteTask(b.ctx, b.c, id)
			got, want = fmt.Sprint(ok, errClass(err)), fmt.Sprint(m.Delete(id), "ok")
			if ok {
				ids = slices.DeleteFunc(ids, func(x string) bool { return x == id })
			}
		case r < 100:
			limit := rng.Intn(4)
			op = fmt.Sprintf("recompute limit=%d", limit)
			n, err := RecomputeReady(b.ctx, b.c, limit)
			got, want = fmt.Sprint(n, errClass(err)), fmt.Sprint(m.Recompute(limit), "ok")
		case r < 104:
			id := pickWhere(func(t *model.Task) bool { return t.Status == "running" })
			op = "request_review " + id
			ok, err := RequestReview(b.ctx, b.c, id, RequestReviewOptions{})
			got, want = fmt.Sprint(ok, errClass(err)), fmt.Sprint(m.RequestReview(id), "ok")
		case r < 108:
			id, cl := pickWhere(func(t *model.Task) bool { return t.Status == "review" }), claimers[rng.Intn(2)]
			op = "claim_review " + id + " by " + cl
			tk, err := ClaimReviewTask(b.ctx, b.c, id, ClaimOptions{Claimer: cl})
			got, want = fmt.Sprint(tk != nil, errClass(err)), fmt.Sprint(m.ClaimReview(id, cl), "ok")
		case r < 111:
			id := pickWhere(func(t *model.Task) bool { return t.Status == "todo" || t.Status == "blocked" })
			op = "promote " + id
			ok, err := PromoteTask(b.ctx, b.c, id, PromoteOptions{Actor: "op"})
			mok, merr := m.Promote(id)
			got, want = fmt.Sprint(ok, errClass(err)), fmt.Sprint(mok, errClass(merr))
		default:
			// A worker of a host-local claim dies (a pid no process has,
			// unknown to the reaper): the crash sweep requeues it and the
			// failure counter, then perhaps the breaker, acts.
			id := pickWhere(func(t *model.Task) bool { return t.Status == "running" && t.Claimer == local })
			limit := rng.Intn(4)
			op = fmt.Sprintf("crash %s limit=%d", id, limit)
			b.exec(`UPDATE tasks SET worker_pid=2000000000 WHERE id=? AND status='running' AND claim_lock=?`, id, local)
			rep, err := DetectCrashedWorkers(b.ctx, b.c, SweepOptions{Proc: dead, FailureLimit: limit})
			got, want = fmt.Sprint(slices.Contains(rep.Crashed, id), errClass(err)), fmt.Sprint(m.Crash(id, local, limit), "ok")
		}
		log = append(log, fmt.Sprintf("step %d: %s -> sqlite %s, model %s", step, op, got, want))
		if got != want {
			return fail("step %d %s: sqlite %s, model %s", step, op, got, want)
		}
		if msg := compareState(b, m); msg != "" {
			return fail("step %d %s: %s", step, op, msg)
		}
	}
	return true
}

func compareState(b *testBoard, m *model.Board) string {
	ts, err := ListTasks(b.ctx, b.c, ListOptions{IncludeArchived: true, OrderBy: "id"})
	if err != nil {
		return err.Error()
	}
	var sqlIDs []string
	for _, tk := range ts {
		sqlIDs = append(sqlIDs, tk.ID)
		mt := m.Task(tk.ID)
		if mt == nil {
			return "task " + tk.ID + " only in SQLite"
		}
		if tk.Status != mt.Status {
			return fmt.Sprintf("task %s: sqlite %s, model %s", tk.ID, tk.Status, mt.Status)
		}
		if (tk.CurrentRunID != 0) != mt.OpenRun {
			return fmt.Sprintf("task %s: sqlite current_run_id=%d, model open run %v", tk.ID, tk.CurrentRunID, mt.OpenRun)
		}
		if tk.ConsecutiveFailures != int64(mt.Failures) {
			return fmt.Sprintf("task %s: failures sqlite %d model %d", tk.ID, tk.ConsecutiveFailures, mt.Failures)
		}
		runs, err := ListRuns(b.ctx, b.c, tk.ID)
		if err != nil {
			return err.Error()
		}
		if len(runs) != mt.Runs {
			return fmt.Sprintf("task %s: %d runs in SQLite, %d in the model", tk.ID, len(runs), mt.Runs)
		}
	}
	mids := m.IDs()
	slices.Sort(mids)
	if !slices.Equal(sqlIDs, mids) {
		return fmt.Sprintf("task sets differ: sqlite %v model %v", sqlIDs, mids)
	}
	ls, err := ListLinks(b.ctx, b.c)
	if err != nil {
		return err.Error()
	}
	var ml []Link
	for _, l := range m.Links() {
		ml = append(ml, Link{l.Parent, l.Child})
	}
	if !slices.Equal(ls, ml) {
		return fmt.Sprintf("links differ: sqlite %v model %v", ls, ml)
	}
	bad, err := CheckRunInvariant(b.ctx, b.c)
	if err != nil {
		return err.Error()
	}
	if len(bad) > 0 {
		return fmt.Sprintf("run invariant: %v", bad)
	}
	return ""
}
