package kanbancore

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// boardClock is a fake board clock for the board's tests.
type boardClock struct {
	mu sync.Mutex
	t  time.Time
}

func newBoardClock() *boardClock { return &boardClock{t: time.Unix(1_780_000_000, 0)} }

func (c *boardClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *boardClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var boardDrivers = []Driver{DriverModernc, DriverMattn}

// eachDriver runs f as a subtest per driver.
func eachDriver(t *testing.T, f func(t *testing.T, d Driver)) {
	t.Helper()
	for _, d := range boardDrivers {
		t.Run(string(d), func(t *testing.T) { f(t, d) })
	}
}

// testBoard is one board file opened with the hardened profile and a fake clock.
type testBoard struct {
	t     *testing.T
	path  string
	clock *boardClock
	opts  Options
	c     *Conn
	ctx   context.Context
}

func newTestBoard(t *testing.T, d Driver, tweak ...func(*Switches)) *testBoard {
	t.Helper()
	sw := Hardened()
	for _, f := range tweak {
		f(&sw)
	}
	b := &testBoard{t: t, path: filepath.Join(t.TempDir(), "kanban.db"), clock: newBoardClock(), ctx: context.Background()}
	b.opts = Options{Driver: d, Switches: sw, Clock: b.clock}
	b.c = b.open()
	return b
}

func (b *testBoard) open() *Conn {
	b.t.Helper()
	c, err := Open(b.ctx, b.path, b.opts)
	if err != nil {
		b.t.Fatalf("Open: %v", err)
	}
	b.t.Cleanup(func() { c.Close() })
	return c
}

func (b *testBoard) create(o CreateOptions) string {
	b.t.Helper()
	if o.Title == "" {
		o.Title = "task"
	}
	id, err := CreateTask(b.ctx, b.c, o)
	if err != nil {
		b.t.Fatalf("CreateTask: %v", err)
	}
	return id
}

func (b *testBoard) task(id string) *Task {
	b.t.Helper()
	tk, err := GetTask(b.ctx, b.c, id)
	if err != nil {
		b.t.Fatalf("GetTask(%s): %v", id, err)
	}
	if tk == nil {
		b.t.Fatalf("GetTask(%s): no such task", id)
	}
	return tk
}

func (b *testBoard) status(id string) string { b.t.Helper(); return b.task(id).Status }

func (b *testBoard) wantStatus(id, want string) {
	b.t.Helper()
	if got := b.status(id); got != want {
		b.t.Fatalf("task %s: status %q, want %q", id, got, want)
	}
}

func (b *testBoard) claim(id string, o ClaimOptions) *Task {
	b.t.Helper()
	tk, err := ClaimTask(b.ctx, b.c, id, o)
	if err != nil {
		b.t.Fatalf("ClaimTask(%s): %v", id, err)
	}
	return tk
}

func (b *testBoard) kinds(id string) []EventKind {
	b.t.Helper()
	k, err := EventKinds(b.ctx, b.c, id)
	if err != nil {
		b.t.Fatal(err)
	}
	return k
}

func (b *testBoard) hasEvent(id string, kind EventKind) bool {
	for _, k := range b.kinds(id) {
		if k == kind {
			return true
		}
	}
	return false
}

func (b *testBoard) checkInvariant() {
	b.t.Helper()
	bad, err := CheckRunInvariant(b.ctx, b.c)
	if err != nil {
		b.t.Fatal(err)
	}
	if len(bad) > 0 {
		b.t.Fatalf("run invariant broken: %v", bad)
	}
}

func (b *testBoard) exec(q string, args ...any) {
	b.t.Helper()
	if _, err := b.c.ExecContext(b.ctx, q, args...); err != nil {
		b.t.Fatalf("%s: %v", q, err)
	}
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
