package plan

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// keySpec is one key of the language: its name, the kinds it may be used
// with (nil: every kind) and the parser that stores a value into the rule,
// returning "" or an error message.
type keySpec struct {
	name  string
	kinds []Kind
	parse func(r *Rule, val string) string
}

// keys is the table of keys, in the order of the canonical form (and of
// messages).
var keys = []keySpec{
	{"op", nil, parseOps},
	{"path", nil, parsePath},
	{"off", nil, parseOff},
	{"minlen", nil, sizeKey("minlen", func(r *Rule, n int64) { r.MinLen = n })},
	{"pid", nil, parsePid},
	{"nth", nil, intKey("nth", 1, func(r *Rule, n int) { r.Nth = n })},
	{"after", nil, parseAfter},
	{"every", nil, intKey("every", 1, func(r *Rule, n int) { r.Every = n })},
	{"p", nil, parseProb},
	{"errno", []Kind{KindErrno}, parseErrnoKey},
	{"drop", []Kind{KindErrno, KindEIO}, choiceKey("drop", "unsynced", map[string]func(*Rule){
		"unsynced": func(r *Rule) { r.DropUnsynced = true },
	})},
	{"keep", []Kind{KindTorn, KindShort, KindPowercut}, parseKeep},
	{"from", []Kind{KindTorn}, choiceKey("from", "head (keep the first keep= bytes) or tail (keep the last)", map[string]func(*Rule){
		"head": func(r *Rule) { r.Tail = false },
		"tail": func(r *Rule) { r.Tail = true },
	})},
	{"sectors", []Kind{KindTorn}, choiceKey("sectors", "random (a seeded subset of the write's sectors is kept)", map[string]func(*Rule){
		"random": func(r *Rule) { r.RandomSectors = true },
	})},
	{"sector", []Kind{KindTorn, KindPowercut}, parseSector},
	{"then", []Kind{KindTorn}, parseThen},
	{"bit", []Kind{KindFlip}, parseBit},
	{"delay", []Kind{KindDelay}, durationKey("delay", expDelay, 1, func(r *Rule, d time.Duration) { r.Delay = d })},
	{"jitter", []Kind{KindDelay}, durationKey("jitter", "a non-negative Go duration such as 5ms", 0, func(r *Rule, d time.Duration) { r.Jitter = d })},
	{"count", nil, intKey("count", 0, func(r *Rule, n int) { r.Count = n })},
	{"state", nil, choiceKey("state", expState, map[string]func(*Rule){
		"on":  func(r *Rule) { r.Off = false },
		"off": func(r *Rule) { r.Off = true },
	})},
}

// lookupKey returns the key called name.
func lookupKey(name string) (keySpec, bool) {
	for _, k := range keys {
		if k.name == name {
			return k, true
		}
	}
	return keySpec{}, false
}

// keyNames lists the keys in canonical order, for messages.
func keyNames() string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	return strings.Join(names, ", ")
}

// allows reports whether the key may be used with kind k.
func (k keySpec) allows(kind Kind) bool {
	return k.kinds == nil || slices.Contains(k.kinds, kind)
}

func bad(key, val, expected string) string {
	return fmt.Sprintf("bad value for %s: %q (expected %s)", key, val, expected)
}

func parseOps(r *Rule, v string) string {
	names := make([]string, 0, len(allOps)+1)
	names = append(names, "any")
	for _, o := range allOps {
		names = append(names, string(o))
	}
	if v == "any" {
		r.Ops = nil
		return ""
	}
	var set [32]bool
	for _, part := range strings.Split(v, "|") {
		if part == "any" {
			return bad("op", v, "any alone, or ops joined by |")
		}
		i := opIndex(Op(part))
		if i < 0 {
			return fmt.Sprintf("unknown op %q (expected one of: %s)", part, strings.Join(names, ", "))
		}
		if set[i] {
			return fmt.Sprintf("op %q listed twice in %q", part, v)
		}
		set[i] = true
	}
	r.Ops = nil
	for i, o := range allOps {
		if set[i] {
			r.Ops = append(r.Ops, o)
		}
	}
	return ""
}

func parsePath(r *Rule, v string) string {
	if v == "" || strings.Contains(v, "/") {
		return bad("path", v, expPath)
	}
	if _, err := path.Match(v, ""); err != nil {
		return bad("path", v, expPath)
	}
	r.Path = v
	return ""
}

// parseOff parses off=N or off=LO..HI, where a bound may be the placeholder
// {dbsize} or {dbpages}.
func parseOff(r *Rule, v string) string {
	a, b, isRange := strings.Cut(v, "..")
	if !isRange {
		b = a
	}
	lo, okLo := parseBound(a)
	hi, okHi := parseBound(b)
	switch {
	case !okLo || !okHi:
		if strings.Contains(v, "{") {
			return bad("off", v, expOffVar)
		}
		return bad("off", v, expOff)
	case lo.v == (Var{}) && hi.v == (Var{}) && hi.n < lo.n:
		return bad("off", v, expOff)
	}
	r.OffLo, r.OffLoVar, r.OffHi, r.OffHiVar, r.HasOff = lo.n, lo.v, hi.n, hi.v, true
	return ""
}

