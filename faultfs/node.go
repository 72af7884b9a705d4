package faultfs

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/faultfs/trace"
)

// node is a loopback node whose operations consult the fault engine first.
// go-fuse's bridge prefers node-level methods over file-handle methods, so
// every data path (read, write, fsync, ...) is overridden here.
type node struct {
	*fs.LoopbackNode
	s *server
}

// handle is an open file. It holds the loopback file in a named field, NOT
// embedded: an embedded *fs.LoopbackFile would promote PassthroughFd, the
// kernel would then serve READ/WRITE from the backing fd itself, and no fault
// could ever fire on them.
type handle struct {
	lf   *fs.LoopbackFile
	ino  *fs.Inode
	pid  uint32 // the process that opened it
	base string // base name at open time
}

var (
	_ fs.NodeWrapChilder    = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeReader         = (*node)(nil)
	_ fs.NodeWriter         = (*node)(nil)
	_ fs.NodeWritever       = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
	_ fs.NodeFlusher        = (*node)(nil)
	_ fs.NodeReleaser       = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeStatxer        = (*node)(nil)
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeAllocater      = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.FileLseeker        = (*handle)(nil)
)

// WrapChild makes every node created under the root a faulting node.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), s: n.s}
}

// callerTid returns the kernel task id in the request header: the thread
// that issued it (0 for kernel-initiated requests such as writeback).
func callerTid(ctx context.Context) uint32 {
	if c, ok := ctx.(*fuse.Context); ok {
		return c.Pid
	}
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Pid
	}
	return 0
}

// relPath is the node's path relative to the mount root.
func (n *node) relPath() string { return n.Path(nil) }

func (n *node) childPath(name string) string {
	p := n.relPath()
	if p == "" {
		return name
	}
	return p + "/" + name
}

// unwrap returns the loopback file behind fh, or fh itself when it is not one
// of ours (directory streams), so LoopbackNode methods see what they expect.
func unwrap(fh fs.FileHandle) fs.FileHandle {
	if h, ok := fh.(*handle); ok {
		return h.lf
	}
	return fh
}

// directIO reports whether a file is opened with FOPEN_DIRECT_IO: everything
// except -shm, which SQLite mmaps and must stay page-cached.
func directIO(name string) bool { return !strings.HasSuffix(name, "-shm") }

// isWalOrShm reports whether unlink/rename/truncate of name records holders.
func isWalOrShm(name string) bool {
	return strings.HasSuffix(name, "-wal") || strings.HasSuffix(name, "-shm")
}

// isMainDB reports whether writes to name are checked for header mode flips.
func isMainDB(name string) bool {
	return !isWalOrShm(name) && !strings.HasSuffix(name, "-journal")
}

// opCall is one operation in flight: what the engine decided and what the
// trace will say about it.
type opCall struct {
	s     *server
	call  plan.Call
	d     plan.Decision
	fired bool
	start int64
	size  *int64        // the file's size after the op (main db files), for the trace
	gated bool          // holds the power cut's gate (see enter) until finish
	cut   syscall.Errno // the mount was frozen by a power cut: the op fails with this and never runs
}

// noteSize records the backing file's size after the op when the trace is
// on and the file is a main database file.
func (c *opCall) noteSize(h *handle) {
	if c.s.tr == nil || !isMainDB(h.base) {
		return
	}
	fd, ok := h.lf.PassthroughFd()
	if !ok {
		return
	}
	var st syscall.Stat_t
	if syscall.Fstat(fd, &st) == nil {
		c.size = &st.Size
	}
}

