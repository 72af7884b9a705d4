package crashes

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Class is the kind of crash state.
type Class string

// The classes, in the order the explorer enumerates them. Every class but
// ClassLostSynced and ClassTornSynced is a power cut on an honest disk:
// what a fsync returned is durable, everything written since a file's last
// fsync may be lost, kept, or kept in part (any subset of its sectors).
const (
	// ClassClean: a power cut at the point that loses nothing (every
	// write issued reached the disk).
	ClassClean Class = "clean"
	// ClassSynced: every write since each file's last fsync is lost.
	ClassSynced Class = "synced"
	// ClassLost: exactly one write since its file's last fsync is lost.
	ClassLost Class = "lost"
	// ClassTorn: exactly one write since its file's last fsync is torn at
	// sector boundaries: a prefix, a suffix, or all but one sector kept.
	ClassTorn Class = "torn"
	// ClassDirLost: the directory operations (create, unlink, rename of
	// the db, -wal or -journal) since the last fsync of any file or
	// directory are lost from one of them on (ext4 commits directory
	// operations in order, with any fsync): a rollback journal unlinked
	// after its commit comes back, a file created since vanishes.
	ClassDirLost Class = "dir-lost"
	// ClassRandom: a seeded random choice, per write since its file's last
	// fsync, of kept, lost, or torn (a random subset of its sectors).
	ClassRandom Class = "random"
	// ClassLostSynced: exactly one write that a fsync reported durable is
	// lost (the fsync, or the disk's cache, lied: fsyncgate, a lost write).
	// Durability is not judged (nothing can keep a commit the disk
	// dropped); damage SQLite reports is "detected"; wrong data with
	// integrity_check ok is a failure.
	ClassLostSynced Class = "lost-synced"
	// ClassTornSynced: exactly one write that a fsync reported durable
	// reached the disk only in part, at sector boundaries (a prefix, a
	// suffix, or all but one sector): judged like ClassLostSynced. A
	// prefix kept is a new page head over an old tail; a suffix kept, an
	// old head (cell pointers) over a new cell area.
	ClassTornSynced Class = "torn-synced"
)

// Lying reports whether the class models a fsync that lied (a write it
// reported durable lost or torn) rather than an honest disk.
func (c Class) Lying() bool { return c == ClassLostSynced || c == ClassTornSynced }

// Classes lists every class in enumeration order.
var Classes = []Class{ClassClean, ClassSynced, ClassLost, ClassLostSynced, ClassTorn, ClassTornSynced, ClassDirLost, ClassRandom}

// ParseClasses parses a comma-separated list of class names ("all" for
// every class).
func ParseClasses(s string) ([]Class, error) {
	if strings.TrimSpace(s) == "" || s == "all" {
		return Classes, nil
	}
	seen := map[Class]bool{}
	for _, f := range strings.Split(s, ",") {
		c := Class(strings.TrimSpace(f))
		ok := false
		for _, k := range Classes {
			ok = ok || k == c
		}
		if !ok {
			return nil, fmt.Errorf("unknown class %q (expected all or a list of: %s)", c, classList())
		}
		seen[c] = true
	}
	var out []Class
	for _, k := range Classes {
		if seen[k] {
			out = append(out, k)
		}
	}
	return out, nil
}

func classList() string {
	var s []string
	for _, c := range Classes {
		s = append(s, string(c))
	}
	return strings.Join(s, ", ")
}

func (c Class) rank() int {
	for i, k := range Classes {
		if k == c {
			return i
		}
	}
	return len(Classes)
}

// Alt is what happens to one write in a crash state: lost entirely (Keep
// nil) or torn (Keep[i] tells whether the write's i-th sector piece
// reached the disk). Sector pieces are the write's byte range cut at
// multiples of the sector size (so the first and last may be partial).
type Alt struct {
	Seq  uint64 // the write's trace seq
	Keep []bool // nil: lost
}

// Lost reports whether the write is lost entirely.
func (a Alt) Lost() bool { return a.Keep == nil }

// State is one crash state: a power cut just before the barrier with
// trace seq Point completed (0: after the last recorded op), with Alts
// applied to the writes before it; every other write is kept.
type State struct {
	Point uint64
	Alts  []Alt // sorted by Seq
	// Undo, when not 0, is the trace seq of the first directory operation
	// lost (it and every later one before the point are undone).
	Undo  uint64
	Class Class
}

// ID renders the state as a compact, shell-safe string that ParseID reads
// back: "<point>" ("end" for the end of the recording), then "/d<seq>"
// for a lost write or "/t<seq>:<mask>" for a torn one, where mask is a hex
// number whose bit i is set when sector piece i was kept, or "/u<seq>"
// for directory operations lost from trace seq <seq> on. Examples:
// "1234/d567/t601:0f", "end/u812".
func (s State) ID() string {
	var b strings.Builder
	if s.Point == 0 {
		b.WriteString("end")
	} else {
		b.WriteString(strconv.FormatUint(s.Point, 10))
	}
	for _, a := range s.Alts {
		if a.Lost() {
			fmt.Fprintf(&b, "/d%d", a.Seq)
		} else {
			fmt.Fprintf(&b, "/t%d:%s", a.Seq, maskHex(a.Keep))
		}
	}
	if s.Undo != 0 {
		fmt.Fprintf(&b, "/u%d", s.Undo)
	}
	return b.String()
}

