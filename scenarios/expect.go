package scenarios

import (
	"fmt"
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
	// Evidence narrows an expected failure to the story's class: a checker
	// listed here counts as failing as expected only when one of its
	// evidence lines contains one of the substrings (a resurrection checker
	// that fails only on missing rows has not shown a deleted row coming
	// back). It can only turn a reproduced cell into an unexpected one.
	Evidence map[string][]string
	// Why says, in one line, what the story predicts.
	Why string
	// Detects marks a fix that detects the damage rather than preventing
	// it: Fail lists the damage (structure), Pass the detection (silent,
	// page-count), and a met expectation is held, not reproduced.
	Detects bool
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
	if len(e.Fail) > 0 && e.Detects {
		return "hold by detection (damage: " + strings.Join(e.Fail, ", ") + "; pass: " + strings.Join(e.Pass, ", ") + ")"
	}
	if len(e.Fail) > 0 {
		return "fail: " + strings.Join(e.Fail, ", ")
	}
	if len(e.Pass) > 0 {
		return "hold (pass: " + strings.Join(e.Pass, ", ") + ")"
	}
	return "hold"
}

// expectMap turns the expectation for profile into the reports package's
// form: nil when the scenario states none, empty for "must hold".
func (sc *Scenario) expectMap(profile string) map[string]oracle.Verdict {
	e, ok := sc.Expect[profile]
	if !ok {
		return nil
	}
	m := map[string]oracle.Verdict{}
	for _, n := range e.Pass {
		m[n] = oracle.Pass
	}
	for _, n := range e.Fail {
		m[n] = oracle.Fail
	}
	return m
}

// checkEvidence applies Expect.Evidence to a cell the reports package
// classified as reproduced; it returns "" when every narrowed failure shows
// its class, or the reason it does not.
func (e Expect) checkEvidence(rs []oracle.Result) string {
	var why []string
	for _, r := range rs {
		subs, ok := e.Evidence[r.Checker]
		if !ok || r.Verdict != oracle.Fail {
			continue
		}
		found := false
		for _, ev := range r.Evidence {
			for _, sub := range subs {
				if strings.Contains(ev.Text, sub) {
					found = true
				}
			}
		}
		if !found {
			why = append(why, fmt.Sprintf("%s failed, but not as the story says: none of its evidence shows %q (%s)",
				r.Checker, strings.Join(subs, `" or "`), r.Summary))
		}
	}
	return strings.Join(why, "; ")
}
