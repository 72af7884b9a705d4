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
)

func res(name string, v oracle.Verdict) oracle.Result {
	return oracle.Result{Checker: name, Verdict: v, Summary: name + " " + string(v)}
}

func TestClassify(t *testing.T) {
	P, F, I := oracle.Pass, oracle.Fail, oracle.Inconclusive
	cases := []struct {
		name    string
		results []oracle.Result
		expect  map[string]oracle.Verdict
		want    string
		why     string
	}{
		{"legacy breaks", []oracle.Result{res("durability", F), res("silent", F), res("zombies", I)},
			map[string]oracle.Verdict{"durability": F, "silent": F}, Reproduced, "durability, silent"},
		{"hardened holds", []oracle.Result{res("durability", P), res("silent", P), res("zombies", I)},
			map[string]oracle.Verdict{"durability": P, "silent": P}, Held, "2 expected passes met"},
		{"legacy does not break", []oracle.Result{res("durability", P)},
			map[string]oracle.Verdict{"durability": F}, Unexpected, "durability: expected fail, got pass"},
		{"inconclusive is not pass", []oracle.Result{res("durability", I)},
			map[string]oracle.Verdict{"durability": P}, Unexpected, "expected pass, got inconclusive"},
		{"inconclusive is not fail", []oracle.Result{res("durability", I)},
			map[string]oracle.Verdict{"durability": F}, Unexpected, "expected fail, got inconclusive"},
		{"failure while holding", []oracle.Result{res("durability", P), res("sidecars", F)},
			map[string]oracle.Verdict{"durability": P}, Unexpected, "sidecars: failed, expected to hold"},
		{"hold with nothing listed", []oracle.Result{res("durability", P), res("sidecars", F)},
			map[string]oracle.Verdict{}, Unexpected, "sidecars: failed, expected to hold"},
		{"hold with nothing listed, nothing failed", []oracle.Result{res("durability", P), res("zombies", I)},
			map[string]oracle.Verdict{}, Held, "no checker failed"},
		{"collateral failure while reproducing", []oracle.Result{res("durability", F), res("silent", F)},
			map[string]oracle.Verdict{"durability": F}, Reproduced, "also failed: silent"},
		{"expected pass fails while reproducing", []oracle.Result{res("durability", F), res("structure", F)},
			map[string]oracle.Verdict{"durability": F, "structure": P}, Unexpected, "structure: expected pass, got fail"},
		{"missing checker", []oracle.Result{res("durability", P)},
			map[string]oracle.Verdict{"durability": P, "workers": P}, Unexpected, "workers: expected pass, not run"},
		{"no expectation", []oracle.Result{res("durability", F)}, nil, Observed, "no expectation for this profile; failed: durability"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, why := Classify(&Run{Results: c.results, Expect: c.expect})
			if got != c.want || !strings.Contains(why, c.why) {
				t.Fatalf("Classify = %s, %q; want %s, ~%q", got, why, c.want, c.why)
			}
		})
	}
}

// judged loads an oracle fixture (one without a database, so nothing is
// built) and judges it.
func judged(t *testing.T, fixture string, expect map[string]oracle.Verdict) *Run {
	t.Helper()
	in, err := oracle.Load(filepath.Join("../testdata/oracle", fixture))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r := NewRun(in, oracle.Judge(in))
	r.Expect = expect
	r.Started = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r.Elapsed = 1500 * time.Millisecond
	r.Outcome, r.Why = Classify(r)
	return r
}

func TestWriteReadRun(t *testing.T) {
	r := judged(t, "liveness/bad", map[string]oracle.Verdict{"liveness": oracle.Fail})
	if r.Outcome != Reproduced || r.FaultsFired != 1 || r.FirstDetection != time.Millisecond {
		t.Fatalf("outcome %s (%s), faults %d, first detection %v", r.Outcome, r.Why, r.FaultsFired, r.FirstDetection)
	}
	dir := t.TempDir()
	if err := WriteRun(dir, r); err != nil {
		t.Fatal(err)
	}
	back, err := ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Outcome != r.Outcome || back.Seed != r.Seed || len(back.Results) != len(r.Results) ||
		back.Expect["liveness"] != oracle.Fail || back.Timeline == nil || len(back.Timeline.Marks) != len(r.Timeline.Marks) {
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
	runs := []*Run{
		judged(t, "liveness/bad", map[string]oracle.Verdict{"liveness": oracle.Fail}),
		judged(t, "liveness/good", map[string]oracle.Verdict{"liveness": oracle.Pass}),
		judged(t, "error-fidelity/bad", map[string]oracle.Verdict{"error-fidelity": oracle.Pass}),
	}
	runs[1].Profile = "hardened"
	runs[1].Scenario = runs[0].Scenario
	dir := t.TempDir()
	if err := WriteMatrix(dir, runs); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, MatrixFile))
	for _, want := range []string{"| scenario | hardened/modernc | legacy/modernc |", "| fixture-liveness | held | reproduced (liveness) |", "**UNEXPECTED** (error-fidelity)", "3 runs: 1 reproduced, 1 held, 1 unexpected"} {
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
	var ju junitSuites
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

func TestReadRunAcceptsRunnerReport(t *testing.T) {
	dir := t.TempDir()
	body := `{"scenario":"eio-wal-downgrade","profile":"legacy","driver":"mattn","seed":7,
 "outcome":{"verdict":"reproduced","expected":"fail: journal-mode, silent","why":"also failed: durability"},
 "fired":3,"results":[{"checker":"journal-mode","verdict":"fail","summary":"x"}],"replay":"chaosrun replay X"}`
	if err := os.WriteFile(filepath.Join(dir, ReportFile), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != Reproduced || r.Seed != 7 || r.Expect["journal-mode"] != oracle.Fail || r.Expect["silent"] != oracle.Fail || len(r.Expect) != 2 || r.Replay != "chaosrun replay X" {
		t.Fatalf("got %+v", r)
	}
	for in, want := range map[string]int{"hold (pass: durability, structure)": 2, "hold": 0, "none": -1} {
		m := ParseExpected(in)
		if (want < 0) != (m == nil) || want >= 0 && len(m) != want {
			t.Errorf("ParseExpected(%q) = %v", in, m)
		}
	}
}

// A fix that detects damage rather than preventing it holds when the damage
// checker fails and the detection checkers pass, and not otherwise.
func TestClassifyDetects(t *testing.T) {
	P, F := oracle.Pass, oracle.Fail
	expect := map[string]oracle.Verdict{"structure": F, "page-count": P, "silent": P}
	run := &Run{Expect: expect, Detects: true,
		Results: []oracle.Result{res("structure", F), res("page-count", P), res("silent", P)}}
	if got, why := Classify(run); got != Held || !strings.Contains(why, "detected") {
		t.Errorf("detected damage: got %s (%s), want held", got, why)
	}
	run.Results = []oracle.Result{res("structure", F), res("page-count", F), res("silent", F)}
	if got, why := Classify(run); got != Unexpected {
		t.Errorf("undetected damage under a detecting fix: got %s (%s), want unexpected", got, why)
	}
	run.Detects = false
	run.Results = []oracle.Result{res("structure", F), res("page-count", P), res("silent", P)}
	if got, _ := Classify(run); got != Reproduced {
		t.Errorf("without Detects: got %s, want reproduced", got)
	}
}
