package plan

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ParseError is one error in a plan, at a 1-based line and byte column.
type ParseError struct {
	File string // file name for ParseFile; "" prints as "plan"
	Line int
	Col  int
	Msg  string
}

// Error formats the error as "plan:LINE:COL: MSG" (or "FILE:LINE:COL: MSG").
func (e *ParseError) Error() string {
	f := e.File
	if f == "" {
		f = "plan"
	}
	return fmt.Sprintf("%s:%d:%d: %s", f, e.Line, e.Col, e.Msg)
}

// ErrorList is returned when a plan has more than one error; the errors are
// in source order, one per faulty line. errors.As finds the first one.
type ErrorList []*ParseError

// Error prints one error per line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the errors for errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// maxErrors bounds how many errors Parse collects before giving up.
const maxErrors = 20

// kinds lists the fault kinds in the order error messages show them.
var kinds = []Kind{KindErrno, KindEIO, KindTorn, KindLost, KindShort, KindFlip, KindDelay, KindPowercut}

// Kinds returns every fault kind.
func Kinds() []Kind { return append([]Kind(nil), kinds...) }

// allOps lists the op kinds; a rule's Ops are kept in this order.
var allOps = []Op{OpOpen, OpCreate, OpRead, OpWrite, OpFsync, OpFlush, OpRelease,
	OpUnlink, OpRename, OpSetattr, OpTruncate, OpFallocate, OpGetattr, OpLookup,
	OpMkdir, OpReaddir}

// Ops returns every op kind a rule can name.
func Ops() []Op { return append([]Op(nil), allOps...) }

// opIndex returns the position of op in allOps, or -1.
func opIndex(op Op) int {
	for i, o := range allOps {
		if o == op {
			return i
		}
	}
	return -1
}

// kindOps returns the ops a kind can act on; nil means any op.
func kindOps(k Kind) []Op {
	switch k {
	case KindTorn:
		return []Op{OpWrite}
	case KindLost:
		return []Op{OpWrite, OpFsync}
	case KindShort:
		return []Op{OpRead}
	case KindFlip:
		return []Op{OpRead, OpWrite}
	}
	return nil
}

// keyOrder is the order of keys in the canonical form, and in messages.
var keyOrder = []string{"op", "path", "off", "minlen", "pid", "nth", "after", "every",
	"p", "errno", "drop", "keep", "from", "sectors", "sector", "then", "bit", "delay", "jitter",
	"count", "state"}

// keyKinds restricts keys to kinds; a key not listed is allowed with every kind.
var keyKinds = map[string][]Kind{
	"errno":   {KindErrno},
	"keep":    {KindTorn, KindShort, KindPowercut},
	"from":    {KindTorn},
	"sectors": {KindTorn},
	"sector":  {KindTorn, KindPowercut},
	"drop":    {KindErrno, KindEIO},
	"then":    {KindTorn},
	"bit":     {KindFlip},
	"delay":   {KindDelay},
	"jitter":  {KindDelay},
}

