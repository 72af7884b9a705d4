package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/reports"
)

// ShardFile is the name of a shard's record in its output directory.
const ShardFile = "shard.json"

// ShardKind marks a shard record (the "kind" field of shard.json).
const ShardKind = "sqlchaos-soak-shard"

// Case states in a shard record.
const (
	Pending  = "pending"  // given to the shard, not started yet
	Running  = "running"  // started, no result recorded yet
	Finished = "finished" // ran and was judged: report.json holds the outcome
	Errored  = "errored"  // ran but could not be judged (the error says why)
	NotRun   = "not_run"  // never started: the budget ran out or the shard stopped
)

// Why a shard stopped (ShardRecord.Stopped).
const (
	StopDone        = "done"        // every case given was started
	StopBudget      = "budget"      // the budget ran out; the rest are not_run
	StopInterrupted = "interrupted" // SIGINT/SIGTERM
	StopSetup       = "setup-error" // cases could not be set up (e.g. no FUSE)
)

// ShardRecord is shard.json: what a shard was given and what became of
// each case. It is rewritten (atomically) as cases start and end, so a
// shard that died leaves a record without an end.
type ShardRecord struct {
	Kind      string     `json:"kind"`
	Shard     string     `json:"shard"` // I/N
	Index     int        `json:"index"`
	Count     int        `json:"count"`
	Partition string     `json:"partition"`
	Seeds     string     `json:"seeds"`
	Cells     []string   `json:"cells"`
	Budget    string     `json:"budget,omitempty"`
	Duration  string     `json:"duration,omitempty"` // --duration per case
	Host      string     `json:"host,omitempty"`
	VCS       string     `json:"vcs,omitempty"`
	Started   time.Time  `json:"started"`
	Updated   time.Time  `json:"updated"`
	Ended     *time.Time `json:"ended,omitempty"` // nil: still running, or died
	Stopped   string     `json:"stopped,omitempty"`
	// Cases are the cases given, in run order. For an open seed range only
	// the cases started are listed (the rest is unbounded).
	Cases []CaseRecord `json:"cases"`
}

// CaseRecord is one case's entry in shard.json.
type CaseRecord struct {
	Case
	Dir     string        `json:"dir"` // relative to the shard directory
	Status  string        `json:"status"`
	Outcome string        `json:"outcome,omitempty"`
	Error   string        `json:"error,omitempty"`
	Started time.Time     `json:"started,omitzero"`
	Elapsed time.Duration `json:"elapsed,omitempty"`
}

// ReadShard reads dir/shard.json.
func ReadShard(dir string) (*ShardRecord, error) {
	b, err := os.ReadFile(filepath.Join(dir, ShardFile))
	if err != nil {
		return nil, err
	}
	var r ShardRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ShardFile), err)
	}
	if r.Kind != ShardKind {
		return nil, fmt.Errorf("%s: kind %q, want %q", filepath.Join(dir, ShardFile), r.Kind, ShardKind)
	}
	return &r, nil
}

func writeShard(dir string, r *ShardRecord) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ShardFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, ShardFile))
}

// Runner runs one case into dir (which exists) and returns its judged run,
// or an error when the case could not run or be judged. An error wrapping
// ErrSetup says the environment cannot run cases at all (no FUSE).
type Runner interface {
	Run(ctx context.Context, c Case, dir string) (*reports.Report, error)
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context, c Case, dir string) (*reports.Report, error)

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, c Case, dir string) (*reports.Report, error) {
	return f(ctx, c, dir)
}

// ErrSetup marks a runner error that would repeat for every case.
var ErrSetup = errors.New("setup")

// maxSetupErrors is how many setup errors in a row stop a shard: one may be
// a transient mount failure, three in a row are the environment.
const maxSetupErrors = 3

// maxListed bounds the cases a closed range may give one shard: shard.json
// lists them all. Larger soaks use an open range with a budget.
const maxListed = 1_000_000

