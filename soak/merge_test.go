package soak

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/reports"
)

func run(scn, profile string, seed int64, outcome string, elapsed time.Duration, plan string) *reports.Report {
	return &reports.Report{Scenario: scn, Profile: profile, Driver: "modernc", Seed: seed, Outcome: outcome,
		Elapsed: elapsed, Plan: plan, Dir: "/runs/" + scn + "-" + profile}
}

// shardSource builds a shard source whose cases are the runs given, in
// order; nil runs are cases without a report with the given status.
func shardSource(idx, count int, stopped string, ended bool, cases []CaseRecord, runs map[string]*reports.Report) Source {
	rec := &ShardRecord{Kind: ShardKind, Shard: Shard{idx, count}.String(), Index: idx, Count: count, Seeds: "1..3",
		Cells: []string{"a/legacy/modernc"}, Cases: cases, Stopped: stopped}
	if ended {
		t := time.Unix(100, 0)
		rec.Ended = &t
	}
	if runs == nil {
		runs = map[string]*reports.Report{}
	}
	return Source{Dir: "/s" + rec.Shard, Shard: rec, Runs: runs, Unreadable: map[string]string{}}
}

func cr(seed int64, status string) CaseRecord {
	c := Case{Cell{"a", "legacy", "modernc"}, seed}
	return CaseRecord{Case: c, Dir: c.Name(), Status: status}
}

