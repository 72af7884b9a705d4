package reports

import (
	"cmp"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/verdict"
)

// Matrix file names.
const (
	MatrixFile = "matrix.md"
	HTMLFile   = "index.html"
	JUnitFile  = "junit.xml"
)

// WriteMatrix writes matrix.md, index.html and junit.xml for runs into dir.
func WriteMatrix(dir string, runs []*Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	runs = sortedRuns(runs)
	files := map[string]func([]*Report) ([]byte, error){
		MatrixFile: func(r []*Report) ([]byte, error) { return []byte(MatrixMarkdown(r)), nil },
		HTMLFile:   HTML,
		JUnitFile:  JUnit,
	}
	for name, render := range files {
		b, err := render(runs)
		if err != nil {
			return fmt.Errorf("reports: %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("reports: %w", err)
		}
	}
	return nil
}

func sortedRuns(runs []*Report) []*Report {
	out := append([]*Report(nil), runs...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Scenario != b.Scenario {
			return a.Scenario < b.Scenario
		}
		if a.Profile != b.Profile {
			return a.Profile < b.Profile
		}
		return a.Driver < b.Driver
	})
	return out
}

// columns returns the profile/driver pairs in order, and the scenarios.
func axes(runs []*Report) (cols []string, scenarios []string) {
	seenC, seenS := map[string]bool{}, map[string]bool{}
	for _, r := range runs {
		c := r.Profile + "/" + r.Driver
		if !seenC[c] {
			seenC[c] = true
			cols = append(cols, c)
		}
		if !seenS[r.Scenario] {
			seenS[r.Scenario] = true
			scenarios = append(scenarios, r.Scenario)
		}
	}
	sort.Strings(cols)
	return cols, scenarios
}

func cellRuns(runs []*Report) map[string][]*Report {
	m := map[string][]*Report{}
	for _, r := range runs {
		k := r.Scenario + "|" + r.Profile + "/" + r.Driver
		m[k] = append(m[k], r)
	}
	return m
}

// failing lists the checkers that failed in r.
func failing(r *Report) []string {
	var out []string
	for _, res := range r.Results {
		if res.Verdict == oracle.Fail {
			out = append(out, res.Checker)
		}
	}
	return out
}

// MatrixMarkdown renders scenario × profile/driver → outcome.
func MatrixMarkdown(runs []*Report) string {
	runs = sortedRuns(runs)
	cols, scen := axes(runs)
	cells := cellRuns(runs)
	var b strings.Builder
	WriteMarkdownGrid(&b, scen, cols, func(s, c string) string {
		var parts []string
		for _, r := range cells[s+"|"+c] {
			p := r.Outcome
			if !r.Verdict().OK() {
				p = "**" + strings.ToUpper(r.Outcome) + "**"
			}
			if f := failing(r); len(f) > 0 {
				p += " (" + strings.Join(f, ", ") + ")"
			}
			parts = append(parts, p)
		}
		return cmp.Or(strings.Join(parts, "; "), "—")
	})
	fmt.Fprintf(&b, "\n%s\n", Counts(runs))
	// A finding is listed once per cell, however many of its runs showed it.
	findings := map[string]int{}
	var findingRuns []*Report
	for _, r := range runs {
		if r.Outcome == Finding {
			if findings[r.Cell()] == 0 {
				findingRuns = append(findingRuns, r)
			}
			findings[r.Cell()]++
		}
	}
	for _, r := range findingRuns {
		times := ""
		if n := findings[r.Cell()]; n > 1 {
			times = fmt.Sprintf(" (%d runs)", n)
		}
		fmt.Fprintf(&b, "\n- finding **%s**%s: %s\n", r.Cell(), times, MarkdownCell(r.Expect.Finding.What+" — "+r.Expect.Finding.Why))
	}
	for _, r := range runs {
		if !r.Verdict().OK() {
			fmt.Fprintf(&b, "\n- **%s** %s, seed %d: %s\n  replay: `%s`\n", r.Cell(), strings.ToUpper(r.Outcome), r.Seed, MarkdownCell(r.Why), r.Replay)
		}
	}
	return b.String()
}

// Counts renders how many runs gave each verdict ("56 runs: 17
// reproduced, 28 held, 11 finding, 0 unexpected, 0 inconclusive, 0 hung").
func Counts(runs []*Report) string {
	t := verdict.Tally{}
	for _, r := range runs {
		t[r.Verdict()]++
	}
	s := fmt.Sprintf("%d runs: %d reproduced, %d held, %d finding, %d unexpected, %d inconclusive, %d hung", len(runs),
		t[verdict.Reproduced], t[verdict.Held], t[verdict.Finding], t[verdict.Unexpected], t[verdict.Inconclusive], t[verdict.Hung])
	if n := t[verdict.Observed]; n > 0 {
		s += fmt.Sprintf(", %d observed", n)
	}
	return s + "."
}

