package soak

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/reports"
)

// fakeOutcome is a deterministic verdict for a case, spread over every
// outcome a merge must handle.
func fakeOutcome(c Case) (outcome string, h int) {
	h = Owner(c, 1000)
	switch {
	case h < 400:
		return reports.Held, h
	case h < 700:
		return reports.Reproduced, h
	case h < 800:
		return "finding", h
	case h < 880:
		return reports.Unexpected, h
	case h < 940:
		return "inconclusive", h
	}
	return "hung", h
}

// fakeRunner writes a deterministic report.json (and summary.md) per case,
// as the scenario runner would: the outcome, a plan whose pid differs per
// run, an elapsed time.
func fakeRunner(c Case, dir string) (*reports.Report, error) {
	outcome, h := fakeOutcome(c)
	r := &reports.Report{Scenario: c.Scenario, Profile: c.Profile, Driver: c.Driver, Seed: c.Seed,
		Plan:    fmt.Sprintf("eio op=write path=*-wal nth=%d pid=%d count=1\n", h%3+1, 4000+h),
		Outcome: outcome, Why: "fake " + outcome, Elapsed: time.Duration(h) * 10 * time.Millisecond,
		Replay: "chaosrun replay " + dir, Dir: dir, Started: time.Unix(1, 0)}
	return r, reports.WriteReport(dir, r)
}

func fake() Runner {
	return RunnerFunc(func(_ context.Context, c Case, dir string) (*reports.Report, error) { return fakeRunner(c, dir) })
}

func testCells() []Cell {
	return []Cell{{"eio-wal-downgrade", "legacy", "modernc"}, {"eio-wal-downgrade", "hardened", "mattn"},
		{"rollback-shadow", "legacy", "mattn"}, {"torn-extend", "merged33482", "modernc"}}
}

