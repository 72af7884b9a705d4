package soak

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/reports"
	"github.com/sqlchaos/sqlchaos/verdict"
)

// MergeKind marks a merged report.json (its "kind" field), so that a merge
// never mistakes an earlier merge's output for a run.
const MergeKind = "sqlchaos-soak-merge"

// Source is one input of a merge: a shard directory with its shard.json,
// or a directory of plain runs (a `chaosrun matrix --out` directory, one
// `chaosrun run --out` directory) without one.
type Source struct {
	Dir   string
	Shard *ShardRecord // nil for plain runs
	// Runs are the runs read, by their directory relative to Dir ("." for
	// Dir itself).
	Runs map[string]*reports.Report
	// Unreadable maps a case directory whose report.json exists but could
	// not be read to the error.
	Unreadable map[string]string
}

// Load finds the sources under each directory: the directory itself when
// it holds shard.json or report.json, otherwise its subdirectories that
// do (the layout of downloaded CI artifacts, one directory per shard, and
// of a matrix output directory). A directory with neither is an error.
func Load(dirs []string) ([]Source, error) {
	var out []Source
	for _, d := range dirs {
		d, err := filepath.Abs(d)
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(d)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("%s is not a directory", d)
		}
		if src, ok, err := loadDir(d); err != nil {
			return nil, err
		} else if ok {
			out = append(out, src)
			continue
		}
		ents, err := os.ReadDir(d)
		if err != nil {
			return nil, err
		}
		plain := Source{Dir: d, Runs: map[string]*reports.Report{}, Unreadable: map[string]string{}}
		found := false
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			sub := filepath.Join(d, e.Name())
			src, ok, err := loadDir(sub)
			switch {
			case err != nil:
				return nil, err
			case !ok:
				continue
			case src.Shard != nil:
				out = append(out, src)
			default:
				for k, r := range src.Runs {
					plain.Runs[filepath.Join(e.Name(), k)] = r
				}
				for k, v := range src.Unreadable {
					plain.Unreadable[filepath.Join(e.Name(), k)] = v
				}
			}
			found = true
		}
		if !found {
			return nil, fmt.Errorf("%s: no %s or %s in it or in its subdirectories", d, ShardFile, reports.ReportFile)
		}
		if len(plain.Runs)+len(plain.Unreadable) > 0 {
			out = append(out, plain)
		}
	}
	return out, nil
}

// loadDir reads d as a shard directory or a run directory; ok is false
// when it is neither (or is a merge output).
func loadDir(d string) (src Source, ok bool, err error) {
	src = Source{Dir: d, Runs: map[string]*reports.Report{}, Unreadable: map[string]string{}}
	if _, err := os.Stat(filepath.Join(d, ShardFile)); err == nil {
		rec, err := ReadShard(d)
		if err != nil {
			return src, false, err
		}
		src.Shard = rec
		for _, c := range rec.Cases {
			if c.Status == NotRun {
				continue
			}
			if _, err := os.Stat(filepath.Join(d, c.Dir, reports.ReportFile)); err != nil {
				continue // lost: the aggregate says so
			}
			r, err := reports.ReadReport(filepath.Join(d, c.Dir))
			if err != nil {
				src.Unreadable[c.Dir] = err.Error()
				continue
			}
			src.Runs[c.Dir] = r
		}
		return src, true, nil
	}
	b, err := os.ReadFile(filepath.Join(d, reports.ReportFile))
	if errors.Is(err, os.ErrNotExist) {
		return src, false, nil
	}
	if err != nil {
		return src, false, err
	}
	var kind struct{ Kind string }
	if json.Unmarshal(b, &kind) == nil && kind.Kind == MergeKind {
		return src, false, nil
	}
	r, err := reports.ReadReport(d)
	if err != nil {
		src.Unreadable["."] = err.Error()
	} else {
		src.Runs["."] = r
	}
	return src, true, nil
}

