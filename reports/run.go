// Package reports turns judged runs into files people and CI read: a run's
// report.json and summary.md, and a matrix's matrix.md, index.html (the
// matrix plus a timeline per run as inline SVG) and junit.xml.
//
// # Where each idea lives
//
// run.go: a judged cell (Report: NewReport, WriteReport, ReadReport,
// Recheck), its summary.md, and the one builder of each command line a
// report prints (ReplayCommand, RunCommand). matrix.go: the matrix's
// Markdown and HTML grids (WriteMarkdownGrid, WriteHTMLGrid, also used by
// the soak merge) and the JUnit XML types (JUnitSuites, MarshalJUnit, also
// the soak merge's). cells.go: a cell's runs under --repeat (Cells).
// timeline.go: the per-run timeline drawn in index.html.
package reports

import (
	"cmp"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	_ "modernc.org/sqlite" // sqlite_version() for Versions

	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/verdict"
)

// Outcomes of a run (the verdict package's verdicts, as strings).
const (
	Reproduced   = string(verdict.Reproduced)
	Held         = string(verdict.Held)
	Finding      = string(verdict.Finding)
	Unexpected   = string(verdict.Unexpected)
	Inconclusive = string(verdict.Inconclusive)
	Hung         = string(verdict.Hung)
	Observed     = string(verdict.Observed)
)

// File names in a run directory.
const (
	ReportFile  = "report.json"
	SummaryFile = "summary.md"
)

// Report is one judged (scenario, profile, driver) cell.
type Report struct {
	Scenario string            `json:"scenario"`
	Profile  string            `json:"profile"`
	Driver   string            `json:"driver"`
	Seed     int64             `json:"seed"`
	Plan     string            `json:"plan,omitempty"`
	Switches map[string]string `json:"switches,omitempty"`
	Versions map[string]string `json:"versions,omitempty"` // go, sqlite, drivers
	VCS      string            `json:"vcs,omitempty"`
	Started  time.Time         `json:"started"`
	Elapsed  time.Duration     `json:"elapsed"`
	Results  []oracle.Result   `json:"results"`
	// Expect is the cell's expectation as data: the scenario's story for
	// the profile, a pinned finding, a rate.
	Expect verdict.Cell `json:"expect"`
	// Facts are what the run told the judge besides the checkers.
	Facts verdict.Facts `json:"facts"`
	// Outcome is the verdict (a verdict.Verdict) and Why its reason, both
	// from Judge.
	Outcome        string        `json:"outcome"`
	Why            string        `json:"why"`
	FirstDetection time.Duration `json:"first_detection,omitempty"` // first fault → first surfaced error
	FaultsFired    int           `json:"faults_fired"`
	Replay         string        `json:"replay,omitempty"`
	// Dir is where the run was saved (not serialised).
	Dir string `json:"-"`
	// Timeline is what index.html draws.
	Timeline *Timeline `json:"timeline,omitempty"`
}

// NewReport starts a Report from a loaded run directory and its results: the
// Meta fields, faults fired, time to first detection, versions, VCS
// revision, timeline and a replay command. The caller sets Expect, Started
// and Elapsed, then calls Classify.
func NewReport(in *oracle.Input, results []oracle.Result) *Report {
	m := in.Meta
	r := &Report{
		Scenario: m.Scenario, Profile: m.Profile, Driver: m.Driver, Seed: m.Seed,
		Plan: m.Plan, Switches: m.Switches, Results: results, Dir: in.Dir,
		Versions: Versions(), VCS: VCS(),
		Replay:   ReplayCommand(in.Dir),
		Timeline: BuildTimeline(in, results),
	}
	var firstFault int64
	for _, t := range in.Trace {
		if t.Kind == "op" && t.Rule > 0 && !strings.HasPrefix(t.Fault, "delay") {
			if r.FaultsFired == 0 {
				firstFault = t.T
			}
			r.FaultsFired++
		}
	}
	if r.FaultsFired > 0 {
		for _, e := range in.Events {
			if e.Err != "" && e.T >= firstFault {
				r.FirstDetection = time.Duration(e.T - firstFault)
				break
			}
		}
	}
	return r
}