// begin consults the engine for one op and applies a delay decision. On a
// mount frozen by a power cut it waits instead (see enter) and the op fails
// without running; release and flush, which change no data and which the
// kernel sends from dying processes, never wait. A powercut decision cuts
// the power before the op runs.
func (s *server) begin(ctx context.Context, op plan.Op, path string, off, n int64) opCall {
	c := opCall{s: s, call: plan.Call{Op: op, Path: path, Off: off, Len: n, Pid: s.pids.tgid(callerTid(ctx))}}
	if s.tr != nil {
		c.start = trace.Now()
	}
	if op != plan.OpRelease && op != plan.OpFlush {
		if c.cut = s.enter(ctx, c.call.Pid); c.cut != 0 {
			return c
		}
		c.gated = true
	}
	c.d, c.fired = s.eng.Decide(c.call)
	if c.fired && c.d.Kind == plan.KindPowercut {
		c.leave()
		s.powerCut(CutInfo{Trigger: "rule", Rule: c.d.Rule, Op: string(op), Path: path, Pid: c.call.Pid,
			Keep: string(c.d.Cut), Sector: c.d.Sector})
		if op != plan.OpRelease && op != plan.OpFlush {
			c.cut = s.waitThaw(ctx, c.call.Pid)
		}
		return c
	}
	if c.fired && c.d.Kind == plan.KindDelay && c.d.Delay > 0 {
		sleepCtx(ctx, c.d.Delay)
	}
	return c
}

// leave releases the power cut's gate taken by begin.
func (c *opCall) leave() {
	if c.gated {
		c.gated = false
		c.s.cut.gate.RUnlock()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	var cancel <-chan struct{}
	if fc, ok := ctx.(*fuse.Context); ok {
		cancel = fc.Cancel
	}
	select {
	case <-t.C:
	case <-cancel:
	}
}

// errno returns the errno the decision fails the op with, or 0 when the
// decision lets the op run (delay, or a data fault the op applies itself).
func (c *opCall) errno() syscall.Errno {
	if c.cut != 0 {
		return c.cut
	}
	if !c.fired {
		return 0
	}
	switch c.d.Kind {
	case plan.KindErrno, plan.KindEIO:
		if c.d.Errno == 0 {
			return syscall.EIO
		}
		return c.d.Errno
	}
	return 0
}

// kind returns the fired decision's kind, or "" when nothing fired.
func (c *opCall) kind() plan.Kind {
	if !c.fired {
		return ""
	}
	return c.d.Kind
}

// done traces the op (all ops, or only fired ones) and returns errno.
func (c *opCall) done(errno syscall.Errno, nbytes int64) syscall.Errno {
	c.finish(errno, nbytes, "", nil)
	return errno
}

func (c *opCall) finish(errno syscall.Errno, nbytes int64, to string, holders []uint32) {
	c.leave()
	s := c.s
	if s.tr == nil || c.cut != 0 || (s.faultsOnly && !c.fired && len(holders) == 0) {
		return // an op stopped by a power cut never ran: the "powercut" record says why
	}
	r := trace.Record{
		T:       c.start,
		Kind:    trace.KindOp,
		Pid:     c.call.Pid,
		Op:      trace.OpName(c.call.Op),
		Path:    c.call.Path,
		To:      to,
		Off:     c.call.Off,
		Len:     c.call.Len,
		Result:  errnoName(errno),
		N:       nbytes,
		Holders: holders,
		Size:    c.size,
	}
	if c.fired {
		r.Rule = c.d.Rule
		r.Fault = c.d.Desc
		if r.Fault == "" {
			r.Fault = string(c.d.Kind)
		}
	}
	s.traceRecord(r)
}

func errnoName(e syscall.Errno) string {
	if e == 0 {
		return "ok"
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return "errno" + itoa(int64(e))
}

// Open opens a file; db, WAL and journal files get direct I/O.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	path := n.relPath()
	c := n.s.begin(ctx, plan.OpOpen, path, 0, 0)
	if e := c.errno(); e != 0 {
		return nil, 0, c.done(e, 0)
	}
	fh, fuseFlags, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, c.done(errno, 0)
	}
	h := n.s.newHandle(fh, n.EmbeddedInode(), c.call.Pid, path)
	c.noteSize(h)
	c.done(0, 0)
	return h, n.s.openFlags(fuseFlags, h.base), 0
}

