package proctree

import "testing"

func TestUnescapeMountinfo(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/tmp/mnt", "/tmp/mnt"},
		{`/tmp/a\040b`, "/tmp/a b"},
		{`/tmp/a\011b\012c\134d`, "/tmp/a\tb\nc\\d"},
		{`/tmp/a\04`, `/tmp/a\04`},     // too short: kept
		{`/tmp/a\999b`, `/tmp/a\999b`}, // not octal: kept
		{`\040`, " "},
	} {
		if got := UnescapeMountinfo(tc.in); got != tc.want {
			t.Errorf("UnescapeMountinfo(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
