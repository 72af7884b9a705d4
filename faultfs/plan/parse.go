package plan

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
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
	expOffVar   = "N or LO..HI with LO <= HI, sizes in bytes or the placeholder {dbsize} or {dbpages}"
	expPidVar   = "a process id, or the placeholder {pid:NAME} of a process NAME"
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

// lineParse is one rule line being parsed: the rule so far, the kind word,
// and the column of every key given.
type lineParse struct {
	lineno int
	kind   token
	cols   map[string]int
	r      *Rule
}

func (l *lineParse) errAt(col int, format string, args ...any) *ParseError {
	return &ParseError{Line: l.lineno, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// has reports whether the line gave key.
func (l *lineParse) has(key string) bool {
	_, ok := l.cols[key]
	return ok
}

// parseLine parses one line; it returns a nil rule for blank and comment lines.
func parseLine(line string, lineno int) (*Rule, *ParseError) {
	toks := tokenize(line)
	if len(toks) == 0 {
		return nil, nil
	}
	l := &lineParse{lineno: lineno, kind: toks[0], cols: map[string]int{}}
	if err := l.parseKind(); err != nil {
		return nil, err
	}
	for _, t := range toks[1:] {
		if err := l.parseKey(t); err != nil {
			return nil, err
		}
	}
	if err := l.complete(); err != nil {
		return nil, err
	}
	return l.r, nil
}

// parseKind starts the rule from the kind word.
func (l *lineParse) parseKind() *ParseError {
	kt := l.kind
	if !slices.Contains(kinds, Kind(kt.text)) {
		if strings.Contains(kt.text, "=") {
			return l.errAt(kt.col, "expected a fault kind before %q (one of: %s)", kt.text, joinKinds(kinds))
		}
		return l.errAt(kt.col, "unknown fault kind %q (expected one of: %s)", kt.text, joinKinds(kinds))
	}
	l.r = &Rule{Kind: Kind(kt.text)}
	return nil
}

// parseKey parses one key=value word into the rule.
func (l *lineParse) parseKey(t token) *ParseError {
	name, val, ok := strings.Cut(t.text, "=")
	if !ok || name == "" {
		return l.errAt(t.col, "expected key=value, got %q", t.text)
	}
	k, isKey := lookupKey(name)
	switch {
	case !isKey:
		return l.errAt(t.col, "unknown key %q (expected one of: %s)", name, keyNames())
	case l.has(name):
		return l.errAt(t.col, "duplicate key %q (each key may appear once per rule)", name)
	}
	l.cols[name] = t.col
	if !k.allows(l.r.Kind) {
		return l.errAt(t.col, "key %q is not allowed with %s (it is for: %s)", name, l.r.Kind, joinKinds(k.kinds))
	}
	if msg := k.parse(l.r, val); msg != "" {
		return l.errAt(t.col, "%s", msg)
	}
	return nil
}

// complete checks what the rule's kind requires, fills in its defaults and
// checks the ops.
func (l *lineParse) complete() *ParseError {
	var err *ParseError
	switch l.r.Kind {
	case KindErrno:
		if !l.has("errno") {
			err = l.errAt(l.kind.col, "errno rule needs errno=NAME (expected e.g. errno=ENOSPC)")
		}
	case KindEIO:
		l.r.Errno = errnoByName["EIO"]
	case KindTorn:
		err = l.completeTorn()
	case KindPowercut:
		err = l.completePowercut()
	case KindDelay:
		if !l.has("delay") {
			err = l.errAt(l.kind.col, "delay rule needs delay=DURATION (expected e.g. delay=10ms)")
		}
	}
	if err != nil {
		return err
	}
	r := l.r
	if r.DropUnsynced && (len(r.Ops) != 1 || r.Ops[0] != OpFsync) {
		return l.errAt(l.cols["drop"], "drop=unsynced needs op=fsync (it reverts the unsynced writes of the file whose fsync fails)")
	}
	return l.checkOps()
}

// completeTorn checks a torn rule's keep=, from=, sectors= and sector=
// and fills in its defaults (sector=512, then=ok).
func (l *lineParse) completeTorn() *ParseError {
	r := l.r
	switch {
	case r.RandomSectors && l.has("keep"):
		return l.errAt(l.cols["keep"], "keep= cannot be combined with sectors=random (the kept sectors are drawn)")
	case r.RandomSectors && l.has("from"):
		return l.errAt(l.cols["from"], "from= cannot be combined with sectors=random (the kept sectors are drawn)")
	case !r.RandomSectors && l.has("sector"):
		return l.errAt(l.cols["sector"], "sector= needs sectors=random (expected e.g. torn sectors=random sector=512)")
	case !r.RandomSectors && !l.has("keep"):
		return l.errAt(l.kind.col, "torn rule needs keep=N or sectors=random (expected the number of bytes of the write to persist)")
	}
	if r.RandomSectors && r.Sector == 0 {
		r.Sector = minSector
	}
	if !l.has("then") {
		r.ThenOK = true
	}
	return nil
}

// completePowercut checks a powercut rule's sector= and fills in its
// defaults (keep=none, sector=512 with keep=sectors, count=1).
func (l *lineParse) completePowercut() *ParseError {
	r := l.r
	if r.Cut == "" {
		r.Cut = CutNone
	}
	if l.has("sector") && r.Cut != CutSectors {
		return l.errAt(l.cols["sector"], "sector= needs keep=sectors (expected e.g. powercut keep=sectors sector=4096)")
	}
	if r.Cut == CutSectors && r.Sector == 0 {
		r.Sector = minSector
	}
	if !l.has("count") {
		r.Count = 1 // a power cut fires once unless count= says otherwise
	}
	return nil
}

// checkOps gives a kind that acts on some ops only its default ops, and
// rejects ops it cannot act on.
func (l *lineParse) checkOps() *ParseError {
	r := l.r
	allowed := kindOps(r.Kind)
	if allowed == nil {
		return nil
	}
	if len(r.Ops) == 0 {
		r.Ops = allowed
		if r.Kind == KindLost {
			r.Ops = []Op{OpWrite} // a lost fsync must be asked for: op=fsync
		}
	}
	for _, op := range r.Ops {
		if !slices.Contains(allowed, op) {
			return l.errAt(l.cols["op"], "op %s is not allowed with %s (expected op=%s)", op, r.Kind, joinOps(allowed))
		}
	}
	return nil
}