const css = `body{font-family:sans-serif;margin:24px;color:#202124}
table{border-collapse:collapse;margin:8px 0 16px}
td,th{border:1px solid #dadce0;padding:4px 8px;font-size:13px;vertical-align:top}
th{background:#f1f3f4}
.reproduced{background:#fce8e6}
.held{background:#e6f4ea}
.finding{background:#e8f0fe}
.unexpected{background:#fef7e0;font-weight:bold}
.hung{background:#f3e8fd;font-weight:bold}
td.inconclusive{background:#fff3e0;font-weight:bold}
.pass{color:#1e8e3e}
.fail{color:#d93025;font-weight:bold}
.inconclusive{color:#b06000}
code{font-size:12px}
.legend span{margin-right:14px;font-size:12px}
section{border-top:2px solid #dadce0;margin-top:24px}`

// HTML renders the matrix and each run's verdicts and timeline as one
// self-contained page (no scripts; SVG inline; well-formed XML).
func HTML(runs []*Report) ([]byte, error) {
	runs = sortedRuns(runs)
	cols, scen := axes(runs)
	cells := cellRuns(runs)
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>sqlchaos matrix</title>\n<style>\n" + css + "\n</style>\n</head>\n<body>\n")
	fmt.Fprintf(&b, "<h1>sqlchaos matrix</h1>\n<p>%d runs, generated %s. A cell is <b>reproduced</b> when the profile breaks as the scenario expects, <b>held</b> when it passes as expected, <b>finding</b> when it shows a pinned finding (measurement contradicting the story, explained in the scenario), <b>inconclusive</b> when the run could not decide, <b>hung</b> when a process had to be killed, and <b>unexpected</b> otherwise. %s</p>\n", len(runs), esc(time.Now().UTC().Format(time.RFC3339)), esc(Counts(runs)))
	WriteHTMLGrid(&b, "<table class=\"matrix\">", scen, cols, func(s, c string) string { return htmlMatrixCell(cells[s+"|"+c]) })
	b.WriteString("<p class=\"legend\">")
	for _, k := range []string{MarkOp, MarkCommit, MarkSpawn, MarkFault, MarkError, MarkClear, MarkEvidence} {
		fmt.Fprintf(&b, "<span style=\"color:%s\">■ %s</span>", markColor[k], esc(legend[k]))
	}
	b.WriteString("</p>\n")
	seen := map[string]int{}
	for _, r := range runs {
		i := seen[r.Cell()]
		seen[r.Cell()]++
		fmt.Fprintf(&b, "<section id=\"%s\">\n<h2>%s — <span class=\"%s\">%s</span></h2>\n", anchor(r, i), esc(r.Cell()), esc(r.Outcome), esc(r.Outcome))
		fmt.Fprintf(&b, "<p>%s</p>\n<p>seed <code>%d</code> · faults fired %d · first detection %s · took %s · replay <code>%s</code></p>\n",
			esc(r.Why), r.Seed, r.FaultsFired, esc(fmtOpt(r.FirstDetection, r.FaultsFired > 0)), esc(r.Elapsed.Round(time.Millisecond).String()), esc(r.Replay))
		fmt.Fprintf(&b, "<p>expected: %s</p>\n", esc(r.Expect.String()))
		if p := r.Expect.Finding; p != nil {
			fmt.Fprintf(&b, "<p>pinned finding: %s — %s</p>\n", esc(p.What), esc(p.Why))
		}
		b.WriteString("<table><tr><th>checker</th><th>expected</th><th>verdict</th><th>summary</th></tr>\n")
		wants := r.Expect.Wants()
		for _, res := range r.Results {
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td class=\"%s\">%s</td><td>%s</td></tr>\n",
				esc(res.Checker), esc(cmp.Or(string(wants[res.Checker]), "—")), esc(string(res.Verdict)), esc(string(res.Verdict)), esc(res.Summary))
		}
		b.WriteString("</table>\n")
		if r.Timeline != nil {
			if r.Timeline.Dropped > 0 {
				fmt.Fprintf(&b, "<p><small>%d successful operations thinned out of the drawing.</small></p>\n", r.Timeline.Dropped)
			}
			if err := r.Timeline.SVG(&b); err != nil {
				return nil, err
			}
		}
		b.WriteString("</section>\n")
	}
	b.WriteString("</body>\n</html>\n")
	return []byte(b.String()), nil
}

