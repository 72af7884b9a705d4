package reports

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/verdict"
)

func res(name string, v oracle.Verdict) oracle.Result {
	return oracle.Result{Checker: name, Verdict: v, Summary: name + " " + string(v)}
}

// judged loads an oracle fixture (one without a database, so nothing is
// built) and judges it. A fixture holds only what its checker reads, so
// the checkers run on their own (oracle.Judge would call the incomplete
// run inconclusive throughout).
func judged(t *testing.T, fixture string, story verdict.Expect) *Report {
	t.Helper()
	in, err := oracle.Load(filepath.Join("../testdata/oracle", fixture))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var results []oracle.Result
	for _, c := range oracle.Checkers() {
		r := c.Check(in)
		r.Checker = c.Name
		results = append(results, r)
	}
	r := NewReport(in, results)
	r.Expect = verdict.Cell{Story: &story}
	r.Facts = verdict.Facts{Fired: r.FaultsFired}
	r.Started = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r.Elapsed = 1500 * time.Millisecond
	r.Judge()
	return r
}

func TestWriteReadRun(t *testing.T) {
	r := judged(t, "liveness/bad", verdict.Expect{Fail: []string{oracle.Liveness}})
	if r.Outcome != Reproduced || r.FaultsFired != 1 || r.FirstDetection != time.Millisecond {
		t.Fatalf("outcome %s (%s), faults %d, first detection %v", r.Outcome, r.Why, r.FaultsFired, r.FirstDetection)
	}
	dir := t.TempDir()
	if err := WriteReport(dir, r); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Outcome != r.Outcome || back.Seed != r.Seed || len(back.Results) != len(r.Results) ||
		back.Expect.Wants()[oracle.Liveness] != oracle.Fail || back.Facts.Fired != r.Facts.Fired || back.Timeline == nil || len(back.Timeline.Marks) != len(r.Timeline.Marks) {
		t.Fatalf("round trip lost data: %+v", back)
	}
	sum, _ := os.ReadFile(filepath.Join(dir, SummaryFile))
	for _, want := range []string{"REPRODUCED", "seed: 1", "chaosrun replay ../testdata/oracle/liveness/bad", "| liveness | fail | fail |", "after clear: dispatch_once"} {
		if !strings.Contains(string(sum), want) {
			t.Errorf("summary.md lacks %q:\n%s", want, sum)
		}
	}
}

func TestMatrixFiles(t *testing.T) {
	runs := []*Report{
		judged(t, "liveness/bad", verdict.Expect{Fail: []string{oracle.Liveness}}),
		judged(t, "liveness/good", verdict.Expect{Pass: []string{oracle.Liveness}}),
		judged(t, "error-fidelity/bad", verdict.Expect{Pass: []string{oracle.ErrorFidelity}}),
	}
	runs[1].Profile = "hardened"
	runs[1].Scenario = runs[0].Scenario
	dir := t.TempDir()
	if err := WriteMatrix(dir, runs); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, MatrixFile))
	for _, want := range []string{"| scenario | hardened/modernc | legacy/modernc |", "| fixture-liveness | held | reproduced (liveness) |", "**UNEXPECTED** (error-fidelity)", "3 runs: 1 reproduced, 1 held, 0 finding, 1 unexpected, 0 inconclusive, 0 hung"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("matrix.md lacks %q:\n%s", want, md)
		}
	}

	// index.html is well-formed XML with one SVG timeline per run, holding
	// fault, error, spawn and evidence marks with readable titles.
	f, err := os.Open(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	count := map[string]int{}
	var titles []string
	inTitle := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("index.html is not well-formed: %v", err)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			count[x.Name.Local]++
			for _, a := range x.Attr {
				if a.Name.Local == "class" {
					count[x.Name.Local+"."+a.Value]++
				}
			}
			inTitle = x.Name.Local == "title"
		case xml.CharData:
			if inTitle {
				titles = append(titles, string(x))
			}
		case xml.EndElement:
			inTitle = false
		}
	}
	if count["svg"] != 3 || count["table.matrix"] != 1 || count["section"] != 3 {
		t.Fatalf("want 3 svg timelines, 1 matrix, 3 sections; got %v", count)
	}
	if count["polygon.fault"] != 3 || count["circle.error"] == 0 || count["rect.spawn"] != 1 || count["polygon.evidence"] == 0 || count["line.clear"] != 2 {
		t.Fatalf("timeline marks missing: %v", count)
	}
	joined := strings.Join(titles, "\n")
	for _, want := range []string{"read kanban.db off=0 len=4096 [eio] -&gt; EIO", "dispatch_once CORRUPT board is marked corrupt", "liveness: after clear"} {
		if !strings.Contains(joined, strings.ReplaceAll(want, "-&gt;", "->")) {
			t.Errorf("no timeline title with %q", want)
		}
	}

	// junit.xml parses; the unexpected cell is a failure with seed and replay.
	b, _ := os.ReadFile(filepath.Join(dir, JUnitFile))
	var ju JUnitSuites
	if err := xml.Unmarshal(b, &ju); err != nil {
		t.Fatalf("junit.xml: %v", err)
	}
	s := ju.Suites[0]
	if s.Tests != 3 || s.Failures != 1 {
		t.Fatalf("junit: %d tests, %d failures", s.Tests, s.Failures)
	}
	for _, c := range s.Cases {
		if (c.Failure != nil) != strings.HasPrefix(c.Name, "fixture-error-fidelity") {
			t.Errorf("case %s failure=%v", c.Name, c.Failure)
		}
		if c.Failure != nil && (!strings.Contains(c.Failure.Text, "seed 1") || !strings.Contains(c.Failure.Text, "chaosrun replay ")) {
			t.Errorf("failure lacks seed/replay: %q", c.Failure.Text)
		}
	}
}

