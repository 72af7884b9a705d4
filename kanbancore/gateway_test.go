package kanbancore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// gatewayRoot makes a root with a default board holding one ready task.
func gatewayRoot(t *testing.T, d Driver) (string, string) {
	t.Helper()
	root := t.TempDir()
	path, _ := BoardPath(root, DefaultBoard)
	c, err := Open(context.Background(), path, Options{Driver: d, Switches: Hardened()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateTask(context.Background(), c, CreateOptions{Title: "x", Assignee: "w"}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	return root, path
}

func newTestGateway(t *testing.T, d Driver, root string, latch CorruptLatch, open func(ctx context.Context, p string, o Options) (*Conn, error)) (*Gateway, *boardClock, *countingSpawner) {
	sw := Hardened()
	sw.CorruptLatch = latch
	sw.Quarantine, sw.BackoffInitial, sw.BackoffMax = 300*time.Second, 30*time.Second, 100*time.Second
	clk := newBoardClock()
	sp := &countingSpawner{}
	g := &Gateway{Root: root, Opts: Options{Driver: d, Switches: sw, Clock: clk}, OpenFn: open,
		Dispatch: DispatchOptions{Spawner: sp, MaxSpawn: 1}, Logf: t.Logf}
	return g, clk, sp
}

func TestBoardGatewayLatchFormsOnTransientFailure(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		for _, form := range []CorruptLatch{"permanent", "quarantine", "backoff"} {
			t.Run(string(form), func(t *testing.T) {
				root, path := gatewayRoot(t, d)
				var calls atomic.Int32
				flaky := func(ctx context.Context, p string, o Options) (*Conn, error) {
					if calls.Add(1) == 1 {
						// What a transient read EIO during connect surfaces as.
						return nil, errors.New("database disk image is malformed")
					}
					return Open(ctx, p, o)
				}
				g, clk, _ := newTestGateway(t, d, root, form, flaky)
				r := g.Tick(t.Context())
				if len(r.Boards) != 1 || r.Boards[0].Err == "" || r.Boards[0].Dispatched {
					t.Fatalf("tick 1: %+v", r)
				}
				latched0, until0 := g.LatchState(DefaultBoard)
				switch form {
				case "permanent":
					if !latched0 || !r.Boards[0].Latched || !until0.IsZero() {
						t.Fatalf("permanent not latched: %+v %v", r.Boards[0], until0)
					}
				case "quarantine":
					if !latched0 || !until0.Equal(clk.Now().Add(300*time.Second)) {
						t.Fatalf("quarantine latch %v until %v", latched0, until0)
					}
				case "backoff":
					if latched0 || r.Boards[0].Latched || !r.Boards[0].Unconfirmed {
						t.Fatalf("backoff latched a board that passes quick_check: %+v", r.Boards[0])
					}
				}
				dispatchedAt := -1
				for i := 1; i <= 4; i++ {
					clk.Advance(200 * time.Second)
					r = g.Tick(t.Context())
					if r.Boards[0].Dispatched && dispatchedAt < 0 {
						dispatchedAt = i
					}
				}
				latched, _ := g.LatchState(DefaultBoard)
				switch form {
				case "permanent":
					if dispatchedAt >= 0 || !latched {
						t.Fatalf("permanent latch dispatched again at tick %d (latched %v)", dispatchedAt, latched)
					}
					// Only a fingerprint change clears it.
					future := time.Now().Add(time.Hour)
					if err := os.Chtimes(path, future, future); err != nil {
						t.Fatal(err)
					}
					if r = g.Tick(t.Context()); !r.Boards[0].Dispatched {
						t.Fatalf("permanent latch survived a fingerprint change: %+v", r.Boards[0])
					}
				case "quarantine":
					// Latched at t0 for 300 s: skipped at +200, dispatched at +400.
					if dispatchedAt != 2 || latched {
						t.Fatalf("quarantine: dispatched at tick %d, latched %v", dispatchedAt, latched)
					}
				case "backoff":
					// quick_check ok + header intact ⇒ transient: never latched.
					if dispatchedAt != 1 || latched || calls.Load() < 2 {
						t.Fatalf("backoff: dispatched at tick %d, latched %v", dispatchedAt, latched)
					}
				}
			})
		}
	})
}

func TestBoardGatewayBackoffOnConfirmedCorruption(t *testing.T) {
	eachDriver(t, func(t *testing.T, d Driver) {
		root := t.TempDir()
		path, _ := BoardPath(root, DefaultBoard)
		junk := []byte("definitely not an sqlite database, just junk bytes repeated........")
		if err := os.WriteFile(path, slices.Repeat(junk, 100), 0o644); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(path)
		var opens atomic.Int32
		counting := func(ctx context.Context, p string, o Options) (*Conn, error) {
			opens.Add(1)
			return Open(ctx, p, o)
		}
		g, clk, _ := newTestGateway(t, d, root, "backoff", counting)
		want := []time.Duration{30 * time.Second, 60 * time.Second, 100 * time.Second, 100 * time.Second}
		for i, w := range want {
			r := g.Tick(t.Context())
			if !r.Boards[0].Latched || !IsCorruptBoardError(errors.New(r.Boards[0].Err)) {
				t.Fatalf("round %d: %+v", i, r.Boards[0])
			}
			if got := g.LatchBackoff(DefaultBoard); got != w {
				t.Fatalf("round %d: backoff %s want %s", i, got, w)
			}
			latched, until := g.LatchState(DefaultBoard)
			if !latched || !until.Equal(clk.Now().Add(w)) {
				t.Fatalf("round %d: latch state %v %v", i, latched, until)
			}
			n := opens.Load()
			clk.Advance(w - time.Second)
			if r := g.Tick(t.Context()); !r.Boards[0].Skipped || opens.Load() != n {
				t.Fatalf("round %d: not skipped inside the backoff: %+v", i, r.Boards[0])
			}
			clk.Advance(time.Second)
		}
		after, _ := os.ReadFile(path)
		if !slices.Equal(before, after) {
			t.Fatal("the corrupt file was modified")
		}
	})
}

func TestBoardGatewayReaperPlacement(t *testing.T) {
	failing := func(ctx context.Context, p string, o Options) (*Conn, error) {
		return nil, errors.New("disk I/O error")
	}
	for _, hoisted := range []bool{true, false} {
		name := map[bool]string{true: "hoisted", false: "legacy"}[hoisted]
		t.Run(name, func(t *testing.T) {
			root, _ := gatewayRoot(t, DriverModernc)
			// A second board, also failing.
			if _, err := CreateBoard(root, "second", "Second"); err != nil {
				t.Fatal(err)
			}
			g, _, _ := newTestGateway(t, DriverModernc, root, "quarantine", failing)
			g.Opts.Switches.ReaperHoisted = hoisted
			var all, reaped []int
			for tick := 0; tick < 5; tick++ {
				pids := []int{execStart(t, "exit 0"), execStart(t, "exit 1")}
				all = append(all, pids...)
				waitZombies(t, pids)
				r := g.Tick(t.Context())
				if len(r.Boards) != 2 || r.Boards[0].Err == "" || r.Boards[1].Err == "" {
					t.Fatalf("boards did not fail: %+v", r.Boards)
				}
				reaped = append(reaped, r.Reaped...)
			}
			zombies := 0
			for _, p := range all {
				if isZombie(p) {
					zombies++
				}
			}
			if hoisted {
				slices.Sort(reaped)
				slices.Sort(all)
				if !slices.Equal(reaped, all) || zombies != 0 {
					t.Fatalf("hoisted: reaped %v of %v, %d zombies left", reaped, all, zombies)
				}
			} else {
				if len(reaped) != 0 || zombies != len(all) {
					t.Fatalf("legacy: reaped %v, zombies %d of %d", reaped, zombies, len(all))
				}
				ReapWorkerZombies()
			}
		})
	}
}

func TestBoardPathsAndSlugs(t *testing.T) {
	root := t.TempDir()
	if p, _ := BoardPath(root, ""); p != filepath.Join(root, "kanban.db") {
		t.Fatalf("default path %s", p)
	}
	if p, _ := BoardPath(root, "Team-A"); p != filepath.Join(root, "kanban", "boards", "team-a", "kanban.db") {
		t.Fatalf("named path %s", p)
	}
	for _, bad := range []string{"-x", "a b", "x/y", string(make([]byte, 70))} {
		if _, err := NormalizeSlug(bad); err == nil {
			t.Fatalf("slug %q accepted", bad)
		}
	}
	if _, err := CreateBoard(root, "zeta", "Z"); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateBoard(root, "alpha", "A"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"board.json", "workspaces", "logs"} {
		if _, err := os.Stat(filepath.Join(root, "kanban", "boards", "alpha", f)); err != nil {
			t.Fatal(err)
		}
	}
	if bs, _ := ListBoards(root); !slices.Equal(bs, []string{"alpha", "zeta"}) {
		t.Fatalf("boards %v", bs)
	}
	if err := RemoveBoard(root, DefaultBoard, true); err == nil {
		t.Fatal("default board removed")
	}
	if err := RemoveBoard(root, "zeta", true); err != nil {
		t.Fatal(err)
	}
	if bs, _ := ListBoards(root); !slices.Equal(bs, []string{"alpha"}) {
		t.Fatalf("boards after archive %v", bs)
	}
	t.Setenv(EnvKanbanBoard, "alpha")
	if CurrentBoard(root, "") != "alpha" || CurrentBoard(root, "zeta") != "zeta" {
		t.Fatal("current board precedence")
	}
	t.Setenv(EnvKanbanDB, "/pinned/kanban.db")
	if p, _ := ResolveBoardPath(root, "alpha"); p != "/pinned/kanban.db" {
		t.Fatalf("pinned path lost: %s", p)
	}
}