// Merged is a merge's report.json: the aggregate of every source.
type Merged struct {
	Kind      string        `json:"kind"`
	Generated time.Time     `json:"generated"`
	OK        bool          `json:"ok"` // every run reproduced, held or finding, and no problem
	Totals    Totals        `json:"totals"`
	Shards    []ShardStatus `json:"shards"`
	Cells     []CellStats   `json:"cells"`
	Plans     []FoundPlan   `json:"plans"`
	Problems  []Problem     `json:"problems"`
	Notes     []string      `json:"notes,omitempty"`
}

// Totals count over every source.
type Totals struct {
	Runs     int            `json:"runs"`
	Outcomes map[string]int `json:"outcomes"`
	Lost     int            `json:"lost"`    // given to a shard, no report: the shard died, or the report is missing
	Errored  int            `json:"errored"` // ran but could not be judged
	NotRun   int            `json:"not_run"` // never started (budget, interrupt)
}

// ShardStatus is one source's state.
type ShardStatus struct {
	Dir      string `json:"dir"`
	Shard    string `json:"shard,omitempty"` // I/N; empty for plain runs
	Seeds    string `json:"seeds,omitempty"`
	State    string `json:"state"` // done, budget, interrupted, setup-error, dead, missing, runs
	Given    int    `json:"given"`
	Finished int    `json:"finished"`
	Errored  int    `json:"errored"`
	Lost     int    `json:"lost"`
	NotRun   int    `json:"not_run"`
	Started  string `json:"started,omitempty"`
	Ended    string `json:"ended,omitempty"`
}

// Shard states besides the Stop* reasons.
const (
	StateDead    = "dead"    // shard.json without an end: the shard died (or is still running)
	StateMissing = "missing" // an index of a soak with no shard.json among the inputs
	StateRuns    = "runs"    // plain run directories, no shard record
)

// CellStats aggregate one cell's runs.
type CellStats struct {
	Cell     string         `json:"cell"`
	Runs     int            `json:"runs"`
	Outcomes map[string]int `json:"outcomes"`
	Lost     int            `json:"lost,omitempty"`
	Errored  int            `json:"errored,omitempty"`
	NotRun   int            `json:"not_run,omitempty"`
	// ReproductionRate is reproduced runs / runs.
	ReproductionRate float64 `json:"reproduction_rate"`
	// MedianToReproduce is the median wall time of the reproduced runs.
	MedianToReproduce time.Duration `json:"median_to_reproduce,omitempty"`
	// Bad lists the runs that keep the merge from passing (up to 20).
	Bad []RunRef `json:"bad,omitempty"`
}

// RunRef points at one run.
type RunRef struct {
	Cell    string `json:"cell"`
	Seed    int64  `json:"seed"`
	Outcome string `json:"outcome"`
	Why     string `json:"why,omitempty"`
	Replay  string `json:"replay"`    // chaosrun replay DIR, DIR as merged
	Again   string `json:"run_again"` // chaosrun run ... --seed N: the cell from its seed anywhere
}

// FoundPlan is a plan that broke something (a run neither held nor
// clean), with every run it broke.
type FoundPlan struct {
	// Plan is the canonical form (plan.Parse, then String), with the pid
	// numbers of `pid=` — a process of one run — written as {pid}.
	Plan     string         `json:"plan"`
	Runs     int            `json:"runs"`
	Outcomes map[string]int `json:"outcomes"`
	Cells    []string       `json:"cells"`
	// Example is the most telling run with this plan: its replay command
	// re-runs it from its directory (seed, plan, profile, driver).
	Example RunRef `json:"example"`
}

// Problem is something that keeps a merge from passing besides a run's
// outcome: a shard that died, is missing or stopped early, a case that
// errored or lost its report.
type Problem struct {
	Kind   string `json:"kind"` // dead-shard, missing-shard, stopped, errored, lost, not-run, unreadable, mismatch
	Shard  string `json:"shard,omitempty"`
	Case   string `json:"case,omitempty"`
	Detail string `json:"detail"`
}

