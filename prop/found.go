package prop

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/internal/found"
	"github.com/sqlchaos/sqlchaos/reports"
)

// Found is a failing case saved for replay: a plan file whose header
// comments name the scenario cell it failed in. plan.Parse ignores the
// comments, so `chaosrun run SCENARIO --plan FILE` (with the header's
// profile, driver, seed and sets) replays it.
type Found struct {
	Property string
	Scenario string
	Profile  string
	Driver   string
	Seed     int64
	Sets     []string
	Duration time.Duration // --duration of the run (0 = the scenario's)
	Date     time.Time
	Why      string // the violation, one line
	// Shrink facts, for the record.
	Original int // rules of the plan first found
	// OriginalDuration is the load phase of the case first found, when
	// shrinking made it shorter (Duration is the final one).
	OriginalDuration time.Duration
	Shrinks          int
	ShrinkRuns       int
	ShrinkTime       time.Duration
	Reruns           int
	Reproduced       int
	// Plan is the plan found; it may be a template (with {pid:PROC},
	// {dbsize} or {dbpages}, as the catalog's plans have them), which
	// prints back with its placeholders and the runner binds.
	Plan plan.Plan
}

// ReplayCommand is the chaosrun command line that replays the file at path.
func (f Found) ReplayCommand(path string) string {
	return reports.RunCommand(reports.RunArgs{Scenario: f.Scenario, Profile: f.Profile, Driver: f.Driver, Seed: f.Seed,
		Duration: f.Duration, Sets: f.Sets, PlanFile: path})
}

// Text renders the file: header comments, then the plan in canonical form.
func (f Found) Text(path string) string {
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "# %s: %s\n", k, v) }
	b.WriteString("# sqlchaos found plan: the smallest plan found that breaks the property below.\n")
	line("property", f.Property)
	line("scenario", f.Scenario)
	line("profile", f.Profile)
	line("driver", f.Driver)
	line("seed", strconv.FormatInt(f.Seed, 10))
	if len(f.Sets) > 0 {
		line("sets", strings.Join(f.Sets, " "))
	}
	if f.Duration > 0 {
		line("duration", f.Duration.String())
	}
	line("date", f.Date.UTC().Format(time.RFC3339))
	line("why", oneLine(f.Why))
	shrink := fmt.Sprintf("%d rules -> %d", f.Original, len(f.Plan.Rules))
	if f.OriginalDuration > 0 && f.OriginalDuration != f.Duration {
		shrink += fmt.Sprintf(", duration %v -> %v", f.OriginalDuration, f.Duration)
	}
	line("shrink", fmt.Sprintf("%s in %d steps, %d runs, %v", shrink, f.Shrinks, f.ShrinkRuns, f.ShrinkTime.Round(time.Second)))
	if f.Reruns > 0 {
		line("reproduced", fmt.Sprintf("%d of %d re-runs", f.Reproduced, f.Reruns))
	}
	line("replay", f.ReplayCommand(path))
	b.WriteString(f.Plan.String())
	return b.String()
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// FileName is the file's name: property-scenario-profile-driver-seed.plan.
func (f Found) FileName() string {
	return fmt.Sprintf("%s-%s-%s-%s-%d.plan", f.Property, f.Scenario, f.Profile, f.Driver, f.Seed)
}

// Write saves the file into dir (created if needed) and returns its path.
func (f Found) Write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, f.FileName())
	shown := path
	if root := filepath.Dir(filepath.Dir(FoundDir())); root != "" {
		if rel, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(rel, "..") {
			shown = rel // relative to the module root, where chaosrun runs
		}
	}
	if err := os.WriteFile(path, []byte(f.Text(shown)), 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// ReadFound reads a found file back: the header and the plan.
func ReadFound(path string) (Found, error) {
	var f Found
	b, err := os.ReadFile(path)
	if err != nil {
		return f, err
	}
	p, err := plan.ParseNamed(path, string(b))
	if err != nil {
		return f, err
	}
	f.Plan = *p
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), ": ")
		if !ok || !strings.HasPrefix(sc.Text(), "# ") {
			continue
		}
		switch k {
		case "property":
			f.Property = v
		case "scenario":
			f.Scenario = v
		case "profile":
			f.Profile = v
		case "driver":
			f.Driver = v
		case "seed":
			f.Seed, err = strconv.ParseInt(v, 10, 64)
		case "sets":
			f.Sets = strings.Fields(v)
		case "duration":
			f.Duration, err = time.ParseDuration(v)
		case "date":
			f.Date, err = time.Parse(time.RFC3339, v)
		case "why":
			f.Why = v
		}
		if err != nil {
			return f, fmt.Errorf("%s: header %s: %w", path, k, err)
		}
	}
	if f.Scenario == "" || f.Profile == "" || f.Driver == "" {
		return f, errors.New(path + ": header lacks scenario, profile or driver")
	}
	return f, nil
}

// FoundDir is where failures are saved: $SQLCHAOS_FOUND_DIR, else
// testdata/found at the module root (found by walking up to go.mod from the
// working directory). It is found.Dir, shared with the crash explorer.
func FoundDir() string { return found.Dir() }