func runShard(t *testing.T, o Options) *ShardRecord {
	t.Helper()
	if o.Runner == nil {
		o.Runner = fake()
	}
	rec, err := RunShard(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestRunShardRecordsEveryCase(t *testing.T) {
	dir := t.TempDir()
	var evs []CaseProgress
	rec := runShard(t, Options{Out: dir, Shard: Shard{1, 3}, Cells: testCells(), Seeds: Seeds{First: 1, Last: 10},
		Progress: func(e CaseProgress) { evs = append(evs, e) }})
	want := collect(testCells(), Seeds{First: 1, Last: 10}, Shard{1, 3})
	if len(rec.Cases) != len(want) || len(want) == 0 {
		t.Fatalf("record lists %d cases, the shard owns %d", len(rec.Cases), len(want))
	}
	back, err := ReadShard(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Ended == nil || back.Stopped != StopDone || back.Shard != "1/3" || back.Seeds != "1..10" || back.Partition != Partition {
		t.Fatalf("shard.json: %+v", back)
	}
	for i, c := range back.Cases {
		out, _ := fakeOutcome(c.Case)
		if c.Case != want[i] || c.Status != Finished || c.Outcome != out || c.Dir != c.Case.Name() {
			t.Fatalf("case %d: %+v, want %s finished %s", i, c, want[i], out)
		}
		if _, err := os.Stat(filepath.Join(dir, c.Dir, reports.ReportFile)); err != nil {
			t.Fatal(err)
		}
	}
	if len(evs) != 2*len(want) || evs[0].End || !evs[1].End || evs[1].Total != len(want) || evs[len(evs)-1].Index != len(want) {
		t.Fatalf("events: %d for %d cases: %+v", len(evs), len(want), evs[:2])
	}
}

// A budget stops new cases from starting; the rest are recorded as not run.
func TestRunShardBudget(t *testing.T) {
	dir := t.TempDir()
	clock := time.Unix(1000, 0)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	slow := RunnerFunc(func(_ context.Context, c Case, d string) (*reports.Report, error) {
		mu.Lock()
		clock = clock.Add(10 * time.Minute)
		mu.Unlock()
		return fakeRunner(c, d)
	})
	rec := runShard(t, Options{Out: dir, Shard: Shard{0, 1}, Cells: testCells(), Seeds: Seeds{First: 1, Last: 5},
		Budget: 25 * time.Minute, Runner: slow, Now: now})
	var st []string
	for _, c := range rec.Cases {
		st = append(st, c.Status)
	}
	if rec.Stopped != StopBudget || len(rec.Cases) != 20 || st[2] != Finished || st[3] != NotRun || st[19] != NotRun {
		t.Fatalf("stopped %s, statuses %v: want 3 finished (started at 0, 10, 20 min of 25) then not_run", rec.Stopped, st)
	}
	// An open range needs a budget and lists only what it started.
	if _, err := RunShard(context.Background(), Options{Out: dir, Cells: testCells(), Seeds: Seeds{First: 1, Open: true}, Shard: Shard{0, 1}, Runner: fake()}); err == nil {
		t.Fatal("an open range without a budget ran")
	}
	clock = time.Unix(1000, 0)
	open := runShard(t, Options{Out: t.TempDir(), Shard: Shard{0, 2}, Cells: testCells(), Seeds: Seeds{First: 50, Open: true},
		Budget: 25 * time.Minute, Runner: slow, Now: now})
	if open.Stopped != StopBudget || len(open.Cases) != 3 || open.Seeds != "50.." {
		t.Fatalf("open range: stopped %s with %d cases listed", open.Stopped, len(open.Cases))
	}
}

func TestRunShardErrorsInterruptAndSetup(t *testing.T) {
	// A case that errors is recorded with its error; the shard goes on.
	n := 0
	flaky := RunnerFunc(func(_ context.Context, c Case, d string) (*reports.Report, error) {
		n++
		if n == 2 {
			return nil, errors.New("judge: no trace")
		}
		if n == 3 {
			panic("boom")
		}
		return fakeRunner(c, d)
	})
	rec := runShard(t, Options{Out: t.TempDir(), Shard: Shard{0, 1}, Cells: testCells(), Seeds: Seeds{First: 1, Last: 2}, Runner: flaky})
	if rec.Stopped != StopDone || rec.Cases[1].Status != Errored || rec.Cases[1].Error != "judge: no trace" ||
		rec.Cases[2].Status != Errored || !strings.Contains(rec.Cases[2].Error, "panic: boom") || rec.Cases[3].Status != Finished {
		t.Fatalf("%+v", rec.Cases[:4])
	}
	// Interrupted: the case running ends with its error, the rest are not run.
	ctx, cancel := context.WithCancel(context.Background())
	interrupt := RunnerFunc(func(ctx context.Context, c Case, d string) (*reports.Report, error) {
		if c.Seed == 2 {
			cancel()
			return nil, fmt.Errorf("interrupted: %w", ctx.Err())
		}
		return fakeRunner(c, d)
	})
	rec, err := RunShard(ctx, Options{Out: t.TempDir(), Shard: Shard{0, 1}, Cells: testCells(), Seeds: Seeds{First: 1, Last: 3}, Runner: interrupt})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Stopped != StopInterrupted || rec.Cases[4].Status != Errored || rec.Cases[5].Status != NotRun || rec.Cases[11].Status != NotRun {
		t.Fatalf("stopped %s: %+v", rec.Stopped, rec.Cases[4:6])
	}
	// Three setup errors in a row stop the shard; one does not.
	m := 0
	setup := RunnerFunc(func(_ context.Context, c Case, d string) (*reports.Report, error) {
		m++
		if m == 1 || m >= 3 {
			return nil, fmt.Errorf("%w: FUSE tests need /dev/fuse", ErrSetup)
		}
		return fakeRunner(c, d)
	})
	rec = runShard(t, Options{Out: t.TempDir(), Shard: Shard{0, 1}, Cells: testCells(), Seeds: Seeds{First: 1, Last: 3}, Runner: setup})
	if rec.Stopped != StopSetup || m != 5 || rec.Cases[1].Status != Finished || rec.Cases[5].Status != NotRun {
		t.Fatalf("stopped %s after %d runs: %+v", rec.Stopped, m, rec.Cases[:6])
	}
}

// Keep prunes the bulky evidence of the runs it does not keep.
func TestRunShardKeep(t *testing.T) {
	dir := t.TempDir()
	withTrace := RunnerFunc(func(_ context.Context, c Case, d string) (*reports.Report, error) {
		if err := os.WriteFile(filepath.Join(d, "trace.jsonl"), []byte("{}\n"), 0o644); err != nil {
			return nil, err
		}
		return fakeRunner(c, d)
	})
	rec := runShard(t, Options{Out: dir, Shard: Shard{0, 1}, Cells: testCells(), Seeds: Seeds{First: 1, Last: 8}, Runner: withTrace,
		Keep: func(r *reports.Report) bool { return r.Outcome != reports.Held }})
	pruned, kept := 0, 0
	for _, c := range rec.Cases {
		_, err := os.Stat(filepath.Join(dir, c.Dir, "trace.jsonl"))
		if _, rep := os.Stat(filepath.Join(dir, c.Dir, reports.ReportFile)); rep != nil {
			t.Fatalf("%s lost its report", c.Dir)
		}
		switch {
		case c.Outcome == reports.Held && err == nil:
			t.Fatalf("%s held and kept its trace", c.Dir)
		case c.Outcome != reports.Held && err != nil:
			t.Fatalf("%s is %s and lost its trace", c.Dir, c.Outcome)
		case c.Outcome == reports.Held:
			pruned++
		default:
			kept++
		}
	}
	if pruned == 0 || kept == 0 {
		t.Fatalf("pruned %d, kept %d: the fixture should have both", pruned, kept)
	}
}

// sansDirs drops what depends on where runs were written, so that merges
// of the same runs laid out differently compare equal.
func sansDirs(m *Merged) *Merged {
	c := *m
	c.Shards, c.Generated = nil, time.Time{}
	c.Cells = append([]CellStats(nil), m.Cells...)
	for i := range c.Cells {
		c.Cells[i].Bad = append([]RunRef(nil), c.Cells[i].Bad...)
		for j := range c.Cells[i].Bad {
			c.Cells[i].Bad[j].Replay = ""
		}
	}
	c.Plans = append([]FoundPlan(nil), m.Plans...)
	for i := range c.Plans {
		c.Plans[i].Example.Replay = ""
	}
	return &c
}

func section(md, from, to string) string {
	_, s, _ := strings.Cut(md, from)
	s, _, _ = strings.Cut(s, to)
	return s
}

// Three shards over 30 seeds, merged, equal one unsharded run over the
// same 30 seeds, merged: same cells, counts, rates, medians, plans.
func TestThreeShardsMergeEqualsUnsharded(t *testing.T) {
	base := t.TempDir()
	cells := catalogCells(t)
	seeds := Seeds{First: 1, Last: 30}
	for i := 0; i < 3; i++ {
		runShard(t, Options{Out: filepath.Join(base, "sharded", fmt.Sprintf("shard-%d", i)), Shard: Shard{i, 3}, Cells: cells, Seeds: seeds})
	}
	runShard(t, Options{Out: filepath.Join(base, "all"), Shard: Shard{0, 1}, Cells: cells, Seeds: seeds})

	sharded, err := Load([]string{filepath.Join(base, "sharded")})
	if err != nil {
		t.Fatal(err)
	}
	whole, err := Load([]string{filepath.Join(base, "all")})
	if err != nil {
		t.Fatal(err)
	}
	if len(sharded) != 3 || len(whole) != 1 {
		t.Fatalf("loaded %d sharded and %d unsharded sources", len(sharded), len(whole))
	}
	ms, mw := Aggregate(sharded), Aggregate(whole)
	if ms.Totals.Runs != 30*len(cells) || len(ms.Problems) != 0 || len(ms.Notes) != 0 {
		t.Fatalf("sharded merge: %d runs (want %d), problems %v, notes %v", ms.Totals.Runs, 30*len(cells), ms.Problems, ms.Notes)
	}
	if !reflect.DeepEqual(sansDirs(ms), sansDirs(mw)) {
		t.Fatalf("sharded merge differs from the unsharded one:\nsharded totals %+v\nwhole totals   %+v", ms.Totals, mw.Totals)
	}
	if a, b := section(Markdown(ms), "## Cells", "## Shards"), section(Markdown(mw), "## Cells", "## Shards"); a != b || a == "" {
		t.Fatalf("cells tables differ:\n%s\n---\n%s", a, b)
	}
	// The per-case outcomes agree too, not just the counts.
	outcomes := func(srcs []Source) map[Case]string {
		m := map[Case]string{}
		for _, r := range Runs(srcs) {
			m[Case{Cell{r.Scenario, r.Profile, r.Driver}, r.Seed}] = r.Outcome
		}
		return m
	}
	if !reflect.DeepEqual(outcomes(sharded), outcomes(whole)) {
		t.Fatal("per-case outcomes differ")
	}
	// And a shard that is missing from the inputs is a problem, never a hole.
	short, err := Load([]string{filepath.Join(base, "sharded", "shard-0"), filepath.Join(base, "sharded", "shard-2")})
	if err != nil {
		t.Fatal(err)
	}
	m := Aggregate(short)
	if m.OK || len(m.Problems) != 1 || m.Problems[0].Kind != "missing-shard" || m.Problems[0].Shard != "1/3" {
		t.Fatalf("missing shard 1/3: ok=%v problems %+v", m.OK, m.Problems)
	}
}

// A shard killed mid-case leaves shard.json as it stood: merge lists the
// shard as dead and its unfinished cases as lost, never as held.
func TestMergeDeadShard(t *testing.T) {
	base := t.TempDir()
	live, dead := filepath.Join(base, "live"), filepath.Join(base, "dead")
	n := 0
	crash := RunnerFunc(func(_ context.Context, c Case, d string) (*reports.Report, error) {
		n++
		if n == 4 {
			// What a SIGKILL here would leave: the shard directory as it is now.
			if err := os.CopyFS(dead, os.DirFS(live)); err != nil {
				return nil, err
			}
		}
		return fakeRunner(c, d)
	})
	rec := runShard(t, Options{Out: live, Shard: Shard{0, 1}, Cells: testCells(), Seeds: Seeds{First: 1, Last: 3}, Runner: crash})
	srcs, err := Load([]string{dead})
	if err != nil {
		t.Fatal(err)
	}
	m := Aggregate(srcs)
	if m.OK || m.Shards[0].State != StateDead || m.Totals.Runs != 3 || m.Totals.Lost != len(rec.Cases)-3 {
		t.Fatalf("dead shard: ok=%v state %s runs %d lost %d (of %d)", m.OK, m.Shards[0].State, m.Totals.Runs, m.Totals.Lost, len(rec.Cases))
	}
	kinds := map[string]int{}
	for _, p := range m.Problems {
		kinds[p.Kind]++
	}
	if kinds["dead-shard"] != 1 || kinds["lost"] != len(rec.Cases)-3 {
		t.Fatalf("problems %v", kinds)
	}
	if !strings.Contains(Markdown(m), "**DEAD**") {
		t.Fatal("the markdown does not show the dead shard")
	}
}

// inFlight counts the cases a fake runner is running and the most it saw
// at once.
type inFlight struct {
	mu      sync.Mutex
	now, mx int
}

func (f *inFlight) enter() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now++
	f.mx = max(f.mx, f.now)
	return f.now
}

func (f *inFlight) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now--
}

func (f *inFlight) max() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mx
}

