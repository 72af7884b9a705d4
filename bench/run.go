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
	tg := &targetDirs{root: opts.Dir, dirs: map[string]string{}}
	defer tg.cleanup()
	if err := tg.setup(ctx, opts); err != nil {
		return nil, err
	}
	if slices.Contains(opts.Targets, Fuse20) {
		rep.Plan20 = NeverFirePlan
	}
	runs, err := measureAll(ctx, opts, tg.dirs)
	if err != nil {
		return nil, err
	}
	if rep.Fired20, err = tg.fired20(); err != nil {
		return nil, err
	}
	if err := tg.stop(); err != nil {
		return nil, err
	}
	rep.Rows = summarizeRows(opts, runs)
	rep.Elapsed = time.Since(rep.Started).Round(time.Second).String()
	if rep.Fired20 != 0 {
		return rep, fmt.Errorf("bench: the never-firing plan fired %d faults; the fuse20 numbers are void", rep.Fired20)
	}
	return rep, nil
}

// targetDirs are the directories the targets' databases live in: the
// backing directory for bare, a faultfs mount for the others.
type targetDirs struct {
	root   string // parent of every backing and mount dir
	temp   bool   // root was made by setup (removed by cleanup)
	dirs   map[string]string
	mounts []*mounted
}

// setup makes each target's backing directory under root (a new temp
// dir when root is "") and mounts the fuse targets.
func (tg *targetDirs) setup(ctx context.Context, opts Options) error {
	if tg.root == "" {
		d, err := os.MkdirTemp("", "sqlchaos-bench-")
		if err != nil {
			return err
		}
		tg.root, tg.temp = d, true
	}
	for _, t := range opts.Targets {
		backing := filepath.Join(tg.root, t, "backing")
		if err := os.MkdirAll(backing, 0o755); err != nil {
			return err
		}
		if t == Bare {
			tg.dirs[t] = backing
			continue
		}
		m, err := startMount(ctx, t, filepath.Join(tg.root, t), opts.Stderr)
		if err != nil {
			return fmt.Errorf("bench: mount for %s: %w", t, err)
		}
		tg.mounts = append(tg.mounts, m)
		tg.dirs[t] = m.dir
	}
	return nil
}

// fired20 returns the faults the fuse20 mount's never-firing plan fired.
func (tg *targetDirs) fired20() (int, error) {
	n := 0
	for _, m := range tg.mounts {
		if m.target != Fuse20 {
			continue
		}
		var err error
		if n, err = m.fired(); err != nil {
			return 0, fmt.Errorf("bench: reading the fuse20 rule counters: %w", err)
		}
	}
	return n, nil
}

// stop unmounts every mount.
func (tg *targetDirs) stop() error {
	var stopErr error
	for _, m := range tg.mounts {
		stopErr = errors.Join(stopErr, m.stop())
	}
	if stopErr != nil {
		return fmt.Errorf("bench: stopping mounts: %w", stopErr)
	}
	return nil
}

// cleanup stops what is still mounted and removes a temporary root, but
// never walks a directory that may still hold a (dead) mount.
func (tg *targetDirs) cleanup() {
	clean := true
	for _, m := range tg.mounts {
		if m.stop() != nil {
			clean = false
		}
	}
	if tg.temp && clean {
		os.RemoveAll(tg.root)
	}
}

// cell is one measured combination: target, driver, journal mode and
// synchronous level.
type cell struct{ t, d, m, s string }

// measureAll measures every (driver, mode, sync) row opts.Repeat times,
// the targets of a row interleaved, and returns every cell's rates.
func measureAll(ctx context.Context, opts Options, dirs map[string]string) (map[cell][]float64, error) {
	runs := map[cell][]float64{}
	total := opts.Repeat * len(opts.Drivers) * len(opts.Modes) * len(opts.Syncs)
	done := 0
	for r := 1; r <= opts.Repeat; r++ {
		for _, d := range opts.Drivers {
			for _, m := range opts.Modes {
				for _, s := range opts.Syncs {
					rates, err := measureRow(ctx, opts, dirs, d, m, s, r)
					if err != nil {
						return nil, err
					}
					var line strings.Builder
					for _, t := range opts.Targets {
						k := cell{t, d, m, s}
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
	return runs, nil
}

// measureRow measures one (driver, mode, sync) row on every target, in
// repeat r, and removes its databases.
func measureRow(ctx context.Context, opts Options, dirs map[string]string, d, m, s string, r int) (map[string]float64, error) {
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
	return rates, nil
}

// summarizeRows summarizes the measured cells into the report's rows, with the
// ratios of their medians.
func summarizeRows(opts Options, runs map[cell][]float64) []Row {
	var out []Row
	for _, d := range opts.Drivers {
		for _, m := range opts.Modes {
			for _, s := range opts.Syncs {
				row := Row{Driver: d, Mode: m, Sync: s, Rates: map[string]Stat{}, Ratios: map[string]float64{}}
				for _, t := range opts.Targets {
					row.Rates[t] = summarize(runs[cell{t, d, m, s}])
				}
				for _, q := range Ratios {
					num, ok1 := row.Rates[q.Num]
					den, ok2 := row.Rates[q.Den]
					if ok1 && ok2 && den.Median > 0 {
						row.Ratios[q.Name] = num.Median / den.Median
					}
				}
				out = append(out, row)
			}
		}
	}
	return out
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
