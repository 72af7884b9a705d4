package prop

import (
	"fmt"
	"math/rand"
	"path"
	"reflect"
	"slices"
	"syscall"
	"time"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/gen"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
)

// PlanSpace bounds the fault plans GenPlan draws. The zero value is not
// useful; start from DefaultSpace, HonestSpace or a targeted space.
type PlanSpace struct {
	// Kinds are the fault kinds drawn, with weights (kinds missing from
	// the map are never drawn).
	Kinds map[plan.Kind]int
	// Paths are the path globs drawn ("" = any path).
	Paths []string
	// Ops are the ops drawn for kinds that act on any op (errno, eio,
	// delay), with weights; torn/lost/short/flip get their own ops.
	Ops map[plan.Op]int
	// Errnos are the errnos drawn for errno rules and torn then=.
	Errnos []syscall.Errno
	// MinRules and MaxRules bound the number of rules (MinRules >= 1).
	MinRules, MaxRules int
	// MaxNth and MaxCount bound nth= and count=; count=0 (persistent) is
	// drawn with weight PersistentWeight out of 10.
	MaxNth, MaxCount int
	PersistentWeight int
	// Keeps are the keep= sizes drawn for torn and short.
	Keeps []int64
	// TornThenOK allows torn rules that report success (a lying disk);
	// without it torn rules always fail with then=ERRNO.
	TornThenOK bool
	// Probabilistic allows p= below 1.
	Probabilistic bool
	// HeaderOff allows off=0..100 (the database header) on *.db rules.
	HeaderOff bool
	// TornOnlyOK makes every torn rule report success (then=ok): the
	// torn write of a lying disk, never an error that aborts the write.
	TornOnlyOK bool
	// honest: every drawn rule passes Honest (HonestSpace).
	honest bool
	// MinOff > 0 aims every rule at off=MinOff..2^40 (past the header
	// page, say); shrinking keeps it.
	MinOff int64
}

// Admits reports whether p stays inside the space's hard limits (used as
// the generator's sieve, so shrinking never leaves the space): honest when
// the space is, and aimed past MinOff when it is set.
func (s PlanSpace) Admits(p plan.Plan) bool {
	if s.honest && !Honest(p) {
		return false
	}
	if s.TornOnlyOK {
		for _, r := range p.Rules {
			if r.Kind == plan.KindTorn && !r.ThenOK {
				return false
			}
		}
	}
	if s.MinOff > 0 {
		for _, r := range p.Rules {
			if !r.HasOff || r.OffLo < s.MinOff {
				return false
			}
		}
	}
	return true
}

// DefaultPaths are the globs plans aim at: the database and its sidecars.
var DefaultPaths = []string{"*.db", "*-wal", "*-shm", "*-journal"}

// DefaultSpace is every fault kind over the database files.
func DefaultSpace() PlanSpace {
	return PlanSpace{
		Kinds: map[plan.Kind]int{plan.KindEIO: 4, plan.KindErrno: 3, plan.KindShort: 3, plan.KindTorn: 2,
			plan.KindLost: 1, plan.KindFlip: 1, plan.KindDelay: 1},
		Paths: DefaultPaths,
		Ops: map[plan.Op]int{plan.OpRead: 6, plan.OpWrite: 6, plan.OpFsync: 3, plan.OpOpen: 2, plan.OpCreate: 1,
			plan.OpTruncate: 1, plan.OpFallocate: 1, plan.OpUnlink: 1, plan.OpFlush: 1},
		Errnos:           defaultErrnos(),
		MinRules:         1,
		MaxRules:         3,
		MaxNth:           20,
		MaxCount:         4,
		PersistentWeight: 1,
		Keeps:            []int64{0, 1, 100, 512, 1024, 2048, 4095},
		TornThenOK:       true,
		Probabilistic:    true,
		HeaderOff:        true,
	}
}

// HonestSpace is DefaultSpace without the faults of a lying disk: no lost
// writes, no bit flips, no torn write that reports success and no read or
// write fault on the memory-mapped -shm. Every fault in it reaches the application (an
// errno, a short read's byte count, or a SIGBUS), which is the fault model
// under which a profile can promise that nothing goes unnoticed.
func HonestSpace() PlanSpace {
	s := DefaultSpace()
	s.Kinds = map[plan.Kind]int{plan.KindEIO: 4, plan.KindErrno: 3, plan.KindShort: 3, plan.KindTorn: 1, plan.KindDelay: 1}
	s.TornThenOK = false
	s.honest = true
	return s
}