// htmlMatrixCell is the <td> of one matrix cell: each run's outcome
// linked to its section, with the checkers that failed.
func htmlMatrixCell(rs []*Report) string {
	if len(rs) == 0 {
		return "<td>—</td>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<td class=\"%s\">", esc(rs[0].Outcome))
	for i, r := range rs {
		if i > 0 {
			b.WriteString("<br/>")
		}
		fmt.Fprintf(&b, "<a href=\"#%s\">%s</a>", anchor(r, i), esc(r.Outcome))
		if f := failing(r); len(f) > 0 {
			b.WriteString(" <small>" + esc(strings.Join(f, ", ")) + "</small>")
		}
	}
	b.WriteString("</td>")
	return b.String()
}

// WriteMarkdownGrid writes a rows × cols Markdown table headed "scenario":
// per row its name, then cell(row, col), escaped, for each column.
func WriteMarkdownGrid(b *strings.Builder, rows, cols []string, cell func(row, col string) string) {
	b.WriteString("| scenario | " + strings.Join(cols, " | ") + " |\n|---|" + strings.Repeat("---|", len(cols)) + "\n")
	for _, r := range rows {
		b.WriteString("| " + r + " |")
		for _, c := range cols {
			b.WriteString(" " + MarkdownCell(cell(r, c)) + " |")
		}
		b.WriteString("\n")
	}
}

// WriteHTMLGrid writes a rows × cols HTML table headed "scenario", opened
// by the tag table: per row its name, then cell(row, col), a whole <td>
// element, for each column.
func WriteHTMLGrid(b *strings.Builder, table string, rows, cols []string, cell func(row, col string) string) {
	b.WriteString(table + "\n<tr><th>scenario</th>")
	for _, c := range cols {
		b.WriteString("<th>" + esc(c) + "</th>")
	}
	b.WriteString("</tr>\n")
	for _, r := range rows {
		b.WriteString("<tr><th>" + esc(r) + "</th>")
		for _, c := range cols {
			b.WriteString(cell(r, c))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n")
}

var legend = map[string]string{
	MarkOp: "operation", MarkCommit: "commit", MarkSpawn: "spawn", MarkFault: "fault injected",
	MarkError: "error surfaced", MarkClear: "faults cleared", MarkEvidence: "failing evidence",
}

func anchor(r *Report, i int) string {
	s := strings.NewReplacer("/", "-", " ", "-").Replace(r.Cell())
	if i > 0 {
		s += fmt.Sprintf("-%d", i+1)
	}
	return esc(s)
}

// JUnitSuites is a junit.xml document: the matrix writes one suite, a
// soak merge two (its cells and its shards).
type JUnitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []JUnitSuite `xml:"testsuite"`
}

// JUnitSuite is one <testsuite>; Time (seconds) is left out when empty.
type JUnitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr,omitempty"`
	Cases    []JUnitCase `xml:"testcase"`
}

// JUnitCase is one <testcase>; a nil Failure passes.
type JUnitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr,omitempty"`
	Failure   *JUnitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

// JUnitFailure is a failing testcase's <failure>.
type JUnitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// MarshalJUnit renders suites as a junit.xml document: the XML header,
// then the suites indented, and a final newline.
func MarshalJUnit(suites ...JUnitSuite) ([]byte, error) {
	b, err := xml.MarshalIndent(JUnitSuites{Suites: suites}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}

// JUnit renders one testcase per cell; an unexpected, inconclusive or hung
// cell is a failure carrying the seed and the replay command (a finding is
// a pass: it is pinned).
func JUnit(runs []*Report) ([]byte, error) {
	runs = sortedRuns(runs)
	s := JUnitSuite{Name: "sqlchaos.matrix"}
	var total time.Duration
	for _, r := range runs {
		total += r.Elapsed
		c := JUnitCase{Name: r.Cell(), Classname: "sqlchaos." + r.Scenario, Time: secs(r.Elapsed),
			SystemOut: fmt.Sprintf("outcome %s: %s\nseed %d\nreplay: %s\n", r.Outcome, r.Why, r.Seed, r.Replay)}
		if !r.Verdict().OK() {
			s.Failures++
			c.Failure = &JUnitFailure{Message: r.Why, Type: r.Outcome,
				Text: fmt.Sprintf("seed %d\nreplay: %s\nrun again: %s\n", r.Seed, r.Replay, r.RunCommand())}
		}
		s.Cases = append(s.Cases, c)
	}
	s.Tests, s.Time = len(s.Cases), secs(total)
	return MarshalJUnit(s)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }
