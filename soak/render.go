package soak

import (
	"cmp"
	"encoding/json"
	"fmt"
	"html"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sqlchaos/sqlchaos/reports"
)

// RunsDir is the subdirectory of a merge's output that holds the per-run
// views (reports.WriteMatrix) of the runs that kept it from passing.
const RunsDir = "runs"

// maxRunViews bounds the runs drawn in RunsDir (each carries a timeline).
const maxRunViews = 200

// outcomeOrder is the order of outcome columns; others follow, sorted.
var outcomeOrder = []string{reports.Reproduced, reports.Held, "finding", reports.Unexpected, "inconclusive", "hung", reports.Observed}

// Outcomes lists the outcomes that occur in m, in report order.
func (m *Merged) Outcomes() []string {
	var out []string
	for _, o := range outcomeOrder {
		if m.Totals.Outcomes[o] > 0 {
			out = append(out, o)
		}
	}
	var rest []string
	for o := range m.Totals.Outcomes {
		known := false
		for _, k := range outcomeOrder {
			known = known || k == o
		}
		if !known {
			rest = append(rest, o)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// Write writes matrix.md, index.html, junit.xml and report.json into dir,
// and the per-run views of the failing runs (at most 200) into dir/runs.
func Write(dir string, m *Merged, runs []*reports.Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var bad []*reports.Report
	for _, r := range runs {
		if !passing(r.Outcome) && len(bad) < maxRunViews {
			bad = append(bad, r)
		}
	}
	if len(bad) > 0 {
		if err := reports.WriteMatrix(filepath.Join(dir, RunsDir), bad); err != nil {
			return err
		}
	}
	j, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	ju, err := JUnit(m)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		reports.MatrixFile: []byte(Markdown(m)),
		reports.HTMLFile:   []byte(HTML(m, len(bad) > 0)),
		reports.JUnitFile:  ju,
		reports.ReportFile: append(j, '\n'),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Runs collects every run of the sources (for the per-run views).
func Runs(srcs []Source) []*reports.Report {
	var out []*reports.Report
	for _, s := range srcs {
		for _, k := range slices.Sorted(maps.Keys(s.Runs)) {
			out = append(out, s.Runs[k])
		}
	}
	return out
}

func verdictLine(m *Merged) string {
	if m.OK {
		return "PASS: every run reproduced, held or finding; every shard finished."
	}
	var why []string
	for _, o := range m.Outcomes() {
		if !passing(o) {
			why = append(why, fmt.Sprintf("%d %s", m.Totals.Outcomes[o], o))
		}
	}
	if n := len(m.Problems); n > 0 {
		why = append(why, fmt.Sprintf("%d problems (dead or missing shards, errored or lost cases)", n))
	}
	return "FAIL: " + strings.Join(why, ", ") + "."
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) }

func dur(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return d.Round(100 * time.Millisecond).String()
}

// cellSummary is a cell's short text in the matrix: counts by outcome.
func cellSummary(c CellStats, outcomes []string) string {
	var parts []string
	for _, o := range outcomes {
		if n := c.Outcomes[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o))
		}
	}
	for _, x := range []struct {
		n    int
		what string
	}{{c.Lost, "lost"}, {c.Errored, "errored"}, {c.NotRun, "not run"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", x.n, x.what))
		}
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}

// grid lays the cells out as scenario × profile/driver.
func grid(m *Merged) (cols, rows []string, at map[string]CellStats) {
	at = map[string]CellStats{}
	seenC, seenR := map[string]bool{}, map[string]bool{}
	for _, c := range m.Cells {
		scn, pd, _ := strings.Cut(c.Cell, "/")
		at[scn+"|"+pd] = c
		if !seenC[pd] {
			seenC[pd] = true
			cols = append(cols, pd)
		}
		if !seenR[scn] {
			seenR[scn] = true
			rows = append(rows, scn)
		}
	}
	sort.Strings(cols)
	sort.Strings(rows)
	return cols, rows, at
}

// matrix.md stays well under the 1 MiB a CI job summary takes: it lists at
// most this many problems, runs and plans (report.json and index.html list
// them all).
const (
	mdMaxProblems = 100
	mdMaxRuns     = 200
	mdMaxPlans    = 50
	mdMore        = "… %d more in report.json and index.html\n"
)

// Markdown renders the merge: the verdict, the matrix, per-cell numbers,
// shards, problems and found plans.
func Markdown(m *Merged) string {
	var b strings.Builder
	outs := m.Outcomes()
	fmt.Fprintf(&b, "# sqlchaos soak: %d runs from %d sources\n\n**%s**\n\n", m.Totals.Runs, len(m.Shards), verdictLine(m))
	var tot []string
	for _, o := range outs {
		tot = append(tot, fmt.Sprintf("%d %s", m.Totals.Outcomes[o], o))
	}
	fmt.Fprintf(&b, "Runs by outcome: %s. Lost %d, errored %d, not run %d.\n\n", cmp.Or(strings.Join(tot, ", "), "none"), m.Totals.Lost, m.Totals.Errored, m.Totals.NotRun)
	mdGrid(&b, m, outs)
	mdCells(&b, m.Cells, outs)
	mdShards(&b, m.Shards)
	writeSection(&b, m.Problems, fmt.Sprintf("\n## Problems (%d)\n\n", len(m.Problems)), "", mdMaxProblems, "- "+mdMore, func(p Problem) {
		fmt.Fprintf(&b, "- **%s**%s%s: %s\n", p.Kind, prefix(" shard ", p.Shard), prefix(" ", p.Case), reports.MarkdownCell(p.Detail))
	})
	writeSection(&b, m.badRuns(), "\n## Runs outside reproduced/held/finding\n\n", "", mdMaxRuns, "- "+mdMore, func(r RunRef) {
		fmt.Fprintf(&b, "- **%s** seed %d: %s — %s\n  - replay: `%s`\n  - run again: `%s`\n", r.Cell, r.Seed, r.Outcome, reports.MarkdownCell(r.Why), r.Replay, r.Again)
	})
	writeSection(&b, m.Plans, fmt.Sprintf("\n## Plans that broke something (%d, deduplicated by canonical form)\n", len(m.Plans)), "", mdMaxPlans, "\n"+mdMore, func(p FoundPlan) {
		fmt.Fprintf(&b, "\n%d runs (%s) in %s\n\n```\n%s```\n\n- replay: `%s`\n- run again: `%s`\n",
			p.Runs, countList(p.Outcomes), strings.Join(p.Cells, ", "), p.Plan, p.Example.Replay, p.Example.Again)
	})
	for _, n := range m.Notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
	}
	return b.String()
}

// mdGrid writes the scenario × profile/driver matrix of cell summaries.
func mdGrid(b *strings.Builder, m *Merged, outs []string) {
	cols, rows, at := grid(m)
	if len(cols) == 0 {
		return
	}
	reports.WriteMarkdownGrid(b, rows, cols, func(r, c string) string {
		if cs, ok := at[r+"|"+c]; ok {
			return cellSummary(cs, outs)
		}
		return "—"
	})
}

// mdCells writes the per-cell numbers.
func mdCells(b *strings.Builder, cells []CellStats, outs []string) {
	b.WriteString("\n## Cells\n\n| cell | runs | " + strings.Join(outs, " | "))
	b.WriteString(" | lost | errored | not run | reproduction rate | median time to reproduce |\n|---|---|" + strings.Repeat("---|", len(outs)+5) + "\n")
	for _, c := range cells {
		fmt.Fprintf(b, "| %s | %d |", c.Cell, c.Runs)
		for _, o := range outs {
			fmt.Fprintf(b, " %d |", c.Outcomes[o])
		}
		fmt.Fprintf(b, " %d | %d | %d | %s | %s |\n", c.Lost, c.Errored, c.NotRun, pct(c.ReproductionRate), dur(c.MedianToReproduce))
	}
}

// mdShards writes each source's state, a dead or missing shard in capitals.
func mdShards(b *strings.Builder, shards []ShardStatus) {
	b.WriteString("\n## Shards\n\n| shard | seeds | state | given | finished | errored | lost | not run | directory |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range shards {
		state := s.State
		if state == StateDead || state == StateMissing {
			state = "**" + strings.ToUpper(state) + "**"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %d | %d | %d | %d | %d | %s |\n", cmp.Or(s.Shard, "—"), cmp.Or(s.Seeds, "—"), state, s.Given, s.Finished, s.Errored, s.Lost, s.NotRun, cmp.Or(reports.MarkdownCell(s.Dir), "—"))
	}
}

// writeSection writes head, item(x) for each of the first limit items (all of
// them when limit < 0), more with the count of those left out, and tail;
// nothing at all when there are no items.
func writeSection[T any](b *strings.Builder, items []T, head, tail string, limit int, more string, item func(T)) {
	if len(items) == 0 {
		return
	}
	b.WriteString(head)
	for i, x := range items {
		if i == limit {
			fmt.Fprintf(b, more, len(items)-i)
			break
		}
		item(x)
	}
	b.WriteString(tail)
}

// badRuns lists the runs that keep the merge from passing, cell by cell.
func (m *Merged) badRuns() []RunRef {
	var bad []RunRef
	for _, c := range m.Cells {
		bad = append(bad, c.Bad...)
	}
	return bad
}

func countList(c map[string]int) string {
	var parts []string
	for _, o := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%d %s", c[o], o))
	}
	return strings.Join(parts, ", ")
}

func prefix(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

const css = `body{font-family:sans-serif;margin:24px;color:#202124}
table{border-collapse:collapse;margin:8px 0 16px}
td,th{border:1px solid #dadce0;padding:4px 8px;font-size:13px;vertical-align:top}
th{background:#f1f3f4}
.pass{background:#e6f4ea}
.fail{background:#fce8e6;font-weight:bold}
pre{background:#f8f9fa;padding:8px;font-size:12px}
code{font-size:12px}`

// HTML renders the merge as one self-contained page; runViews links the
// per-run views in runs/index.html.
func HTML(m *Merged, runViews bool) string {
	var b strings.Builder
	outs := m.Outcomes()
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>sqlchaos soak</title>\n<style>\n" + css + "\n</style>\n</head>\n<body>\n")
	class := "pass"
	if !m.OK {
		class = "fail"
	}
	fmt.Fprintf(&b, "<h1>sqlchaos soak: %d runs from %d sources</h1>\n<p class=\"%s\">%s</p>\n", m.Totals.Runs, len(m.Shards), class, esc(verdictLine(m)))
	if runViews {
		fmt.Fprintf(&b, "<p>Timelines of the runs outside reproduced/held/finding: <a href=\"%s/%s\">%s/%s</a></p>\n", RunsDir, reports.HTMLFile, RunsDir, reports.HTMLFile)
	}
	htmlGrid(&b, m, outs)
	htmlCells(&b, m.Cells, outs)
	htmlShards(&b, m.Shards)
	writeSection(&b, m.Problems, fmt.Sprintf("<h2>Problems (%d)</h2>\n<ul>\n", len(m.Problems)), "</ul>\n", -1, "", func(p Problem) {
		fmt.Fprintf(&b, "<li><b>%s</b>%s%s: %s</li>\n", esc(p.Kind), esc(prefix(" shard ", p.Shard)), esc(prefix(" ", p.Case)), esc(p.Detail))
	})
	writeSection(&b, m.badRuns(), "<h2>Runs outside reproduced/held/finding</h2>\n<ul>\n", "</ul>\n", -1, "", func(r RunRef) {
		fmt.Fprintf(&b, "<li><b>%s</b> seed %d: %s — %s<br/>replay <code>%s</code><br/>run again <code>%s</code></li>\n", esc(r.Cell), r.Seed, esc(r.Outcome), esc(r.Why), esc(r.Replay), esc(r.Again))
	})
	writeSection(&b, m.Plans, fmt.Sprintf("<h2>Plans that broke something (%d, deduplicated by canonical form)</h2>\n", len(m.Plans)), "", -1, "", func(p FoundPlan) {
		fmt.Fprintf(&b, "<p>%d runs (%s) in %s</p>\n<pre>%s</pre>\n<p>replay <code>%s</code><br/>run again <code>%s</code></p>\n",
			p.Runs, esc(countList(p.Outcomes)), esc(strings.Join(p.Cells, ", ")), esc(p.Plan), esc(p.Example.Replay), esc(p.Example.Again))
	})
	for _, n := range m.Notes {
		fmt.Fprintf(&b, "<p>Note: %s</p>\n", esc(n))
	}
	b.WriteString("</body>\n</html>\n")
	return b.String()
}

var esc = html.EscapeString

// htmlGrid writes the scenario × profile/driver matrix of cell summaries.
func htmlGrid(b *strings.Builder, m *Merged, outs []string) {
	cols, rows, at := grid(m)
	reports.WriteHTMLGrid(b, "<table>", rows, cols, func(r, c string) string {
		cs, ok := at[r+"|"+c]
		if !ok {
			return "<td>—</td>"
		}
		return fmt.Sprintf("<td class=\"%s\">%s</td>", cellClass(cs), esc(cellSummary(cs, outs)))
	})
}

// htmlCells writes the per-cell numbers.
func htmlCells(b *strings.Builder, cells []CellStats, outs []string) {
	b.WriteString("<h2>Cells</h2>\n<table>\n<tr><th>cell</th><th>runs</th>")
	for _, o := range outs {
		b.WriteString("<th>" + esc(o) + "</th>")
	}
	b.WriteString("<th>lost</th><th>errored</th><th>not run</th><th>reproduction rate</th><th>median time to reproduce</th></tr>\n")
	for _, c := range cells {
		fmt.Fprintf(b, "<tr class=\"%s\"><td>%s</td><td>%d</td>", cellClass(c), esc(c.Cell), c.Runs)
		for _, o := range outs {
			fmt.Fprintf(b, "<td>%d</td>", c.Outcomes[o])
		}
		fmt.Fprintf(b, "<td>%d</td><td>%d</td><td>%d</td><td>%s</td><td>%s</td></tr>\n", c.Lost, c.Errored, c.NotRun, pct(c.ReproductionRate), esc(dur(c.MedianToReproduce)))
	}
	b.WriteString("</table>\n")
}

// htmlShards writes each source's state, failing unless it finished.
func htmlShards(b *strings.Builder, shards []ShardStatus) {
	b.WriteString("<h2>Shards</h2>\n<table>\n<tr><th>shard</th><th>seeds</th><th>state</th><th>given</th><th>finished</th><th>errored</th><th>lost</th><th>not run</th><th>directory</th></tr>\n")
	for _, s := range shards {
		cl := "pass"
		if !finishedState(s.State) {
			cl = "fail"
		}
		fmt.Fprintf(b, "<tr class=\"%s\"><td>%s</td><td>%s</td><td>%s</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td><code>%s</code></td></tr>\n",
			cl, esc(cmp.Or(s.Shard, "—")), esc(cmp.Or(s.Seeds, "—")), esc(s.State), s.Given, s.Finished, s.Errored, s.Lost, s.NotRun, esc(s.Dir))
	}
	b.WriteString("</table>\n")
}

// finishedState reports whether a source in this state ran what it was
// given: done, out of budget, or plain runs.
func finishedState(state string) bool {
	return state == StopDone || state == StopBudget || state == StateRuns
}

func cellClass(c CellStats) string {
	if len(c.Bad) > 0 || c.Lost > 0 || c.Errored > 0 {
		return "fail"
	}
	for o, n := range c.Outcomes {
		if n > 0 && !passing(o) {
			return "fail"
		}
	}
	return "pass"
}

// JUnit renders one testcase per cell (failing when a run is outside
// reproduced/held/finding, or a case errored or was lost) and one per
// shard (failing when it died, is missing or stopped early).
func JUnit(m *Merged) ([]byte, error) {
	outs := m.Outcomes()
	cells := reports.JUnitSuite{Name: "sqlchaos.soak.cells"}
	for _, c := range m.Cells {
		scn, _, _ := strings.Cut(c.Cell, "/")
		jc := reports.JUnitCase{Name: c.Cell, Classname: "sqlchaos.soak." + scn,
			SystemOut: fmt.Sprintf("%d runs: %s; reproduction rate %s; median time to reproduce %s\n", c.Runs, cellSummary(c, outs), pct(c.ReproductionRate), dur(c.MedianToReproduce))}
		if cellClass(c) == "fail" {
			var t strings.Builder
			for _, r := range c.Bad {
				fmt.Fprintf(&t, "seed %d: %s — %s\nreplay: %s\nrun again: %s\n", r.Seed, r.Outcome, r.Why, r.Replay, r.Again)
			}
			for _, p := range m.Problems {
				if strings.HasPrefix(p.Case, c.Cell+" ") {
					fmt.Fprintf(&t, "%s %s: %s\n", p.Kind, p.Case, p.Detail)
				}
			}
			jc.Failure = &reports.JUnitFailure{Message: cellSummary(c, outs), Type: "soak", Text: t.String()}
			cells.Failures++
		}
		cells.Cases = append(cells.Cases, jc)
	}
	cells.Tests = len(cells.Cases)
	shards := reports.JUnitSuite{Name: "sqlchaos.soak.shards"}
	for _, s := range m.Shards {
		name := s.Shard
		if name == "" {
			name = s.Dir
		}
		jc := reports.JUnitCase{Name: "shard " + name, Classname: "sqlchaos.soak.shard",
			SystemOut: fmt.Sprintf("state %s; given %d, finished %d, errored %d, lost %d, not run %d; %s\n", s.State, s.Given, s.Finished, s.Errored, s.Lost, s.NotRun, s.Dir)}
		if !finishedState(s.State) || s.Errored+s.Lost > 0 {
			jc.Failure = &reports.JUnitFailure{Message: "shard " + name + ": " + s.State, Type: s.State, Text: jc.SystemOut}
			shards.Failures++
		}
		shards.Cases = append(shards.Cases, jc)
	}
	shards.Tests = len(shards.Cases)
	return reports.MarshalJUnit(cells, shards)
}