// caseStates is a record's cases with what became of them, in order.
func caseStates(rec *ShardRecord) []string {
	var out []string
	for _, c := range rec.Cases {
		out = append(out, fmt.Sprintf("%s %s %s %s %s", c.Case, c.Dir, c.Status, c.Outcome, c.Error))
	}
	return out
}

// Several cases at once: the same cases, in the same order, with the same
// outcomes as one at a time; never more than Jobs in flight; every case
// starts and ends once in the progress events, and the progress display
// counts them all.
func TestRunShardJobsSameRecord(t *testing.T) {
	seeds, sh := Seeds{First: 1, Last: 10}, Shard{1, 3}
	var flight inFlight
	jittery := RunnerFunc(func(_ context.Context, c Case, d string) (*reports.Report, error) {
		flight.enter()
		defer flight.leave()
		time.Sleep(time.Duration(Owner(c, 7)+1) * 3 * time.Millisecond)
		return fakeRunner(c, d)
	})
	one := runShard(t, Options{Out: t.TempDir(), Shard: sh, Cells: testCells(), Seeds: seeds, Runner: jittery})
	if flight.max() != 1 {
		t.Fatalf("Jobs 0 ran %d cases at once", flight.max())
	}
	flight = inFlight{}
	var out bytes.Buffer
	p := NewProgress(&out, false, "soak", 0)
	starts, ends := map[int]int{}, map[int]int{}
	dir := t.TempDir()
	four := runShard(t, Options{Out: dir, Shard: sh, Cells: testCells(), Seeds: seeds, Runner: jittery, Jobs: 4,
		Progress: func(e CaseProgress) {
			p.Update(e)
			if e.End {
				ends[e.Index]++
			} else {
				starts[e.Index]++
			}
		}})
	if a, b := caseStates(one), caseStates(four); !reflect.DeepEqual(a, b) || four.Stopped != StopDone {
		t.Fatalf("stopped %s; Jobs 4 recorded\n%s\nJobs 1 recorded\n%s", four.Stopped, strings.Join(b, "\n"), strings.Join(a, "\n"))
	}
	if flight.max() < 2 || flight.max() > 4 {
		t.Fatalf("Jobs 4 ran at most %d cases at once, want 2 to 4", flight.max())
	}
	n := len(four.Cases)
	for i := 1; i <= n; i++ {
		if starts[i] != 1 || ends[i] != 1 {
			t.Fatalf("case %d: %d starts, %d ends", i, starts[i], ends[i])
		}
	}
	if lines := strings.Count(out.String(), "\n"); lines != n || !strings.Contains(out.String(), fmt.Sprintf("[%d/%d]", n, n)) ||
		!strings.HasPrefix(p.Line(), fmt.Sprintf("soak %d/%d done", n, n)) {
		t.Fatalf("progress: %d lines for %d cases, live line %q", lines, n, p.Line())
	}
	if back, err := ReadShard(dir); err != nil || !reflect.DeepEqual(caseStates(back), caseStates(four)) {
		t.Fatalf("shard.json differs from the record returned (%v)", err)
	}
}