// ReplayCommand is the exact command that re-runs the run saved in dir
// (its seed, plan, profile, driver and switch overrides, from meta.json).
func ReplayCommand(dir string) string { return "chaosrun replay " + dir }

// RunArgs are what a `chaosrun run` command line names: the cell and the
// seed, and optionally the load phase, switch overrides and a plan file.
type RunArgs struct {
	Scenario, Profile, Driver string
	Seed                      int64
	Duration                  time.Duration // 0: the scenario's
	Sets                      []string      // --set k=v, in order
	PlanFile                  string        // --plan FILE; empty: the scenario's plan
}

// RunCommand is the exact `chaosrun run` command line for a: the one place
// that line is built (a run's RunCommand, the CLI's failure lines).
func RunCommand(a RunArgs) string {
	s := fmt.Sprintf("chaosrun run %s --profile %s --driver %s --seed %d", a.Scenario, a.Profile, a.Driver, a.Seed)
	if a.Duration > 0 {
		s += " --duration " + a.Duration.String()
	}
	for _, set := range a.Sets {
		s += " --set " + set
	}
	if a.PlanFile != "" {
		s += " --plan " + a.PlanFile
	}
	return s
}

// RunCommand is the command that runs the same cell again from its seed.
func (r *Report) RunCommand() string {
	return RunCommand(RunArgs{Scenario: r.Scenario, Profile: r.Profile, Driver: r.Driver, Seed: r.Seed})
}

// Cell names the run's matrix cell.
func (r *Report) Cell() string { return r.Scenario + "/" + r.Profile + "/" + r.Driver }

// Judge sets the run's Outcome and Why from its results, expectation and
// facts with the one judge (verdict.Judge).
func (r *Report) Judge() {
	o := verdict.Judge(r.Results, r.Expect, r.Facts)
	r.Outcome, r.Why = string(o.Verdict), o.Why
}

// Verdict is the run's outcome as a verdict.
func (r *Report) Verdict() verdict.Verdict { return verdict.Verdict(r.Outcome) }

// WriteReport writes report.json and summary.md into dir.
func WriteReport(dir string, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ReportFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, SummaryFile), []byte(Summary(r)), 0o644); err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	return nil
}

// ReadReport reads dir/report.json.
func ReadReport(dir string) (*Report, error) {
	b, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reports: %s: %w", ReportFile, err)
	}
	r.Dir = dir
	return &r, nil
}

