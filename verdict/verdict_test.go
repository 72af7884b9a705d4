package verdict

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/sqlchaos/sqlchaos/oracle"
)

func res(name string, v oracle.Verdict, evidence ...string) oracle.Result {
	r := oracle.Result{Checker: name, Verdict: v, Summary: name + " " + string(v)}
	for _, e := range evidence {
		r.Evidence = append(r.Evidence, oracle.Evidence{Source: "history", Text: e})
	}
	return r
}

func TestJudge(t *testing.T) {
	failStory := &Expect{Fail: []string{oracle.JournalMode}}
	holdStory := &Expect{Pass: []string{oracle.JournalMode, oracle.Durability}}
	detect := &Expect{Fail: []string{oracle.Structure}, Pass: []string{oracle.PageCount, oracle.Silent}, Detects: true,
		Detection: map[string][]string{oracle.PageCount: {"TORN_EXTEND"}}}
	narrowed := &Expect{Fail: []string{oracle.Resurrection}, Evidence: map[string][]string{oracle.Resurrection: {"is present at the end"}}}
	finding := &Pinned{What: "no sidecar unlinked", Measured: Expect{Pass: []string{oracle.Sidecars}, Evidence: map[string][]string{oracle.Sidecars: {"pragma ran"}}}}
	fired := Facts{Fired: 1}
	for _, c := range []struct {
		name    string
		results []oracle.Result
		cell    Cell
		facts   Facts
		want    Verdict
		why     string
	}{
		{"reproduced", []oracle.Result{res(oracle.JournalMode, oracle.Fail), res(oracle.Silent, oracle.Fail)}, Cell{Story: failStory}, fired, Reproduced, "also failed: silent"},
		{"expected fail passed", []oracle.Result{res(oracle.JournalMode, oracle.Pass)}, Cell{Story: failStory}, fired, Unexpected, "expected fail, got pass"},
		{"expected fail undecided", []oracle.Result{res(oracle.JournalMode, oracle.Inconclusive)}, Cell{Story: failStory}, fired, Inconclusive, "inconclusive"},
		{"expected fail not run", nil, Cell{Story: failStory}, fired, Unexpected, "not run"},
		{"held", []oracle.Result{res(oracle.JournalMode, oracle.Pass), res(oracle.Durability, oracle.Pass), res(oracle.Silent, oracle.Inconclusive)}, Cell{Story: holdStory}, fired, Held, ""},
		{"hold broken by an unlisted failure", []oracle.Result{res(oracle.JournalMode, oracle.Pass), res(oracle.Durability, oracle.Pass), res(oracle.Structure, oracle.Fail)}, Cell{Story: holdStory}, fired, Unexpected, "outside the expectation"},
		{"hold with an allowed failure says so", []oracle.Result{res(oracle.JournalMode, oracle.Pass), res(oracle.Durability, oracle.Pass), res(oracle.ErrorFidelity, oracle.Fail)}, Cell{Story: &Expect{Pass: holdStory.Pass, Allow: []string{oracle.ErrorFidelity}}}, fired, Held, "as the expectation allows: error-fidelity"},
		{"hold with an undecided pass", []oracle.Result{res(oracle.JournalMode, oracle.Pass), res(oracle.Durability, oracle.Inconclusive)}, Cell{Story: holdStory}, fired, Inconclusive, "durability"},
		{"held by detection", []oracle.Result{res(oracle.Structure, oracle.Fail), res(oracle.PageCount, oracle.Pass, "reported 1ms after the fault: commit: TORN_EXTEND"), res(oracle.Silent, oracle.Pass)}, Cell{Story: detect}, fired, Held, "held by detection"},
		{"detection missing from the evidence", []oracle.Result{res(oracle.Structure, oracle.Fail), res(oracle.PageCount, oracle.Pass, "0 torn extends"), res(oracle.Silent, oracle.Pass)}, Cell{Story: detect}, fired, Inconclusive, "no detection"},
		{"detection with an unlisted failure", []oracle.Result{res(oracle.Structure, oracle.Fail), res(oracle.PageCount, oracle.Pass, "TORN_EXTEND"), res(oracle.Silent, oracle.Pass), res(oracle.Durability, oracle.Fail)}, Cell{Story: detect}, fired, Unexpected, "durability: failed, outside"},
		{"narrowed evidence shown", []oracle.Result{res(oracle.Resurrection, oracle.Fail, "task t1 is present at the end")}, Cell{Story: narrowed}, fired, Reproduced, ""},
		{"narrowed evidence absent", []oracle.Result{res(oracle.Resurrection, oracle.Fail, "task t1 is missing")}, Cell{Story: narrowed}, fired, Unexpected, "not as predicted"},
		{"finding met", []oracle.Result{res(oracle.Sidecars, oracle.Pass, "the pragma ran 12 times")}, Cell{Story: failStory, Finding: finding}, fired, Finding, "no sidecar unlinked"},
		{"finding without its evidence", []oracle.Result{res(oracle.Sidecars, oracle.Pass, "0 unlinks")}, Cell{Story: failStory, Finding: finding}, fired, Unexpected, "finding pinned"},
		{"finding contradicted by the story", []oracle.Result{res(oracle.Sidecars, oracle.Fail), res(oracle.JournalMode, oracle.Fail)}, Cell{Story: failStory, Finding: finding}, fired, Unexpected, "unpin"},
		{"finding and story both met", []oracle.Result{res(oracle.Sidecars, oracle.Pass, "the pragma ran"), res(oracle.JournalMode, oracle.Fail)}, Cell{Story: failStory, Finding: finding}, fired, Unexpected, "unpin"},
		{"finding with an unlisted failure", []oracle.Result{res(oracle.Sidecars, oracle.Pass, "the pragma ran"), res(oracle.Durability, oracle.Fail)}, Cell{Story: holdStory, Finding: finding}, fired, Unexpected, "durability: failed, outside"},
		{"finding with an allowed failure", []oracle.Result{res(oracle.Sidecars, oracle.Pass, "the pragma ran"), res(oracle.PageCount, oracle.Fail)}, Cell{Story: holdStory, Finding: &Pinned{What: "w", Measured: Expect{Pass: []string{oracle.Sidecars}, Allow: []string{oracle.PageCount}}}}, fired, Finding, "w"},
		{"finding undecided", []oracle.Result{res(oracle.Sidecars, oracle.Inconclusive)}, Cell{Story: failStory, Finding: finding}, fired, Inconclusive, "finding pinned, but"},
		{"no expectation", []oracle.Result{res(oracle.Structure, oracle.Fail)}, Cell{}, fired, Observed, "failed: structure"},
		{"precondition", []oracle.Result{res(oracle.JournalMode, oracle.Pass), res(oracle.Durability, oracle.Pass)}, Cell{Story: holdStory}, Facts{Precondition: "the main rule never fired"}, Inconclusive, "never fired"},
		{"script error beats a match", []oracle.Result{res(oracle.JournalMode, oracle.Fail)}, Cell{Story: failStory}, Facts{Fired: 1, ScriptErr: "start: boom"}, Inconclusive, "script failed"},
		{"deadline", []oracle.Result{res(oracle.JournalMode, oracle.Fail)}, Cell{Story: failStory}, Facts{Fired: 1, Deadline: true}, Inconclusive, "wall-time limit"},
		{"hung beats everything", []oracle.Result{res(oracle.JournalMode, oracle.Fail)}, Cell{Story: failStory}, Facts{Fired: 1, Hung: []string{"cli-3"}, ScriptErr: "x"}, Hung, "cli-3"},
		{"incomplete", []oracle.Result{res(oracle.JournalMode, oracle.Fail)}, Cell{Story: failStory}, Facts{Incomplete: []string{"no trace.jsonl"}}, Inconclusive, "incomplete"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := Judge(c.results, c.cell, c.facts)
			if o.Verdict != c.want || !strings.Contains(o.Why, c.why) {
				t.Fatalf("got %s (%s), want %s with %q", o.Verdict, o.Why, c.want, c.why)
			}
		})
	}
}

