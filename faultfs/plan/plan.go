// See doc.go for the package documentation.

package plan

import (
	"syscall"
	"time"
)

// Kind is what a rule does when it fires.
type Kind string

// The fault kinds.
const (
	KindErrno Kind = "errno" // fail the op with Errno
	KindEIO   Kind = "eio"   // shorthand for errno with EIO
	KindTorn  Kind = "torn"  // persist the first Keep bytes of a write, then Then
	KindLost  Kind = "lost"  // report success, persist nothing
	KindShort Kind = "short" // return the first Keep bytes of a read
	KindFlip  Kind = "flip"  // flip one seeded bit of the data read or written
	KindDelay Kind = "delay" // sleep Delay (+ seeded random up to Jitter), then proceed
	// KindPowercut cuts the power: the op does not run, the mount freezes, and
	// a later recover resets every file to its synced content plus the
	// unsynced writes Cut keeps (faultfs's unsynced-write model).
	KindPowercut Kind = "powercut"
)

// CutKeep is what a power cut keeps of the writes not yet covered by an
// fsync (the powercut rule's keep=).
type CutKeep string

// The power-cut keep modes.
const (
	CutNone    CutKeep = "none"    // drop every unsynced write and directory op
	CutAll     CutKeep = "all"     // keep them all (the cut loses nothing)
	CutRandom  CutKeep = "random"  // keep a seeded subset of whole writes
	CutSectors CutKeep = "sectors" // keep a seeded subset of each write's sectors
)

// CutKeeps lists the keep modes in the order messages show them.
func CutKeeps() []CutKeep { return []CutKeep{CutNone, CutAll, CutRandom, CutSectors} }

// Op is a filesystem operation kind as faultfs sees it.
type Op string

// The operation kinds a rule can target.
const (
	OpOpen      Op = "open"
	OpCreate    Op = "create"
	OpRead      Op = "read"
	OpWrite     Op = "write"
	OpFsync     Op = "fsync"
	OpFlush     Op = "flush"
	OpRelease   Op = "release"
	OpUnlink    Op = "unlink"
	OpRename    Op = "rename"
	OpSetattr   Op = "setattr"
	OpTruncate  Op = "truncate" // setattr that changes the size
	OpFallocate Op = "fallocate"
	OpGetattr   Op = "getattr"
	OpLookup    Op = "lookup"
	OpMkdir     Op = "mkdir"
	OpReaddir   Op = "readdir"
)

// Rule is one line of a plan. The zero value of an optional field means
// "not constrained" (or, for Count, "persistent"). A rule whose PidVar,
// OffLoVar or OffHiVar holds a placeholder is part of a template
// (Templated); Plan.Bind turns it into a concrete rule.
type Rule struct {
	Kind   Kind
	Ops    []Op   // op=write or op=read|write; empty = any op
	Path   string // glob over the base name (path.Match); empty = any
	OffLo  int64  // off=LO..HI: the op's byte range must intersect [OffLo, OffHi]
	OffHi  int64
	HasOff bool
	// OffLoVar and OffHiVar are off= bounds written as a placeholder,
	// {dbsize} or {dbpages}: Plan.Bind sets OffLo or OffHi from them
	// (which stay 0 until then).
	OffLoVar, OffHiVar Var
	MinLen             int64         // minlen=N: only ops with length >= N
	Nth                int           // nth=N: first eligible match is the N-th matching op (1-based)
	After              int           // after=N: skip the first N matching ops
	Every              int           // every=N: only every N-th matching op
	Count              int           // count=N: fire at most N times; 0 = persistent
	P                  float64       // p=0.25: seeded probability; 0 means 1
	Pid                int           // pid=N: only ops by this caller pid
	PidVar             Var           // pid={pid:NAME}: Plan.Bind sets Pid from it (0 until then)
	Errno              syscall.Errno // errno=EIO (errno kind, and torn's then=)
	Keep               int64         // keep=N bytes (torn, short)
	ThenOK             bool          // torn: then=ok (report success) vs then=<errno>
	Delay              time.Duration // delay=10ms
	Jitter             time.Duration // jitter=5ms (seeded)
	Off                bool          // disabled at run time (state=off)
	Bit                int64         // bit=N: flip this bit of the op's data (flip); see HasBit
	HasBit             bool          // Bit is set; otherwise the flipped bit is seeded

	// AfterDur is after=DURATION: matches before this much time has passed
	// since the plan was loaded are not counted (After is then 0).
	AfterDur time.Duration
	// Tail is torn from=tail: the write persists its last Keep bytes.
	Tail bool
	// RandomSectors is torn sectors=random: the write persists a seeded
	// subset of its Sector-sized sectors (Keep is then unused).
	RandomSectors bool
	// Sector is the sector size in bytes of torn sectors=random and powercut
	// keep=sectors (sector=N, default 512); 0 otherwise.
	Sector int64
	// Cut is the powercut rule's keep= mode (default none); "" for other kinds.
	Cut CutKeep
	// DropUnsynced is drop=unsynced (errno, eio on op=fsync): the failing
	// fsync also reverts the file's unsynced writes, as Linux drops dirty
	// pages after a failed writeback.
	DropUnsynced bool
}

// Timed reports whether the rule fires by itself, from a timer, rather than
// on an op: a powercut rule with after=DURATION and no selection key (op,
// path, off, minlen, pid) and no nth, every or p.
func (r *Rule) Timed() bool {
	return r.Kind == KindPowercut && r.AfterDur > 0 && len(r.Ops) == 0 && r.Path == "" &&
		!r.HasOff && r.MinLen == 0 && r.Pid == 0 && r.PidVar == (Var{}) && r.Nth == 0 && r.Every == 0 && (r.P == 0 || r.P == 1)
}

// Plan is an ordered list of rules; the first rule that fires wins.
type Plan struct {
	Rules []Rule
}