// Options configure one shard.
type Options struct {
	Out      string // the shard's output directory
	Shard    Shard
	Cells    []Cell
	Seeds    Seeds
	Budget   time.Duration // 0: no budget (a closed range is required)
	Duration time.Duration // recorded in shard.json; the Runner applies it
	Runner   Runner
	// Jobs is how many cases run at once, each into its own directory
	// (0 or 1: one after another). The first case runs alone, and so does
	// each case after a setup error, until one gets past its setup.
	Jobs int
	// Keep decides whether a finished case keeps its bulky evidence (the
	// database copies, the trace, the histories); nil keeps everything.
	Keep func(*reports.Report) bool
	// Progress, if set, receives a CaseProgress when each case starts and
	// another when it ends, from one goroutine at a time.
	Progress func(CaseProgress)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// CaseProgress is a case starting or ending, for progress displays.
type CaseProgress struct {
	End     bool
	Case    Case
	Index   int    // 1-based position among the shard's cases
	Total   int    // cases given (0 for an open range)
	Outcome string // when End: the run's outcome, or "errored"
	Err     error
	Elapsed time.Duration
	Dir     string
}

// Validate checks the options that do not depend on the machine.
func (o *Options) Validate() error {
	if o.Out == "" {
		return errors.New("no output directory")
	}
	if len(o.Cells) == 0 {
		return errors.New("no cells")
	}
	if o.Seeds.Open && o.Budget <= 0 {
		return fmt.Errorf("the open seed range %s needs a --budget", o.Seeds)
	}
	if !o.Seeds.Open && o.Seeds.Count() > int64(maxListed)/int64(len(o.Cells))*int64(o.Shard.Count) {
		return fmt.Errorf("seeds %s × %d cells is too many cases to list in %s; use an open range (%d..) with --budget", o.Seeds, len(o.Cells), ShardFile, o.Seeds.First)
	}
	if o.Runner == nil {
		return errors.New("no runner")
	}
	return nil
}

// RunShard runs the shard's cases into o.Out/<case>/, up to o.Jobs at
// once and started in the order given, keeping o.Out/shard.json current,
// until the cases are done, the budget is spent (no new case starts after
// it; cases running finish), ctx is cancelled (no new case starts; the
// Runner stops the running ones), or the environment cannot set cases up.
// It returns the final record, written once every started case has ended;
// err is non-nil only when shard.json itself cannot be written.
func RunShard(ctx context.Context, o Options) (*ShardRecord, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	s := &shardRun{o: o, now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	s.rec = newShardRecord(o, s.now())
	s.total = len(s.rec.Cases)
	if err := s.save(true); err != nil {
		return nil, err
	}
	stopped, err := s.runCases(ctx)
	if err != nil {
		return s.rec, err
	}
	for j := s.next; j < len(s.rec.Cases); j++ {
		if s.rec.Cases[j].Status == Pending {
			s.rec.Cases[j].Status = NotRun
		}
	}
	end := s.now()
	s.rec.Ended, s.rec.Stopped = &end, stopped
	return s.rec, s.save(true)
}

// newShardRecord is the record of a shard starting at started: what it
// was given and, for a closed seed range, every case as pending.
func newShardRecord(o Options, started time.Time) *ShardRecord {
	host, _ := os.Hostname()
	rec := &ShardRecord{Kind: ShardKind, Shard: o.Shard.String(), Index: o.Shard.Index, Count: o.Shard.Count,
		Partition: Partition, Seeds: o.Seeds.String(), Host: host, VCS: reports.VCS(), Started: started}
	for _, c := range o.Cells {
		rec.Cells = append(rec.Cells, c.String())
	}
	if o.Budget > 0 {
		rec.Budget = o.Budget.String()
	}
	if o.Duration > 0 {
		rec.Duration = o.Duration.String()
	}
	if !o.Seeds.Open {
		for c := range Cases(o.Cells, o.Seeds, o.Shard) {
			rec.Cases = append(rec.Cases, CaseRecord{Case: c, Dir: c.Name(), Status: Pending})
		}
	}
	return rec
}

// shardRun is a shard under way: its record, when the record was last
// written, the index of the next case to start (the cases started), the
// cases running, the setup errors in a row and the first failure to write
// the record. mu guards them all once cases run (and serializes the progress
// events); wake signals a case ending or ctx ending.
type shardRun struct {
	o     Options
	now   func() time.Time
	total int // cases given (0 for an open range)

	mu        sync.Mutex
	wake      *sync.Cond
	rec       *ShardRecord
	next      int
	saved     time.Time
	running   int
	setupErrs int   // setup errors in a row, in the order cases ended
	saveErr   error // the first failure to write shard.json
}

// save rewrites shard.json. Rewriting the record costs O(cases): at most
// once a second (a case takes seconds) unless forced, as it is at the
// start and the end. A case that has a report.json merges whatever status
// the record last showed. The caller holds mu (or runs no case).
func (s *shardRun) save(force bool) error {
	t := s.now()
	if !force && t.Sub(s.saved) < time.Second {
		return nil
	}
	s.saved, s.rec.Updated = t, t
	return writeShard(s.o.Out, s.rec)
}

// saveLocked is save(false) for a case starting or ending: the caller
// holds mu; the first failure is kept for runCases.
func (s *shardRun) saveLocked() {
	if err := s.save(false); err != nil && s.saveErr == nil {
		s.saveErr = err
	}
}

func (s *shardRun) emit(ev CaseProgress) {
	if s.o.Progress != nil {
		s.o.Progress(ev)
	}
}

// runCases starts the cases in order, each when a slot is free (see
// width), until they are all started or a stop reason comes up
// (interrupt, budget, setup errors in a row), which it returns once the
// cases running have ended; err is a failure to write shard.json.
func (s *shardRun) runCases(ctx context.Context) (stopped string, err error) {
	s.wake = sync.NewCond(&s.mu)
	stopWaking := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.wake.Broadcast()
	})
	defer stopWaking()
	var wg sync.WaitGroup
	stopped = StopDone
	for c := range Cases(s.o.Cells, s.o.Seeds, s.o.Shard) {
		i, why := s.start(ctx, c)
		if why != "" {
			stopped = why
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.finish(ctx, i, c)
		}()
	}
	wg.Wait()
	if s.saveErr != nil {
		return "", s.saveErr
	}
	if stopped == StopDone && s.setupErrs >= maxSetupErrors {
		stopped = StopSetup
	}
	return stopped, nil
}