// defaultErrnos are the errnos a storage stack plausibly returns for I/O,
// all from the plan package's table.
func defaultErrnos() []syscall.Errno {
	var out []syscall.Errno
	for _, n := range []string{"EIO", "ENOSPC", "EDQUOT", "EROFS", "EAGAIN", "EINTR", "EACCES", "EBUSY", "ENXIO", "EREMOTEIO", "EFBIG", "ETIMEDOUT", "ESTALE", "ENOMEM"} {
		if e, ok := plan.ParseErrno(n); ok {
			out = append(out, e)
		}
	}
	return out
}

// pick draws a key of a weighted map in a deterministic order.
func pick[K ~string](rng *rand.Rand, w map[K]int) K {
	keys := make([]K, 0, len(w))
	total := 0
	for k, n := range w {
		if n > 0 {
			keys = append(keys, k)
			total += n
		}
	}
	sortStrings(keys)
	x := rng.Intn(total)
	for _, k := range keys {
		if x < w[k] {
			return k
		}
		x -= w[k]
	}
	return keys[len(keys)-1]
}

func sortStrings[K ~string](ks []K) {
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
}

// drawRule draws one rule from the space. The result is in canonical form:
// Canon(r) == r.
func (s PlanSpace) drawRule(rng *rand.Rand) plan.Rule {
	r := plan.Rule{Kind: pick(rng, s.Kinds)}
	if len(s.Paths) > 0 {
		r.Path = s.Paths[rng.Intn(len(s.Paths))]
	}
	switch r.Kind {
	case plan.KindTorn, plan.KindLost:
		r.Ops = []plan.Op{plan.OpWrite}
	case plan.KindShort:
		r.Ops = []plan.Op{plan.OpRead}
	case plan.KindFlip:
		r.Ops = [][]plan.Op{{plan.OpRead}, {plan.OpWrite}, {plan.OpRead, plan.OpWrite}}[rng.Intn(3)]
	default:
		r.Ops = []plan.Op{pick(rng, s.Ops)}
		if rng.Intn(6) == 0 { // now and then a second op
			if o := pick(rng, s.Ops); o != r.Ops[0] {
				r.Ops = append(r.Ops, o)
			}
		}
	}
	if s.HeaderOff && rng.Intn(6) == 0 && (r.Path == "*.db" || r.Path == "") {
		r.OffLo, r.OffHi, r.HasOff = 0, 100, true
	}
	if s.MinOff > 0 {
		r.OffLo, r.OffHi, r.HasOff = s.MinOff, 1<<40, true
	}
	if rng.Intn(2) == 0 && (slices.Contains(r.Ops, plan.OpRead) || slices.Contains(r.Ops, plan.OpWrite)) {
		r.MinLen = 4096
	}
	// Firing: nth or after, sometimes every; count; p.
	switch rng.Intn(4) {
	case 0: // unset: the first match
	case 1, 2:
		r.Nth = 1 + rng.Intn(max(1, s.MaxNth))
	case 3:
		r.After = rng.Intn(max(1, s.MaxNth))
	}
	if rng.Intn(8) == 0 {
		r.Every = 2 + rng.Intn(3)
	}
	if rng.Intn(10) >= s.PersistentWeight {
		r.Count = 1 + rng.Intn(max(1, s.MaxCount))
	}
	if s.Probabilistic && rng.Intn(4) == 0 {
		r.P = []float64{0.5, 0.25, 0.1, 0.01}[rng.Intn(4)]
	}
	errno := func() syscall.Errno { return s.Errnos[rng.Intn(len(s.Errnos))] }
	switch r.Kind {
	case plan.KindErrno:
		r.Errno = errno()
	case plan.KindEIO:
		r.Errno = syscall.EIO
	case plan.KindTorn:
		r.Keep = s.Keeps[rng.Intn(len(s.Keeps))]
		if s.TornThenOK && (s.TornOnlyOK || rng.Intn(2) == 0) {
			r.ThenOK = true
		} else {
			r.Errno = errno()
		}
	case plan.KindShort:
		r.Keep = s.Keeps[rng.Intn(len(s.Keeps))]
	case plan.KindFlip:
		if rng.Intn(2) == 0 {
			r.Bit, r.HasBit = int64(rng.Intn(4096*8)), true
		}
	case plan.KindDelay:
		r.Delay = time.Duration(1+rng.Intn(50)) * time.Millisecond
		if rng.Intn(2) == 0 {
			r.Jitter = time.Duration(1+rng.Intn(20)) * time.Millisecond
		}
	}
	return Canon(r)
}

