package faultfs

// The unsynced-write model and the power cut. See doc.go, "Power cut".

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/faultfs/trace"
)

// Trace record kinds written by the unsynced-write model (trace.Record.Kind).
const (
	// TraceKindPowerCut is the cut itself: Mark says what triggered it
	// ("control", "rule" or "timer"), Rule/Op/Path/Pid name the rule and
	// the op it fired on, Fault is "powercut keep=MODE[ sector=S]", N the
	// number of unsynced writes and truncates at the cut, Len the number of
	// unsynced directory ops.
	TraceKindPowerCut = trace.KindPowerCut
	// TraceKindUnsynced is one unsynced op and what became of it, written at
	// recover (and by an fsync error with drop=unsynced): Op is write,
	// truncate, fallocate, create, mkdir, unlink or rename; Path the file
	// (as named when the op ran), To a rename's target; Off and Len a
	// write's range (truncate, fallocate: Off is the new size); N the bytes
	// of a write that survive; Pid the writer; Rule the powercut (or fsync
	// error) rule, 0 for a control request; Result is "kept", "dropped",
	// "torn" (some sectors kept), "gone" (the file was unlinked for good, so
	// nothing was reset) or "unrestorable" (a directory op that could not be
	// undone); a write to a file whose create the recover undid is
	// "dropped". Fault says why, e.g. "powercut keep=sectors sector=512
	// kept=0,2,3/8" (the kept sector indices of the write, 0 = the sector
	// holding its first byte, out of 8).
	TraceKindUnsynced = trace.KindUnsynced
	// TraceKindRecover ends a recover: Mark summarizes it, N is the number
	// of writes and truncates kept whole or in part.
	TraceKindRecover = trace.KindRecover
)

// Results of TraceKindUnsynced records.
const (
	UnsyncedKept         = "kept"
	UnsyncedDropped      = "dropped"
	UnsyncedTorn         = "torn"
	UnsyncedGone         = "gone"
	UnsyncedUnrestorable = "unrestorable"
)

// PowerCutOptions says what a power cut asked for by a control request keeps
// of the unsynced writes. The zero value keeps none.
type PowerCutOptions struct {
	Keep   plan.CutKeep `json:"keep,omitempty"`   // none (default), all, random or sectors
	Sector int64        `json:"sector,omitempty"` // keep=sectors: sector size (default 512); ignored otherwise
}

// CutInfo describes a power cut.
type CutInfo struct {
	N        int    `json:"n"`              // 1-based number of the cut since the mount started
	Trigger  string `json:"trigger"`        // "control", "rule" or "timer"
	Rule     int    `json:"rule,omitempty"` // the powercut rule (1-based), 0 for control
	Op       string `json:"op,omitempty"`   // the op the rule fired on, which did not run
	Path     string `json:"path,omitempty"`
	Pid      uint32 `json:"pid,omitempty"`
	Keep     string `json:"keep"`
	Sector   int64  `json:"sector,omitempty"`
	T        int64  `json:"t"`        // trace clock (CLOCK_MONOTONIC ns) of the cut
	Tracking bool   `json:"tracking"` // the model was on: without it recover resets nothing
	Writes   int    `json:"writes"`   // unsynced writes and truncates at the cut
	Files    int    `json:"files"`    // files with unsynced writes at the cut
	DirOps   int    `json:"dir_ops"`  // unsynced directory ops at the cut
}

// RecoverResult is what a recover did.
type RecoverResult struct {
	Cut          int    `json:"cut"`          // CutInfo.N of the cut recovered from
	Keep         string `json:"keep"`         // the keep mode applied
	Files        int    `json:"files"`        // files reset to synced content plus kept writes
	Writes       int    `json:"writes"`       // unsynced writes and truncates considered
	Kept         int    `json:"kept"`         // ... kept whole
	Torn         int    `json:"torn"`         // ... kept in part (keep=sectors)
	Dropped      int    `json:"dropped"`      // ... dropped
	Gone         int    `json:"gone"`         // ... of files that no longer exist
	DirOps       int    `json:"dir_ops"`      // unsynced directory ops considered
	DirKept      int    `json:"dir_kept"`     // ... kept (a prefix of them)
	DirUndone    int    `json:"dir_undone"`   // ... undone
	Unrestorable int    `json:"unrestorable"` // ... that could not be undone
	Blocked      int64  `json:"blocked"`      // ops still waiting on the frozen mount, now failed with EIO
	Refused      int64  `json:"refused"`      // kernel writebacks (pid 0) failed with EIO at once during the cut
	Duration     int64  `json:"duration_ns"`  // how long the reset took
	Errors       string `json:"errors,omitempty"`
}

