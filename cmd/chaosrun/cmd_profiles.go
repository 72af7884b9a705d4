package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/sqlchaos/sqlchaos/kanbancore"
)

func init() {
	register(command{
		name:    "profiles",
		summary: "list the kanban board's profiles and every switch's value",
		run:     runProfiles,
	})
}

const profilesUsage = `Usage: chaosrun profiles [flags]

Prints the four kanbancore profiles (legacy, pr32857, merged33482, hardened)
as a table: one row per switch, one column per profile, then each switch's
one-line description and valid values. With --set, the overrides are applied
to every profile (as 'chaosrun kanban --set' would) before printing.

Flags:
`

const profilesExamples = `
Examples:
  chaosrun profiles
  chaosrun profiles --json
  chaosrun profiles --set page_count_check=raw-read --set init_flock=none
`

// profilesJSON is the --json output.
type profilesJSON struct {
	Profiles []profileJSON `json:"profiles"`
	Switches []switchJSON  `json:"switches"`
}

type profileJSON struct {
	Name     string            `json:"name"`
	Summary  string            `json:"summary"`
	Switches map[string]string `json:"switches"`
}

type switchJSON struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind"`
	Values []string `json:"values,omitempty"`
	Doc    string   `json:"doc"`
}

func runProfiles(args []string) int {
	fs := flag.NewFlagSet("profiles", flag.ContinueOnError)
	setUsage(fs, profilesUsage, profilesExamples)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	var sets multiFlag
	fs.Var(&sets, "set", "override a switch in every profile, name=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "chaosrun profiles: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	profiles := kanbancore.Profiles()
	for i := range profiles {
		if err := profiles[i].Switches.ApplySets(sets); err != nil {
			fmt.Fprintf(os.Stderr, "chaosrun profiles: %v\n", err)
			return 2
		}
	}
	if *asJSON {
		return printProfilesJSON(os.Stdout, profiles)
	}
	printProfilesTable(os.Stdout, profiles)
	return 0
}

func printProfilesTable(w io.Writer, profiles []kanbancore.Profile) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "switch")
	for _, p := range profiles {
		fmt.Fprintf(tw, "\t%s", p.Name)
	}
	fmt.Fprintln(tw)
	lists := make([][]kanbancore.SwitchInfo, len(profiles))
	for i, p := range profiles {
		lists[i] = p.Switches.List()
	}
	for row, info := range lists[0] {
		fmt.Fprint(tw, info.Name)
		for i := range profiles {
			fmt.Fprintf(tw, "\t%s", lists[i][row].Value)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nProfiles:")
	for _, p := range profiles {
		fmt.Fprintf(w, "  %-12s %s\n", p.Name, p.Summary)
	}
	fmt.Fprintln(w, "\nSwitches:")
	for _, info := range lists[0] {
		valid := info.Kind
		if len(info.Values) > 0 {
			valid = strings.Join(info.Values, " | ")
		}
		fmt.Fprintf(w, "  %s (%s)\n      %s\n", info.Name, valid, info.Doc)
	}
}

func printProfilesJSON(w io.Writer, profiles []kanbancore.Profile) int {
	var out profilesJSON
	for _, p := range profiles {
		pj := profileJSON{Name: p.Name, Summary: p.Summary, Switches: map[string]string{}}
		for _, info := range p.Switches.List() {
			pj.Switches[info.Name] = info.Value
		}
		out.Profiles = append(out.Profiles, pj)
	}
	for _, info := range profiles[0].Switches.List() {
		out.Switches = append(out.Switches, switchJSON{Name: info.Name, Kind: info.Kind, Values: info.Values, Doc: info.Doc})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "chaosrun profiles: %v\n", err)
		return 1
	}
	return 0
}