// bound is an off= bound: a size, or a placeholder (n is then 0).
type bound struct {
	n int64
	v Var
}

func parseBound(s string) (bound, bool) {
	if isVar(s) {
		v, ok := parseVar(s)
		return bound{v: v}, ok && (v.Kind == VarDBSize || v.Kind == VarDBPages)
	}
	n, ok := parseSize(s)
	return bound{n: n}, ok
}

// parsePid parses pid=N or pid={pid:NAME}.
func parsePid(r *Rule, v string) string {
	if isVar(v) {
		pv, ok := parseVar(v)
		if !ok || pv.Kind != VarPid {
			return bad("pid", v, expPidVar)
		}
		r.PidVar = pv
		return ""
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0 || n > math.MaxInt32 {
		return bad("pid", v, "a process id, a positive integer")
	}
	r.Pid = int(n)
	return ""
}

// parseAfter parses after=N (matches to skip) or after=DURATION.
func parseAfter(r *Rule, v string) string {
	if isDigits(v) {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return bad("after", v, expAfter)
		}
		r.After = int(n)
		return ""
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return bad("after", v, expAfter)
	}
	r.AfterDur = d
	return ""
}

func parseProb(r *Rule, v string) string {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0 && f <= 1) {
		return bad("p", v, expProb)
	}
	if f == 1 {
		f = 0 // p=1 is the default: always
	}
	r.P = f
	return ""
}

func parseErrnoKey(r *Rule, v string) string {
	e, ok := ParseErrno(v)
	if !ok {
		return fmt.Sprintf("unknown errno %q (expected a name such as EIO, ENOSPC, EDQUOT, EROFS, EAGAIN; see plan.ErrnoNames)", v)
	}
	r.Errno = e
	return ""
}

// parseKeep parses keep=N bytes (torn, short) or keep=MODE (powercut).
func parseKeep(r *Rule, v string) string {
	if r.Kind != KindPowercut {
		return sizeKey("keep", func(r *Rule, n int64) { r.Keep = n })(r, v)
	}
	for _, k := range CutKeeps() {
		if v == string(k) {
			r.Cut = k
			return ""
		}
	}
	return bad("keep", v, expCutKeep)
}

func parseSector(r *Rule, v string) string {
	n, ok := parseSize(v)
	if !ok || n < minSector || n > maxSector || n&(n-1) != 0 {
		return bad("sector", v, expSector)
	}
	r.Sector = n
	return ""
}

func parseThen(r *Rule, v string) string {
	if strings.EqualFold(v, "ok") {
		r.ThenOK = true
		return ""
	}
	e, ok := ParseErrno(v)
	if !ok {
		return bad("then", v, "ok or an errno name such as EIO")
	}
	r.Errno = e
	return ""
}

func parseBit(r *Rule, v string) string {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/8 {
		return bad("bit", v, "a bit index, a non-negative integer")
	}
	r.Bit, r.HasBit = n, true
	return ""
}

// choiceKey parses a key whose value is one of a few words, each setting
// the rule its own way.
func choiceKey(key, expected string, choices map[string]func(*Rule)) func(*Rule, string) string {
	return func(r *Rule, v string) string {
		set, ok := choices[v]
		if !ok {
			return bad(key, v, expected)
		}
		set(r)
		return ""
	}
}

// durationKey parses a Go duration of at least min.
func durationKey(key, expected string, min time.Duration, set func(*Rule, time.Duration)) func(*Rule, string) string {
	return func(r *Rule, v string) string {
		d, err := time.ParseDuration(v)
		if err != nil || d < min {
			return bad(key, v, expected)
		}
		set(r, d)
		return ""
	}
}

func intKey(key string, min int, set func(*Rule, int)) func(*Rule, string) string {
	exp := expPositive
	if min == 0 {
		exp = expNonNeg
	}
	return func(r *Rule, v string) string {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < int64(min) || !isDigits(v) {
			return bad(key, v, exp)
		}
		set(r, int(n))
		return ""
	}
}

func sizeKey(key string, set func(*Rule, int64)) func(*Rule, string) string {
	return func(r *Rule, v string) string {
		n, ok := parseSize(v)
		if !ok {
			return bad(key, v, expSize)
		}
		set(r, n)
		return ""
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseSize parses a non-negative decimal integer with an optional binary
// suffix: K or KiB (1024), M or MiB, G or GiB.
func parseSize(s string) (int64, bool) {
	mult := int64(1)
	for _, suf := range []struct {
		s string
		m int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(s, suf.s) {
			s, mult = strings.TrimSuffix(s, suf.s), suf.m
			break
		}
	}
	if !isDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, false
	}
	return n * mult, true
}
