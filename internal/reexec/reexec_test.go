package reexec

import (
	"strings"
	"testing"
)

// TestDecode: a spec decodes strictly, so a parent and child that drifted
// apart fail instead of running with zeroed fields.
func TestDecode(t *testing.T) {
	type spec struct {
		Name string `json:"name"`
		N    int    `json:"n,omitempty"`
	}
	for _, tc := range []struct {
		raw     string
		want    spec
		wantErr string
	}{
		{`{"name":"a","n":2}`, spec{"a", 2}, ""},
		{`{"name":"a"}`, spec{Name: "a"}, ""},
		{`null`, spec{}, ""},
		{` {"name":"a"} `, spec{Name: "a"}, ""},
		{`{"name":"a","extra":1}`, spec{}, "unknown field"},
		{`{"name":1}`, spec{}, "cannot unmarshal"},
		{`{"name":"a"} {}`, spec{}, "data after"},
		{``, spec{}, "EOF"},
	} {
		var got spec
		err := Decode([]byte(tc.raw), &got)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("Decode(%q): %v", tc.raw, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("Decode(%q) = %v, want an error with %q", tc.raw, err, tc.wantErr)
		case tc.wantErr == "" && got != tc.want:
			t.Errorf("Decode(%q) = %+v, want %+v", tc.raw, got, tc.want)
		}
	}
	var args []string
	if err := Decode([]byte(`["x","y"]`), &args); err != nil || strings.Join(args, ",") != "x,y" {
		t.Errorf("Decode of a []string spec = %q, %v", args, err)
	}
}

// TestCommandSpecLimit: a spec too large for one environment string is
// refused by Command, not by exec.
func TestCommandSpecLimit(t *testing.T) {
	if _, err := Command("r", strings.Repeat("x", MaxSpec)); err == nil {
		t.Fatal("Command accepted a spec over MaxSpec")
	}
	cmd, err := Command("r", []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	var role, spec string
	for _, kv := range cmd.Env {
		if v, ok := strings.CutPrefix(kv, EnvVar+"="); ok {
			role = v
		}
		if v, ok := strings.CutPrefix(kv, SpecEnv+"="); ok {
			spec = v
		}
	}
	if role != "r" || spec != `["a"]` {
		t.Fatalf("Command env: role %q spec %q", role, spec)
	}
}