// UnsyncedStats counts what the model holds.
type UnsyncedStats struct {
	Files  int   `json:"files"`   // files with unsynced writes or truncates
	Writes int   `json:"writes"`  // unsynced writes and truncates
	Bytes  int64 `json:"bytes"`   // bytes kept for them (new and old data)
	DirOps int   `json:"dir_ops"` // unsynced directory ops
}

// State is the unsynced-write model's and the power cut's state.
type State struct {
	Tracking    bool           `json:"tracking"`          // the unsynced-write model is on
	Frozen      bool           `json:"frozen"`            // a cut happened and no recover yet
	Cuts        int            `json:"cuts"`              // cuts since the mount started
	Cut         *CutInfo       `json:"cut,omitempty"`     // the current cut, or the last one
	Blocked     int64          `json:"blocked"`           // ops waiting on the frozen mount
	Unsynced    UnsyncedStats  `json:"unsynced"`          // what a cut would now act on
	LastRecover *RecoverResult `json:"recover,omitempty"` // the last recover
}

// ErrNotCut is returned by Recover when no power cut is in effect.
var ErrNotCut = errors.New("no power cut to recover from")

// ---------------------------------------------------------------------------
// The model.

// tracker is the unsynced-write model: per file (backing inode) the writes
// and truncates not yet covered by an fsync of it, with the bytes they
// overwrote, and the directory ops not yet covered by an fsync of their
// directory.
type tracker struct {
	on atomic.Bool

	mu      sync.Mutex
	files   map[uint64]*fileLog
	orphans map[uint64]bool   // unlinked inodes: false while the unlink is unsynced, true once it is durable
	dirops  []*dirOp          // unsynced directory ops, in order
	pathIdx map[string]uint64 // writes and truncates recorded per path since tracking started
}

// fileLog is the undo log of one file.
type fileLog struct {
	ino  uint64
	path string // current path relative to the root, "" when unlinked; guarded by tracker.mu
	// uncreated: a recover undid the file's create (guarded by tracker.mu).
	uncreated bool

	mu      sync.Mutex // serialises capture, write and append for this file
	entries []undoEntry
}

// undoEntry is one unsynced write, truncate or size-changing fallocate.
type undoEntry struct {
	op      plan.Op // OpWrite, OpTruncate or OpFallocate
	path    string  // the path it was made under
	idx     uint64  // its ordinal among the path's recorded ops (for the seeded draws)
	pid     uint32
	off     int64  // write: offset; truncate, fallocate: the new size
	data    []byte // write: the bytes persisted
	old     []byte // the bytes overwritten or cut off, within oldSize
	oldSize int64
}

func (e *undoEntry) bytes() int64 { return int64(len(e.data) + len(e.old)) }

// dirOp is one unsynced directory operation.
type dirOp struct {
	op      plan.Op // OpCreate, OpMkdir, OpUnlink or OpRename
	path    string
	to      string // rename target
	pid     uint32
	dirs    []uint64 // directories whose fsync has not yet covered it
	ino     uint64   // the created, unlinked or renamed node
	held    *os.File // unlink: the unlinked file; rename: the target it replaced
	heldIno uint64
}

func (t *tracker) enable() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.on.Load() {
		return
	}
	t.files = map[uint64]*fileLog{}
	t.orphans = map[uint64]bool{}
	t.dirops = nil
	t.pathIdx = map[string]uint64{}
	t.on.Store(true)
}

func (t *tracker) disable() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.on.Store(false)
	t.clearLocked()
	t.pathIdx = map[string]uint64{}
}

// clearLocked forgets every unsynced op: what is on the backing now counts
// as synced.
func (t *tracker) clearLocked() {
	for _, op := range t.dirops {
		if op.held != nil {
			op.held.Close()
		}
	}
	t.files = map[uint64]*fileLog{}
	t.orphans = map[uint64]bool{}
	t.dirops = nil
}