// passing reports whether a run's outcome lets a merge pass: the same
// gate as the matrix's (verdict.Verdict.OK: reproduced, held, finding, and
// observed for a profile its scenario states nothing for).
func passing(outcome string) bool { return verdict.Verdict(outcome).OK() }

// Aggregate merges the sources. It is a pure function of its input: the
// same runs give the same result however they were sharded (Generated
// aside, which the caller sets).
func Aggregate(srcs []Source) *Merged {
	a := &aggregation{m: &Merged{Kind: MergeKind, Totals: Totals{Outcomes: map[string]int{}}},
		cells: map[string]*CellStats{}, seen: map[Case]string{}}
	sorted := append([]Source(nil), srcs...)
	sort.SliceStable(sorted, func(i, j int) bool { return sourceKey(sorted[i]) < sourceKey(sorted[j]) })
	for _, src := range sorted {
		if src.Shard == nil {
			a.addPlain(src)
		} else {
			a.addShard(src)
		}
	}
	a.m.Shards = append(a.m.Shards, missingShards(sorted, a.problem)...)
	a.countRuns()
	a.m.Plans = foundPlans(a.runs)
	a.m.OK = len(a.m.Problems) == 0
	for o := range a.m.Totals.Outcomes {
		if !passing(o) {
			a.m.OK = false
		}
	}
	return a.m
}

// aggregation is a merge in progress: the report, its cells by name, the
// runs collected and where each case ran first.
type aggregation struct {
	m     *Merged
	cells map[string]*CellStats
	runs  []*reports.Report
	seen  map[Case]string
}

// cell returns the named cell's stats, adding it the first time.
func (a *aggregation) cell(name string) *CellStats {
	c := a.cells[name]
	if c == nil {
		c = &CellStats{Cell: name, Outcomes: map[string]int{}}
		a.cells[name] = c
	}
	return c
}

// addRun collects a run read at where, noting a case that ran twice.
func (a *aggregation) addRun(r *reports.Report, where string) {
	k := Case{Cell{r.Scenario, r.Profile, r.Driver}, r.Seed}
	if prev, dup := a.seen[k]; dup {
		a.m.Notes = append(a.m.Notes, fmt.Sprintf("%s ran twice (%s and %s); both runs count", k, prev, where))
	}
	a.seen[k] = where
	a.runs = append(a.runs, r)
}

func (a *aggregation) problem(p Problem) { a.m.Problems = append(a.m.Problems, p) }

// addPlain adds a source of plain run directories: its runs, and its
// unreadable reports as problems.
func (a *aggregation) addPlain(src Source) {
	st := ShardStatus{Dir: src.Dir, State: StateRuns, Given: len(src.Runs) + len(src.Unreadable)}
	for _, k := range slices.Sorted(maps.Keys(src.Runs)) {
		a.addRun(src.Runs[k], filepath.Join(src.Dir, k))
		st.Finished++
	}
	for _, k := range slices.Sorted(maps.Keys(src.Unreadable)) {
		st.Lost++
		a.problem(Problem{Kind: "unreadable", Case: filepath.Join(src.Dir, k), Detail: src.Unreadable[k]})
	}
	a.m.Shards = append(a.m.Shards, st)
}

// addShard adds a shard source: its state (dead, stopped early or
// finished) and each case it was given.
func (a *aggregation) addShard(src Source) {
	rec := src.Shard
	st := ShardStatus{Dir: src.Dir, Shard: rec.Shard, Seeds: rec.Seeds, Given: len(rec.Cases), Started: rec.Started.UTC().Format(time.RFC3339)}
	if rec.Ended == nil {
		st.State = StateDead
		a.problem(Problem{Kind: "dead-shard", Shard: rec.Shard, Detail: fmt.Sprintf("%s has no end: the shard died (or is still running); last update %s", filepath.Join(src.Dir, ShardFile), rec.Updated.UTC().Format(time.RFC3339))})
	} else {
		st.State, st.Ended = rec.Stopped, rec.Ended.UTC().Format(time.RFC3339)
		if rec.Stopped != StopDone && rec.Stopped != StopBudget {
			a.problem(Problem{Kind: "stopped", Shard: rec.Shard, Detail: fmt.Sprintf("the shard stopped early: %s", rec.Stopped)})
		}
	}
	for _, c := range rec.Cases {
		a.addCase(src, c, &st)
	}
	a.m.Shards = append(a.m.Shards, st)
}

