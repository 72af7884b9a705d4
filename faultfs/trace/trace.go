// Package trace defines faultfs's op trace: one JSON object per line, written
// by the filesystem server and read by the oracle. It is a leaf package (no
// go-fuse import) so that readers never pull in FUSE.
package trace

// Record kinds.
const (
	KindOp     = "op"     // a filesystem operation
	KindMark   = "mark"   // a mark written through the control socket
	KindPlan   = "plan"   // a plan was loaded (Plan holds its canonical form)
	KindHeader = "header" // a write changed bytes 18-19 of a database header
	KindMount  = "mount"  // first record: seed, backing dir, mountpoint
	// KindCapture records what capture mode saw (faultfs --capture): Op is
	// "snapshot", "write" (Off, Len, Cap), "fsync" (a barrier; T is when it
	// started), "truncate" (Off is the new size) or "error".
	KindCapture = "capture"
)

// Record is one line of the trace.
type Record struct {
	Seq  uint64 `json:"seq"`
	T    int64  `json:"t"`    // CLOCK_MONOTONIC nanoseconds (comparable across processes on one host)
	Kind string `json:"kind"` // one of the Kind constants
	Pid  uint32 `json:"pid,omitempty"`
	Op   OpName `json:"op,omitempty"`   // an Op constant, or a CapOp constant on a capture record
	Path string `json:"path,omitempty"` // relative to the mount root
	To   string `json:"to,omitempty"`   // rename target
	Off  int64  `json:"off,omitempty"`
	Len  int64  `json:"len,omitempty"`
	// Result is "ok" or the errno name returned to the caller (e.g. "EIO").
	Result string `json:"result,omitempty"`
	// N is the number of bytes really persisted (write) or returned (read).
	N int64 `json:"n,omitempty"`
	// Rule is the 1-based index of the rule that fired, 0 if none.
	Rule int `json:"rule,omitempty"`
	// Fault describes what the fired rule did, e.g. "torn keep=512 then=ok".
	Fault string `json:"fault,omitempty"`
	// Holders lists the other pids that still held the file open when a
	// -wal/-shm file was unlinked, renamed over or truncated.
	Holders []uint32 `json:"holders,omitempty"`
	// OldMode/NewMode are header bytes 18-19 ("2/2" = WAL, "1/1" = rollback)
	// before and after a write that changed them (Kind == KindHeader).
	OldMode string `json:"old_mode,omitempty"`
	NewMode string `json:"new_mode,omitempty"`
	// Size is the backing file's size after the op, recorded for open,
	// create, write and truncate of main database files (not -wal, -shm or
	// -journal), so a reader can follow the file's length exactly; nil when
	// not recorded.
	Size *int64 `json:"size,omitempty"`
	Mark string `json:"mark,omitempty"`
	Plan string `json:"plan,omitempty"`
	Seed int64  `json:"seed,omitempty"`
	// Cap is, on a capture "write" record, the offset in the capture's
	// writes.bin of the Len bytes the write persisted; nil elsewhere.
	Cap *int64 `json:"cap,omitempty"`
}

// Record kinds of the power-cut model (written by faultfs; see its
// package doc).
const (
	KindPowerCut = "powercut" // the power was cut: the mount froze
	KindUnsynced = "unsynced" // one unsynced op and what became of it at the recover
	KindRecover  = "recover"  // the recover after a cut ended
)

// OpName names the filesystem operation of an op record (Kind == KindOp),
// as faultfs writes it in Record.Op. The values are those of faultfs/plan's
// Op (this package does not import plan, to stay a leaf); readers compare
// with these constants, so a misspelt op name does not compile.
type OpName string

// The op names of op records.
const (
	OpOpen      OpName = "open"
	OpCreate    OpName = "create"
	OpRead      OpName = "read"
	OpWrite     OpName = "write"
	OpFsync     OpName = "fsync"
	OpFlush     OpName = "flush"
	OpRelease   OpName = "release"
	OpUnlink    OpName = "unlink"
	OpRename    OpName = "rename"
	OpSetattr   OpName = "setattr"
	OpTruncate  OpName = "truncate" // a setattr that changes the size; Off is the new size
	OpFallocate OpName = "fallocate"
	OpGetattr   OpName = "getattr"
	OpLookup    OpName = "lookup"
	OpMkdir     OpName = "mkdir"
	OpReaddir   OpName = "readdir"
)

// Header modes: the values of OldMode and NewMode (bytes 18-19 of a
// database header, read and write version).
const (
	HeaderWAL      = "2/2" // write-ahead log
	HeaderRollback = "1/1" // rollback journal (DELETE, TRUNCATE, PERSIST, ...)
)