// Create creates and opens a file.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	path := n.childPath(name)
	c := n.s.begin(ctx, plan.OpCreate, path, 0, 0)
	if e := c.errno(); e != 0 {
		return nil, nil, 0, c.done(e, 0)
	}
	tracking := n.s.track.on.Load()
	existed := tracking && n.s.exists(path)
	ino, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, c.done(errno, 0)
	}
	if tracking && !existed {
		n.s.dirChanged(&dirOp{op: plan.OpCreate, path: path, pid: c.call.Pid, ino: ino.StableAttr().Ino},
			n.StableAttr().Ino, n.StableAttr().Ino)
	}
	h := n.s.newHandle(fh, ino, c.call.Pid, path)
	c.noteSize(h)
	c.done(0, 0)
	return ino, h, n.s.openFlags(fuseFlags, name), 0
}

func (s *server) openFlags(fuseFlags uint32, base string) uint32 {
	fuseFlags &^= fuse.FOPEN_KEEP_CACHE
	if s.directIO && directIO(base) {
		fuseFlags |= fuse.FOPEN_DIRECT_IO
	}
	return fuseFlags
}

// Read reads at off, applying errno, short-read and bit-flip faults.
func (n *node) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, ok := f.(*handle)
	if !ok {
		return nil, syscall.EBADF
	}
	c := n.s.begin(ctx, plan.OpRead, n.relPath(), off, int64(len(dest)))
	if e := c.errno(); e != 0 {
		return nil, c.done(e, 0)
	}
	nr, errno := h.pread(dest, off)
	if errno != 0 {
		return nil, c.done(errno, 0)
	}
	data := dest[:nr]
	switch c.kind() {
	case plan.KindShort:
		if keep := c.d.Keep; keep < int64(len(data)) {
			data = data[:max(keep, 0)]
		}
	case plan.KindFlip:
		flipBit(data, c.d.FlipBit)
	}
	c.done(0, int64(len(data)))
	return fuse.ReadResultData(data), 0
}

// Write writes at off, applying errno, torn, lost and bit-flip faults.
func (n *node) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	h, ok := f.(*handle)
	if !ok {
		return 0, syscall.EBADF
	}
	path := n.relPath()
	c := n.s.begin(ctx, plan.OpWrite, path, off, int64(len(data)))
	if e := c.errno(); e != 0 {
		return 0, c.done(e, 0)
	}
	var old [2]byte
	headerCheck := off == 0 && len(data) >= 20 && isMainDB(h.base) &&
		string(data[:16]) == "SQLite format 3\x00" && h.preadFull(old[:], 18)

	var (
		persisted int64
		reported  uint32
		errno     syscall.Errno
	)
	switch c.kind() {
	case plan.KindLost:
		reported = uint32(len(data))
	case plan.KindTorn:
		if c.d.Tail || c.d.Sector > 0 {
			return n.writeTorn(&c, f, h, path, data, off, headerCheck, old)
		}
		keep := min(max(c.d.Keep, 0), int64(len(data)))
		var nw int
		if keep > 0 {
			nw, errno = n.s.write(h, n.StableAttr().Ino, path, c.call.Pid, data[:keep], off)
		}
		persisted = int64(nw)
		if errno == 0 {
			if c.d.ThenOK {
				reported = uint32(len(data))
			} else if errno = c.d.Errno; errno == 0 {
				errno = syscall.EIO
			}
		}
	case plan.KindFlip:
		buf := make([]byte, len(data))
		copy(buf, data)
		flipBit(buf, c.d.FlipBit)
		data = buf
		fallthrough
	default:
		var nw int
		nw, errno = n.s.write(h, n.StableAttr().Ino, path, c.call.Pid, data, off)
		persisted, reported = int64(nw), uint32(nw)
	}
	n.s.captureWrite(f, path, data[:persisted], off)
	c.noteSize(h)
	c.done(errno, persisted)
	if headerCheck && persisted >= 20 && (old[0] != data[18] || old[1] != data[19]) {
		n.s.traceRecord(trace.Record{
			Kind: trace.KindHeader, Pid: c.call.Pid, Op: trace.OpWrite, Path: path,
			OldMode: modeString(old[0], old[1]), NewMode: modeString(data[18], data[19]),
		})
	}
	return reported, errno
}