// Canon returns r in the form plan.Parse gives it, so that generated and
// shrunk rules are deep-equal to Parse(String()) of themselves. It panics
// when r does not print as a valid rule: generators must never produce one.
func Canon(r plan.Rule) plan.Rule {
	p, err := plan.Parse(r.String())
	if err != nil || len(p.Rules) != 1 {
		panic(fmt.Sprintf("prop: rule %q does not round-trip: %v", r.String(), err))
	}
	return p.Rules[0]
}

// GenRule generates one rule from the space, with ShrinkRule as shrinker.
func GenRule(s PlanSpace) gopter.Gen {
	return func(gp *gopter.GenParameters) *gopter.GenResult {
		r := s.drawRule(gp.Rng)
		return gopter.NewGenResult(r, ShrinkRule)
	}
}

// GenPlan generates plans of MinRules..MaxRules rules from the space. Its
// shrinker (ShrinkPlan) first drops rules, then shrinks one rule at a time.
func GenPlan(s PlanSpace) gopter.Gen {
	if s.MinRules < 1 {
		s.MinRules = 1
	}
	if s.MaxRules < s.MinRules {
		s.MaxRules = s.MinRules
	}
	return func(gp *gopter.GenParameters) *gopter.GenResult {
		n := s.MinRules + gp.Rng.Intn(s.MaxRules-s.MinRules+1)
		p := plan.Plan{Rules: make([]plan.Rule, n)}
		for i := range p.Rules {
			p.Rules[i] = s.drawRule(gp.Rng)
			for k := 0; k < 100 && s.honest && !honestRule(p.Rules[i]); k++ {
				p.Rules[i] = s.drawRule(gp.Rng)
			}
		}
		res := gopter.NewGenResult(p, ShrinkPlan)
		res.ResultType = reflect.TypeOf(plan.Plan{})
		res.Sieve = func(v interface{}) bool { return s.Admits(v.(plan.Plan)) }
		return res
	}
}

// ShrinkPlan is the gopter shrinker of a plan.Plan: gopter's slice shrinker
// over the rules (halves, quarters, … then single rules removed; never an
// empty plan) followed by ShrinkRule on each rule.
func ShrinkPlan(v interface{}) gopter.Shrink {
	p := v.(plan.Plan)
	if len(p.Rules) == 0 {
		return gopter.NoShrink
	}
	return gen.SliceShrinker(ShrinkRule)(p.Rules).Map(func(rs []plan.Rule) plan.Plan {
		return plan.Plan{Rules: rs}
	})
}

// ShrinkRule yields simpler variants of one rule, most aggressive first:
// firing constraints dropped (p, every, after, off, minlen), count and nth
// made smaller, keep made smaller, fewer ops, errno → eio, shorter delays.
// Every variant is canonical and differs from r.
func ShrinkRule(v interface{}) gopter.Shrink {
	s := ruleShrinks{r: v.(plan.Rule)}
	s.firing()
	s.scope()
	s.effect()
	out, i := s.out, 0
	return func() (interface{}, bool) {
		if i >= len(out) {
			return nil, false
		}
		i++
		return out[i-1], true
	}
}

// ruleShrinks collects the shrink candidates of r, in order.
type ruleShrinks struct {
	r   plan.Rule
	out []plan.Rule
}

// add appends r changed by f, canonical, unless it is r or already there.
func (s *ruleShrinks) add(f func(x *plan.Rule)) {
	x := s.r
	x.Ops = append([]plan.Op(nil), s.r.Ops...)
	f(&x)
	c := Canon(x)
	if reflect.DeepEqual(c, s.r) {
		return
	}
	for _, o := range s.out {
		if reflect.DeepEqual(o, c) {
			return
		}
	}
	s.out = append(s.out, c)
}

// firing drops p, every and state=off, and fires sooner and less often:
// persistent → once, count n → 1 and n/2, nth/after → the first match,
// halves, one less.
func (s *ruleShrinks) firing() {
	r := s.r
	if r.P != 0 {
		s.add(func(x *plan.Rule) { x.P = 0 })
	}
	if r.Every != 0 {
		s.add(func(x *plan.Rule) { x.Every = 0 })
	}
	if r.Off {
		s.add(func(x *plan.Rule) { x.Off = false })
	}
	switch {
	case r.Count == 0:
		s.add(func(x *plan.Rule) { x.Count = 1 })
	case r.Count > 1:
		s.add(func(x *plan.Rule) { x.Count = 1 })
		s.add(func(x *plan.Rule) { x.Count = r.Count / 2 })
	}
	if r.Nth > 1 {
		s.add(func(x *plan.Rule) { x.Nth = 0 })
		s.add(func(x *plan.Rule) { x.Nth = r.Nth / 2 })
		s.add(func(x *plan.Rule) { x.Nth = r.Nth - 1 })
	}
	if r.Nth == 1 {
		s.add(func(x *plan.Rule) { x.Nth = 0 }) // nth=1 is the default
	}
	if r.After > 0 {
		s.add(func(x *plan.Rule) { x.After = 0 })
		s.add(func(x *plan.Rule) { x.After = r.After / 2 })
		s.add(func(x *plan.Rule) { x.After = r.After - 1 })
	}
}