// ParseID parses a state ID (see State.ID). The class is left empty: it
// depends on the recording (see explorer.classify).
func ParseID(id string) (State, error) {
	parts := strings.Split(strings.TrimSpace(id), "/")
	var s State
	if parts[0] != "end" {
		p, err := strconv.ParseUint(parts[0], 10, 64)
		if err != nil || p == 0 {
			return s, fmt.Errorf("state %q: the point must be a trace seq or \"end\"", id)
		}
		s.Point = p
	}
	for _, f := range parts[1:] {
		if len(f) < 2 {
			return s, fmt.Errorf("state %q: bad alteration %q", id, f)
		}
		switch f[0] {
		case 'u':
			seq, err := strconv.ParseUint(f[1:], 10, 64)
			if err != nil || seq == 0 || s.Undo != 0 {
				return s, fmt.Errorf("state %q: bad directory undo %q (one u<seq>)", id, f)
			}
			s.Undo = seq
		case 'd':
			seq, err := strconv.ParseUint(f[1:], 10, 64)
			if err != nil {
				return s, fmt.Errorf("state %q: bad lost write %q", id, f)
			}
			s.Alts = append(s.Alts, Alt{Seq: seq})
		case 't':
			num, mask, ok := strings.Cut(f[1:], ":")
			seq, err := strconv.ParseUint(num, 10, 64)
			if !ok || err != nil {
				return s, fmt.Errorf("state %q: bad torn write %q (want t<seq>:<hex mask>)", id, f)
			}
			keep, err := parseMaskHex(mask)
			if err != nil {
				return s, fmt.Errorf("state %q: %v", id, err)
			}
			s.Alts = append(s.Alts, Alt{Seq: seq, Keep: keep})
		default:
			return s, fmt.Errorf("state %q: bad alteration %q (want d<seq>, t<seq>:<mask> or u<seq>)", id, f)
		}
	}
	if s.Undo != 0 && len(s.Alts) > 0 {
		return s, fmt.Errorf("state %q: a directory undo (u) does not combine with lost or torn writes", id)
	}
	for i := 1; i < len(s.Alts); i++ {
		if s.Alts[i].Seq <= s.Alts[i-1].Seq {
			return s, fmt.Errorf("state %q: alterations must name distinct writes in increasing seq order", id)
		}
	}
	return s, nil
}

const hexDigits = "0123456789abcdef"

// maskHex renders keep as hex, most significant digit first: digit k from
// the right holds pieces 4k..4k+3 (bit 0 = piece 4k). Its length is
// ceil(len(keep)/4) digits, so the number of pieces is implied up to 3.
func maskHex(keep []bool) string {
	n := (len(keep) + 3) / 4
	out := make([]byte, n)
	for k := 0; k < n; k++ {
		v := 0
		for b := 0; b < 4; b++ {
			if i := 4*k + b; i < len(keep) && keep[i] {
				v |= 1 << b
			}
		}
		out[n-1-k] = hexDigits[v]
	}
	return string(out)
}

// parseMaskHex reads maskHex's output; the result has 4 pieces per digit
// (the explorer trims it to the write's piece count).
func parseMaskHex(s string) ([]bool, error) {
	if s == "" {
		return nil, errors.New("empty sector mask")
	}
	keep := make([]bool, 4*len(s))
	for k := 0; k < len(s); k++ {
		c := s[len(s)-1-k]
		v := strings.IndexByte(hexDigits, c|0x20)
		if v < 0 {
			return nil, fmt.Errorf("bad sector mask %q", s)
		}
		for b := 0; b < 4; b++ {
			keep[4*k+b] = v&(1<<b) != 0
		}
	}
	return keep, nil
}

// pieces returns the sector pieces of a write at off of n bytes: the
// boundaries (relative to off) of its byte range cut at multiples of
// sector. len(result) = pieces+1, result[0] = 0, result[last] = n.
func pieces(off int64, n int, sector int64) []int {
	if n <= 0 {
		return []int{0, 0}
	}
	cuts := []int{0}
	for b := (off/sector + 1) * sector; b < off+int64(n); b += sector {
		cuts = append(cuts, int(b-off))
	}
	return append(cuts, n)
}

// tornMasks returns the systematic torn keeps of a write with n pieces:
// every proper prefix, every proper suffix, and every "all but one piece",
// without duplicates. None for n < 2.
func tornMasks(n int) [][]bool {
	if n < 2 {
		return nil
	}
	seen := map[string]bool{}
	var out [][]bool
	add := func(keep []bool) {
		k := maskHex(keep)
		if !seen[k] {
			seen[k] = true
			out = append(out, keep)
		}
	}
	for k := 1; k < n; k++ {
		p := make([]bool, n)
		for i := 0; i < k; i++ {
			p[i] = true
		}
		add(p)
	}
	for k := 1; k < n; k++ {
		p := make([]bool, n)
		for i := n - k; i < n; i++ {
			p[i] = true
		}
		add(p)
	}
	for j := 0; j < n; j++ {
		p := make([]bool, n)
		for i := range p {
			p[i] = i != j
		}
		add(p)
	}
	return out
}

// tornCount is len(tornMasks(n)) without building them.
func tornCount(n int) int {
	switch {
	case n < 2:
		return 0
	case n == 2:
		return 2
	}
	return 3*n - 4
}