func TestTimelineThinsOps(t *testing.T) {
	in := &oracle.Input{}
	for i := 0; i < 5000; i++ {
		in.Events = append(in.Events, historyReturn(int64(i+1)*1000))
	}
	tl := BuildTimeline(in, nil)
	if len(tl.Marks) > maxOps || tl.Dropped != 5000-len(tl.Marks) {
		t.Fatalf("%d marks, %d dropped", len(tl.Marks), tl.Dropped)
	}
	var sb strings.Builder
	if err := tl.SVG(&sb); err != nil || strings.Count(sb.String(), `class="op"`) != len(tl.Marks) {
		t.Fatalf("svg: %v", err)
	}
}

func TestCells(t *testing.T) {
	story := verdict.Expect{Fail: []string{oracle.Liveness}}
	mk := func(v verdict.Verdict, seed int64, d time.Duration) *Report {
		return &Report{Scenario: "s", Profile: "legacy", Driver: "modernc", Seed: seed, Elapsed: d,
			Expect: verdict.Cell{Story: &story}, Outcome: string(v)}
	}
	runs := []*Report{mk(verdict.Reproduced, 1, 3*time.Second), mk(verdict.Reproduced, 2, time.Second), mk(verdict.Reproduced, 3, 2*time.Second)}
	cs := Cells(runs)
	if len(cs) != 1 || cs[0].Result.Verdict != verdict.Reproduced || cs[0].MedianToTarget != 2*time.Second || cs[0].Runs != 3 {
		t.Fatalf("stable cell: %+v", cs)
	}
	runs = append(runs, mk(verdict.Held, 4, time.Second))
	if cs := Cells(runs); cs[0].Result.Verdict != verdict.Unexpected || !strings.Contains(cs[0].Result.Why, "flips") {
		t.Fatalf("flipping cell: %+v", cs[0].Result)
	}
	md := CellsMarkdown(Cells(runs))
	for _, want := range []string{"| s/legacy/modernc | fail: liveness | 4 | 3 reproduced, 1 held | **UNEXPECTED** | 2s |", "1 cells: 1 unexpected."} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestMatrixListsAFindingOncePerCell: a repeated cell's finding is one
// line with its run count, not a line per run.
func TestMatrixListsAFindingOncePerCell(t *testing.T) {
	pin := &verdict.Pinned{What: "measured", Why: "because", Measured: verdict.Expect{Pass: []string{oracle.Sidecars}}}
	var runs []*Report
	for seed := int64(1); seed <= 3; seed++ {
		runs = append(runs, &Report{Scenario: "s", Profile: "legacy", Driver: "modernc", Seed: seed,
			Expect: verdict.Cell{Finding: pin}, Outcome: string(verdict.Finding)})
	}
	md := MatrixMarkdown(runs)
	if n := strings.Count(md, "- finding **s/legacy/modernc**"); n != 1 {
		t.Errorf("finding listed %d times, want once:\n%s", n, md)
	}
	if !strings.Contains(md, "- finding **s/legacy/modernc** (3 runs): measured — because") {
		t.Errorf("finding line lacks its run count:\n%s", md)
	}
}
