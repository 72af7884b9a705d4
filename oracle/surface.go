package oracle

import (
	"slices"
	"strings"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
)

// Surfacing: the one rule of which error counts as a fault coming to light.
// silent, journal-mode, error-fidelity and page-count all ask it.
//
// An error surfaces a fault when all of these hold:
//
//   - its class is an I/O class (SurfacingClasses): IOERR (every extended
//     code), CORRUPT, NOTADB, CANTOPEN, FULL, READONLY, or kanbancore's
//     TORN_EXTEND report. BUSY and LOCKED never surface anything: they say
//     another process holds a lock, not that a read or write went wrong, and
//     a program that sees them retries. OTHER (a misuse, a constraint, a
//     "cannot rollback") surfaces nothing either: it is what hides a fault,
//     not what reports it.
//   - it was recorded by the process that made the faulted call, or by a
//     process that had opened the faulted file at or before the fault (for
//     a fault with pid 0, kernel writeback, only the latter);
//   - it was recorded at or after the fault and no later than
//     Bounds.SurfaceWindow of board time after it (default 30 s of board
//     time; Meta.Scale board seconds pass per wall second, 1 when unset).
//
// Which classes explain which fault is Explains. An error of another
// process that a fault of that process's own explains (ownFault) is that
// fault coming to light: it may still surface a fault (who saw what is
// ambiguous), but it never misnames one.

// SurfacingClasses are the error classes that can surface a fault.
var SurfacingClasses = []string{history.ClassIOERR, history.ClassCorrupt, history.ClassNotADB,
	"CANTOPEN", "FULL", "READONLY", history.ClassTornExtend}

// primary result codes of the surfacing classes (extended codes carry them
// in their low byte).
var surfacingPrimary = map[int]string{10: history.ClassIOERR, 11: history.ClassCorrupt, 26: history.ClassNotADB,
	14: "CANTOPEN", 13: "FULL", 8: "READONLY"}

// SurfacingClass returns the I/O class of e ("" when e surfaces nothing):
// its Class when that is a surfacing class, else the class of its SQLite
// code's primary code.
func SurfacingClass(e history.Event) string {
	c := strings.ToUpper(e.Class)
	for _, s := range SurfacingClasses {
		if c == s {
			return s
		}
	}
	if c == "BUSY" || c == "LOCKED" {
		return ""
	}
	if e.Code != 0 {
		return surfacingPrimary[e.Code&0xff]
	}
	return ""
}

// Explains reports whether an error of I/O class class can be the way the
// fired fault r comes to light. An errno from a read may come back as an
// I/O error, as corruption (SQLite reports a failed page read as
// SQLITE_CORRUPT in places) or as "not a database" (page 1); from a write,
// fsync or truncate only as an I/O error (ENOSPC also as FULL); from an
// open as CANTOPEN, READONLY or an I/O error. Faults that report success
// (torn then=ok, lost, flip, short reads) can come to light as any I/O
// class, the page-count report included.
func Explains(r trace.Record, class string) bool {
	if class == "" {
		return false
	}
	kind, _, _ := strings.Cut(r.Fault, " ")
	silentKind := kind == "torn" && strings.Contains(r.Fault, "then=ok") || kind == "lost" || kind == "flip" || kind == "short"
	if silentKind || kind == "powercut" {
		return true
	}
	in := func(cs ...string) bool { return slices.Contains(cs, class) }
	switch r.Op {
	case trace.OpRead:
		return in(history.ClassIOERR, history.ClassCorrupt, history.ClassNotADB)
	case trace.OpOpen, trace.OpCreate, trace.OpLookup, trace.OpGetattr:
		return in("CANTOPEN", "READONLY", history.ClassIOERR, history.ClassNotADB)
	}
	if strings.Contains(r.Fault, "ENOSPC") || strings.Contains(r.Result, "ENOSPC") {
		return in("FULL", history.ClassIOERR)
	}
	return in(history.ClassIOERR, history.ClassTornExtend)
}

// window is the surface window in wall nanoseconds.
func (f *facts) window() int64 {
	scale := f.scale
	if scale <= 0 {
		scale = 1
	}
	return int64(float64(time.Duration(f.bounds.SurfaceWindow)) / scale)
}

// openedBy reports whether pid had opened path (trace open/create ok) at
// or before t.
func (f *facts) openedBy(path string, pid int, t int64) bool {
	first, ok := f.opened[path][pid]
	return ok && first <= t
}

// surfacing returns every error that can surface an event at time t on
// path made by pid (0: no calling process): errors of a surfacing class
// (accepted by accept, when not nil) recorded in the window after t by pid
// or by a process that had opened path by then — pid's own first, each
// group in time order.
func (f *facts) surfacing(pid int, path string, t int64, accept func(history.Event) bool) []history.Event {
	w := f.window()
	var own, others []history.Event
	for _, e := range f.errs {
		if e.T < t || e.T > t+w || SurfacingClass(e) == "" || (accept != nil && !accept(e)) {
			continue
		}
		switch {
		case pid != 0 && e.Pid == pid:
			own = append(own, e)
		case path != "" && f.openedBy(path, e.Pid, t):
			others = append(others, e)
		}
	}
	return append(own, others...)
}

// ownFault reports whether a fault made by e's own process, fired in the
// window before e, explains e's class: then e is that fault coming to
// light, and its class says nothing about another process's fault. (A read
// EIO in one process surfacing as CORRUPT must not count as a WAL fsync EIO
// misnamed, made by another process whose commit went on just before.)
func (f *facts) ownFault(e history.Event) bool {
	w, class := f.window(), SurfacingClass(e)
	for _, r := range f.fired {
		if r.Pid != 0 && int(r.Pid) == e.Pid && r.T <= e.T && e.T-r.T <= w && Explains(r, class) {
			return true
		}
	}
	return false
}

// surfacedBy returns the error that surfaces an event (see surfacing):
// the calling process's first, else another opener's first.
func (f *facts) surfacedBy(pid int, path string, t int64, accept func(history.Event) bool) (history.Event, bool) {
	if es := f.surfacing(pid, path, t, accept); len(es) > 0 {
		return es[0], true
	}
	return history.Event{}, false
}

// surfacedFault returns the error that surfaced the fired fault r.
func (f *facts) surfacedFault(r trace.Record) (history.Event, bool) {
	return f.surfacedBy(int(r.Pid), r.Path, r.T, nil)
}