// With several cases at once, a spent budget starts no new case; the
// cases already running finish and are recorded.
func TestRunShardJobsBudget(t *testing.T) {
	clock := time.Unix(1000, 0)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	var flight inFlight
	release := make(chan struct{})
	first := collect(testCells(), Seeds{First: 1, Last: 5}, Shard{0, 1})[0]
	blocking := RunnerFunc(func(_ context.Context, c Case, d string) (*reports.Report, error) {
		if c == first {
			return fakeRunner(c, d) // the first case runs alone
		}
		if flight.enter() == 3 {
			// All three slots are taken: the budget runs out while they run.
			mu.Lock()
			clock = clock.Add(30 * time.Minute)
			mu.Unlock()
			close(release)
		}
		<-release
		defer flight.leave()
		return fakeRunner(c, d)
	})
	rec := runShard(t, Options{Out: t.TempDir(), Shard: Shard{0, 1}, Cells: testCells(), Seeds: Seeds{First: 1, Last: 5},
		Budget: 25 * time.Minute, Runner: blocking, Now: now, Jobs: 3})
	var st []string
	for _, c := range rec.Cases {
		st = append(st, c.Status)
	}
	if rec.Stopped != StopBudget || len(st) != 20 || st[0] != Finished || st[3] != Finished || st[4] != NotRun || st[19] != NotRun {
		t.Fatalf("stopped %s, statuses %v: want the first case and the 3 running finished, then not_run", rec.Stopped, st)
	}
	// An open range hands the cases out in order to the free slots.
	var order []Case
	for c := range Cases(testCells(), Seeds{First: 50, Open: true}, Shard{0, 2}) {
		if order = append(order, c); len(order) == 1000 {
			break
		}
	}
	open := runShard(t, Options{Out: t.TempDir(), Shard: Shard{0, 2}, Cells: testCells(), Seeds: Seeds{First: 50, Open: true},
		Budget: 300 * time.Millisecond, Jobs: 4, Runner: RunnerFunc(func(_ context.Context, c Case, d string) (*reports.Report, error) {
			time.Sleep(time.Duration(Owner(c, 5)+1) * 4 * time.Millisecond)
			return fakeRunner(c, d)
		})})
	if open.Stopped != StopBudget || len(open.Cases) < 4 || len(open.Cases) >= len(order) {
		t.Fatalf("open range: stopped %s with %d cases", open.Stopped, len(open.Cases))
	}
	for i, c := range open.Cases {
		if c.Case != order[i] || c.Status != Finished {
			t.Fatalf("open range case %d: %s %s, want %s finished", i, c.Case, c.Status, order[i])
		}
	}
}

