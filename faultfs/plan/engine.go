package plan

import (
	"fmt"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Call is one filesystem operation, as the kernel called it, offered to
// the engine (the "event" of the package doc's engine semantics).
type Call struct {
	Op   Op
	Path string // path relative to the filesystem root; globs match its base name
	Off  int64  // first byte of the op's range; 0 for ops without one
	Len  int64  // length of the op's range; 0 for ops without one
	Pid  uint32 // caller pid
}

// Decision is what a fired rule tells the filesystem to do.
type Decision struct {
	Rule    int           // 1-based index of the rule that fired
	Kind    Kind          // the rule's kind
	Errno   syscall.Errno // errno/eio: the error; torn: the error after the partial write unless ThenOK
	Keep    int64         // torn, short: bytes to persist or return
	ThenOK  bool          // torn: report success after the partial write
	Delay   time.Duration // delay: how long to sleep (jitter included)
	FlipBit int64         // flip: bit index within the op's data; -1 for other kinds
	Desc    string        // what the rule did, e.g. "torn keep=512 then=ok"

	// Tail (torn from=tail): persist the last Keep bytes instead of the first.
	Tail bool
	// Sector is the sector size of torn sectors=random and powercut
	// keep=sectors; 0 otherwise.
	Sector int64
	// SectorDraw (torn sectors=random) is the seeded value that picks the
	// kept sectors: see KeptSectors.
	SectorDraw uint64
	// Cut (powercut) is what the cut keeps of the unsynced writes.
	Cut CutKeep
	// DropUnsynced (errno, eio with drop=unsynced): the failed fsync also
	// reverts the file's unsynced writes.
	DropUnsynced bool
}

// RuleCounter is a snapshot of one rule's counters.
type RuleCounter struct {
	Rule      int    // 1-based index
	Text      string // canonical form of the rule
	Matched   uint64 // events the rule matched while on
	Fired     uint64 // times the rule fired
	Off       bool   // switched off (state=off or SetRule)
	Exhausted bool   // fired count= times
}

// Engine decides, for each event, which rule of a plan fires. It is safe for
// concurrent use. See the package documentation for the semantics.
type Engine struct {
	seed    int64
	enabled atomic.Bool

	// clock returns the time after=DURATION is measured on (time.Now; tests
	// replace it).
	clock func() time.Time

	mu struct {
		sync.Mutex
		plan    *Plan
		rules   []compiled
		needIdx bool              // some rule draws random numbers
		pathIdx map[string]uint64 // events seen per path since Load
		timed   bool              // some op-driven rule has after=DURATION
		loaded  time.Time         // when the plan was loaded (clock)
		gen     uint64            // number of Loads
	}
}

// compiled is a rule prepared for fast matching, with its counters.
type compiled struct {
	rule    Rule
	ops     uint32 // bit set of opIndex+1; 0 = any op
	glob    globMatcher
	base    uint64 // first match index that may fire
	every   uint64
	matched uint64
	fired   uint64
}

// globMatcher matches a base name against a path.Match pattern, with fast
// paths for the common shapes "*", "*SUFFIX", "PREFIX*" and literals.
type globMatcher struct {
	kind    byte // 0 any, 'l' literal, 's' suffix, 'p' prefix, 'g' general
	pattern string
	lit     string
}

func newGlob(pattern string) globMatcher {
	const meta = `*?[\`
	switch {
	case pattern == "" || pattern == "*":
		return globMatcher{}
	case !strings.ContainsAny(pattern, meta):
		return globMatcher{kind: 'l', lit: pattern}
	case pattern[0] == '*' && !strings.ContainsAny(pattern[1:], meta):
		return globMatcher{kind: 's', lit: pattern[1:]}
	case pattern[len(pattern)-1] == '*' && !strings.ContainsAny(pattern[:len(pattern)-1], meta):
		return globMatcher{kind: 'p', lit: pattern[:len(pattern)-1]}
	}
	return globMatcher{kind: 'g', pattern: pattern}
}

func (g *globMatcher) match(base string) bool {
	switch g.kind {
	case 0:
		return true
	case 'l':
		return base == g.lit
	case 's':
		return strings.HasSuffix(base, g.lit)
	case 'p':
		return strings.HasPrefix(base, g.lit)
	}
	ok, _ := path.Match(g.pattern, base)
	return ok
}

// baseName is path.Base without allocation for relative paths.
func baseName(p string) string {
	for len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func opBit(op Op) uint32 {
	if i := opIndex(op); i >= 0 {
		return 1 << uint(i)
	}
	return 0
}

// NewEngine returns an engine for plan p (which may be nil: no rules) whose
// random draws derive from seed. The engine starts enabled. It panics when
// p is a template (Plan.Templated): bind it first (Plan.Bind).
func NewEngine(p *Plan, seed int64) *Engine {
	e := &Engine{seed: seed, clock: time.Now}
	e.enabled.Store(true)
	if err := e.Load(p); err != nil {
		panic(err)
	}
	return e
}

// Load replaces the plan, resetting every counter and per-path op index.
// The engine keeps its own copy of p. A template (a plan whose rules still
// hold placeholders such as {pid:NAME}) is refused with an error wrapping
// ErrUnbound, and the engine keeps its plan: a placeholder has no value to
// match with until Plan.Bind gives it one.
func (e *Engine) Load(p *Plan) error {
	if err := p.CheckBound(); err != nil {
		return err
	}
	cp := p.clone()
	rules := make([]compiled, len(cp.Rules))
	need, timed := false, false
	for i, r := range cp.Rules {
		c := compiled{rule: r, glob: newGlob(r.Path), every: 1, base: 1}
		for _, op := range r.Ops {
			c.ops |= opBit(op)
		}
		if r.Nth > 1 {
			c.base = uint64(r.Nth)
		}
		if a := uint64(r.After) + 1; a > c.base {
			c.base = a
		}
		if r.Every > 1 {
			c.every = uint64(r.Every)
		}
		rules[i] = c
		need = need || r.needsDraw()
		timed = timed || (r.AfterDur > 0 && !r.Timed())
	}
	e.mu.Lock()
	e.mu.plan = cp
	e.mu.rules = rules
	e.mu.needIdx = need
	e.mu.pathIdx = map[string]uint64{}
	e.mu.timed = timed
	e.mu.loaded = e.clock()
	e.mu.gen++
	e.mu.Unlock()
	return nil
}

// Generation returns how many times a plan was loaded (NewEngine counts as
// one); FireTimed takes it to ignore timers armed for an older plan.
func (e *Engine) Generation() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.gen
}

// Loaded returns when the current plan was loaded.
func (e *Engine) Loaded() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.loaded
}

// FireTimed fires the timed rule (see Rule.Timed) with the 1-based index
// rule of the plan loaded as generation gen, once its after=DURATION has
// passed: it counts a match and a firing and returns the decision. It
// returns false when the plan was replaced since, the engine or the rule is
// off, the rule is not timed, its time has not come, or it already fired.
// The caller (the server's timer) arms it at load time + AfterDur.
func (e *Engine) FireTimed(gen uint64, rule int) (Decision, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if gen != e.mu.gen || rule < 1 || rule > len(e.mu.rules) || !e.enabled.Load() {
		return Decision{}, false
	}
	c := &e.mu.rules[rule-1]
	r := &c.rule
	if r.Off || !r.Timed() || c.fired > 0 || e.clock().Sub(e.mu.loaded) < r.AfterDur {
		return Decision{}, false
	}
	c.matched++
	c.fired++
	return e.decision(rule-1, Call{}, 0), true
}

// needsDraw reports whether the rule ever draws a random number.
func (r *Rule) needsDraw() bool {
	return (r.P != 0 && r.P != 1) || (r.Kind == KindFlip && !r.HasBit) || (r.Kind == KindDelay && r.Jitter > 0) ||
		(r.Kind == KindTorn && r.RandomSectors)
}

func (p *Plan) clone() *Plan {
	cp := &Plan{}
	if p == nil {
		return cp
	}
	for _, r := range p.Rules {
		r.Ops = append([]Op(nil), r.Ops...)
		if len(r.Ops) == 0 {
			r.Ops = nil
		}
		cp.Rules = append(cp.Rules, r)
	}
	return cp
}

// Plan returns a copy of the loaded plan, with each rule's state as set by
// SetRule.
func (e *Engine) Plan() *Plan {
	e.mu.Lock()
	defer e.mu.Unlock()
	cp := e.mu.plan.clone()
	for i := range cp.Rules {
		cp.Rules[i].Off = e.mu.rules[i].rule.Off
	}
	return cp
}

// Seed returns the seed the engine's random draws derive from.
func (e *Engine) Seed() int64 { return e.seed }

// SetEnabled switches every rule on or off at once; while off, Decide
// never fires (it still counts events per path).
func (e *Engine) SetEnabled(on bool) { e.enabled.Store(on) }

// SetRule switches the 1-based rule on or off.
func (e *Engine) SetRule(rule int, on bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if rule < 1 || rule > len(e.mu.rules) {
		return fmt.Errorf("plan: no rule %d (the plan has %d)", rule, len(e.mu.rules))
	}
	e.mu.rules[rule-1].rule.Off = !on
	return nil
}

// Counters returns a snapshot of every rule's counters.
func (e *Engine) Counters() []RuleCounter {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]RuleCounter, len(e.mu.rules))
	for i := range e.mu.rules {
		c := &e.mu.rules[i]
		out[i] = RuleCounter{
			Rule:      i + 1,
			Text:      c.rule.String(),
			Matched:   c.matched,
			Fired:     c.fired,
			Off:       c.rule.Off,
			Exhausted: c.rule.Count > 0 && c.fired >= uint64(c.rule.Count),
		}
	}
	return out
}

// Decide offers call to every rule and returns the decision of the first rule
// (in plan order) that fires, or false when none does.
func (e *Engine) Decide(call Call) (Decision, bool) {
	bit := opBit(call.Op)
	base := baseName(call.Path)
	e.mu.Lock()
	defer e.mu.Unlock()
	var idx uint64
	if e.mu.needIdx {
		idx = e.mu.pathIdx[call.Path]
		e.mu.pathIdx[call.Path] = idx + 1
	}
	if !e.enabled.Load() {
		return Decision{}, false
	}
	var elapsed time.Duration
	if e.mu.timed {
		elapsed = e.clock().Sub(e.mu.loaded)
	}
	fired := -1
	for i := range e.mu.rules {
		c := &e.mu.rules[i]
		r := &c.rule
		if r.Off || (c.ops != 0 && c.ops&bit == 0) || !c.glob.match(base) ||
			call.Len < r.MinLen || (r.Pid != 0 && uint32(r.Pid) != call.Pid) {
			continue
		}
		if r.AfterDur > 0 && (elapsed < r.AfterDur || r.Timed()) {
			continue // not yet counting, or fired by its timer only
		}
		if r.HasOff && !intersects(call.Off, call.Len, r.OffLo, r.OffHi) {
			continue
		}
		if r.Kind == KindFlip && (call.Len <= 0 || (r.HasBit && r.Bit >= call.Len*8)) {
			continue // no data, or not enough of it, to flip
		}
		c.matched++
		m := c.matched
		if fired >= 0 || m < c.base || (m-c.base)%c.every != 0 ||
			(r.Count > 0 && c.fired >= uint64(r.Count)) {
			continue
		}
		if r.P != 0 && r.P < 1 && draw(e.seed, i+1, call.Path, idx, purposeP).float() >= r.P {
			continue
		}
		c.fired++
		fired = i
	}
	if fired < 0 {
		return Decision{}, false
	}
	return e.decision(fired, call, idx), true
}

// intersects reports whether the op's range [off, off+n) meets [lo, hi]; an
// op without a range (n <= 0) is the single point off.
func intersects(off, n, lo, hi int64) bool {
	last := off
	if n > 0 {
		last = off + n - 1
	}
	return off <= hi && last >= lo
}

func (e *Engine) decision(i int, call Call, idx uint64) Decision {
	r := &e.mu.rules[i].rule
	d := Decision{Rule: i + 1, Kind: r.Kind, Errno: r.Errno, Keep: r.Keep, ThenOK: r.ThenOK, Delay: r.Delay, FlipBit: -1}
	switch r.Kind {
	case KindErrno, KindEIO:
		d.Desc = string(r.Kind) + " " + errnoString(r.Errno)
		if r.Kind == KindEIO {
			d.Desc = "eio"
		}
		if r.DropUnsynced {
			d.DropUnsynced = true
			d.Desc += " drop=unsynced"
		}
	case KindTorn:
		d.ThenOK = r.ThenOK || r.Errno == 0
		then := "ok"
		if !d.ThenOK {
			then = errnoString(r.Errno)
		}
		switch {
		case r.RandomSectors:
			d.Keep = 0
			d.Sector = sectorOrDefault(r.Sector)
			d.SectorDraw = uint64(draw(e.seed, i+1, call.Path, idx, PurposeTornSectors))
			d.Desc = fmt.Sprintf("torn sectors=random sector=%d then=%s", d.Sector, then)
		case r.Tail:
			d.Tail = true
			d.Desc = fmt.Sprintf("torn keep=%d from=tail then=%s", r.Keep, then)
		default:
			d.Desc = fmt.Sprintf("torn keep=%d then=%s", r.Keep, then)
		}
	case KindPowercut:
		d.Cut = r.Cut
		if d.Cut == "" {
			d.Cut = CutNone
		}
		d.Desc = "powercut keep=" + string(d.Cut)
		if d.Cut == CutSectors {
			d.Sector = sectorOrDefault(r.Sector)
			d.Desc += fmt.Sprintf(" sector=%d", d.Sector)
		}
	case KindLost:
		d.Desc = "lost"
	case KindShort:
		d.Desc = fmt.Sprintf("short keep=%d", r.Keep)
	case KindFlip:
		if r.HasBit {
			d.FlipBit = r.Bit
		} else {
			d.FlipBit = int64(uint64(draw(e.seed, i+1, call.Path, idx, purposeFlip)) % uint64(call.Len*8))
		}
		d.Desc = fmt.Sprintf("flip bit=%d", d.FlipBit)
	case KindDelay:
		if r.Jitter > 0 {
			d.Delay += time.Duration(uint64(draw(e.seed, i+1, call.Path, idx, purposeJitter)) % (uint64(r.Jitter) + 1))
		}
		d.Desc = "delay " + d.Delay.String()
	}
	if r.Kind != KindErrno && r.Kind != KindEIO && !(r.Kind == KindTorn && !d.ThenOK) {
		d.Errno = 0
	}
	return d
}

// Purposes of random draws, so that one event's draws are independent.
const (
	purposeP      = 1
	purposeFlip   = 2
	purposeJitter = 3
)

// Purposes of the draws behind torn sectors and power cuts (see Draw and the
// package documentation, "Determinism").
const (
	PurposeTornSectors byte = 4 // torn sectors=random: which sectors of the write are kept
	PurposeCutKeep     byte = 5 // power cut keep=random: whether one unsynced write is kept
	PurposeCutSectors  byte = 6 // power cut keep=sectors: which sectors of one unsynced write are kept
	PurposeCutDirOps   byte = 7 // power cut keep=random|sectors: how many unsynced directory ops are kept
)

// Draw is the engine's seeded hash (see "Determinism" in the package
// documentation): a pure function of the seed, the 1-based rule index (0 for
// a power cut asked for by a control request), a path, an op index and a
// purpose. faultfs uses it for power-cut choices, so that they follow the
// same scheme as the engine's own draws.
func Draw(seed int64, rule int, path string, idx uint64, purpose byte) uint64 {
	return uint64(draw(seed, rule, path, idx, purpose))
}

// Kept reports the keep=random choice derived from a draw: the write is kept
// when the draw's top bit is 0 (probability 1/2).
func Kept(d uint64) bool { return d>>63 == 0 }

// KeptSectors returns which of n sectors a draw keeps: sector k (0-based)
// is kept when bit k%64 of w(k/64) is 1, where w(0) = d and w(j+1) =
// splitmix64(w(j)). Every subset of the sectors, not only prefixes, can
// come out, each sector with probability 1/2.
func KeptSectors(d uint64, n int) []bool {
	out := make([]bool, n)
	w := d
	for k := 0; k < n; k++ {
		if k > 0 && k%64 == 0 {
			w = splitmix64(w)
		}
		out[k] = w>>(uint(k)%64)&1 == 1
	}
	return out
}

// splitmix64 is one step of the splitmix64 generator: it advances x by the
// golden gamma and finalizes it.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// rnd is a 64-bit random value.
type rnd uint64

// float maps the value to [0, 1).
func (x rnd) float() float64 { return float64(x>>11) / (1 << 53) }

// draw derives a random value from (seed, rule, path, per-path op index,
// purpose): FNV-1a 64 over seed (8 bytes little-endian), rule (8 bytes LE),
// the path's bytes, a 0 byte, the op index (8 bytes LE) and the purpose (1
// byte), then the splitmix64 finalizer.
func draw(seed int64, rule int, p string, idx uint64, purpose byte) rnd {
	// Keep in sync with the package documentation ("Determinism").
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	word := func(v uint64) {
		for i := 0; i < 8; i++ {
			h ^= v & 0xff
			h *= prime
			v >>= 8
		}
	}
	word(uint64(seed))
	word(uint64(rule))
	for i := 0; i < len(p); i++ {
		h ^= uint64(p[i])
		h *= prime
	}
	h *= prime // the 0 separator: h ^= 0 is a no-op
	word(idx)
	h ^= uint64(purpose)
	h *= prime
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return rnd(h)
}