// addCase adds one case of a shard: its run, or why it has none (errored,
// not run, lost), counted on the shard, its cell and the totals.
func (a *aggregation) addCase(src Source, c CaseRecord, st *ShardStatus) {
	rec := src.Shard
	cs := a.cell(c.Cell.String())
	r, ok := src.Runs[c.Dir]
	switch {
	case ok:
		if r.Scenario != c.Scenario || r.Profile != c.Profile || r.Driver != c.Driver || r.Seed != c.Seed {
			a.problem(Problem{Kind: "mismatch", Shard: rec.Shard, Case: c.String(), Detail: fmt.Sprintf("%s holds %s seed %d", filepath.Join(src.Dir, c.Dir), r.Cell(), r.Seed)})
		}
		a.addRun(r, filepath.Join(src.Dir, c.Dir))
		st.Finished++
	case c.Status == Errored:
		st.Errored++
		cs.Errored++
		a.m.Totals.Errored++
		a.problem(Problem{Kind: "errored", Shard: rec.Shard, Case: c.String(), Detail: c.Error})
	case c.Status == NotRun:
		st.NotRun++
		cs.NotRun++
		a.m.Totals.NotRun++
		if rec.Stopped != StopBudget {
			a.problem(Problem{Kind: "not-run", Shard: rec.Shard, Case: c.String(), Detail: "never started: the shard stopped (" + rec.Stopped + ")"})
		}
	default:
		st.Lost++
		cs.Lost++
		a.m.Totals.Lost++
		a.problem(Problem{Kind: "lost", Shard: rec.Shard, Case: c.String(), Detail: lostWhy(src, c)})
	}
}

// lostWhy says why a case has no run: no report, or an unreadable one,
// and its last status.
func lostWhy(src Source, c CaseRecord) string {
	why := "no report.json"
	if e, bad := src.Unreadable[c.Dir]; bad {
		why = "report.json unreadable: " + e
	}
	if src.Shard.Ended == nil {
		return why + fmt.Sprintf(" (status %s in a shard that died)", c.Status)
	}
	return why + fmt.Sprintf(" (status %s)", c.Status)
}

// countRuns sorts the runs by cell and seed and counts them per cell and
// in the totals, with each cell's bad runs, reproduction rate and median
// time to reproduce; m.Cells ends sorted by name.
func (a *aggregation) countRuns() {
	m := a.m
	sort.SliceStable(a.runs, func(i, j int) bool {
		x, y := a.runs[i], a.runs[j]
		if x.Cell() != y.Cell() {
			return x.Cell() < y.Cell()
		}
		return x.Seed < y.Seed
	})
	reproduced := map[string][]time.Duration{}
	for _, r := range a.runs {
		cs := a.cell(r.Cell())
		cs.Runs++
		cs.Outcomes[r.Outcome]++
		m.Totals.Runs++
		m.Totals.Outcomes[r.Outcome]++
		if r.Outcome == reports.Reproduced {
			reproduced[r.Cell()] = append(reproduced[r.Cell()], r.Elapsed)
		}
		if !passing(r.Outcome) && len(cs.Bad) < 20 {
			cs.Bad = append(cs.Bad, ref(r))
		}
	}
	for name, cs := range a.cells {
		if cs.Runs > 0 {
			cs.ReproductionRate = float64(cs.Outcomes[reports.Reproduced]) / float64(cs.Runs)
		}
		cs.MedianToReproduce = median(reproduced[name])
		m.Cells = append(m.Cells, *cs)
	}
	sort.Slice(m.Cells, func(i, j int) bool { return m.Cells[i].Cell < m.Cells[j].Cell })
}

