package scenarios

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/internal/ledger"
	"github.com/sqlchaos/sqlchaos/kanbancore"
)

// runWatcher is a long-lived poller with one connection for its whole life,
// like the gateway's notifier (every 5 s, reading new events) and dashboard
// (every 10 s, reading the board) watchers.
func runWatcher(r *role) error {
	interval := r.spec.Interval
	if interval == 0 {
		interval = 5 * time.Second
		if r.spec.Watch == WatchDashboard {
			interval = 10 * time.Second
		}
	}
	c, err := r.open()
	if err != nil {
		return err
	}
	defer c.Close()
	var lastEvent int64
	for n := 0; r.spec.Count == 0 || n < r.spec.Count; n++ {
		if err := r.sleep(interval); err != nil {
			return err
		}
		switch r.spec.Watch {
		case WatchDashboard:
			r.call("dashboard", "", func() error {
				ts, err := kanbancore.ListTasks(r.ctx, c, kanbancore.ListOptions{})
				if err != nil {
					return err
				}
				_ = ts
				rows, err := c.QueryContext(r.ctx, `SELECT status, count(*) FROM tasks GROUP BY status`)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
				}
				return rows.Err()
			})
		default:
			r.call("notify_poll", "", func() error {
				rows, err := c.QueryContext(r.ctx, `SELECT id, task_id, kind FROM task_events WHERE id > ? ORDER BY id LIMIT 500`, lastEvent)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var id int64
					var task, kind string
					if err := rows.Scan(&id, &task, &kind); err != nil {
						return err
					}
					lastEvent = id
				}
				return rows.Err()
			})
		}
	}
	return nil
}

