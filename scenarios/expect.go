package scenarios

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sqlchaos/sqlchaos/oracle"
)

// Verdict is a cell's outcome against its scenario's expectation.
type Verdict string

// The verdicts of a cell.
const (
	// Reproduced: the profile broke exactly where the story says it does
	// (every checker the expectation names failed).
	Reproduced Verdict = "reproduced"
	// Held: the profile held (no checker failed and every checker the
	// expectation names passed).
	Held Verdict = "held"
	// Unexpected: reality contradicts the story; the evidence says how.
	Unexpected Verdict = "unexpected"
	// Observed: the scenario states no expectation for this profile; the
	// results are reported as they are.
	Observed Verdict = "observed"
)

// Expect is what a scenario claims for one profile.
type Expect struct {
	// Fail lists the checkers that must fail (the class is reproduced).
	// Empty means the profile must hold.
	Fail []string
	// Pass lists checkers that must pass outright when holding
	// (Inconclusive is not enough): the ones that prove the fix worked.
	Pass []string
	// Why says, in one line, what the story predicts.
	Why string
}

// Outcome is a cell's verdict with its reason.
type Outcome struct {
	Verdict Verdict `json:"verdict"`
	// Expected restates the expectation ("fail: journal-mode" or "hold").
	Expected string `json:"expected"`
	// Why explains an unexpected verdict (or notes extra failures).
	Why string `json:"why,omitempty"`
}

func (e Expect) String() string {
	if len(e.Fail) > 0 {
		return "fail: " + strings.Join(e.Fail, ", ")
	}
	if len(e.Pass) > 0 {
		return "hold (pass: " + strings.Join(e.Pass, ", ") + ")"
	}
	return "hold"
}

// judge compares results with the scenario's expectation for profile.
func (sc *Scenario) judge(profile string, rs []oracle.Result) Outcome {
	byName := map[string]oracle.Result{}
	var failed []string
	for _, r := range rs {
		byName[r.Checker] = r
		if r.Verdict == oracle.Fail {
			failed = append(failed, r.Checker)
		}
	}
	sort.Strings(failed)
	e, ok := sc.Expect[profile]
	if !ok {
		why := "no expectation for this profile"
		if len(failed) > 0 {
			why += "; failed: " + strings.Join(failed, ", ")
		}
		return Outcome{Verdict: Observed, Expected: "none", Why: why}
	}
	out := Outcome{Expected: e.String()}
	if len(e.Fail) > 0 {
		var held []string
		for _, name := range e.Fail {
			r, ok := byName[name]
			if !ok || r.Verdict != oracle.Fail {
				v := "missing"
				if ok {
					v = string(r.Verdict) + ": " + r.Summary
				}
				held = append(held, fmt.Sprintf("%s did not fail (%s)", name, v))
			}
		}
		if len(held) > 0 {
			out.Verdict = Unexpected
			out.Why = strings.Join(held, "; ")
			return out
		}
		out.Verdict = Reproduced
		if extra := minus(failed, e.Fail); len(extra) > 0 {
			out.Why = "also failed: " + strings.Join(extra, ", ")
		}
		return out
	}
	var bad []string
	for _, name := range failed {
		bad = append(bad, fmt.Sprintf("%s failed: %s", name, byName[name].Summary))
	}
	for _, name := range e.Pass {
		r, ok := byName[name]
		if !ok {
			bad = append(bad, name+" missing")
		} else if r.Verdict == oracle.Inconclusive {
			bad = append(bad, fmt.Sprintf("%s inconclusive: %s", name, r.Summary))
		}
	}
	if len(bad) > 0 {
		out.Verdict = Unexpected
		out.Why = strings.Join(bad, "; ")
		return out
	}
	out.Verdict = Held
	return out
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		found := false
		for _, y := range b {
			if x == y {
				found = true
			}
		}
		if !found {
			out = append(out, x)
		}
	}
	return out
}
