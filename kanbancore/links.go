package kanbancore

import (
	"context"
	"database/sql"
	"fmt"
)

// Link is one parent → child dependency.
type Link struct {
	Parent string `json:"parent"`
	Child  string `json:"child"`
}

// ListLinks returns every link ordered by parent then child.
func ListLinks(ctx context.Context, c *Conn) ([]Link, error) {
	return queryAll(ctx, c, func(s rowScanner) (Link, error) {
		var l Link
		err := s.Scan(&l.Parent, &l.Child)
		return l, err
	}, `SELECT parent_id, child_id FROM task_links ORDER BY parent_id, child_id`)
}

// Parents returns a task's parent ids.
func Parents(ctx context.Context, c *Conn, id string) ([]string, error) {
	return column(ctx, c, `SELECT parent_id FROM task_links WHERE child_id=? ORDER BY parent_id`, id)
}

// Children returns a task's child ids.
func Children(ctx context.Context, c *Conn, id string) ([]string, error) {
	return column(ctx, c, `SELECT child_id FROM task_links WHERE parent_id=? ORDER BY child_id`, id)
}

func column(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	return queryAll(ctx, q, scanString, query, args...)
}

func scanString(s rowScanner) (string, error) {
	var v string
	err := s.Scan(&v)
	return v, err
}

// unfinishedParents lists parents whose status is neither done nor archived
// (a link to a deleted parent does not block).
func unfinishedParents(ctx context.Context, q querier, id string) ([]string, error) {
	return column(ctx, q, `SELECT l.parent_id FROM task_links l JOIN tasks p ON p.id=l.parent_id
		WHERE l.child_id=? AND p.status NOT IN ('done','archived') ORDER BY l.parent_id`, id)
}

// LinkTasks makes child depend on parent. Self-links, unknown ids and cycles
// are errors; a ready child of an unfinished parent is demoted to todo; the
// child gets a `linked` event.
func LinkTasks(ctx context.Context, c *Conn, parent, child string) error {
	if parent == child {
		return fmt.Errorf("%w: %s", ErrSelfLink, parent)
	}
	return c.WriteTxn(ctx, "link_tasks", func(tx *Tx) error {
		ps, err := taskStatus(ctx, tx.Conn, parent)
		if err != nil {
			return err
		}
		cs, err := taskStatus(ctx, tx.Conn, child)
		if err != nil {
			return err
		}
		if ps == "" || cs == "" {
			return fmt.Errorf("%w: %s or %s", ErrUnknownTask, parent, child)
		}
		// A cycle exists if parent is reachable from child going down.
		seen := map[string]bool{child: true}
		stack := []string{child}
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			kids, err := column(ctx, tx.Conn, `SELECT child_id FROM task_links WHERE parent_id=?`, n)
			if err != nil {
				return err
			}
			for _, k := range kids {
				if k == parent {
					return fmt.Errorf("%w: %s -> %s", ErrCycle, parent, child)
				}
				if !seen[k] {
					seen[k] = true
					stack = append(stack, k)
				}
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO task_links(parent_id, child_id) VALUES(?,?)`, parent, child)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			tx.Inserted("task_links", parent+">"+child)
		}
		if ps != StatusDone && cs == StatusReady {
			one, err := tx.execOne(ctx, `UPDATE tasks SET status='todo' WHERE id=? AND status='ready'`, child)
			if err != nil {
				return err
			}
			if one {
				tx.Transition(child, StatusReady, StatusTodo)
			}
		}
		return addEvent(ctx, tx, child, 0, EventLinked, map[string]any{"parent": parent})
	})
}

// UnlinkTasks removes a link (emitting `unlinked` on the child) and then
// runs recompute_ready in its own transaction. False when there was no link.
func UnlinkTasks(ctx context.Context, c *Conn, parent, child string) (bool, error) {
	var ok bool
	err := c.WriteTxn(ctx, "unlink_tasks", func(tx *Tx) error {
		if one, err := tx.execOne(ctx, `DELETE FROM task_links WHERE parent_id=? AND child_id=?`, parent, child); err != nil || !one {
			return err
		}
		ok = true
		tx.Deleted("task_links", parent+">"+child)
		return addEvent(ctx, tx, child, 0, EventUnlinked, map[string]any{"parent": parent})
	})
	if err != nil || !ok {
		return ok, err
	}
	_, err = RecomputeReady(ctx, c, 0)
	return true, err
}

// RecomputeReady promotes todo and blocked tasks whose parents are all done
// or archived to ready, in one write transaction, and returns how many it
// promoted. A blocked task stays blocked when it is sticky (its newest
// blocked/unblocked event is `blocked`) or when its consecutive failures
// reached its limit (max_retries, else failureLimit, else 2). The failure
// counter is preserved.
func RecomputeReady(ctx context.Context, c *Conn, failureLimit int) (int, error) {
	if failureLimit <= 0 {
		failureLimit = DefaultFailureLimit
	}
	promoted := 0
	err := c.WriteTxn(ctx, "recompute_ready", func(tx *Tx) error {
		promoted = 0
		rows, err := tx.QueryContext(ctx, `SELECT id, status, consecutive_failures, max_retries FROM tasks
			WHERE status IN ('todo','blocked') ORDER BY created_at, id`)
		if err != nil {
			return err
		}
		type cand struct {
			id, status string
			failures   int64
			maxRetries sql.NullInt64
		}
		var cands []cand
		for rows.Next() {
			var k cand
			if err := rows.Scan(&k.id, &k.status, &k.failures, &k.maxRetries); err != nil {
				rows.Close()
				return err
			}
			cands = append(cands, k)
		}
		rows.Close()
		for _, k := range cands {
			undone, err := unfinishedParents(ctx, tx.Conn, k.id)
			if err != nil {
				return err
			}
			if len(undone) > 0 {
				continue
			}
			if k.status == StatusBlocked {
				limit := int64(failureLimit)
				if k.maxRetries.Valid && k.maxRetries.Int64 > 0 {
					limit = k.maxRetries.Int64
				}
				if k.failures >= limit {
					continue
				}
				var last sql.NullString
				err := tx.QueryRowContext(ctx, `SELECT kind FROM task_events WHERE task_id=? AND kind IN (`+sqlKinds(EventBlocked, EventUnblocked)+`)
					ORDER BY id DESC LIMIT 1`, k.id).Scan(&last)
				if err != nil && err != sql.ErrNoRows {
					return err
				}
				if EventKind(last.String) == EventBlocked {
					continue
				}
			}
			one, err := tx.execOne(ctx, `UPDATE tasks SET status='ready' WHERE id=? AND status=?`, k.id, k.status)
			if err != nil {
				return err
			}
			if !one {
				continue
			}
			tx.Transition(k.id, k.status, StatusReady)
			promoted++
			if err := addEvent(ctx, tx, k.id, 0, EventPromoted, nil); err != nil {
				return err
			}
		}
		return nil
	})
	return promoted, err
}