// argInt returns spec.Args[k] as an int, or def.
func (r *role) argInt(k string, def int) int {
	if v, ok := r.spec.Args[k]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func (r *role) arg(k, def string) string {
	if v, ok := r.spec.Args[k]; ok {
		return v
	}
	return def
}

// body returns n bytes of seeded text that names the process, so a
// deleted row's bytes are recognisable if they come back.
func (r *role) body(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b strings.Builder
	b.WriteString("[" + r.spec.Proc + "]")
	for b.Len() < n {
		b.WriteByte(alphabet[r.rng.IntN(len(alphabet))])
	}
	return b.String()
}

// pick chooses a task among those in the given statuses (seeded), or ""
// when there is none.
func (r *role) pick(c *kanbancore.Conn, statuses ...string) (string, error) {
	if r.spec.Task != "" {
		return r.spec.Task, nil
	}
	q := `SELECT id FROM tasks`
	var args []any
	if len(statuses) > 0 {
		q += ` WHERE status IN (` + strings.TrimSuffix(strings.Repeat("?,", len(statuses)), ",") + `)`
		for _, s := range statuses {
			args = append(args, s)
		}
	}
	q += ` ORDER BY id`
	rows, err := c.QueryContext(r.ctx, q, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return "", err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if len(ids) == 0 {
		return "", nil
	}
	return ids[r.rng.IntN(len(ids))], nil
}

// boardOp runs one named board operation on c, recording call and return.
// It is shared by the CLI (one op per process) and the writer (a loop on
// one connection).
func (r *role) boardOp(c *kanbancore.Conn, op BoardOp) error {
	var task string
	var err error
	switch op {
	case OpCreate:
		return r.call("create", "", func() error {
			_, err := kanbancore.CreateTask(r.ctx, c, kanbancore.CreateOptions{
				Title:     "task by " + r.spec.Proc,
				Body:      r.body(r.argInt("body", 200)),
				Assignee:  r.arg("assignee", "worker"),
				CreatedBy: r.spec.Proc,
				Priority:  int64(r.rng.IntN(3)),
			})
			return err
		})
	case OpList:
		return r.call("list", "", func() error {
			_, err := kanbancore.ListTasks(r.ctx, c, kanbancore.ListOptions{})
			return err
		})
	case OpComplete:
		task, err = r.pick(c, kanbancore.StatusRunning, kanbancore.StatusReady, kanbancore.StatusBlocked)
	case OpBlock:
		task, err = r.pick(c, kanbancore.StatusRunning, kanbancore.StatusReady)
	case OpArchive:
		task, err = r.pick(c, kanbancore.StatusDone, kanbancore.StatusReady, kanbancore.StatusBlocked)
	case OpDelete:
		task, err = r.pick(c, kanbancore.StatusDone, kanbancore.StatusArchived, kanbancore.StatusReady, kanbancore.StatusBlocked, kanbancore.StatusTodo)
	case OpHeartbeat:
		task, err = r.pick(c, kanbancore.StatusRunning)
	case OpCheckpoint:
		return r.call("checkpoint", "", func() error {
			_, err := c.ExecContext(r.ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
			return err
		})
	case OpRecompute:
		return r.call("recompute_ready", "", func() error {
			_, err := kanbancore.RecomputeReady(r.ctx, c, 0)
			return err
		})
	default:
		return fmt.Errorf("scenarios: unknown board op %q", op)
	}
	if err != nil {
		// The pick itself failed: record it as the op's failure.
		r.h.Write(ledger.ErrEvent(history.TypeError, 0, string(op), "", err))
		return err
	}
	if task == "" {
		return nil // nothing to act on
	}
	return r.call(string(op), task, func() error {
		var err error
		switch op {
		case OpComplete:
			_, err = kanbancore.CompleteTask(r.ctx, c, task, kanbancore.CompleteOptions{Result: "completed by " + r.spec.Proc})
		case OpBlock:
			_, err = kanbancore.BlockTask(r.ctx, c, task, kanbancore.BlockOptions{Reason: "blocked by " + r.spec.Proc})
		case OpArchive:
			_, err = kanbancore.ArchiveTask(r.ctx, c, task)
		case OpDelete:
			_, err = kanbancore.DeleteTask(r.ctx, c, task)
		case OpHeartbeat:
			_, err = kanbancore.HeartbeatWorker(r.ctx, c, task, "cli heartbeat", 0)
		}
		return err
	})
}

// runCLI is one short-lived command-line invocation: a fresh process whose
// first connection runs the whole first-connect path, one operation, close.
func runCLI(r *role) error {
	c, err := r.open()
	if err != nil {
		return err
	}
	err = r.boardOp(c, r.spec.Op)
	if cerr := r.call("close", "", c.Close); err == nil {
		err = cerr
	}
	return err
}

// runWriter holds one connection for its life and runs its op (Args "ops":
// a comma-separated cycle, default "create") every Interval, Count times or
// until stopped.
func runWriter(r *role) error {
	interval := r.spec.Interval
	if interval == 0 {
		interval = 2 * time.Second
	}
	ops := strings.Split(r.arg("ops", "create"), ",")
	c, err := r.open()
	if err != nil {
		return err
	}
	defer c.Close()
	for n := 0; r.spec.Count == 0 || n < r.spec.Count; n++ {
		if err := r.sleep(interval); err != nil {
			return err
		}
		r.boardOp(c, BoardOp(ops[n%len(ops)]))
		// Record whether this process still holds its SQLite locks on the
		// database file (a raw-read page-count check drops them).
		id := r.h.NextID()
		r.h.Write(history.Event{Type: history.TypeCall, ID: id, Op: "lock_probe"})
		r.h.Write(history.Event{Type: history.TypeReturn, ID: id, Op: "lock_probe", Data: &history.Data{DBLocks: new(dbLocks(r.spec.DB))}})
	}
	return nil
}

// dbLocks counts the POSIX locks this process holds on the file at path,
// from /proc/locks: evidence of a lock silently dropped by a raw open+close
// of the database file in a process that holds a connection.
func dbLocks(path string) int {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return -1
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return -1
	}
	suffix := ":" + strconv.FormatUint(st.Ino, 10)
	pid := strconv.Itoa(os.Getpid())
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[1] == "POSIX" && f[4] == pid && strings.HasSuffix(f[5], suffix) {
			n++
		}
	}
	return n
}
