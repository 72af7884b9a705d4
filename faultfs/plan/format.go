package plan

import (
	"cmp"
	"strconv"
	"strings"
	"syscall"
)

// String returns the canonical form of the plan: one rule per line, each
// ending in a newline. Parse(p.String()) gives a plan deep-equal to p when
// p came from Parse.
func (p *Plan) String() string {
	if p == nil {
		return ""
	}
	var b strings.Builder
	for _, r := range p.Rules {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// String returns the canonical form of one rule: the kind, then the keys
// in the order op, path, off, minlen, pid, nth, after, every, p, errno,
// drop, keep, from, sectors, sector, then, bit, delay, jitter, count, state,
// with defaults left out. keep is always printed for short, powercut and a
// torn rule without sectors=random, sector= with sectors=random and
// keep=sectors, and then for torn; a powercut rule prints count unless it is
// 1 (its default), so count=0 (persistent) is spelled out. Placeholders
// print as written: pid={pid:NAME}, off={dbsize}..HI.
func (r Rule) String() string {
	var w ruleWriter
	w.b.WriteString(string(r.Kind))
	r.writeSelection(&w)
	r.writeFiring(&w)
	r.writeEffect(&w)
	if (r.Kind == KindPowercut && r.Count != 1) || (r.Kind != KindPowercut && r.Count != 0) {
		w.num("count", int64(r.Count))
	}
	if r.Off {
		w.kv("state", "off")
	}
	return w.b.String()
}

// ruleWriter builds a rule's canonical text, one " key=value" at a time.
type ruleWriter struct{ b strings.Builder }

func (w *ruleWriter) kv(k, v string) {
	w.b.WriteByte(' ')
	w.b.WriteString(k)
	w.b.WriteByte('=')
	w.b.WriteString(v)
}

func (w *ruleWriter) num(k string, n int64) { w.kv(k, itoa(n)) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// writeSelection writes the selection keys: op, path, off, minlen, pid.
func (r *Rule) writeSelection(w *ruleWriter) {
	if len(r.Ops) > 0 {
		w.kv("op", joinOps(r.Ops))
	}
	if r.Path != "" {
		w.kv("path", r.Path)
	}
	if r.HasOff {
		lo, hi := cmp.Or(r.OffLoVar.String(), itoa(r.OffLo)), cmp.Or(r.OffHiVar.String(), itoa(r.OffHi))
		if lo == hi {
			w.kv("off", lo)
		} else {
			w.kv("off", lo+".."+hi)
		}
	}
	if r.MinLen != 0 {
		w.num("minlen", r.MinLen)
	}
	switch {
	case r.PidVar != (Var{}):
		w.kv("pid", r.PidVar.String())
	case r.Pid != 0:
		w.num("pid", int64(r.Pid))
	}
}

// writeFiring writes the firing keys but count and state: nth, after,
// every, p.
func (r *Rule) writeFiring(w *ruleWriter) {
	if r.Nth != 0 {
		w.num("nth", int64(r.Nth))
	}
	if r.AfterDur > 0 {
		w.kv("after", r.AfterDur.String())
	} else if r.After != 0 {
		w.num("after", int64(r.After))
	}
	if r.Every != 0 {
		w.num("every", int64(r.Every))
	}
	if r.P != 0 && r.P != 1 {
		w.kv("p", strconv.FormatFloat(r.P, 'g', -1, 64))
	}
}

// writeEffect writes the keys of the rule's kind.
func (r *Rule) writeEffect(w *ruleWriter) {
	switch r.Kind {
	case KindErrno, KindEIO:
		if r.Kind == KindErrno {
			w.kv("errno", errnoString(r.Errno))
		}
		if r.DropUnsynced {
			w.kv("drop", "unsynced")
		}
	case KindTorn:
		r.writeTorn(w)
	case KindShort:
		w.num("keep", r.Keep)
	case KindPowercut:
		c := r.Cut
		if c == "" {
			c = CutNone
		}
		w.kv("keep", string(c))
		if c == CutSectors {
			w.num("sector", sectorOrDefault(r.Sector))
		}
	case KindFlip:
		if r.HasBit {
			w.num("bit", r.Bit)
		}
	case KindDelay:
		w.kv("delay", r.Delay.String())
		if r.Jitter != 0 {
			w.kv("jitter", r.Jitter.String())
		}
	}
}

// writeTorn writes a torn rule's keep, from, sectors, sector and then.
func (r *Rule) writeTorn(w *ruleWriter) {
	if r.RandomSectors {
		w.kv("sectors", "random")
		w.num("sector", sectorOrDefault(r.Sector))
	} else {
		w.num("keep", r.Keep)
		if r.Tail {
			w.kv("from", "tail")
		}
	}
	if r.ThenOK || r.Errno == 0 {
		w.kv("then", "ok")
	} else {
		w.kv("then", errnoString(r.Errno))
	}
}

// errnoString names errno for the canonical form; an errno missing from the
// table prints as "errno(N)", which Parse rejects.
func errnoString(e syscall.Errno) string {
	if n := ErrnoName(e); n != "" {
		return n
	}
	return "errno(" + strconv.Itoa(int(e)) + ")"
}

// sectorOrDefault returns n, or the default sector size 512 for 0.
func sectorOrDefault(n int64) int64 {
	if n <= 0 {
		return minSector
	}
	return n
}