func TestCellRoundTripsAsJSON(t *testing.T) {
	c := Cell{Story: &Expect{Fail: []string{oracle.Structure}, Pass: []string{oracle.PageCount}, Detects: true,
		Detection: map[string][]string{oracle.PageCount: {"TORN_EXTEND"}}, Why: "w"},
		Finding: &Pinned{What: "x", Why: "y", Measured: Expect{Pass: []string{oracle.Sidecars}}}, Rate: &Rate{Min: 4, Of: 5}}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Cell
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, back) {
		t.Fatalf("round trip:\n%+v\n%+v", c, back)
	}
}

func TestAggregate(t *testing.T) {
	repro := Cell{Story: &Expect{Fail: []string{oracle.Liveness}}}
	rate := repro
	rate.Rate = &Rate{Min: 4, Of: 5}
	for _, c := range []struct {
		name string
		cell Cell
		runs []Verdict
		want Verdict
	}{
		{"stable", repro, []Verdict{Reproduced, Reproduced, Reproduced}, Reproduced},
		{"flips", repro, []Verdict{Reproduced, Held, Reproduced}, Unexpected},
		{"stable inconclusive", repro, []Verdict{Inconclusive, Inconclusive}, Inconclusive},
		{"rate met", rate, []Verdict{Reproduced, Reproduced, Inconclusive, Reproduced, Reproduced}, Reproduced},
		{"rate missed", rate, []Verdict{Reproduced, Held, Inconclusive, Reproduced, Reproduced}, Unexpected},
		{"rate with an unexpected run", rate, []Verdict{Reproduced, Unexpected, Reproduced, Reproduced, Reproduced}, Unexpected},
		{"rate with a hung run", rate, []Verdict{Reproduced, Hung, Reproduced, Reproduced, Reproduced}, Hung},
		{"rate, one run", rate, []Verdict{Reproduced}, Reproduced},
		{"rate, one missed run: too few to judge", rate, []Verdict{Inconclusive}, Inconclusive},
		{"rate, four of five", rate, []Verdict{Reproduced, Inconclusive, Reproduced, Reproduced, Reproduced}, Reproduced},
		{"rate, three of five", rate, []Verdict{Reproduced, Inconclusive, Inconclusive, Reproduced, Reproduced}, Unexpected},
		{"none", repro, nil, Inconclusive},
	} {
		if o := Aggregate(c.cell, c.runs); o.Verdict != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, o.Verdict, o.Why, c.want)
		}
	}
}