// width is how many cases may run at once: o.Jobs, but one until a case
// has ended past its setup, and again one after a setup error until a
// case gets past it, so that an environment that cannot set cases up
// fails one case at a time. The caller holds mu.
func (s *shardRun) width() int {
	if s.running == s.next || s.setupErrs > 0 { // no case has ended, or the last one failed its setup
		return 1
	}
	return max(s.o.Jobs, 1)
}

// stopReason says why no further case may start: setup errors in a row,
// an interrupt, a spent budget, a record that cannot be written ("" to
// go on; the write error itself is runCases's to return). The caller
// holds mu.
func (s *shardRun) stopReason(ctx context.Context) string {
	switch {
	case s.saveErr != nil:
		return "write-error"
	case s.setupErrs >= maxSetupErrors:
		return StopSetup
	case ctx.Err() != nil:
		return StopInterrupted
	case s.o.Budget > 0 && s.now().Sub(s.rec.Started) >= s.o.Budget:
		return StopBudget
	}
	return ""
}

// start waits for a free slot, then records case c as the next case,
// running (appending it first for an open range), and emits its start;
// it returns the case's index, or why no case may start (then c does not
// run).
func (s *shardRun) start(ctx context.Context, c Case) (i int, stop string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if stop = s.stopReason(ctx); stop != "" {
			return 0, stop
		}
		if s.running < s.width() {
			break
		}
		s.wake.Wait()
	}
	if s.o.Seeds.Open {
		s.rec.Cases = append(s.rec.Cases, CaseRecord{Case: c, Dir: c.Name()})
	}
	i = s.next
	s.next++
	s.running++
	cr := &s.rec.Cases[i]
	cr.Status, cr.Started = Running, s.now()
	if s.saveLocked(); s.saveErr != nil {
		return i, "write-error"
	}
	s.emit(CaseProgress{Case: c, Index: i + 1, Total: s.total, Dir: filepath.Join(s.o.Out, cr.Dir)})
	return i, ""
}

// finish runs case c, the i-th, records its status, outcome or error
// (pruning its evidence when o.Keep says so), counts setup errors in a
// row, emits its end and frees its slot.
func (s *shardRun) finish(ctx context.Context, i int, c Case) {
	s.mu.Lock()
	dir, started := filepath.Join(s.o.Out, s.rec.Cases[i].Dir), s.rec.Cases[i].Started
	s.mu.Unlock()
	run, caseErr := runCase(ctx, s.o.Runner, c, dir)
	if caseErr == nil && s.o.Keep != nil && !s.o.Keep(run) {
		prune(dir)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cr := &s.rec.Cases[i]
	cr.Elapsed = s.now().Sub(started)
	ev := CaseProgress{End: true, Case: c, Index: i + 1, Total: s.total, Elapsed: cr.Elapsed, Dir: dir, Err: caseErr}
	if caseErr != nil {
		cr.Status, cr.Error, ev.Outcome = Errored, caseErr.Error(), Errored
	} else {
		cr.Status, cr.Outcome, ev.Outcome = Finished, run.Outcome, run.Outcome
	}
	switch {
	case caseErr != nil && errors.Is(caseErr, ErrSetup):
		s.setupErrs++
	case caseErr != nil && ctx.Err() != nil:
		// Interrupted mid-case: the error says so; no case starts after it.
	default:
		s.setupErrs = 0
	}
	s.saveLocked()
	s.emit(ev)
	s.running--
	s.wake.Broadcast()
}

// runCase runs one case, turning a panic or a nil run into an error.
func runCase(ctx context.Context, r Runner, c Case, dir string) (run *reports.Report, err error) {
	defer func() {
		if p := recover(); p != nil {
			run, err = nil, fmt.Errorf("runner panic: %v", p)
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	run, err = r.Run(ctx, c, dir)
	if err == nil && run == nil {
		err = errors.New("the runner returned no run")
	}
	return run, err
}

// Bulky evidence pruned from runs a Keep policy does not keep: the
// database copies, the op trace and the histories. report.json,
// summary.md, meta.json, plan.txt and runner.log stay, so the run still
// merges, reads and replays (from its seed and plan).
var bulky = []string{oracle.FilesDir, oracle.TraceFile, oracle.HistoriesDir}

func prune(dir string) {
	for _, n := range bulky {
		os.RemoveAll(filepath.Join(dir, n))
	}
}