// An interrupt with several cases running: the running cases end as their
// runner says (interrupted: errored), the cases not started are not run,
// and no case that was running counts as held — neither in the final
// record nor in a shard killed while they ran.
func TestRunShardJobsInterrupt(t *testing.T) {
	base := t.TempDir()
	live, dead := filepath.Join(base, "live"), filepath.Join(base, "dead")
	cells, seeds := testCells(), Seeds{First: 1, Last: 4}
	order := collect(cells, seeds, Shard{0, 1})
	pos := map[Case]int{}
	for i, c := range order {
		pos[c] = i
	}
	// A clock that moves 2 s per reading, so that shard.json is rewritten
	// at every start and end.
	clock := time.Unix(1000, 0)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); clock = clock.Add(2 * time.Second); return clock }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var flight inFlight
	var snapErr error
	runner := RunnerFunc(func(ctx context.Context, c Case, d string) (*reports.Report, error) {
		if pos[c] < 4 {
			return fakeRunner(c, d)
		}
		if flight.enter() == 3 {
			// Cases 4, 5 and 6 hold the three slots; 0 to 3 have ended.
			// A SIGKILL here would leave the shard directory as it is now.
			snapErr = os.CopyFS(dead, os.DirFS(live))
			cancel()
		}
		<-ctx.Done()
		return nil, fmt.Errorf("interrupted: %w", ctx.Err())
	})
	rec, err := RunShard(ctx, Options{Out: live, Shard: Shard{0, 1}, Cells: cells, Seeds: seeds, Runner: runner, Now: now, Jobs: 3})
	if err != nil || snapErr != nil {
		t.Fatal(err, snapErr)
	}
	if rec.Stopped != StopInterrupted || len(rec.Cases) != len(order) {
		t.Fatalf("stopped %s with %d cases", rec.Stopped, len(rec.Cases))
	}
	for i, c := range rec.Cases {
		want := map[bool]string{true: Finished}[i < 4]
		if i >= 4 && i < 7 {
			want = Errored
		} else if i >= 7 {
			want = NotRun
		}
		if c.Status != want || (want == Errored && !strings.Contains(c.Error, "interrupted")) {
			t.Fatalf("case %d: %s %q, want %s", i, c.Status, c.Error, want)
		}
	}
	// The shard as it stood mid-run: the three running, the rest pending.
	snap, err := ReadShard(dead)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range snap.Cases {
		want := Finished
		if i >= 4 && i < 7 {
			want = Running
		} else if i >= 7 {
			want = Pending
		}
		if c.Status != want {
			t.Fatalf("mid-run shard.json, case %d: %s, want %s", i, c.Status, want)
		}
	}
	srcs, err := Load([]string{dead})
	if err != nil {
		t.Fatal(err)
	}
	m := Aggregate(srcs)
	if m.OK || m.Shards[0].State != StateDead || m.Totals.Runs != 4 || m.Totals.Lost != len(order)-4 {
		t.Fatalf("killed mid-run: ok=%v state %s runs %d lost %d", m.OK, m.Shards[0].State, m.Totals.Runs, m.Totals.Lost)
	}
	srcs, err = Load([]string{live})
	if err != nil {
		t.Fatal(err)
	}
	if m := Aggregate(srcs); m.Totals.Runs != 4 || m.Totals.Errored != 3 || m.Totals.NotRun != len(order)-7 {
		t.Fatalf("interrupted: runs %d errored %d not run %d", m.Totals.Runs, m.Totals.Errored, m.Totals.NotRun)
	}
}

// A shard that cannot set cases up fails them one at a time even with
// several slots: three setup errors, never more in flight than one.
func TestRunShardJobsSetupOneAtATime(t *testing.T) {
	var flight inFlight
	var mu sync.Mutex
	runs := 0
	noFuse := RunnerFunc(func(context.Context, Case, string) (*reports.Report, error) {
		flight.enter()
		defer flight.leave()
		mu.Lock()
		runs++
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		return nil, fmt.Errorf("%w: FUSE tests need /dev/fuse", ErrSetup)
	})
	rec := runShard(t, Options{Out: t.TempDir(), Shard: Shard{0, 1}, Cells: testCells(), Seeds: Seeds{First: 1, Last: 3}, Runner: noFuse, Jobs: 4})
	if rec.Stopped != StopSetup || runs != 3 || flight.max() != 1 || rec.Cases[3].Status != NotRun {
		t.Fatalf("stopped %s after %d runs, %d at once", rec.Stopped, runs, flight.max())
	}
}