func TestOK(t *testing.T) {
	for _, v := range All {
		want := v == Reproduced || v == Held || v == Finding || v == Observed
		if v.OK() != want {
			t.Errorf("%s.OK() = %v", v, v.OK())
		}
	}
}

// TestJudgeRateCellMiss: a run of a rate cell in which the class did not
// show, and nothing else went wrong, is inconclusive (Aggregate counts it
// against the rate); anything else that differs stays unexpected, and a
// cell that is no rate cell stays unexpected on a miss.
func TestJudgeRateCellMiss(t *testing.T) {
	story := &Expect{Fail: []string{oracle.ErrorFidelity}}
	rate := Cell{Story: story, Rate: &Rate{Min: 4, Of: 5}}
	fired := Facts{Fired: 3}
	miss := []oracle.Result{res(oracle.ErrorFidelity, oracle.Pass), res(oracle.Durability, oracle.Pass), res(oracle.Silent, oracle.Inconclusive)}
	if o := Judge(miss, rate, fired); o.Verdict != Inconclusive || !strings.Contains(o.Why, "did not show") {
		t.Errorf("rate cell miss: %s (%s), want inconclusive", o.Verdict, o.Why)
	}
	if o := Judge(miss, Cell{Story: story}, fired); o.Verdict != Unexpected {
		t.Errorf("no rate cell, miss: %s (%s), want unexpected", o.Verdict, o.Why)
	}
	other := []oracle.Result{res(oracle.ErrorFidelity, oracle.Pass), res(oracle.Durability, oracle.Fail)}
	if o := Judge(other, rate, fired); o.Verdict != Unexpected {
		t.Errorf("rate cell, class missing and another checker failed: %s (%s), want unexpected", o.Verdict, o.Why)
	}
	hit := []oracle.Result{res(oracle.ErrorFidelity, oracle.Fail)}
	if o := Judge(hit, rate, fired); o.Verdict != Reproduced {
		t.Errorf("rate cell hit: %s (%s), want reproduced", o.Verdict, o.Why)
	}
	hold := Cell{Story: &Expect{Pass: []string{oracle.Durability}}, Rate: &Rate{Min: 4, Of: 5}}
	if o := Judge(other, hold, fired); o.Verdict != Unexpected {
		t.Errorf("rate cell of a hold story that broke: %s (%s), want unexpected", o.Verdict, o.Why)
	}
}
