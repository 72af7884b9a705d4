package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sqlchaos/sqlchaos/internal/sqlitex"
)

// Target names: where the loop's database lives.
const (
	Bare   = "bare"   // the backing directory itself, no FUSE
	Fuse   = "fuse"   // a faultfs mount with no rules and no trace
	Fuse20 = "fuse20" // a faultfs mount with NeverFirePlan loaded, no trace
	Trace  = "trace"  // a faultfs mount with no rules and the op trace on
)

// Targets lists every target in the order a run measures them.
var Targets = []string{Bare, Fuse, Fuse20, Trace}

// Ratio names a quotient of two targets' median rates.
type Ratio struct {
	Name     string // e.g. "fuse20/fuse"
	Num, Den string // target names
	Goal     float64
	GoalText string
}

// Ratios are the quotients the report prints; Goal is the threshold the
// issue sets (0 = reported only).
var Ratios = []Ratio{
	{Name: "fuse/bare", Num: Fuse, Den: Bare},
	{Name: "fuse20/fuse", Num: Fuse20, Den: Fuse, Goal: 0.9, GoalText: "20 rules that never fire cost under 10%"},
	{Name: "trace/fuse", Num: Trace, Den: Fuse, Goal: 0.5, GoalText: "the trace must not halve throughput"},
}

// Options configure Run. The zero value of a field takes its default.
type Options struct {
	N       int      // timed commits per measurement (default 2000)
	Repeat  int      // measurements per cell; the report keeps the median (default 3)
	Drivers []string // default modernc, mattn
	Modes   []string // default wal, delete
	Syncs   []string // default full, normal
	Targets []string // default all of Targets
	Dir     string   // parent of the backing and mount dirs (default: a new temp dir, removed after)
	// Progress receives one line per measurement (e.g. os.Stderr); nil = silent.
	Progress io.Writer
	// Stderr receives the faultfs servers' diagnostics; nil = discarded.
	Stderr io.Writer
}

func (o *Options) defaults() {
	if o.N <= 0 {
		o.N = 2000
	}
	if o.Repeat <= 0 {
		o.Repeat = 3
	}
	if len(o.Drivers) == 0 {
		o.Drivers = sqlitex.Drivers()
	}
	if len(o.Modes) == 0 {
		o.Modes = Modes
	}
	if len(o.Syncs) == 0 {
		o.Syncs = Syncs
	}
	if len(o.Targets) == 0 {
		o.Targets = Targets
	}
}

func (o *Options) validate() error {
	for _, d := range o.Drivers {
		if _, err := sqlitex.SQLName(d); err != nil {
			return err
		}
	}
	for _, m := range o.Modes {
		if !slices.Contains(Modes, m) {
			return fmt.Errorf("bench: unknown journal mode %q (want wal or delete)", m)
		}
	}
	for _, s := range o.Syncs {
		if !slices.Contains(Syncs, s) {
			return fmt.Errorf("bench: unknown synchronous level %q (want full or normal)", s)
		}
	}
	fuse := false
	for _, t := range o.Targets {
		if !slices.Contains(Targets, t) {
			return fmt.Errorf("bench: unknown target %q (want bare, fuse, fuse20 or trace)", t)
		}
		fuse = fuse || t != Bare
	}
	if fuse {
		if os.Geteuid() != 0 {
			return errors.New("bench: the fuse targets need root (faultfs mounts straight from /dev/fuse); use --targets bare")
		}
		if _, err := os.Stat("/dev/fuse"); err != nil {
			return fmt.Errorf("bench: the fuse targets need /dev/fuse (%v); use --targets bare", err)
		}
	}
	return nil
}

// Stat summarizes the repeated measurements of one cell, in commits/s.
type Stat struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Runs   []float64 `json:"runs"`
}

// Row is one (driver, mode, sync) combination measured on every target.
type Row struct {
	Driver string             `json:"driver"`
	Mode   string             `json:"mode"`
	Sync   string             `json:"sync"`
	Rates  map[string]Stat    `json:"rates"`  // by target
	Ratios map[string]float64 `json:"ratios"` // by Ratio.Name, from medians
}

// Report is the result of Run.
type Report struct {
	N         int       `json:"n"`
	Repeat    int       `json:"repeat"`
	Targets   []string  `json:"targets"`
	Rows      []Row     `json:"rows"`
	Plan20    string    `json:"plan20,omitempty"` // the never-firing plan, when fuse20 ran
	Fired20   int       `json:"fired20"`          // faults the fuse20 plan fired (must be 0)
	NumCPU    int       `json:"num_cpu"`
	GoVersion string    `json:"go_version"`
	Started   time.Time `json:"started"`
	Elapsed   string    `json:"elapsed"`
}

