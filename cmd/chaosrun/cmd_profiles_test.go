package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sqlchaos/sqlchaos/kanbancore"
)

func TestProfilesOutput(t *testing.T) {
	profiles := kanbancore.Profiles()
	var buf bytes.Buffer
	if rc := printProfilesJSON(&buf, profiles); rc != 0 {
		t.Fatalf("rc %d", rc)
	}
	var out profilesJSON
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Profiles) != 4 || out.Profiles[1].Name != "pr32857" || out.Profiles[1].Switches["page_count_check"] != "raw-read" {
		t.Fatalf("profiles JSON: %+v", out.Profiles)
	}
	// dispatch_lock (#50331) is off before hardened and on in hardened.
	for i, want := range []string{"false", "false", "false", "true"} {
		if got := out.Profiles[i].Switches["dispatch_lock"]; got != want {
			t.Errorf("%s: dispatch_lock=%q, want %q", out.Profiles[i].Name, got, want)
		}
	}
	if len(out.Switches) != len(kanbancore.SwitchNames()) {
		t.Fatalf("%d switches in JSON, want %d", len(out.Switches), len(kanbancore.SwitchNames()))
	}
	buf.Reset()
	printProfilesTable(&buf, profiles)
	for _, name := range append(kanbancore.SwitchNames(), "legacy", "merged33482", "hardened") {
		if !strings.Contains(buf.String(), name) {
			t.Errorf("table lacks %q", name)
		}
	}
	if rc := runProfiles([]string{"--set", "page_count_check=nope"}); rc != 2 {
		t.Errorf("invalid --set: rc %d, want 2", rc)
	}
}