// Summary renders the run as Markdown.
func Summary(r *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s — %s\n\n", r.Cell(), strings.ToUpper(r.Outcome))
	fmt.Fprintf(&b, "%s\n\n", r.Why)
	fmt.Fprintf(&b, "- expected: %s\n", r.Expect)
	if p := r.Expect.Finding; p != nil {
		fmt.Fprintf(&b, "- pinned finding: %s — %s\n", p.What, p.Why)
	}
	fmt.Fprintf(&b, "- seed: %d\n- replay: `%s`\n- run again from the seed: `%s`\n", r.Seed, r.Replay, r.RunCommand())
	fmt.Fprintf(&b, "- faults fired: %d; first detection: %s after the first fault\n", r.FaultsFired, fmtOpt(r.FirstDetection, r.FaultsFired > 0))
	fmt.Fprintf(&b, "- started %s, took %s; vcs %s\n", r.Started.Format(time.RFC3339), r.Elapsed.Round(time.Millisecond), cmp.Or(r.VCS, "—"))
	if len(r.Versions) > 0 {
		var vs []string
		for k, v := range r.Versions {
			vs = append(vs, k+" "+v)
		}
		sort.Strings(vs)
		fmt.Fprintf(&b, "- versions: %s\n", strings.Join(vs, ", "))
	}
	b.WriteString("\n| checker | expected | verdict | summary |\n|---|---|---|---|\n")
	wants := r.Expect.Wants()
	for _, res := range r.Results {
		exp := string(wants[res.Checker])
		mark := ""
		if exp != "" && oracle.Verdict(exp) != res.Verdict || exp == "" && res.Verdict == oracle.Fail {
			mark = " **≠**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s%s | %s |\n", res.Checker, cmp.Or(exp, "—"), res.Verdict, mark, MarkdownCell(res.Summary))
	}
	for _, res := range r.Results {
		if len(res.Evidence) == 0 || res.Verdict == oracle.Pass {
			continue
		}
		fmt.Fprintf(&b, "\n## %s: %s\n\n", res.Checker, res.Verdict)
		for _, e := range res.Evidence {
			fmt.Fprintf(&b, "- %s\n", evidenceLine(e))
		}
	}
	if r.Plan != "" {
		fmt.Fprintf(&b, "\n## plan\n\n```\n%s```\n", strings.TrimRight(r.Plan, "\n")+"\n")
	}
	if len(r.Switches) > 0 {
		b.WriteString("\n## switches\n\n")
		keys := make([]string, 0, len(r.Switches))
		for k := range r.Switches {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "- %s = %s\n", k, r.Switches[k])
		}
	}
	return b.String()
}

func evidenceLine(e oracle.Evidence) string {
	var at []string
	at = append(at, e.Source)
	if e.Seq != 0 {
		at = append(at, fmt.Sprintf("seq %d", e.Seq))
	}
	if e.Proc != "" {
		at = append(at, e.Proc)
	}
	if e.Pid != 0 {
		at = append(at, fmt.Sprintf("pid %d", e.Pid))
	}
	return "[" + strings.Join(at, " ") + "] " + e.Text
}

func fmtOpt(d time.Duration, ok bool) string {
	if !ok || d == 0 {
		return "—"
	}
	return d.Round(time.Microsecond).String()
}

// MarkdownCell escapes s for one cell of a Markdown table: pipes escaped,
// newlines as spaces.
func MarkdownCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// Versions reports the Go toolchain, the SQLite library and the driver
// module versions this binary was built with.
func Versions() map[string]string {
	v := map[string]string{"go": runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "modernc.org/sqlite", "github.com/mattn/go-sqlite3", "github.com/hanwen/go-fuse/v2":
				v[d.Path] = d.Version
			}
		}
	}
	if db, err := sql.Open("sqlite", ":memory:"); err == nil {
		var s string
		if db.QueryRow("SELECT sqlite_version()").Scan(&s) == nil {
			v["sqlite"] = s
		}
		db.Close()
	}
	return v
}

// VCS returns the VCS revision the binary was built from ("+dirty" when
// modified), or "" when the build did not record it (go test, go run).
func VCS() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" && dirty {
		rev += "+dirty"
	}
	return rev
}

// Recheck judges the saved run in dir again, as `chaosrun check` does: the
// oracle's checkers on its files, then the one judge with the expectation
// and facts its report.json saved (a directory without a report is judged
// with no expectation). Only Facts.Incomplete is taken afresh, from what
// the directory holds now. The result is not written.
func Recheck(dir string) (*Report, error) {
	if st, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a run directory", dir)
	}
	in, err := oracle.Load(dir)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	run := NewReport(in, oracle.Judge(in))
	if old, err := ReadReport(dir); err == nil {
		run.Expect, run.Facts, run.Started, run.Elapsed = old.Expect, old.Facts, old.Started, old.Elapsed
		if old.Replay != "" {
			run.Replay = old.Replay
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	} else {
		run.Facts.Fired = run.FaultsFired
	}
	run.Facts.Incomplete = in.Missing()
	run.Judge()
	return run, nil
}