// file returns the log of inode ino, creating it (named path) if needed; nil
// when tracking is off, when the inode's unlink is durable (nothing of it
// can come back), or when fd (if >= 0) is a file with no name left whose
// unlink the model does not hold (unlinked before tracking started or
// before the last recover: its node may report a name another file has
// now).
func (t *tracker) file(ino uint64, path string, fd int) *fileLog {
	if !t.on.Load() {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if fl := t.files[ino]; fl != nil {
		return fl
	}
	gone, orphan := t.orphans[ino]
	if gone {
		return nil
	}
	if !orphan && fd >= 0 {
		var st syscall.Stat_t
		if syscall.Fstat(fd, &st) == nil && st.Nlink == 0 {
			return nil
		}
	}
	fl := &fileLog{ino: ino, path: path}
	if orphan {
		fl.path = "" // unlinked, not yet durably: restored only if the unlink is undone
	}
	t.files[ino] = fl
	return fl
}

// logged returns the log of inode ino if tracking is on and it has one, nil
// otherwise (it creates none).
func (t *tracker) logged(ino uint64) *fileLog {
	if !t.on.Load() {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.files[ino]
}

func (t *tracker) nextIdx(path string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := t.pathIdx[path]
	t.pathIdx[path] = i + 1
	return i
}

func (t *tracker) stats() UnsyncedStats {
	t.mu.Lock()
	logs := make([]*fileLog, 0, len(t.files))
	for _, fl := range t.files {
		logs = append(logs, fl)
	}
	st := UnsyncedStats{DirOps: len(t.dirops)}
	t.mu.Unlock()
	for _, fl := range logs {
		fl.mu.Lock()
		if len(fl.entries) > 0 {
			st.Files++
			st.Writes += len(fl.entries)
			for i := range fl.entries {
				st.Bytes += fl.entries[i].bytes()
			}
		}
		fl.mu.Unlock()
	}
	return st
}

// fdSize returns the size of the file open at fd.
func fdSize(fd int) (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}

// preadAll reads n bytes at off from fd (fewer at EOF).
func preadAll(fd int, off int64, n int64) ([]byte, error) {
	buf := make([]byte, n)
	total := 0
	for int64(total) < n {
		nr, err := syscall.Pread(fd, buf[total:], off+int64(total))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if nr == 0 {
			break
		}
		total += nr
	}
	return buf[:total], nil
}

// pwriteAll writes data at off to fd.
func pwriteAll(fd int, data []byte, off int64) error {
	for len(data) > 0 {
		nw, err := syscall.Pwrite(fd, data, off)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		data, off = data[nw:], off+int64(nw)
	}
	return nil
}

func ftruncate(fd int, size int64) error {
	for {
		err := syscall.Ftruncate(fd, size)
		if err != syscall.EINTR {
			return err
		}
	}
}

// write writes data at off through h and, while tracking, records it with
// the bytes it overwrites. It is the only way node.go writes file data.
func (s *server) write(h *handle, ino uint64, path string, pid uint32, data []byte, off int64) (int, syscall.Errno) {
	if !s.track.on.Load() {
		return h.pwrite(data, off)
	}
	fd, ok := h.lf.PassthroughFd()
	if !ok {
		return 0, syscall.EBADF
	}
	fl := s.track.file(ino, path, fd)
	if fl == nil {
		return h.pwrite(data, off)
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	oldSize, err := fdSize(fd)
	if err != nil {
		return 0, fs.ToErrno(err)
	}
	var old []byte
	if off < oldSize {
		if old, err = preadAll(fd, off, min(int64(len(data)), oldSize-off)); err != nil {
			return 0, fs.ToErrno(err)
		}
	}
	nw, errno := h.pwrite(data, off)
	if nw > 0 {
		if len(old) > nw {
			old = old[:nw]
		}
		fl.entries = append(fl.entries, undoEntry{
			op: plan.OpWrite, path: path, idx: s.track.nextIdx(path), pid: pid,
			off: off, data: slices.Clone(data[:nw]), old: old, oldSize: oldSize,
		})
	}
	return nw, errno
}

// allocate runs do, a fallocate of the file open at fd, and while tracking
// records the size it grows the file to (fallocate with mode 0 or
// KEEP_SIZE changes no byte; other modes, such as punching holes, are not
// modelled).
func (s *server) allocate(ino uint64, path string, pid uint32, fd int, do func() syscall.Errno) syscall.Errno {
	if fd < 0 {
		return do()
	}
	fl := s.track.file(ino, path, fd)
	if fl == nil {
		return do()
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	oldSize, err := fdSize(fd)
	if err != nil {
		return do()
	}
	errno := do()
	if errno != 0 {
		return errno
	}
	if newSize, err := fdSize(fd); err == nil && newSize > oldSize {
		fl.entries = append(fl.entries, undoEntry{op: plan.OpFallocate, path: path, idx: s.track.nextIdx(path), pid: pid,
			off: newSize, oldSize: oldSize})
	}
	return errno
}

// truncate runs do, which sets the size of the file at path to size
// (through fd when fd >= 0), and while tracking records it.
func (s *server) truncate(ino uint64, path string, pid uint32, fd int, size int64, do func() syscall.Errno) syscall.Errno {
	fl := s.track.file(ino, path, fd)
	if fl == nil {
		return do()
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fd < 0 {
		f, err := os.Open(filepath.Join(s.backing, path))
		if err != nil {
			return do()
		}
		defer f.Close()
		fd = int(f.Fd())
	}
	oldSize, err := fdSize(fd)
	if err != nil {
		return do()
	}
	var old []byte
	if size < oldSize {
		if old, err = preadAll(fd, size, oldSize-size); err != nil {
			return fs.ToErrno(err)
		}
	}
	errno := do()
	if errno == 0 && size != oldSize {
		fl.entries = append(fl.entries, undoEntry{op: plan.OpTruncate, path: path, idx: s.track.nextIdx(path), pid: pid,
			off: size, old: old, oldSize: oldSize})
	}
	return errno
}

// synced records a successful fsync or fdatasync of the file ino: its
// unsynced writes are now durable.
func (s *server) synced(ino uint64) {
	fl := s.track.logged(ino)
	if fl == nil {
		return
	}
	fl.mu.Lock()
	fl.entries = nil
	fl.mu.Unlock()
}

// dropUnsynced reverts the unsynced writes of file ino through fd, as a
// failed fsync with drop=unsynced does, and traces each as dropped.
func (s *server) dropUnsynced(ino uint64, fd int, rule int, why string) {
	fl := s.track.logged(ino)
	if fl == nil {
		return
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for i := len(fl.entries) - 1; i >= 0; i-- {
		if err := undo(fd, &fl.entries[i]); err != nil {
			fmt.Fprintf(s.stderr, "faultfs: drop=unsynced: revert %s: %v\n", fl.entries[i].path, err)
		}
	}
	for i := range fl.entries {
		e := &fl.entries[i]
		s.traceRecord(unsyncedRecord(e, rule, UnsyncedDropped, 0, why))
	}
	fl.entries = nil
}

// undo reverts one entry on the file open at fd, which must be in the state
// right after the entry's op (undo entries newest first).
func undo(fd int, e *undoEntry) error {
	switch e.op {
	case plan.OpWrite:
		if err := pwriteAll(fd, e.old, e.off); err != nil {
			return err
		}
		if e.off+int64(len(e.data)) > e.oldSize {
			return ftruncate(fd, e.oldSize)
		}
	default: // truncate, fallocate: off is the new size
		if err := ftruncate(fd, e.oldSize); err != nil {
			return err
		}
		if e.off < e.oldSize {
			return pwriteAll(fd, e.old, e.off)
		}
	}
	return nil
}

// sectorSpan returns the sector indices a write [off, off+n) touches: the
// first absolute sector and how many.
func sectorSpan(off, n, sector int64) (first, count int64) {
	if n <= 0 {
		return off / sector, 0
	}
	first = off / sector
	return first, (off+n-1)/sector - first + 1
}

// replay applies entry e (kept whole, or only the sectors marked in kept
// when kept is not nil) to the file at fd and returns the bytes written.
func replay(fd int, e *undoEntry, kept []bool, sector int64) (int64, error) {
	if e.op != plan.OpWrite {
		return 0, ftruncate(fd, e.off)
	}
	if kept == nil {
		return int64(len(e.data)), pwriteAll(fd, e.data, e.off)
	}
	var n int64
	for _, r := range keptRanges(e.off, int64(len(e.data)), sector, kept) {
		lo, hi := r[0], r[1]
		if err := pwriteAll(fd, e.data[lo-e.off:hi-e.off], lo); err != nil {
			return n, err
		}
		n += hi - lo
	}
	return n, nil
}

// keptRanges returns the byte ranges [lo, hi) (absolute offsets) of a write
// [off, off+n) that its kept sectors cover (kept[k] for the write's k-th
// sector, as sectorSpan counts them): one range per run of consecutive kept
// sectors, clipped to the write, in order.
func keptRanges(off, n, sector int64, kept []bool) [][2]int64 {
	first, _ := sectorSpan(off, n, sector)
	var out [][2]int64
	for k := 0; k < len(kept); {
		if !kept[k] {
			k++
			continue
		}
		j := k
		for j < len(kept) && kept[j] {
			j++
		}
		out = append(out, [2]int64{max(off, (first+int64(k))*sector), min(off+n, (first+int64(j))*sector)})
		k = j
	}
	return out
}

// keptList formats kept sector indices as "0,2,3/8".
func keptList(kept []bool) string {
	var b strings.Builder
	for k, ok := range kept {
		if ok {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(k))
		}
	}
	return b.String() + "/" + strconv.Itoa(len(kept))
}

func unsyncedRecord(e *undoEntry, rule int, result string, n int64, why string) trace.Record {
	r := trace.Record{Kind: TraceKindUnsynced, Pid: e.pid, Op: trace.OpName(e.op), Path: e.path,
		Off: e.off, Result: result, N: n, Rule: rule, Fault: why}
	if e.op == plan.OpWrite {
		r.Len = int64(len(e.data))
	}
	return r
}

// ---------------------------------------------------------------------------
// Directory ops.

// dirChanged records an unsynced directory op made in directory dir (and,
// for a rename across directories, dir2).
func (s *server) dirChanged(op *dirOp, dir, dir2 uint64) {
	t := &s.track
	op.dirs = []uint64{dir}
	if dir2 != dir {
		op.dirs = append(op.dirs, dir2)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch op.op {
	case plan.OpCreate, plan.OpMkdir:
		delete(t.orphans, op.ino) // an inode number can be reused
		delete(t.files, op.ino)
	case plan.OpUnlink:
		if op.held != nil {
			t.orphans[op.heldIno] = false
			if fl := t.files[op.heldIno]; fl != nil {
				fl.path = ""
			}
		}
	case plan.OpRename:
		for _, fl := range t.files {
			fl.path = renamedPath(fl.path, op.path, op.to)
		}
		if op.held != nil {
			t.orphans[op.heldIno] = false
			if fl := t.files[op.heldIno]; fl != nil {
				fl.path = ""
			}
		}
	}
	t.dirops = append(t.dirops, op)
}

// renamedPath is p after renaming from to to (p itself or something under it).
func renamedPath(p, from, to string) string {
	switch {
	case p == from:
		return to
	case strings.HasPrefix(p, from+"/"):
		return to + p[len(from):]
	}
	return p
}

// dirSynced records a successful fsync of directory dir: the ops it covers
// are durable.
func (s *server) dirSynced(dir uint64) {
	if !s.track.on.Load() {
		return
	}
	t := &s.track
	t.mu.Lock()
	defer t.mu.Unlock()
	keep := t.dirops[:0]
	for _, op := range t.dirops {
		op.dirs = slices.DeleteFunc(op.dirs, func(d uint64) bool { return d == dir })
		if len(op.dirs) > 0 {
			keep = append(keep, op)
			continue
		}
		if op.held != nil { // the unlinked or replaced file is gone for good
			op.held.Close()
			t.orphans[op.heldIno] = true
			delete(t.files, op.heldIno)
		}
	}
	clear(t.dirops[len(keep):])
	t.dirops = keep
}

// holdForUndo opens the backing file at rel (regular files only) so that an
// unlink or a rename over it can be undone by a recover; nil when tracking
// is off or it is not a regular file.
func (s *server) holdForUndo(rel string) (*os.File, uint64) {
	if !s.track.on.Load() {
		return nil, 0
	}
	f, err := os.OpenFile(filepath.Join(s.backing, rel), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0
	}
	var st syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		f.Close()
		return nil, 0
	}
	return f, st.Ino
}

// exists reports whether rel exists in the backing dir (tracking only).
func (s *server) exists(rel string) bool {
	_, err := os.Lstat(filepath.Join(s.backing, rel))
	return err == nil
}

// ---------------------------------------------------------------------------
// The freeze.

// cutState is the power cut: the freeze and what it was.
type cutState struct {
	frozen  atomic.Bool
	gate    sync.RWMutex // ops that change files hold it shared; the cut takes it
	thaw    atomic.Pointer[chan struct{}]
	blocked atomic.Int64
	refused atomic.Int64 // kernel writebacks failed at once while frozen

	mu          sync.Mutex // serialises cut, recover and state
	cuts        int
	info        *CutInfo
	lastRecover *RecoverResult
	timers      []*time.Timer
}

func (c *cutState) init() {
	ch := make(chan struct{})
	close(ch)
	c.thaw.Store(&ch)
}

// enter is called at the start of every op but release and flush: it waits
// while the mount is frozen (returning the errno the op fails with) and
// otherwise holds the gate shared until the op's finish. pid is the
// caller's (0 for the kernel).
func (s *server) enter(ctx context.Context, pid uint32) syscall.Errno {
	for {
		if s.cut.frozen.Load() {
			return s.waitThaw(ctx, pid)
		}
		s.cut.gate.RLock()
		if !s.cut.frozen.Load() {
			return 0
		}
		s.cut.gate.RUnlock()
	}
}

// waitThaw blocks an op that arrived at a frozen mount until the recover (it
// then fails with EIO: it never runs) or until the kernel interrupts it
// because its process was killed (EINTR; nobody reads that reply). An op
// of the kernel itself (pid 0: the writeback of the page-cached, mmapped
// "-shm" files) fails with EIO at once instead: a process that dies with
// such a mapping waits, uninterruptibly, in its exit for that writeback
// (fuse_vma_close), so making it wait would keep the killed process alive.
func (s *server) waitThaw(ctx context.Context, pid uint32) syscall.Errno {
	if pid == 0 {
		s.cut.refused.Add(1)
		return syscall.EIO
	}
	s.cut.blocked.Add(1)
	defer s.cut.blocked.Add(-1)
	ch := *s.cut.thaw.Load()
	var cancel <-chan struct{}
	if fc, ok := ctx.(*fuse.Context); ok {
		cancel = fc.Cancel
	}
	select {
	case <-ch:
		return syscall.EIO
	case <-cancel:
		return syscall.EINTR
	}
}

// powerCut freezes the mount: it waits for the ops in flight, then no op
// runs any more until recover. It returns false when the mount was frozen
// already.
func (s *server) powerCut(ci CutInfo) bool {
	s.cut.mu.Lock()
	defer s.cut.mu.Unlock()
	if s.cut.frozen.Load() {
		return false
	}
	s.cut.gate.Lock()
	ch := make(chan struct{})
	s.cut.thaw.Store(&ch)
	s.cut.frozen.Store(true)
	s.cut.gate.Unlock()

	s.cut.cuts++
	ci.N = s.cut.cuts
	ci.T = trace.Now()
	ci.Tracking = s.track.on.Load()
	if ci.Keep == "" {
		ci.Keep = string(plan.CutNone)
	}
	if ci.Keep == string(plan.CutSectors) && ci.Sector == 0 {
		ci.Sector = 512
	}
	if ci.Tracking {
		st := s.track.stats()
		ci.Writes, ci.Files, ci.DirOps = st.Writes, st.Files, st.DirOps
	}
	s.cut.info = &ci
	s.traceRecord(trace.Record{T: ci.T, Kind: TraceKindPowerCut, Mark: ci.Trigger, Rule: ci.Rule, Op: trace.OpName(ci.Op),
		Path: ci.Path, Pid: ci.Pid, Fault: cutDesc(ci.Keep, ci.Sector), N: int64(ci.Writes), Len: int64(ci.DirOps)})
	s.flushTrace()
	if !ci.Tracking {
		fmt.Fprintf(s.stderr, "faultfs: power cut %d with the unsynced-write model off: recover will reset nothing\n", ci.N)
	}
	return true
}

func cutDesc(keep string, sector int64) string {
	d := "powercut keep=" + keep
	if keep == string(plan.CutSectors) {
		d += " sector=" + strconv.FormatInt(sector, 10)
	}
	return d
}

func (s *server) flushTrace() {
	if s.tr != nil {
		if err := s.tr.Flush(); err != nil {
			fmt.Fprintf(s.stderr, "faultfs: trace: %v\n", err)
		}
	}
}

// thaw unfreezes the mount: ops that waited fail with EIO, later ops run.
// The caller holds cut.mu.
func (s *server) thawLocked() {
	if !s.cut.frozen.Load() {
		return
	}
	s.cut.gate.Lock()
	s.cut.frozen.Store(false)
	close(*s.cut.thaw.Load())
	s.cut.gate.Unlock()
}

// thawForStop releases every waiting op before an unmount. The files stay
// as the cut left them (every unsynced write kept).
func (s *server) thawForStop() {
	s.cut.mu.Lock()
	defer s.cut.mu.Unlock()
	for _, t := range s.cut.timers {
		t.Stop()
	}
	if s.cut.frozen.Load() {
		fmt.Fprintf(s.stderr, "faultfs: stopping while frozen by power cut %d: files are left as at the cut\n", s.cut.info.N)
	}
	s.thawLocked()
}

// recoverCut resets every file to its synced content plus the unsynced
// writes the cut's keep mode picks, undoes the unsynced directory ops it
// drops, and unfreezes the mount.
func (s *server) recoverCut() (RecoverResult, error) {
	s.cut.mu.Lock()
	defer s.cut.mu.Unlock()
	if !s.cut.frozen.Load() {
		return RecoverResult{}, ErrNotCut
	}
	start := time.Now()
	ci := s.cut.info
	res := RecoverResult{Cut: ci.N, Keep: ci.Keep}
	var errs []error
	if ci.Tracking && s.track.on.Load() {
		errs = s.resetLocked(ci, &res)
	}
	res.Blocked = s.cut.blocked.Load()
	res.Refused = s.cut.refused.Swap(0)
	res.Duration = int64(time.Since(start))
	if len(errs) > 0 {
		res.Errors = errors.Join(errs...).Error()
	}
	s.traceRecord(trace.Record{Kind: TraceKindRecover, Rule: ci.Rule, Fault: cutDesc(ci.Keep, ci.Sector),
		N: int64(res.Kept + res.Torn), Mark: fmt.Sprintf("cut %d: writes kept %d, torn %d, dropped %d, gone %d of %d in %d files; dir ops kept %d, undone %d, unrestorable %d of %d",
			ci.N, res.Kept, res.Torn, res.Dropped, res.Gone, res.Writes, res.Files, res.DirKept, res.DirUndone, res.Unrestorable, res.DirOps)})
	s.flushTrace()
	s.cut.lastRecover = &res
	s.thawLocked()
	return res, nil
}

// resetLocked applies the cut to the backing files (the mount is frozen and
// no op is in flight).
func (s *server) resetLocked(ci *CutInfo, res *RecoverResult) []error {
	t := &s.track
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	keep := plan.CutKeep(ci.Keep)
	why := cutDesc(ci.Keep, ci.Sector)
	sector := ci.Sector

	// Directory ops: a prefix of them survives.
	n := len(t.dirops)
	k := 0
	switch keep {
	case plan.CutAll:
		k = n
	case plan.CutRandom, plan.CutSectors:
		k = int(plan.Draw(s.seed, ci.Rule, "", uint64(ci.N), plan.PurposeCutDirOps) % uint64(n+1))
	}
	res.DirOps, res.DirKept = n, k
	for i := n - 1; i >= k; i-- {
		op := t.dirops[i]
		result := UnsyncedDropped
		if err := s.undoDirOpLocked(op); err != nil {
			result = UnsyncedUnrestorable
			res.Unrestorable++
			errs = append(errs, err)
		} else {
			res.DirUndone++
		}
		s.traceRecord(trace.Record{Kind: TraceKindUnsynced, Pid: op.pid, Op: trace.OpName(op.op), Path: op.path, To: op.to,
			Result: result, Rule: ci.Rule, Fault: why})
	}
	for _, op := range t.dirops[:k] {
		s.traceRecord(trace.Record{Kind: TraceKindUnsynced, Pid: op.pid, Op: trace.OpName(op.op), Path: op.path, To: op.to,
			Result: UnsyncedKept, Rule: ci.Rule, Fault: why})
	}

	// Files, in path order so that the trace is in a stable order.
	logs := make([]*fileLog, 0, len(t.files))
	for _, fl := range t.files {
		if len(fl.entries) > 0 {
			logs = append(logs, fl)
		}
	}
	sort.Slice(logs, func(i, j int) bool {
		if logs[i].path != logs[j].path {
			return logs[i].path < logs[j].path
		}
		return logs[i].ino < logs[j].ino
	})
	for _, fl := range logs {
		res.Writes += len(fl.entries)
		if fl.path == "" {
			for i := range fl.entries {
				if fl.uncreated {
					res.Dropped++
					s.traceRecord(unsyncedRecord(&fl.entries[i], ci.Rule, UnsyncedDropped, 0, why+" (the file's create was undone)"))
					continue
				}
				res.Gone++
				s.traceRecord(unsyncedRecord(&fl.entries[i], ci.Rule, UnsyncedGone, 0, why+" (the file no longer exists)"))
			}
			continue
		}
		if err := s.resetFile(fl, ci, keep, sector, why, res); err != nil {
			errs = append(errs, fmt.Errorf("reset %s: %w", fl.path, err))
		}
	}
	t.clearLocked()
	return errs
}

// resetFile reverts fl's unsynced writes and replays the kept ones.
func (s *server) resetFile(fl *fileLog, ci *CutInfo, keep plan.CutKeep, sector int64, why string, res *RecoverResult) error {
	f, err := os.OpenFile(filepath.Join(s.backing, fl.path), os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		for i := range fl.entries {
			res.Gone++
			s.traceRecord(unsyncedRecord(&fl.entries[i], ci.Rule, UnsyncedGone, 0, why+" ("+err.Error()+")"))
		}
		return nil
	}
	defer f.Close()
	fd := int(f.Fd())
	res.Files++
	for i := len(fl.entries) - 1; i >= 0; i-- {
		if err := undo(fd, &fl.entries[i]); err != nil {
			return err
		}
	}
	for i := range fl.entries {
		e := &fl.entries[i]
		var kept []bool // keep=sectors: the kept sectors of a write
		whole := false
		switch keep {
		case plan.CutAll:
			whole = true
		case plan.CutRandom:
			whole = plan.Kept(plan.Draw(s.seed, ci.Rule, e.path, e.idx, plan.PurposeCutKeep))
		case plan.CutSectors:
			if e.op == plan.OpWrite {
				_, cnt := sectorSpan(e.off, int64(len(e.data)), sector)
				kept = plan.KeptSectors(plan.Draw(s.seed, ci.Rule, e.path, e.idx, plan.PurposeCutSectors), int(cnt))
				all, none := true, true
				for _, k := range kept {
					all, none = all && k, none && !k
				}
				switch {
				case all:
					whole, kept = true, nil
				case none:
					kept = nil
				}
			} else {
				whole = plan.Kept(plan.Draw(s.seed, ci.Rule, e.path, e.idx, plan.PurposeCutKeep))
			}
		}
		switch {
		case whole:
			nb, err := replay(fd, e, nil, sector)
			if err != nil {
				return err
			}
			res.Kept++
			s.traceRecord(unsyncedRecord(e, ci.Rule, UnsyncedKept, nb, why))
		case kept != nil:
			nb, err := replay(fd, e, kept, sector)
			if err != nil {
				return err
			}
			res.Torn++
			s.traceRecord(unsyncedRecord(e, ci.Rule, UnsyncedTorn, nb, why+" kept="+keptList(kept)))
		default:
			res.Dropped++
			s.traceRecord(unsyncedRecord(e, ci.Rule, UnsyncedDropped, 0, why))
		}
	}
	return nil
}

// undoDirOpLocked reverts one unsynced directory op on the backing dir
// (ops are undone newest first, so the backing is in the state right after
// it).
func (s *server) undoDirOpLocked(op *dirOp) error {
	t := &s.track
	abs := func(rel string) string { return filepath.Join(s.backing, rel) }
	defer func() {
		if op.held != nil {
			op.held.Close()
			op.held = nil
		}
	}()
	switch op.op {
	case plan.OpCreate, plan.OpMkdir:
		if err := os.RemoveAll(abs(op.path)); err != nil {
			return fmt.Errorf("undo %s %s: %w", op.op, op.path, err)
		}
		for _, fl := range t.files {
			if fl.path == op.path || strings.HasPrefix(fl.path, op.path+"/") {
				fl.path, fl.uncreated = "", true
			}
		}
	case plan.OpUnlink:
		if op.held == nil {
			return fmt.Errorf("undo unlink %s: the file's content was not kept (not a regular file)", op.path)
		}
		if err := restoreFile(op.held, abs(op.path)); err != nil {
			return fmt.Errorf("undo unlink %s: %w", op.path, err)
		}
		if fl := t.files[op.heldIno]; fl != nil {
			fl.path = op.path
		}
	case plan.OpRename:
		if err := os.Rename(abs(op.to), abs(op.path)); err != nil {
			return fmt.Errorf("undo rename %s -> %s: %w", op.path, op.to, err)
		}
		for _, fl := range t.files {
			fl.path = renamedPath(fl.path, op.to, op.path)
		}
		if op.held != nil {
			if err := restoreFile(op.held, abs(op.to)); err != nil {
				return fmt.Errorf("undo rename %s -> %s: restore the replaced %s: %w", op.path, op.to, op.to, err)
			}
			if fl := t.files[op.heldIno]; fl != nil {
				fl.path = op.to
			}
		}
	}
	return nil
}

// restoreFile recreates the file at path with the content and mode of the
// (unlinked) file held open as src; path must not exist.
func restoreFile(src *os.File, path string) error {
	st, err := src.Stat()
	if err != nil {
		return err
	}
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, io.NewSectionReader(src, 0, st.Size())); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// ---------------------------------------------------------------------------
// Triggers.

// armTimers starts a timer for each timed powercut rule of the plan just
// loaded (generation gen), stopping those of the previous plan.
func (s *server) armTimers(p *plan.Plan, gen uint64) {
	s.cut.mu.Lock()
	defer s.cut.mu.Unlock()
	for _, t := range s.cut.timers {
		t.Stop()
	}
	s.cut.timers = nil
	for i, r := range p.Rules {
		if !r.Timed() {
			continue
		}
		rule := i + 1
		s.cut.timers = append(s.cut.timers, time.AfterFunc(r.AfterDur, func() {
			if d, ok := s.eng.FireTimed(gen, rule); ok {
				s.powerCut(CutInfo{Trigger: "timer", Rule: rule, Keep: string(d.Cut), Sector: d.Sector})
			}
		}))
	}
}

// needsTracking reports whether a plan has a rule that needs the model.
func needsTracking(p *plan.Plan) bool {
	for _, r := range p.Rules {
		if r.Kind == plan.KindPowercut || r.DropUnsynced {
			return true
		}
	}
	return false
}

// state returns the model's and the cut's state.
func (s *server) state() State {
	st := State{Tracking: s.track.on.Load(), Blocked: s.cut.blocked.Load()}
	if st.Tracking {
		st.Unsynced = s.track.stats()
	}
	s.cut.mu.Lock()
	defer s.cut.mu.Unlock()
	st.Frozen = s.cut.frozen.Load()
	st.Cuts = s.cut.cuts
	if s.cut.info != nil {
		ci := *s.cut.info
		st.Cut = &ci
	}
	if s.cut.lastRecover != nil {
		r := *s.cut.lastRecover
		st.LastRecover = &r
	}
	return st
}

// ---------------------------------------------------------------------------
// The Mount side (the runner's API).

// PowerCut cuts the power now (see Client.PowerCut).
func (m *Mount) PowerCut(opt PowerCutOptions) error { return m.client.PowerCut(opt) }

// Recover resets the files after a power cut and unfreezes the mount (see
// Client.Recover). Kill every process using the mount first.
func (m *Mount) Recover() (RecoverResult, error) { return m.client.Recover() }

// Track switches the unsynced-write model on or off (see Client.Track).
func (m *Mount) Track(on bool) error { return m.client.Track(on) }

// PowerState returns the unsynced-write model's and the power cut's state.
func (m *Mount) PowerState() (State, error) { return m.client.State() }

// WaitCut waits until a power cut has frozen the mount (a plan rule's, a
// timer's or a control request's) and returns it; ctx bounds the wait.
func (m *Mount) WaitCut(ctx context.Context) (CutInfo, error) { return m.client.WaitCut(ctx) }