// Writev joins the vectors and writes them as one op (the kernel hands
// multi-vector writes to the server only with some transports).
func (n *node) Writev(ctx context.Context, f fs.FileHandle, iov [][]byte, off int64) (uint32, syscall.Errno) {
	if len(iov) == 1 {
		return n.Write(ctx, f, iov[0], off)
	}
	var sz int
	for _, v := range iov {
		sz += len(v)
	}
	buf := make([]byte, 0, sz)
	for _, v := range iov {
		buf = append(buf, v...)
	}
	return n.Write(ctx, f, buf, off)
}

func modeString(a, b byte) string { return itoa(int64(a)) + "/" + itoa(int64(b)) }

// flipBit flips bit (taken modulo the data's bit length) in data.
func flipBit(data []byte, bit int64) {
	if len(data) == 0 {
		return
	}
	nbits := int64(len(data)) * 8
	bit %= nbits
	if bit < 0 {
		bit += nbits
	}
	data[bit/8] ^= 1 << (bit % 8)
}

// Fsync syncs the file; a "lost" decision reports success without syncing.
// A successful fsync or fdatasync makes the file's unsynced writes durable
// in the unsynced-write model; an errno decision with drop=unsynced reverts
// them. (Directory handles come through dirHandle.Fsyncdir.)
func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	c := n.s.begin(ctx, plan.OpFsync, n.relPath(), 0, 0)
	if e := c.errno(); e != 0 {
		if c.cut == 0 && c.d.DropUnsynced {
			if fd := fdOf(f); fd >= 0 {
				n.s.dropUnsynced(n.StableAttr().Ino, fd, c.d.Rule, c.d.Desc)
			}
		}
		return c.done(e, 0)
	}
	if c.kind() == plan.KindLost {
		return c.done(0, 0)
	}
	var errno syscall.Errno
	switch fh := unwrap(f).(type) {
	case fs.FileFsyncer:
		errno = fh.Fsync(ctx, flags)
	case fs.FileFsyncdirer:
		errno = fh.Fsyncdir(ctx, flags)
	}
	n.s.captureSync(f, c.start, c.call.Path, errno)
	if errno == 0 {
		n.s.synced(n.StableAttr().Ino)
	}
	return c.done(errno, 0)
}

// Flush is called on every close(2) of a descriptor.
func (n *node) Flush(ctx context.Context, f fs.FileHandle) syscall.Errno {
	c := n.s.begin(ctx, plan.OpFlush, n.relPath(), 0, 0)
	if e := c.errno(); e != 0 {
		return c.done(e, 0)
	}
	var errno syscall.Errno
	if fl, ok := unwrap(f).(fs.FileFlusher); ok {
		errno = fl.Flush(ctx)
	}
	return c.done(errno, 0)
}

// Release closes the handle. The backing fd is always closed; an injected
// errno is only traced (the kernel ignores release errors).
func (n *node) Release(ctx context.Context, f fs.FileHandle) syscall.Errno {
	c := n.s.begin(ctx, plan.OpRelease, n.relPath(), 0, 0)
	if h, ok := f.(*handle); ok {
		n.s.dropHandle(h)
	}
	var errno syscall.Errno
	if r, ok := unwrap(f).(fs.FileReleaser); ok {
		errno = r.Release(ctx)
	}
	if e := c.errno(); e != 0 {
		errno = e
	}
	return c.done(errno, 0)
}

// Setattr changes attributes; a size change is the op "truncate".
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	path := n.relPath()
	op, off := plan.OpSetattr, int64(0)
	sz, isTrunc := in.GetSize()
	if isTrunc {
		op, off = plan.OpTruncate, int64(sz)
	}
	c := n.s.begin(ctx, op, path, off, 0)
	var holders []uint32
	if isTrunc && isWalOrShm(path) {
		holders = n.s.holders(n.EmbeddedInode(), c.call.Pid)
	}
	errno := c.errno()
	if errno == 0 {
		setattr := func() syscall.Errno { return n.LoopbackNode.Setattr(ctx, unwrap(f), in, out) }
		if isTrunc {
			errno = n.s.truncate(n.StableAttr().Ino, path, c.call.Pid, fdOf(f), int64(sz), setattr)
		} else {
			errno = setattr()
		}
	}
	n.s.captureSetattr(f, path, isTrunc, int64(sz), errno)
	if isTrunc && errno == 0 && n.s.tr != nil && isMainDB(filepath.Base(path)) {
		size := int64(sz)
		c.size = &size
	}
	c.finish(errno, 0, "", holders)
	return errno
}