func sourceKey(s Source) string {
	if s.Shard != nil {
		return fmt.Sprintf("0 %s %08d %s", s.Shard.Seeds, s.Shard.Index, s.Dir)
	}
	return "1 " + s.Dir
}

// missingShards reports, per soak (shards sharing count, seeds and cells),
// the indexes no input holds.
func missingShards(srcs []Source, problem func(Problem)) []ShardStatus {
	type soakKey struct {
		count       int
		seeds, cels string
	}
	have := map[soakKey]map[int]bool{}
	var order []soakKey
	for _, s := range srcs {
		if s.Shard == nil {
			continue
		}
		k := soakKey{s.Shard.Count, s.Shard.Seeds, strings.Join(s.Shard.Cells, ",")}
		if have[k] == nil {
			have[k] = map[int]bool{}
			order = append(order, k)
		}
		have[k][s.Shard.Index] = true
	}
	var out []ShardStatus
	for _, k := range order {
		for i := 0; i < k.count; i++ {
			if !have[k][i] {
				sh := fmt.Sprintf("%d/%d", i, k.count)
				out = append(out, ShardStatus{Shard: sh, Seeds: k.seeds, State: StateMissing})
				problem(Problem{Kind: "missing-shard", Shard: sh, Detail: fmt.Sprintf("no %s for shard %s of the soak over seeds %s among the inputs", ShardFile, sh, k.seeds)})
			}
		}
	}
	return out
}

func ref(r *reports.Report) RunRef {
	return RunRef{Cell: r.Cell(), Seed: r.Seed, Outcome: r.Outcome, Why: r.Why,
		Replay: reports.ReplayCommand(r.Dir), Again: r.RunCommand()}
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	n := len(d)
	if n%2 == 1 {
		return d[n/2]
	}
	return (d[n/2-1] + d[n/2]) / 2
}

var pidKey = regexp.MustCompile(`(^|\s)pid=\d+`)

// PlanKey is the deduplication key of a run's plan: its canonical form
// (plan.Parse, then String) with pid numbers written as {pid}. ok is false
// for an empty plan; a plan that does not parse keys on its trimmed text.
func PlanKey(text string) (key string, ok bool) {
	if strings.TrimSpace(text) == "" {
		return "", false
	}
	p, err := plan.Parse(text)
	if err != nil {
		return strings.TrimSpace(text) + "\n", true
	}
	if len(p.Rules) == 0 {
		return "", false
	}
	return pidKey.ReplaceAllString(p.String(), "${1}pid={pid}"), true
}

// telling orders outcomes by how much a found plan's example should show
// it: unexpected first, reproduced last.
func telling(outcome string) int {
	switch outcome {
	case reports.Unexpected:
		return 0
	case "hung":
		return 1
	case "finding":
		return 2
	case reports.Reproduced:
		return 9
	}
	return 5
}

func foundPlans(runs []*reports.Report) []FoundPlan {
	idx := map[string]int{}
	var out []FoundPlan
	cells := map[string]map[string]bool{}
	for _, r := range runs { // sorted by cell, then seed
		if r.Outcome == reports.Held {
			continue
		}
		key, ok := PlanKey(r.Plan)
		if !ok {
			continue
		}
		i, seen := idx[key]
		if !seen {
			i = len(out)
			idx[key] = i
			out = append(out, FoundPlan{Plan: key, Outcomes: map[string]int{}, Example: ref(r)})
			cells[key] = map[string]bool{}
		}
		fp := &out[i]
		fp.Runs++
		fp.Outcomes[r.Outcome]++
		if telling(r.Outcome) < telling(fp.Example.Outcome) {
			fp.Example = ref(r)
		}
		if !cells[key][r.Cell()] {
			cells[key][r.Cell()] = true
			fp.Cells = append(fp.Cells, r.Cell())
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if ta, tb := telling(a.Example.Outcome), telling(b.Example.Outcome); ta != tb {
			return ta < tb
		}
		if a.Runs != b.Runs {
			return a.Runs > b.Runs
		}
		return a.Plan < b.Plan
	})
	return out
}
