package soak

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sqlchaos/sqlchaos/reports"
	"github.com/sqlchaos/sqlchaos/scenarios"
)

// StderrFile is where ScenarioRunner sends a case's role processes'
// stderr and the runner's notes, inside the case directory.
const StderrFile = "stderr.log"

// ScenarioRunner runs a case for real: scenarios.Execute mounts faultfs
// over a fresh board, runs the scenario's roles, judges the run and writes
// report.json into the case directory.
type ScenarioRunner struct {
	// Duration is the load phase per case (0 = the scenario's).
	Duration time.Duration
	// Progress, if set, is called about four times a second while a case
	// runs.
	Progress func(scenarios.Progress)
}

// Run implements Runner. scenarios.ErrSetup becomes ErrSetup.
func (r ScenarioRunner) Run(ctx context.Context, c Case, dir string) (*reports.Report, error) {
	f, err := os.Create(filepath.Join(dir, StderrFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := scenarios.Execute(ctx, scenarios.Config{Scenario: c.Scenario, Profile: c.Profile, Driver: c.Driver,
		Seed: c.Seed, Duration: r.Duration, Out: dir, Stderr: f, Progress: r.Progress})
	if errors.Is(err, scenarios.ErrSetup) {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	if err != nil {
		return nil, err
	}
	if res.Report == nil {
		return nil, errors.New("the run was not judged")
	}
	return res.Report, nil
}
