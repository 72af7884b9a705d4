package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sqlchaos/sqlchaos/internal/fusetest"
	"github.com/sqlchaos/sqlchaos/internal/sqlitex"
)

// TestRunSmall runs the whole benchmark with tiny N on every target: every
// cell gets a rate, the never-firing plan fires nothing, and the table names
// the goal.
func TestRunSmall(t *testing.T) {
	targets := []string{Bare}
	if fusetest.Reason() == "" || os.Getenv(fusetest.RequireEnv) == "1" {
		fusetest.Require(t)
		targets = Targets
	}
	rep, err := Run(context.Background(), Options{N: 30, Repeat: 1, Targets: targets, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rep.Rows), len(sqlitex.Drivers())*len(Modes)*len(Syncs); got != want {
		t.Fatalf("got %d rows, want %d", got, want)
	}
	for _, r := range rep.Rows {
		for _, tg := range targets {
			if r.Rates[tg].Median <= 0 {
				t.Fatalf("%s %s %s on %s: no rate", r.Driver, r.Mode, r.Sync, tg)
			}
		}
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	if len(targets) == len(Targets) {
		if rep.Fired20 != 0 {
			t.Fatalf("fuse20 fired %d faults", rep.Fired20)
		}
		for _, want := range []string{"fuse20/fuse >= 0.90", "trace/fuse >= 0.50", "20 rules loaded, 0 faults fired"} {
			if !strings.Contains(buf.String(), want) {
				t.Fatalf("table lacks %q:\n%s", want, buf.String())
			}
		}
	}
	t.Logf("\n%s", buf.String())
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{Drivers: []string{"sqlite"}},
		{Modes: []string{"memory"}},
		{Syncs: []string{"off"}},
		{Targets: []string{"tmpfs"}},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("Run(%+v) accepted a bad option", o)
		}
	}
}

// shared holds the mounts the Go benchmarks use, started on first use and
// stopped by TestMain.
var shared struct {
	sync.Mutex
	root   string
	mounts map[string]*mounted
	n      int
}

func sharedDir(b *testing.B, target string) string {
	shared.Lock()
	defer shared.Unlock()
	if shared.root == "" {
		d, err := os.MkdirTemp("", "sqlchaos-bench-")
		if err != nil {
			b.Fatal(err)
		}
		shared.root = d
		shared.mounts = map[string]*mounted{}
	}
	root := filepath.Join(shared.root, target)
	if target == Bare {
		if err := os.MkdirAll(filepath.Join(root, "backing"), 0o755); err != nil {
			b.Fatal(err)
		}
		return filepath.Join(root, "backing")
	}
	if m := shared.mounts[target]; m != nil {
		return m.dir
	}
	m, err := startMount(context.Background(), target, root, os.Stderr)
	if err != nil {
		b.Fatal(err)
	}
	shared.mounts[target] = m
	return m.dir
}

func stopShared() {
	shared.Lock()
	defer shared.Unlock()
	for t, m := range shared.mounts {
		if t == Fuse20 {
			if n, err := m.fired(); err != nil || n != 0 {
				fmt.Fprintf(os.Stderr, "bench: fuse20 rules fired %d faults (err %v); its numbers are void\n", n, err)
			}
		}
		if err := m.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
	}
	if shared.root != "" {
		os.RemoveAll(shared.root)
	}
}

// BenchmarkInsert times one autocommit 1-row INSERT per iteration:
// BenchmarkInsert/{bare,fuse,fuse20,trace}/{driver}/{mode}/{sync}. Compare
// runs with benchstat; commits/s is reported as a metric.
func BenchmarkInsert(b *testing.B) {
	for _, target := range Targets {
		b.Run(target, func(b *testing.B) {
			if target != Bare {
				fusetest.Require(b)
			}
			for _, d := range sqlitex.Drivers() {
				for _, mode := range Modes {
					for _, sync := range Syncs {
						b.Run(d+"/"+mode+"/"+sync, func(b *testing.B) {
							benchInsert(b, target, d, mode, sync)
						})
					}
				}
			}
		})
	}
}

func benchInsert(b *testing.B, target, driver, mode, sync string) {
	dir := sharedDir(b, target)
	shared.Lock()
	shared.n++
	path := filepath.Join(dir, fmt.Sprintf("b%d.db", shared.n))
	shared.Unlock()
	defer removeDB(path)
	ctx := context.Background()
	l, err := OpenLoop(ctx, driver, path, mode, sync)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ResetTimer()
	if err := l.Insert(ctx, b.N); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	if err := l.Verify(ctx); err != nil {
		b.Fatal(err)
	}
}
