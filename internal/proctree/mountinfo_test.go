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

func TestParseMountinfo(t *testing.T) {
	in := "36 35 98:0 /mnt1 /mnt\\040x rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n" +
		"40 36 0:52 / /tmp/m rw,nosuid shared:7 - fuse.chaosfs chaosfs rw,user_id=0\n" +
		"bad line\n" +
		"41 36 0:53 / /tmp/n rw - fuse.chaosfs\n" // no source: skipped
	got := ParseMountinfo([]byte(in))
	want := []MountEntry{
		{Major: 98, Minor: 0, Mountpoint: "/mnt x", FsType: "ext3", Source: "/dev/root"},
		{Major: 0, Minor: 52, Mountpoint: "/tmp/m", FsType: "fuse.chaosfs", Source: "chaosfs"},
	}
	if len(got) != len(want) {
		t.Fatalf("ParseMountinfo = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
