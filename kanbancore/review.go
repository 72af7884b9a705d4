package kanbancore

import (
	"context"
	"database/sql"
)

// ReviewSkill is the skill every review-column worker is spawned with.
const ReviewSkill = "sdlc-review"

// RequestReviewOptions are request_review's arguments.
type RequestReviewOptions struct {
	Summary       string
	ExpectedRunID int64 // 0 = any run
}

// RequestReview moves a running or ready task to review: the claim is
// cleared, the run ends as `review_requested` and a `review_requested`
// event is emitted. The dispatcher then spawns a reviewer through
// ClaimReviewTask. False when the task is in another status or the
// compare-and-swap lost.
func RequestReview(ctx context.Context, c *Conn, id string, o RequestReviewOptions) (bool, error) {
	var ok bool
	err := c.WriteTxn(ctx, "request_review", func(tx *Tx) error {
		from, err := taskStatus(ctx, tx.Conn, id)
		if err != nil || (from != StatusRunning && from != StatusReady) {
			return err
		}
		q := `UPDATE tasks SET status='review', claim_lock=NULL, claim_expires=NULL, worker_pid=NULL WHERE id=? AND status=?`
		args := []any{id, from}
		if o.ExpectedRunID != 0 {
			q += ` AND current_run_id=?`
			args = append(args, o.ExpectedRunID)
		}
		summary := firstLine(o.Summary, 400)
		ok, err = moveEndingRun(ctx, tx, id, from, StatusReview, q, args,
			runEnd{outcome: OutcomeReviewRequested, summary: summary}, EventReviewRequested, func() map[string]any {
				return map[string]any{"summary": nullStr(summary), "source_status": from}
			})
		return err
	})
	return ok, err
}

// ClaimReviewTask is claim_review_task: review → running in one write
// transaction, with the same claim lock, TTL and started_at rules as
// ClaimTask, a NEW run (the reviewer's run is tracked apart from the
// implementer's) and a `claimed` event carrying source_status "review".
// Parents are not re-checked: the task passed that gate on its way to
// running. It returns nil when the task is not in review, is already
// claimed, or the compare-and-swap lost.
func ClaimReviewTask(ctx context.Context, c *Conn, id string, o ClaimOptions) (*Task, error) {
	claimer, ttl := c.claimParams(o)
	var won bool
	err := c.WriteTxn(ctx, "claim_review_task", func(tx *Tx) error {
		t, err := getTask(ctx, tx.Conn, id)
		if err != nil || t == nil || t.Status != StatusReview || t.ClaimLock != "" {
			return err
		}
		won, err = claimCAS(ctx, tx, id, t, StatusReview, claimer, ttl, map[string]any{"source_status": StatusReview})
		return err
	})
	if err != nil || !won {
		return nil, err
	}
	return GetTask(ctx, c, id)
}

// HasSpawnableReady reports whether some ready, assigned, unclaimed task's
// assignee is spawnable (nil spawnable = every assignee is). Health
// telemetry uses it to tell "stuck" from "correctly idle".
func HasSpawnableReady(ctx context.Context, c *Conn, spawnable func(assignee string) bool) (bool, error) {
	return hasSpawnable(ctx, c, StatusReady, spawnable)
}

// HasSpawnableReview is HasSpawnableReady for the review column.
func HasSpawnableReview(ctx context.Context, c *Conn, spawnable func(assignee string) bool) (bool, error) {
	return hasSpawnable(ctx, c, StatusReview, spawnable)
}

func hasSpawnable(ctx context.Context, c *Conn, status string, spawnable func(string) bool) (bool, error) {
	scan := func(s rowScanner) (string, error) {
		var a sql.NullString
		err := s.Scan(&a)
		return a.String, err
	}
	names, err := queryAll(ctx, c, scan, `SELECT DISTINCT assignee FROM tasks
		WHERE status=? AND assignee IS NOT NULL AND assignee!='' AND claim_lock IS NULL`, status)
	if err != nil {
		return false, err
	}
	for _, a := range names {
		if spawnable == nil || spawnable(a) {
			return true, nil
		}
	}
	return false, nil
}