// scope drops off= and minlen=, makes keep smaller and tries each op alone.
func (s *ruleShrinks) scope() {
	r := s.r
	if r.HasOff {
		s.add(func(x *plan.Rule) {
			x.HasOff, x.OffLo, x.OffHi, x.OffLoVar, x.OffHiVar = false, 0, 0, plan.Var{}, plan.Var{}
		})
	}
	if r.MinLen != 0 {
		s.add(func(x *plan.Rule) { x.MinLen = 0 })
	}
	if r.Keep > 0 {
		s.add(func(x *plan.Rule) { x.Keep = 0 })
		s.add(func(x *plan.Rule) { x.Keep = r.Keep / 2 })
	}
	if len(r.Ops) > 1 {
		for _, o := range r.Ops {
			s.add(func(x *plan.Rule) { x.Ops = []plan.Op{o} })
		}
	}
}

// effect simplifies what the rule does: errno → EIO → eio, bit 0, no
// jitter, half the delay.
func (s *ruleShrinks) effect() {
	r := s.r
	switch r.Kind {
	case plan.KindErrno:
		if r.Errno == syscall.EIO {
			s.add(func(x *plan.Rule) { x.Kind = plan.KindEIO })
		} else {
			s.add(func(x *plan.Rule) { x.Errno = syscall.EIO })
		}
	case plan.KindTorn:
		if !r.ThenOK && r.Errno != syscall.EIO {
			s.add(func(x *plan.Rule) { x.Errno = syscall.EIO })
		}
	case plan.KindFlip:
		if r.HasBit && r.Bit > 0 {
			s.add(func(x *plan.Rule) { x.Bit = 0 })
		}
	case plan.KindDelay:
		if r.Jitter > 0 {
			s.add(func(x *plan.Rule) { x.Jitter = 0 })
		}
		if r.Delay > time.Millisecond {
			s.add(func(x *plan.Rule) { x.Delay = r.Delay / 2 })
		}
	}
}

// RuleCount is the number of rules of p (for reports).
func RuleCount(p plan.Plan) int { return len(p.Rules) }

// Honest reports whether every rule of p is a fault the application can
// see (see HonestSpace): no lost write, no bit flip, no torn write that
// reports success, and no read or write fault that may land on the -shm.
// SQLite maps the -shm into memory: a faulted read serves a page fault (a
// short one reads as zeros, no byte count reaches SQLite), and a write is
// the kernel's writeback of the mapping (no pid; nobody fsyncs the -shm),
// so neither reaches any process. TestPropHardenedNeverSilent found both:
// acknowledged commits lost, rows resurrected, no error anywhere
// (testdata/found/hardened-never-silent-*-mattn-*.plan).
func Honest(p plan.Plan) bool {
	for _, r := range p.Rules {
		if !honestRule(r) {
			return false
		}
	}
	return true
}

func honestRule(r plan.Rule) bool {
	switch {
	case r.Kind == plan.KindLost, r.Kind == plan.KindFlip:
		return false
	case r.Kind == plan.KindTorn && (r.ThenOK || r.Errno == 0):
		return false
	}
	if r.Kind == plan.KindDelay {
		return true
	}
	mayHitShm := r.Path == ""
	if ok, _ := path.Match(r.Path, "kanban.db-shm"); ok {
		mayHitShm = true
	}
	if mayHitShm && (len(r.Ops) == 0 || slices.Contains(r.Ops, plan.OpRead) || slices.Contains(r.Ops, plan.OpWrite)) {
		return false
	}
	return true
}

// Sample draws one value of g with its own seed: the same seed always gives
// the same value (this is how a fuzz input, a seed, maps to a case).
func Sample(g gopter.Gen, seed int64) (interface{}, *gopter.GenResult) {
	gp := gopter.DefaultGenParameters()
	gp.Rng = rand.New(gopter.NewLockedSource(seed))
	res := g(gp)
	v, _ := res.Retrieve()
	return v, res
}
