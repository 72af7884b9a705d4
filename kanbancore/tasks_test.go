package kanbancore

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBoardSchemaTablesAndIdempotentInit(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		for _, tbl := range []string{"tasks", "task_links", "task_comments", "task_events", "task_runs", "task_attachments", "kanban_notify_subs"} {
			var n int
			if err := b.c.QueryRowContext(b.ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name=?`, tbl).Scan(&n); err != nil || n != 1 {
				t.Fatalf("table %s: n=%d err=%v", tbl, n, err)
			}
		}
		for _, idx := range []string{"idx_tasks_status", "idx_events_task", "idx_events_run", "idx_tasks_idempotency", "idx_runs_status", "idx_notify_task"} {
			var n int
			if err := b.c.QueryRowContext(b.ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND name=?`, idx).Scan(&n); err != nil || n != 1 {
				t.Fatalf("index %s: n=%d err=%v", idx, n, err)
			}
		}
		id := b.create(CreateOptions{Title: "survives re-init"})
		// Running the migration again changes nothing and loses nothing.
		if err := migrate(b.ctx, b.c); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		b.wantStatus(id, StatusReady)
	})
}

func TestBoardMigratesLegacyDBBeforeOptionalColumnIndexes(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := &testBoard{t: t, clock: newBoardClock(), ctx: t.Context()}
		b.path = t.TempDir() + "/kanban.db"
		raw, err := openRaw(b.ctx, b.path, Options{Driver: d})
		if err != nil {
			t.Fatal(err)
		}
		// A legacy board: core columns only, no session_id/tenant/idempotency_key/run_id.
		for _, q := range []string{
			`CREATE TABLE tasks (id TEXT PRIMARY KEY, title TEXT NOT NULL, body TEXT, assignee TEXT, status TEXT NOT NULL,
				priority INTEGER DEFAULT 0, created_by TEXT, created_at INTEGER NOT NULL, started_at INTEGER, completed_at INTEGER,
				workspace_kind TEXT NOT NULL DEFAULT 'scratch', workspace_path TEXT, claim_lock TEXT, claim_expires INTEGER, result TEXT)`,
			`CREATE TABLE task_events (id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT, created_at INTEGER NOT NULL)`,
			`INSERT INTO tasks(id,title,status,created_at,claim_lock,claim_expires) VALUES('t_legacy01','old','running',1,'h:1',99)`,
			`INSERT INTO task_events(task_id,kind,created_at) VALUES('t_legacy01','ready',1)`,
		} {
			if _, err := raw.ExecContext(b.ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		raw.Close()
		b.opts = Options{Driver: d, Switches: Hardened(), Clock: b.clock}
		b.c = b.open()
		for _, col := range []string{"session_id", "tenant", "idempotency_key"} {
			if ok, err := hasColumn(b.ctx, b.c, "tasks", col); err != nil || !ok {
				t.Fatalf("tasks.%s missing after migration (err %v)", col, err)
			}
		}
		if ok, _ := hasColumn(b.ctx, b.c, "task_events", "run_id"); !ok {
			t.Fatal("task_events.run_id missing")
		}
		for _, idx := range []string{"idx_tasks_tenant", "idx_tasks_idempotency", "idx_tasks_session_id", "idx_events_run"} {
			var n int
			b.c.QueryRowContext(b.ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND name=?`, idx).Scan(&n)
			if n != 1 {
				t.Fatalf("index %s missing", idx)
			}
		}
		if k := b.kinds("t_legacy01"); !slices.Equal(k, []EventKind{"promoted"}) {
			t.Fatalf("event rename: %v", k)
		}
		// The legacy running task got a synthesised open run.
		b.checkInvariant()
		if tk := b.task("t_legacy01"); tk.CurrentRunID == 0 {
			t.Fatal("legacy running task has no run")
		}
		// Adding a column that exists is tolerated (the race with another migrator).
		if err := addColumnIfMissing(b.ctx, b.c, "tasks", "tenant", "TEXT"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.c.ExecContext(b.ctx, "ALTER TABLE tasks ADD COLUMN tenant TEXT"); err == nil ||
			!strings.Contains(strings.ToLower(err.Error()), "duplicate column name") {
			t.Fatalf("expected a duplicate column error from SQLite, got %v", err)
		}
	})
}

func TestBoardCreateReadinessAndValidation(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		p := b.create(CreateOptions{Title: "parent"})
		b.wantStatus(p, StatusReady)
		c := b.create(CreateOptions{Title: "child", Parents: []string{p}})
		b.wantStatus(c, StatusTodo)
		if _, err := CreateTask(b.ctx, b.c, CreateOptions{Title: "x", Parents: []string{"t_nope"}}); !errors.Is(err, ErrUnknownParent) {
			t.Fatalf("unknown parent: %v", err)
		}
		if _, err := CreateTask(b.ctx, b.c, CreateOptions{Title: "  "}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("blank title: %v", err)
		}
		if _, err := CreateTask(b.ctx, b.c, CreateOptions{Title: "x", WorkspaceKind: "bogus"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad workspace kind: %v", err)
		}
		if _, err := CreateTask(b.ctx, b.c, CreateOptions{Title: "x", BranchName: "b"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("branch without worktree: %v", err)
		}
		wt := b.create(CreateOptions{Title: "wt", WorkspaceKind: "worktree", BranchName: "feat/x", WorkspacePath: "/tmp/x"})
		if tk := b.task(wt); tk.BranchName != "feat/x" || tk.WorkspaceKind != "worktree" {
			t.Fatalf("worktree branch not persisted: %+v", tk)
		}
		tr := b.create(CreateOptions{Title: "tri", Triage: true})
		b.wantStatus(tr, StatusTriage)
		bl := b.create(CreateOptions{Title: "bl", InitialStatus: StatusBlocked})
		b.wantStatus(bl, StatusBlocked)
		if k := b.kinds(bl); !slices.Equal(k, []EventKind{"created", "blocked"}) {
			t.Fatalf("initial blocked events %v", k)
		}
		// Idempotency key: same key returns the same task without a write.
		k1 := b.create(CreateOptions{Title: "idem", IdempotencyKey: "k"})
		k2 := b.create(CreateOptions{Title: "idem again", IdempotencyKey: "k"})
		if k1 != k2 {
			t.Fatalf("idempotency key gave two tasks %s %s", k1, k2)
		}
		// ...unless the first was archived.
		must[bool](t)(ArchiveTask(b.ctx, b.c, k1))
		if k3 := b.create(CreateOptions{Title: "idem 3", IdempotencyKey: "k"}); k3 == k1 {
			t.Fatal("archived task reused for an idempotency key")
		}
		// Assignee lower-cased; list filter case-insensitive.
		a := b.create(CreateOptions{Title: "a", Assignee: "  Alice "})
		if tk := b.task(a); tk.Assignee != "alice" {
			t.Fatalf("assignee %q", tk.Assignee)
		}
		ts := must[[]Task](t)(ListTasks(b.ctx, b.c, ListOptions{Assignee: "ALICE"}))
		if len(ts) != 1 || ts[0].ID != a {
			t.Fatalf("assignee filter: %v", ts)
		}
	})
}

func TestBoardClaimCompleteLifecycle(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d)
		id := b.create(CreateOptions{Title: "work", Assignee: "w"})
		tk := b.claim(id, ClaimOptions{})
		if tk == nil || tk.Status != StatusRunning || tk.ClaimLock != ClaimerID() {
			t.Fatalf("claim: %+v", tk)
		}
		if tk.ClaimExpires != b.clock.Now().Unix()+900 {
			t.Fatalf("default TTL: expires %d, now %d", tk.ClaimExpires, b.clock.Now().Unix())
		}
		if again := b.claim(id, ClaimOptions{}); again != nil {
			t.Fatal("second claim won")
		}
		b.checkInvariant()
		ok := must[bool](t)(CompleteTask(b.ctx, b.c, id, CompleteOptions{Result: "42", Summary: "did it\nmore"}))
		if !ok {
			t.Fatal("complete returned false")
		}
		tk = b.task(id)
		if tk.Status != StatusDone || tk.Result != "42" || tk.ClaimLock != "" || tk.CurrentRunID != 0 {
			t.Fatalf("after complete: %+v", tk)
		}
		if k := b.kinds(id); !slices.Equal(k, []EventKind{"created", "claimed", "completed"}) {
			t.Fatalf("events %v", k)
		}
		runs := must[[]TaskRun](t)(ListRuns(b.ctx, b.c, id))
		if len(runs) != 1 || runs[0].Outcome != "completed" || runs[0].Status != "done" || runs[0].Open() || runs[0].Summary != "did it" {
			t.Fatalf("runs %+v", runs)
		}
		evs := must[[]TaskEvent](t)(ListEvents(b.ctx, b.c, id))
		if evs[1].RunID != runs[0].ID || evs[1].Payload["run_id"] != float64(runs[0].ID) {
			t.Fatalf("claimed event does not carry the run id: %+v", evs[1])
		}
		b.checkInvariant()
		// Claim of a non-ready task fails.
		if b.claim(id, ClaimOptions{}) != nil {
			t.Fatal("claimed a done task")
		}
		// Completing a task without a run synthesises a zero-length run.
		r := b.create(CreateOptions{Title: "direct"})
		must[bool](t)(CompleteTask(b.ctx, b.c, r, CompleteOptions{}))
		runs = must[[]TaskRun](t)(ListRuns(b.ctx, b.c, r))
		if len(runs) != 1 || runs[0].StartedAt != runs[0].EndedAt || runs[0].Outcome != "completed" {
			t.Fatalf("synthesised run %+v", runs)
		}
	})
}

func TestBoardClaimTTLAndHeartbeat(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		b := newTestBoard(t, d, func(s *Switches) { s.ClaimTTL = time.Hour })
		id := b.create(CreateOptions{Title: "x"})
		tk := b.claim(id, ClaimOptions{})
		now := b.clock.Now().Unix()
		if tk.ClaimExpires <= now+3000 {
			t.Fatalf("switch TTL 3600 s: expires %d, now %d", tk.ClaimExpires, now)
		}
		b.clock.Advance(100 * time.Second)
		if !must[bool](t)(HeartbeatClaim(b.ctx, b.c, id, HeartbeatOptions{})) {
			t.Fatal("heartbeat refused")
		}
		if got := b.task(id).ClaimExpires; got != now+100+3600 {
			t.Fatalf("heartbeat expiry %d want %d", got, now+100+3600)
		}
		runs := must[[]TaskRun](t)(ListRuns(b.ctx, b.c, id))
		if runs[0].ClaimExpires != now+100+3600 {
			t.Fatalf("run expiry not mirrored: %d", runs[0].ClaimExpires)
		}
		if must[bool](t)(HeartbeatClaim(b.ctx, b.c, id, HeartbeatOptions{Claimer: "other:1"})) {
			t.Fatal("heartbeat with a foreign claimer accepted")
		}
		if !must[bool](t)(HeartbeatWorker(b.ctx, b.c, id, "alive", runs[0].ID)) {
			t.Fatal("worker heartbeat refused")
		}
		if must[bool](t)(HeartbeatWorker(b.ctx, b.c, id, "", runs[0].ID+1)) {
			t.Fatal("worker heartbeat with the wrong run accepted")
		}
		if b.task(id).LastHeartbeatAt != now+100 {
			t.Fatal("last_heartbeat_at not set")
		}
		// Explicit TTL wins, minimum 1 s.
		id2 := b.create(CreateOptions{Title: "y"})
		if tk := b.claim(id2, ClaimOptions{TTL: time.Millisecond}); tk.ClaimExpires != b.clock.Now().Unix()+1 {
			t.Fatalf("min TTL: %d", tk.ClaimExpires-b.clock.Now().Unix())
		}
	})
}
