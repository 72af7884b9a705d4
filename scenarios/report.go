package scenarios

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeReport writes report.json and summary.md into the run directory.
func writeReport(res *Result, r *Run) error {
	type rep struct {
		Scenario string   `json:"scenario"`
		Profile  string   `json:"profile"`
		Driver   string   `json:"driver"`
		Seed     int64    `json:"seed"`
		Outcome  Outcome  `json:"outcome"`
		Fired    uint64   `json:"fired"`
		Wall     string   `json:"wall"`
		Results  any      `json:"results"`
		Notes    []string `json:"notes,omitempty"`
		Replay   string   `json:"replay"`
	}
	b, err := json.MarshalIndent(rep{res.Config.Scenario, res.Config.Profile, res.Config.Driver, res.Config.Seed,
		res.Outcome, res.Fired, res.Wall.String(), res.Results, res.Notes, ReplayCommand(res.Dir)}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(res.Dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var s strings.Builder
	fmt.Fprintf(&s, "# %s — %s\n\n", res.Config.Cell(), res.Outcome.Verdict)
	fmt.Fprintf(&s, "seed %d, %d faults fired, %s\n\nexpected: %s\n\n%s\n\n", res.Config.Seed, res.Fired, res.Wall.Round(1e6), res.Outcome.Expected, res.Outcome.Why)
	for _, x := range res.Results {
		fmt.Fprintf(&s, "- **%s** %s: %s\n", x.Checker, x.Verdict, x.Summary)
	}
	fmt.Fprintf(&s, "\nreplay: `%s`\n", ReplayCommand(res.Dir))
	return os.WriteFile(filepath.Join(res.Dir, "summary.md"), []byte(s.String()), 0o644)
}