// Getattr stats the node (through the open file when there is one).
func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	c := n.s.begin(ctx, plan.OpGetattr, n.relPath(), 0, 0)
	if e := c.errno(); e != 0 {
		return c.done(e, 0)
	}
	return c.done(n.LoopbackNode.Getattr(ctx, unwrap(f), out), 0)
}

// Statx is getattr for kernels that send FUSE_STATX.
func (n *node) Statx(ctx context.Context, f fs.FileHandle, flags uint32, mask uint32, out *fuse.StatxOut) syscall.Errno {
	c := n.s.begin(ctx, plan.OpGetattr, n.relPath(), 0, 0)
	if e := c.errno(); e != 0 {
		return c.done(e, 0)
	}
	return c.done(n.LoopbackNode.Statx(ctx, unwrap(f), flags, mask, out), 0)
}

// Lookup resolves name in this directory.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	c := n.s.begin(ctx, plan.OpLookup, n.childPath(name), 0, 0)
	if e := c.errno(); e != 0 {
		return nil, c.done(e, 0)
	}
	ino, errno := n.LoopbackNode.Lookup(ctx, name, out)
	// ENOENT is the common, expected answer of a lookup; trace it only when
	// a rule fired, to keep the trace about I/O.
	if errno == syscall.ENOENT && !c.fired {
		c.leave()
		return nil, errno
	}
	return ino, c.done(errno, 0)
}

// Mkdir creates a directory.
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	c := n.s.begin(ctx, plan.OpMkdir, n.childPath(name), 0, 0)
	if e := c.errno(); e != 0 {
		return nil, c.done(e, 0)
	}
	ino, errno := n.LoopbackNode.Mkdir(ctx, name, mode, out)
	if errno == 0 && n.s.track.on.Load() {
		n.s.dirChanged(&dirOp{op: plan.OpMkdir, path: c.call.Path, pid: c.call.Pid, ino: ino.StableAttr().Ino},
			n.StableAttr().Ino, n.StableAttr().Ino)
	}
	return ino, c.done(errno, 0)
}

// OpendirHandle opens a directory for reading (the op "readdir").
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	c := n.s.begin(ctx, plan.OpReaddir, n.relPath(), 0, 0)
	if e := c.errno(); e != 0 {
		return nil, 0, c.done(e, 0)
	}
	fh, ff, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno == 0 {
		fh = &dirHandle{FileHandle: fh, n: n}
	}
	return fh, ff, c.done(errno, 0)
}

// Unlink removes name, recording who still held a -wal/-shm open.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	path := n.childPath(name)
	c := n.s.begin(ctx, plan.OpUnlink, path, 0, 0)
	var holders []uint32
	if isWalOrShm(name) {
		if ch := n.GetChild(name); ch != nil {
			holders = n.s.holders(ch, c.call.Pid)
		}
	}
	errno := c.errno()
	if errno == 0 {
		held, heldIno := n.s.holdForUndo(path)
		if ch := n.GetChild(name); ch != nil && held != nil {
			heldIno = ch.StableAttr().Ino
		}
		if errno = n.LoopbackNode.Unlink(ctx, name); errno == 0 && n.s.track.on.Load() {
			n.s.dirChanged(&dirOp{op: plan.OpUnlink, path: path, pid: c.call.Pid, held: held, heldIno: heldIno},
				n.StableAttr().Ino, n.StableAttr().Ino)
		} else if held != nil {
			held.Close()
		}
	}
	c.finish(errno, 0, "", holders)
	return errno
}

