package reports

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sqlchaos/sqlchaos/verdict"
)

// CellSummary is one matrix cell over its repeated runs.
type CellSummary struct {
	Cell   string          `json:"cell"`
	Expect verdict.Cell    `json:"expect"`
	Tally  verdict.Tally   `json:"tally"`
	Runs   int             `json:"runs"`
	Result verdict.Outcome `json:"result"`
	// MedianToTarget is the median wall time of the runs that gave the
	// cell's target verdict (reproduced, or the pinned finding): how long
	// a run takes to show the class; 0 when none did.
	MedianToTarget time.Duration `json:"median_to_target,omitempty"`
	// Seeds lists the runs' seeds in run order.
	Seeds []int64 `json:"seeds"`
}

// Cells groups runs by cell (in matrix order) and judges each cell over
// its runs with verdict.Aggregate.
func Cells(runs []*Report) []CellSummary {
	runs = sortedRuns(runs)
	var order []string
	by := map[string][]*Report{}
	for _, r := range runs {
		if _, ok := by[r.Cell()]; !ok {
			order = append(order, r.Cell())
		}
		by[r.Cell()] = append(by[r.Cell()], r)
	}
	var out []CellSummary
	for _, c := range order {
		rs := by[c]
		s := CellSummary{Cell: c, Expect: rs[0].Expect, Tally: verdict.Tally{}, Runs: len(rs)}
		var vs []verdict.Verdict
		var times []time.Duration
		target := rs[0].Expect.Target()
		for _, r := range rs {
			vs = append(vs, r.Verdict())
			s.Tally[r.Verdict()]++
			s.Seeds = append(s.Seeds, r.Seed)
			if r.Verdict() == target {
				times = append(times, r.Elapsed)
			}
		}
		s.Result = verdict.Aggregate(s.Expect, vs)
		if len(times) > 0 {
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			s.MedianToTarget = times[len(times)/2]
		}
		out = append(out, s)
	}
	return out
}

// CellsMarkdown renders the per-cell table of a repeated matrix: runs,
// verdict counts, the cell's verdict and the median time to its target.
func CellsMarkdown(cells []CellSummary) string {
	var b strings.Builder
	b.WriteString("| cell | expected | runs | verdicts | cell verdict | median time to target |\n|---|---|---|---|---|---|\n")
	t := verdict.Tally{}
	for _, c := range cells {
		med := "—"
		if c.MedianToTarget > 0 {
			med = c.MedianToTarget.Round(100 * time.Millisecond).String()
		}
		v := string(c.Result.Verdict)
		if !c.Result.Verdict.OK() {
			v = "**" + strings.ToUpper(v) + "**"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s |\n", c.Cell, MarkdownCell(c.Expect.String()), c.Runs, c.Tally, v, med)
		t[c.Result.Verdict]++
	}
	fmt.Fprintf(&b, "\n%d cells: %s.\n", len(cells), t)
	for _, c := range cells {
		if !c.Result.Verdict.OK() {
			fmt.Fprintf(&b, "\n- **%s** %s: %s\n", c.Cell, strings.ToUpper(string(c.Result.Verdict)), MarkdownCell(c.Result.Why))
		}
	}
	return b.String()
}