// Run measures every (target, driver, mode, sync) cell opts names and
// returns the report. The targets of one row are measured interleaved, in
// rotating chunks of commits, so that noise from other processes on the
// machine hits every target alike and the ratios stay meaningful.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts.defaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	rep := &Report{N: opts.N, Repeat: opts.Repeat, Targets: opts.Targets,
		NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(), Started: time.Now()}

	root, tempRoot := opts.Dir, false
	if root == "" {
		d, err := os.MkdirTemp("", "sqlchaos-bench-")
		if err != nil {
			return nil, err
		}
		root, tempRoot = d, true
	}
	dirs := map[string]string{}
	var mounts []*mounted
	defer func() {
		clean := true
		for _, m := range mounts {
			if m.stop() != nil {
				clean = false
			}
		}
		// Never walk a directory that may still hold a (dead) mount.
		if tempRoot && clean {
			os.RemoveAll(root)
		}
	}()
	for _, t := range opts.Targets {
		backing := filepath.Join(root, t, "backing")
		if err := os.MkdirAll(backing, 0o755); err != nil {
			return nil, err
		}
		if t == Bare {
			dirs[t] = backing
			continue
		}
		m, err := startMount(ctx, t, filepath.Join(root, t), opts.Stderr)
		if err != nil {
			return nil, fmt.Errorf("bench: mount for %s: %w", t, err)
		}
		mounts = append(mounts, m)
		dirs[t] = m.dir
		if t == Fuse20 {
			rep.Plan20 = NeverFirePlan
		}
	}

	type key struct{ t, d, m, s string }
	runs := map[key][]float64{}
	total := opts.Repeat * len(opts.Drivers) * len(opts.Modes) * len(opts.Syncs)
	done := 0
	for r := 1; r <= opts.Repeat; r++ {
		for _, d := range opts.Drivers {
			for _, m := range opts.Modes {
				for _, s := range opts.Syncs {
					paths := map[string]string{}
					for _, t := range opts.Targets {
						paths[t] = filepath.Join(dirs[t], fmt.Sprintf("%s-%s-%s-r%d.db", d, m, s, r))
					}
					rates, err := measureInterleaved(ctx, d, m, s, opts.N, opts.Targets, paths)
					for _, p := range paths {
						removeDB(p)
					}
					if err != nil {
						return nil, fmt.Errorf("bench: %s %s %s: %w", d, m, s, err)
					}
					var line strings.Builder
					for _, t := range opts.Targets {
						k := key{t, d, m, s}
						runs[k] = append(runs[k], rates[t])
						fmt.Fprintf(&line, " %s %.0f", t, rates[t])
					}
					done++
					if opts.Progress != nil {
						fmt.Fprintf(opts.Progress, "bench: [%d/%d] repeat %d %s %s %s commits/s:%s\n",
							done, total, r, d, m, s, line.String())
					}
				}
			}
		}
	}

	for _, m := range mounts {
		if m.target != Fuse20 {
			continue
		}
		n, err := m.fired()
		if err != nil {
			return nil, fmt.Errorf("bench: reading the fuse20 rule counters: %w", err)
		}
		rep.Fired20 = n
	}
	var stopErr error
	for _, m := range mounts {
		stopErr = errors.Join(stopErr, m.stop())
	}
	if stopErr != nil {
		return nil, fmt.Errorf("bench: stopping mounts: %w", stopErr)
	}

	for _, d := range opts.Drivers {
		for _, m := range opts.Modes {
			for _, s := range opts.Syncs {
				row := Row{Driver: d, Mode: m, Sync: s, Rates: map[string]Stat{}, Ratios: map[string]float64{}}
				for _, t := range opts.Targets {
					row.Rates[t] = summarize(runs[key{t, d, m, s}])
				}
				for _, q := range Ratios {
					num, ok1 := row.Rates[q.Num]
					den, ok2 := row.Rates[q.Den]
					if ok1 && ok2 && den.Median > 0 {
						row.Ratios[q.Name] = num.Median / den.Median
					}
				}
				rep.Rows = append(rep.Rows, row)
			}
		}
	}
	rep.Elapsed = time.Since(rep.Started).Round(time.Second).String()
	if rep.Fired20 != 0 {
		return rep, fmt.Errorf("bench: the never-firing plan fired %d faults; the fuse20 numbers are void", rep.Fired20)
	}
	return rep, nil
}

func summarize(runs []float64) Stat {
	s := Stat{Runs: runs}
	if len(runs) == 0 {
		return s
	}
	sorted := append([]float64(nil), runs...)
	sort.Float64s(sorted)
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	if n := len(sorted); n%2 == 1 {
		s.Median = sorted[n/2]
	} else {
		s.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return s
}

// removeDB removes a database and its side files.
func removeDB(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		os.Remove(path + suffix)
	}
}

// measureInterleaved opens one fresh database per target (at paths[t]) and
// runs n commits on each, alternating between targets every chunk of
// commits and rotating which target goes first. It returns each target's
// commits/s over its own timed commits only.
func measureInterleaved(ctx context.Context, driver, mode, sync string, n int, targets []string, paths map[string]string) (map[string]float64, error) {
	loops := map[string]*Loop{}
	defer func() {
		for _, l := range loops {
			l.Close()
		}
	}()
	for _, t := range targets {
		l, err := OpenLoop(ctx, driver, paths[t], mode, sync)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		loops[t] = l
	}
	chunk := max(n/20, 10)
	elapsed := map[string]time.Duration{}
	for done, round := 0, 0; done < n; done, round = done+chunk, round+1 {
		c := min(chunk, n-done)
		for i := range targets {
			t := targets[(i+round)%len(targets)]
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			start := time.Now()
			if err := loops[t].Insert(ctx, c); err != nil {
				return nil, fmt.Errorf("%s: %w", t, err)
			}
			elapsed[t] += time.Since(start)
		}
	}
	rates := map[string]float64{}
	for _, t := range targets {
		if err := loops[t].Verify(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		rates[t] = float64(n) / elapsed[t].Seconds()
	}
	return rates, nil
}