func kindAllows(k Kind, key string) bool {
	ks, ok := keyKinds[key]
	if !ok {
		return true
	}
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func joinKinds(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

func joinOps(ops []Op) string {
	s := make([]string, len(ops))
	for i, o := range ops {
		s[i] = string(o)
	}
	return strings.Join(s, "|")
}

// Expected-value phrases used in "bad value" messages.
const (
	expPositive = "a positive integer"
	expNonNeg   = "a non-negative integer"
	expSize     = "a non-negative size in bytes, optionally with suffix K, KiB, M, MiB, G or GiB"
	expOff      = "N or LO..HI with LO <= HI, sizes in bytes"
	expProb     = "a probability p with 0 < p <= 1"
	expDuration = "a Go duration such as 10ms or 1.5s"
	expDelay    = "a positive Go duration such as 10ms or 1.5s"
	expState    = "on or off"
	expPath     = "a glob over the base name as in path.Match, such as *.db or *-wal, without /"
	expAfter    = "a non-negative integer (matches to skip) or a positive Go duration such as 2s (time since the plan was loaded)"
	expCutKeep  = "none, all, random or sectors"
	expSector   = "a power of two from 512 to 1M bytes, such as 512 or 4K"
)

// minSector and maxSector bound sector=.
const (
	minSector = 512
	maxSector = 1 << 20
)

// ParseFile reads and parses the plan in file name. Parse errors carry the
// file name, so they print as "NAME:LINE:COL: MSG".
func ParseFile(name string) (*Plan, error) {
	src, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return ParseNamed(name, string(src))
}

// ParseNamed is Parse for a plan read from the file called name: its errors
// print as "NAME:LINE:COL: MSG".
func ParseNamed(name, src string) (*Plan, error) {
	p, err := Parse(src)
	var list ErrorList
	var pe *ParseError
	switch {
	case errors.As(err, &list):
		for _, e := range list {
			e.File = name
		}
	case errors.As(err, &pe):
		pe.File = name
	}
	return p, err
}

// Parse parses a plan (see the package documentation for the grammar). On
// error it returns a *ParseError, or an ErrorList when several lines are
// wrong; the plan is nil then.
func Parse(src string) (*Plan, error) {
	p := &Plan{}
	var errs ErrorList
	for i, line := range strings.Split(src, "\n") {
		r, err := parseLine(line, i+1)
		if err != nil {
			errs = append(errs, err)
			if len(errs) == maxErrors {
				break
			}
			continue
		}
		if r != nil {
			p.Rules = append(p.Rules, *r)
		}
	}
	switch len(errs) {
	case 0:
		return p, nil
	case 1:
		return nil, errs[0]
	}
	return nil, errs
}

// token is a whitespace-separated word of a line and its 1-based column.
type token struct {
	text string
	col  int
}

func tokenize(line string) []token {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	var toks []token
	start := -1
	for i := 0; i <= len(line); i++ {
		sp := i == len(line) || line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\v' || line[i] == '\f'
		switch {
		case sp && start >= 0:
			toks = append(toks, token{line[start:i], start + 1})
			start = -1
		case !sp && start < 0:
			start = i
		}
	}
	return toks
}

// parseLine parses one line; it returns a nil rule for blank and comment lines.
func parseLine(line string, lineno int) (*Rule, *ParseError) {
	toks := tokenize(line)
	if len(toks) == 0 {
		return nil, nil
	}
	errAt := func(col int, format string, args ...any) *ParseError {
		return &ParseError{Line: lineno, Col: col, Msg: fmt.Sprintf(format, args...)}
	}
	kt := toks[0]
	r := &Rule{Kind: Kind(kt.text)}
	known := false
	for _, k := range kinds {
		known = known || k == r.Kind
	}
	if !known {
		if strings.Contains(kt.text, "=") {
			return nil, errAt(kt.col, "expected a fault kind before %q (one of: %s)", kt.text, joinKinds(kinds))
		}
		return nil, errAt(kt.col, "unknown fault kind %q (expected one of: %s)", kt.text, joinKinds(kinds))
	}
	seen := map[string]bool{}
	cols := map[string]int{}
	var opTok token
	for _, t := range toks[1:] {
		key, val, ok := strings.Cut(t.text, "=")
		if !ok || key == "" {
			return nil, errAt(t.col, "expected key=value, got %q", t.text)
		}
		if _, isKey := parseValue[key]; !isKey {
			return nil, errAt(t.col, "unknown key %q (expected one of: %s)", key, strings.Join(keyOrder, ", "))
		}
		if seen[key] {
			return nil, errAt(t.col, "duplicate key %q (each key may appear once per rule)", key)
		}
		seen[key] = true
		cols[key] = t.col
		if !kindAllows(r.Kind, key) {
			return nil, errAt(t.col, "key %q is not allowed with %s (it is for: %s)", key, r.Kind, joinKinds(keyKinds[key]))
		}
		if msg := parseValue[key](r, val); msg != "" {
			return nil, errAt(t.col, "%s", msg)
		}
		if key == "op" {
			opTok = t
		}
	}
	// Kind-specific requirements and defaults.
	switch r.Kind {
	case KindErrno:
		if !seen["errno"] {
			return nil, errAt(kt.col, "errno rule needs errno=NAME (expected e.g. errno=ENOSPC)")
		}
	case KindEIO:
		r.Errno = errnoByName["EIO"]
	case KindTorn:
		switch {
		case r.RandomSectors && seen["keep"]:
			return nil, errAt(cols["keep"], "keep= cannot be combined with sectors=random (the kept sectors are drawn)")
		case r.RandomSectors && seen["from"]:
			return nil, errAt(cols["from"], "from= cannot be combined with sectors=random (the kept sectors are drawn)")
		case !r.RandomSectors && seen["sector"]:
			return nil, errAt(cols["sector"], "sector= needs sectors=random (expected e.g. torn sectors=random sector=512)")
		case !r.RandomSectors && !seen["keep"]:
			return nil, errAt(kt.col, "torn rule needs keep=N or sectors=random (expected the number of bytes of the write to persist)")
		}
		if r.RandomSectors && r.Sector == 0 {
			r.Sector = minSector
		}
		if !seen["then"] {
			r.ThenOK = true
		}
	case KindPowercut:
		if r.Cut == "" {
			r.Cut = CutNone
		}
		if seen["sector"] && r.Cut != CutSectors {
			return nil, errAt(cols["sector"], "sector= needs keep=sectors (expected e.g. powercut keep=sectors sector=4096)")
		}
		if r.Cut == CutSectors && r.Sector == 0 {
			r.Sector = minSector
		}
		if !seen["count"] {
			r.Count = 1 // a power cut fires once unless count= says otherwise
		}
	case KindDelay:
		if !seen["delay"] {
			return nil, errAt(kt.col, "delay rule needs delay=DURATION (expected e.g. delay=10ms)")
		}
	}
	if r.DropUnsynced && (len(r.Ops) != 1 || r.Ops[0] != OpFsync) {
		return nil, errAt(cols["drop"], "drop=unsynced needs op=fsync (it reverts the unsynced writes of the file whose fsync fails)")
	}
	if allowed := kindOps(r.Kind); allowed != nil {
		if len(r.Ops) == 0 {
			r.Ops = allowed
			if r.Kind == KindLost {
				r.Ops = []Op{OpWrite} // a lost fsync must be asked for: op=fsync
			}
		}
		for _, op := range r.Ops {
			if !slices.Contains(allowed, op) {
				return nil, errAt(opTok.col, "op %s is not allowed with %s (expected op=%s)", op, r.Kind, joinOps(allowed))
			}
		}
	}
	return r, nil
}

func bad(key, val, expected string) string {
	return fmt.Sprintf("bad value for %s: %q (expected %s)", key, val, expected)
}

// parseValue holds, for every key, a function that stores val into the rule
// and returns "" or an error message.
var parseValue map[string]func(r *Rule, val string) string

func init() {
	parseValue = map[string]func(r *Rule, val string) string{
		"op":   parseOps,
		"path": parsePath,
		"off": func(r *Rule, v string) string {
			lo, hi, ok := parseRange(v)
			if !ok {
				return bad("off", v, expOff)
			}
			r.OffLo, r.OffHi, r.HasOff = lo, hi, true
			return ""
		},
		"minlen": sizeKey("minlen", func(r *Rule, n int64) { r.MinLen = n }),
		"keep": func(r *Rule, v string) string {
			if r.Kind == KindPowercut {
				for _, k := range CutKeeps() {
					if v == string(k) {
						r.Cut = k
						return ""
					}
				}
				return bad("keep", v, expCutKeep)
			}
			return sizeKey("keep", func(r *Rule, n int64) { r.Keep = n })(r, v)
		},
		"from": func(r *Rule, v string) string {
			switch v {
			case "head":
				r.Tail = false
			case "tail":
				r.Tail = true
			default:
				return bad("from", v, "head (keep the first keep= bytes) or tail (keep the last)")
			}
			return ""
		},
		"sectors": func(r *Rule, v string) string {
			if v != "random" {
				return bad("sectors", v, "random (a seeded subset of the write's sectors is kept)")
			}
			r.RandomSectors = true
			return ""
		},
		"sector": func(r *Rule, v string) string {
			n, ok := parseSize(v)
			if !ok || n < minSector || n > maxSector || n&(n-1) != 0 {
				return bad("sector", v, expSector)
			}
			r.Sector = n
			return ""
		},
		"drop": func(r *Rule, v string) string {
			if v != "unsynced" {
				return bad("drop", v, "unsynced")
			}
			r.DropUnsynced = true
			return ""
		},
		"pid": func(r *Rule, v string) string {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n == 0 || n > math.MaxInt32 {
				return bad("pid", v, "a process id, a positive integer")
			}
			r.Pid = int(n)
			return ""
		},
		"nth": intKey("nth", 1, func(r *Rule, n int) { r.Nth = n }),
		"after": func(r *Rule, v string) string {
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
		},
		"every": intKey("every", 1, func(r *Rule, n int) { r.Every = n }),
		"count": intKey("count", 0, func(r *Rule, n int) { r.Count = n }),
		"bit": func(r *Rule, v string) string {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || n > math.MaxInt64/8 {
				return bad("bit", v, "a bit index, a non-negative integer")
			}
			r.Bit, r.HasBit = n, true
			return ""
		},
		"p": func(r *Rule, v string) string {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f > 0 && f <= 1) {
				return bad("p", v, expProb)
			}
			if f == 1 {
				f = 0 // p=1 is the default: always
			}
			r.P = f
			return ""
		},
		"errno": func(r *Rule, v string) string {
			e, ok := ParseErrno(v)
			if !ok {
				return fmt.Sprintf("unknown errno %q (expected a name such as EIO, ENOSPC, EDQUOT, EROFS, EAGAIN; see plan.ErrnoNames)", v)
			}
			r.Errno = e
			return ""
		},
		"then": func(r *Rule, v string) string {
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
		},
		"delay": func(r *Rule, v string) string {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return bad("delay", v, expDelay)
			}
			r.Delay = d
			return ""
		},
		"jitter": func(r *Rule, v string) string {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return bad("jitter", v, "a non-negative Go duration such as 5ms")
			}
			r.Jitter = d
			return ""
		},
		"state": func(r *Rule, v string) string {
			switch v {
			case "on":
				r.Off = false
			case "off":
				r.Off = true
			default:
				return bad("state", v, expState)
			}
			return ""
		},
	}
	if len(parseValue) != len(keyOrder) {
		panic("plan: keyOrder and parseValue disagree")
	}
	for _, k := range keyOrder {
		if parseValue[k] == nil {
			panic("plan: no parser for key " + k)
		}
	}
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

// parseRange parses "N" or "LO..HI" (inclusive, LO <= HI).
func parseRange(s string) (lo, hi int64, ok bool) {
	a, b, isRange := strings.Cut(s, "..")
	lo, ok = parseSize(a)
	if !ok {
		return 0, 0, false
	}
	if !isRange {
		return lo, lo, true
	}
	hi, ok = parseSize(b)
	if !ok || hi < lo {
		return 0, 0, false
	}
	return lo, hi, true
}