// Rename renames name; holders of a -wal/-shm source or target are recorded.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	path := n.childPath(name)
	to := newName
	if np := newParent.EmbeddedInode().Path(nil); np != "" {
		to = np + "/" + newName
	}
	c := n.s.begin(ctx, plan.OpRename, path, 0, 0)
	var holders []uint32
	if isWalOrShm(name) {
		if ch := n.GetChild(name); ch != nil {
			holders = n.s.holders(ch, c.call.Pid)
		}
	}
	if isWalOrShm(newName) {
		if ch := newParent.EmbeddedInode().GetChild(newName); ch != nil {
			holders = mergePids(holders, n.s.holders(ch, c.call.Pid))
		}
	}
	errno := c.errno()
	if errno == 0 {
		var held *os.File
		var heldIno uint64
		if flags == 0 && n.s.track.on.Load() && n.s.exists(to) {
			if held, heldIno = n.s.holdForUndo(to); held != nil {
				if ch := newParent.EmbeddedInode().GetChild(newName); ch != nil {
					heldIno = ch.StableAttr().Ino
				}
			}
		}
		if errno = n.LoopbackNode.Rename(ctx, name, newParent, newName, flags); errno == 0 && flags == 0 && n.s.track.on.Load() {
			n.s.dirChanged(&dirOp{op: plan.OpRename, path: path, to: to, pid: c.call.Pid, held: held, heldIno: heldIno},
				n.StableAttr().Ino, newParent.EmbeddedInode().StableAttr().Ino)
		} else if held != nil {
			held.Close()
		}
	}
	c.finish(errno, 0, to, holders)
	return errno
}

// Allocate is fallocate(2) on an open file.
func (n *node) Allocate(ctx context.Context, f fs.FileHandle, off uint64, size uint64, mode uint32) syscall.Errno {
	c := n.s.begin(ctx, plan.OpFallocate, n.relPath(), int64(off), int64(size))
	if e := c.errno(); e != 0 {
		return c.done(e, 0)
	}
	a, ok := unwrap(f).(fs.FileAllocater)
	if !ok {
		return c.done(syscall.ENOTSUP, 0)
	}
	return c.done(n.s.allocate(n.StableAttr().Ino, c.call.Path, c.call.Pid, fdOf(f), func() syscall.Errno {
		return a.Allocate(ctx, off, size, mode)
	}), 0)
}

// CopyFileRange is refused with ENOSYS so the kernel falls back to reads and
// writes through the server, where faults apply.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// pread reads into dest at off, looping over short reads until EOF.
func (h *handle) pread(dest []byte, off int64) (int, syscall.Errno) {
	fd, ok := h.lf.PassthroughFd()
	if !ok {
		return 0, syscall.EBADF
	}
	total := 0
	for total < len(dest) {
		nr, err := syscall.Pread(fd, dest[total:], off+int64(total))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			if total > 0 {
				break
			}
			return 0, fs.ToErrno(err)
		}
		if nr == 0 {
			break
		}
		total += nr
	}
	return total, 0
}

// preadFull reads exactly len(dest) bytes at off; false if it cannot.
func (h *handle) preadFull(dest []byte, off int64) bool {
	nr, errno := h.pread(dest, off)
	return errno == 0 && nr == len(dest)
}

func (h *handle) pwrite(data []byte, off int64) (int, syscall.Errno) {
	fd, ok := h.lf.PassthroughFd()
	if !ok {
		return 0, syscall.EBADF
	}
	for {
		nw, err := syscall.Pwrite(fd, data, off)
		if err == syscall.EINTR {
			continue
		}
		return max(nw, 0), fs.ToErrno(err)
	}
}

// fdOf returns the backing fd of an open file handle, or -1.
func fdOf(f fs.FileHandle) int {
	if h, ok := f.(*handle); ok {
		if fd, ok := h.lf.PassthroughFd(); ok {
			return fd
		}
	}
	return -1
}

// Lseek serves SEEK_DATA/SEEK_HOLE from the backing file.
func (h *handle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return h.lf.Lseek(ctx, off, whence)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