func TestAggregate(t *testing.T) {
	ok3 := map[string]*reports.Report{
		"a-legacy-modernc-1": run("a", "legacy", 1, reports.Reproduced, 3*time.Second, ""),
		"a-legacy-modernc-2": run("a", "legacy", 2, reports.Held, time.Second, ""),
		"a-legacy-modernc-3": run("a", "legacy", 3, reports.Reproduced, 5*time.Second, ""),
	}
	done3 := []CaseRecord{cr(1, Finished), cr(2, Finished), cr(3, Finished)}
	for _, c := range []struct {
		name     string
		srcs     []Source
		ok       bool
		problems []string // kinds, in order
		check    func(t *testing.T, m *Merged)
	}{
		{name: "clean shard", srcs: []Source{shardSource(0, 1, StopDone, true, done3, ok3)}, ok: true,
			check: func(t *testing.T, m *Merged) {
				c := m.Cells[0]
				if c.Runs != 3 || c.Outcomes["reproduced"] != 2 || c.ReproductionRate < 0.66 || c.ReproductionRate > 0.67 || c.MedianToReproduce != 4*time.Second {
					t.Fatalf("cell %+v: want 3 runs, 2 reproduced, rate 2/3, median of 3s and 5s = 4s", c)
				}
			}},
		{name: "dead shard", srcs: []Source{shardSource(0, 1, "", false, []CaseRecord{cr(1, Finished), cr(2, Running), cr(3, Pending)},
			map[string]*reports.Report{"a-legacy-modernc-1": ok3["a-legacy-modernc-1"]})},
			problems: []string{"dead-shard", "lost", "lost"},
			check: func(t *testing.T, m *Merged) {
				if m.Totals.Runs != 1 || m.Totals.Lost != 2 || m.Cells[0].Outcomes[reports.Held] != 0 || m.Shards[0].State != StateDead {
					t.Fatalf("dead shard counted as %+v / %+v", m.Totals, m.Shards[0])
				}
			}},
		{name: "finished case without its report", srcs: []Source{shardSource(0, 1, StopDone, true, done3,
			map[string]*reports.Report{"a-legacy-modernc-1": ok3["a-legacy-modernc-1"]})},
			problems: []string{"lost", "lost"}},
		{name: "errored case", srcs: []Source{shardSource(0, 1, StopDone, true, []CaseRecord{cr(1, Finished), {Case: cr(2, "").Case, Dir: "x", Status: Errored, Error: "judge: boom"}},
			map[string]*reports.Report{"a-legacy-modernc-1": ok3["a-legacy-modernc-1"]})},
			problems: []string{"errored"}},
		{name: "budget leaves cases not run, which is no problem", srcs: []Source{shardSource(0, 1, StopBudget, true, []CaseRecord{cr(1, Finished), cr(2, NotRun)},
			map[string]*reports.Report{"a-legacy-modernc-1": ok3["a-legacy-modernc-1"]})}, ok: true,
			check: func(t *testing.T, m *Merged) {
				if m.Totals.NotRun != 1 || m.Cells[0].NotRun != 1 {
					t.Fatalf("not run: %+v", m.Totals)
				}
			}},
		{name: "an interrupt leaves cases not run, which is a problem", srcs: []Source{shardSource(0, 1, StopInterrupted, true, []CaseRecord{cr(1, Finished), cr(2, NotRun)},
			map[string]*reports.Report{"a-legacy-modernc-1": ok3["a-legacy-modernc-1"]})},
			problems: []string{"stopped", "not-run"}},
		{name: "missing shard index", srcs: []Source{shardSource(0, 3, StopDone, true, done3, ok3), shardSource(2, 3, StopDone, true, nil, nil)},
			problems: []string{"missing-shard"},
			check: func(t *testing.T, m *Merged) {
				if last := m.Shards[len(m.Shards)-1]; last.Shard != "1/3" || last.State != StateMissing {
					t.Fatalf("shards %+v", m.Shards)
				}
			}},
		{name: "a report for another case", srcs: []Source{shardSource(0, 1, StopDone, true, []CaseRecord{cr(1, Finished)},
			map[string]*reports.Report{"a-legacy-modernc-1": run("a", "legacy", 9, reports.Held, 0, "")})},
			problems: []string{"mismatch"}},
		{name: "outcomes are strings: finding passes", srcs: []Source{{Dir: "/plain", Runs: map[string]*reports.Report{
			"x": run("a", "legacy", 1, "finding", time.Second, ""), "y": run("a", "hardened", 1, reports.Held, time.Second, "")}}}, ok: true},
		{name: "inconclusive fails", srcs: []Source{{Dir: "/plain", Runs: map[string]*reports.Report{"x": run("a", "legacy", 1, "inconclusive", 0, "")}}}},
		{name: "hung fails", srcs: []Source{{Dir: "/plain", Runs: map[string]*reports.Report{"x": run("a", "legacy", 1, "hung", 0, "")}}}},
		{name: "observed passes, as in the matrix (a profile its scenario states nothing for)", srcs: []Source{{Dir: "/plain", Runs: map[string]*reports.Report{"x": run("a", "legacy", 1, reports.Observed, 0, "")}}}, ok: true},
		{name: "an outcome nobody knows yet fails and is counted", srcs: []Source{{Dir: "/plain", Runs: map[string]*reports.Report{"x": run("a", "legacy", 1, "flaky", 0, "")}}},
			check: func(t *testing.T, m *Merged) {
				if m.Totals.Outcomes["flaky"] != 1 || !strings.Contains(Markdown(m), "| flaky |") {
					t.Fatalf("unknown outcome: %+v", m.Totals)
				}
			}},
		{name: "unreadable report", srcs: []Source{{Dir: "/plain", Runs: map[string]*reports.Report{}, Unreadable: map[string]string{"x": "bad json"}}},
			problems: []string{"unreadable"}},
		{name: "plans deduplicate by canonical form, pids aside; held runs and empty plans are not found plans",
			srcs: []Source{{Dir: "/plain", Runs: map[string]*reports.Report{
				"1": run("a", "legacy", 1, reports.Reproduced, time.Second, "eio op=write path=*-wal nth=1 pid=101 count=1\n"),
				"2": run("a", "legacy", 2, reports.Unexpected, time.Second, "# same plan, other spelling\neio  count=1 op=write nth=1 path=*-wal pid=202\n"),
				"3": run("b", "legacy", 3, reports.Reproduced, time.Second, "eio op=write path=*-wal nth=1 pid=303 count=1\n"),
				"4": run("a", "legacy", 4, reports.Held, time.Second, "eio op=write path=*-wal nth=2 count=1\n"),
				"5": run("a", "legacy", 5, reports.Reproduced, time.Second, ""),
				"6": run("a", "legacy", 6, reports.Reproduced, time.Second, "torn op=write path=*.db keep=512\n"),
			}}},
			check: func(t *testing.T, m *Merged) {
				if len(m.Plans) != 2 {
					t.Fatalf("plans %+v", m.Plans)
				}
				p := m.Plans[0]
				if p.Plan != "eio op=write path=*-wal pid={pid} nth=1 count=1\n" || p.Runs != 3 || p.Outcomes[reports.Unexpected] != 1 ||
					len(p.Cells) != 2 || p.Example.Seed != 2 || p.Example.Replay != "chaosrun replay /runs/a-legacy" ||
					p.Example.Again != "chaosrun run a --profile legacy --driver modernc --seed 2" {
					t.Fatalf("first plan %+v", p)
				}
				if m.Plans[1].Plan != "torn op=write path=*.db keep=512 then=ok\n" {
					t.Fatalf("second plan %q", m.Plans[1].Plan)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := Aggregate(c.srcs)
			var kinds []string
			for _, p := range m.Problems {
				kinds = append(kinds, p.Kind)
			}
			if strings.Join(kinds, ",") != strings.Join(c.problems, ",") {
				t.Fatalf("problems %v, want %v (%+v)", kinds, c.problems, m.Problems)
			}
			if m.OK != c.ok {
				t.Fatalf("ok = %v, want %v", m.OK, c.ok)
			}
			if c.check != nil {
				c.check(t, m)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{{nil, 0}, {[]time.Duration{5}, 5}, {[]time.Duration{9, 1, 5}, 5}, {[]time.Duration{4, 1, 3, 2}, 2}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// Load finds shards one level down (downloaded artifacts), plain run
// directories (a matrix output), and skips an earlier merge's report.json.
func TestLoadLayouts(t *testing.T) {
	base := t.TempDir()
	runShard(t, Options{Out: filepath.Join(base, "artifacts", "soak-shard-0"), Shard: Shard{0, 2}, Cells: testCells(), Seeds: Seeds{First: 1, Last: 2}})
	runShard(t, Options{Out: filepath.Join(base, "artifacts", "soak-shard-1"), Shard: Shard{1, 2}, Cells: testCells(), Seeds: Seeds{First: 1, Last: 2}})
	mat := filepath.Join(base, "matrix")
	for _, c := range testCells() {
		d := filepath.Join(mat, c.Scenario+"-"+c.Profile+"-"+c.Driver)
		os.MkdirAll(d, 0o755)
		if _, err := fakeRunner(Case{c, 1}, d); err != nil {
			t.Fatal(err)
		}
	}
	srcs, err := Load([]string{filepath.Join(base, "artifacts"), mat})
	if err != nil {
		t.Fatal(err)
	}
	m := Aggregate(srcs)
	if len(srcs) != 3 || m.Totals.Runs != 8+4 || len(m.Problems) != 0 {
		t.Fatalf("%d sources, %d runs, problems %v", len(srcs), m.Totals.Runs, m.Problems)
	}
	out := filepath.Join(base, "merged")
	if err := Write(out, m, Runs(srcs)); err != nil {
		t.Fatal(err)
	}
	again, err := Load([]string{filepath.Join(base, "artifacts"), mat, out})
	if err == nil {
		t.Fatalf("a merge output alone is not an input: loaded %d sources", len(again))
	}
	if _, err := Load([]string{t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no shard.json or report.json") {
		t.Fatalf("empty directory: %v", err)
	}
}

// The files a merge writes parse: report.json round-trips, junit.xml and
// index.html are well-formed XML, and a failing cell is a JUnit failure.
func TestWriteParses(t *testing.T) {
	base := t.TempDir()
	runShard(t, Options{Out: filepath.Join(base, "s"), Shard: Shard{0, 1}, Cells: testCells(), Seeds: Seeds{First: 1, Last: 10}})
	srcs, err := Load([]string{filepath.Join(base, "s")})
	if err != nil {
		t.Fatal(err)
	}
	m := Aggregate(srcs)
	out := filepath.Join(base, "out")
	if err := Write(out, m, Runs(srcs)); err != nil {
		t.Fatal(err)
	}
	var back Merged
	b, _ := os.ReadFile(filepath.Join(out, reports.ReportFile))
	if err := json.Unmarshal(b, &back); err != nil || back.Kind != MergeKind || back.Totals.Runs != 40 {
		t.Fatalf("report.json: %v %+v", err, back.Totals)
	}
	var ju reports.JUnitSuites
	b, _ = os.ReadFile(filepath.Join(out, reports.JUnitFile))
	if err := xml.Unmarshal(b, &ju); err != nil {
		t.Fatal(err)
	}
	failures := 0
	for _, c := range ju.Suites[0].Cases {
		if c.Failure != nil {
			failures++
			if !strings.Contains(c.Failure.Text, "replay: chaosrun replay ") {
				t.Fatalf("failure without a replay: %+v", c.Failure)
			}
		}
	}
	if m.OK || failures == 0 || ju.Suites[0].Failures != failures || len(ju.Suites[1].Cases) != 1 || ju.Suites[1].Failures != 0 {
		t.Fatalf("junit: %d failing cells, suites %+v", failures, ju.Suites)
	}
	b, _ = os.ReadFile(filepath.Join(out, reports.HTMLFile))
	d := xml.NewDecoder(bytes.NewReader(bytes.TrimPrefix(b, []byte("<!DOCTYPE html>\n"))))
	for {
		if _, err := d.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("index.html is not well-formed: %v", err)
			}
			break
		}
	}
	if _, err := os.Stat(filepath.Join(out, RunsDir, reports.HTMLFile)); err != nil {
		t.Fatalf("no per-run views for the failing runs: %v", err)
	}
	md, _ := os.ReadFile(filepath.Join(out, reports.MatrixFile))
	for _, want := range []string{"**FAIL:", "| eio-wal-downgrade |", "median time to reproduce", "## Plans that broke something", "run again: `chaosrun run "} {
		if !strings.Contains(string(md), want) {
			t.Errorf("matrix.md lacks %q", want)
		}
	}
}

func TestProgress(t *testing.T) {
	c := Case{Cell{"a", "legacy", "modernc"}, 1}
	var plain bytes.Buffer
	p := NewProgress(&plain, false, "soak 0/1", 0)
	p.Update(CaseProgress{Case: c, Index: 1, Total: 4})
	p.Update(CaseProgress{End: true, Case: c, Index: 1, Total: 4, Outcome: "reproduced", Elapsed: 2 * time.Second, Dir: "/d"})
	p.Update(CaseProgress{End: true, Case: c, Index: 2, Total: 4, Outcome: "unexpected", Elapsed: 4 * time.Second, Dir: "/e"})
	if got := plain.String(); got != "soak 0/1 [1/4] a/legacy/modernc seed 1: reproduced 2.0s /d\nsoak 0/1 [2/4] a/legacy/modernc seed 1: unexpected 4.0s /e\n" {
		t.Fatalf("off a terminal, one line per case:\n%s", got)
	}
	clock := time.Unix(0, 0)
	var tty bytes.Buffer
	p = NewProgress(&tty, true, "soak 1/2", 0)
	p.now = func() time.Time { return clock }
	p.Update(CaseProgress{Case: c, Index: 1, Total: 4})
	clock = clock.Add(10 * time.Second)
	p.Update(CaseProgress{End: true, Case: c, Index: 1, Total: 4, Outcome: "held", Elapsed: 10 * time.Second})
	p.Update(CaseProgress{Case: c, Index: 2, Total: 4})
	clock = clock.Add(3 * time.Second)
	want := "soak 1/2 1/4 done · reproduced 0 · held 1 · finding 0 · unexpected 0 · ETA 30s · a/legacy/modernc seed 1 3s"
	if got := p.Line(); got != want {
		t.Fatalf("live line\n got %q\nwant %q", got, want)
	}
	p.Update(CaseProgress{End: true, Case: c, Index: 2, Total: 4, Outcome: "hung", Elapsed: 20 * time.Second})
	if !strings.Contains(tty.String(), "\r\033[Ksoak 1/2 [2/4] a/legacy/modernc seed 1: hung 20.0s \n") || strings.Contains(tty.String(), ": held") {
		t.Fatalf("on a terminal only notable cases get a line of their own: %q", tty.String())
	}
	if l := p.Line(); !strings.Contains(l, "other 1") || !strings.Contains(l, "ETA 30s") {
		t.Fatalf("line %q: want other 1 and ETA (15s mean × 2 left)", l)
	}
	// A budget bounds the ETA.
	p = NewProgress(&tty, true, "s", time.Minute)
	p.now = func() time.Time { return clock }
	p.Update(CaseProgress{Case: c, Index: 1, Total: 100})
	clock = clock.Add(20 * time.Second)
	if l := p.Line(); !strings.Contains(l, "ETA 40s") {
		t.Fatalf("budget ETA: %q", l)
	}
}

// matrix.md is a CI job summary (1 MiB at most there): a merge with
// thousands of failing runs, distinct plans and problems stays far below.
func TestMarkdownStaysBounded(t *testing.T) {
	runs := map[string]*reports.Report{}
	unread := map[string]string{}
	for i := 0; i < 5000; i++ {
		k := strings.Repeat("x", 10) + itoa(i)
		r := run("scn"+itoa(i%40), "legacy", int64(i), reports.Unexpected, time.Second, "eio op=write path=*-wal nth="+itoa(i+1)+" count=1\n")
		r.Why = strings.Repeat("why ", 40)
		runs[k] = r
		unread[k+"u"] = strings.Repeat("bad ", 20)
	}
	m := Aggregate([]Source{{Dir: "/plain", Runs: runs, Unreadable: unread}})
	if len(m.Plans) != 5000 || len(m.Problems) != 5000 {
		t.Fatalf("%d plans, %d problems", len(m.Plans), len(m.Problems))
	}
	md := Markdown(m)
	if len(md) > 256<<10 || !strings.Contains(md, "… 4950 more in report.json") {
		t.Fatalf("matrix.md is %d bytes", len(md))
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
