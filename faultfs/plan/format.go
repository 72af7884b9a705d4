package plan

import (
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
// 1 (its default), so count=0 (persistent) is spelled out.
func (r Rule) String() string {
	var b strings.Builder
	b.WriteString(string(r.Kind))
	kv := func(k, v string) {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	if len(r.Ops) > 0 {
		kv("op", joinOps(r.Ops))
	}
	if r.Path != "" {
		kv("path", r.Path)
	}
	if r.HasOff {
		if r.OffLo == r.OffHi {
			kv("off", itoa(r.OffLo))
		} else {
			kv("off", itoa(r.OffLo)+".."+itoa(r.OffHi))
		}
	}
	if r.MinLen != 0 {
		kv("minlen", itoa(r.MinLen))
	}
	if r.Pid != 0 {
		kv("pid", strconv.Itoa(r.Pid))
	}
	if r.Nth != 0 {
		kv("nth", strconv.Itoa(r.Nth))
	}
	if r.AfterDur > 0 {
		kv("after", r.AfterDur.String())
	} else if r.After != 0 {
		kv("after", strconv.Itoa(r.After))
	}
	if r.Every != 0 {
		kv("every", strconv.Itoa(r.Every))
	}
	if r.P != 0 && r.P != 1 {
		kv("p", strconv.FormatFloat(r.P, 'g', -1, 64))
	}
	switch r.Kind {
	case KindErrno, KindEIO:
		if r.Kind == KindErrno {
			kv("errno", errnoString(r.Errno))
		}
		if r.DropUnsynced {
			kv("drop", "unsynced")
		}
	case KindTorn:
		if r.RandomSectors {
			kv("sectors", "random")
			kv("sector", itoa(sectorOrDefault(r.Sector)))
		} else {
			kv("keep", itoa(r.Keep))
			if r.Tail {
				kv("from", "tail")
			}
		}
		if r.ThenOK || r.Errno == 0 {
			kv("then", "ok")
		} else {
			kv("then", errnoString(r.Errno))
		}
	case KindShort:
		kv("keep", itoa(r.Keep))
	case KindPowercut:
		c := r.Cut
		if c == "" {
			c = CutNone
		}
		kv("keep", string(c))
		if c == CutSectors {
			kv("sector", itoa(sectorOrDefault(r.Sector)))
		}
	case KindFlip:
		if r.HasBit {
			kv("bit", itoa(r.Bit))
		}
	case KindDelay:
		kv("delay", r.Delay.String())
		if r.Jitter != 0 {
			kv("jitter", r.Jitter.String())
		}
	}
	if (r.Kind == KindPowercut && r.Count != 1) || (r.Kind != KindPowercut && r.Count != 0) {
		kv("count", strconv.Itoa(r.Count))
	}
	if r.Off {
		kv("state", "off")
	}
	return b.String()
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
