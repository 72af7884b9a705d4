package proctree

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// MountEntry is one line of /proc/self/mountinfo.
type MountEntry struct {
	Minor      uint32
	Major      uint32
	Mountpoint string // unescaped
	FsType     string // "fuse.chaosfs", "fusectl", …
	Source     string // unescaped
}

// ReadMountinfo reads and parses /proc/self/mountinfo.
func ReadMountinfo() ([]MountEntry, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return ParseMountinfo(b), nil
}

// ParseMountinfo parses mountinfo(5) lines, skipping malformed ones:
// id parent major:minor root mountpoint opts [optional...] - fstype source superopts
func ParseMountinfo(b []byte) []MountEntry {
	var out []MountEntry
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		f := strings.Fields(string(line))
		if len(f) < 10 {
			continue
		}
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+2 >= len(f) {
			continue
		}
		var e MountEntry
		majmin := strings.SplitN(f[2], ":", 2)
		if len(majmin) == 2 {
			maj, _ := strconv.ParseUint(majmin[0], 10, 32)
			min, _ := strconv.ParseUint(majmin[1], 10, 32)
			e.Major, e.Minor = uint32(maj), uint32(min)
		}
		e.Mountpoint = UnescapeMountinfo(f[4])
		e.FsType = f[sep+1]
		e.Source = UnescapeMountinfo(f[sep+2])
		out = append(out, e)
	}
	return out
}

// UnescapeMountinfo undoes the kernel's octal escapes in a field of
// /proc/PID/mountinfo or /proc/mounts (\040 for a space, \011 for a tab,
// \012 for a newline, \134 for a backslash).
func UnescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
