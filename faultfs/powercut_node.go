package faultfs

// Node-side pieces of the unsynced-write model and of the torn-write shapes
// that are not a prefix: directory handles (whose fsync makes directory ops
// durable) and torn writes from the tail or in a seeded subset of sectors.

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/faultfs/trace"
)

// dirHandle is an open directory. go-fuse sends FSYNCDIR straight to the
// handle's Fsyncdir when it has one (the loopback stream has), bypassing
// node.Fsync, so the directory fsync is hooked here: it is the op "fsync"
// on the directory's path, faultable like any fsync, and when it succeeds
// it makes the directory's unsynced creates, unlinks, renames and mkdirs
// durable.
type dirHandle struct {
	fs.FileHandle // the loopback directory stream
	n             *node
}

var (
	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileReleasedirer = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
	_ fs.FileFsyncdirer   = (*dirHandle)(nil)
)

// Readdirent reads one entry from the loopback stream.
func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if r, ok := d.FileHandle.(fs.FileReaddirenter); ok {
		return r.Readdirent(ctx)
	}
	return nil, 0
}

// Releasedir closes the loopback stream.
func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	if r, ok := d.FileHandle.(fs.FileReleasedirer); ok {
		r.Releasedir(ctx, flags)
	}
}

// Seekdir seeks the loopback stream.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if r, ok := d.FileHandle.(fs.FileSeekdirer); ok {
		return r.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

// Fsyncdir syncs the directory (op "fsync" on its path).
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	n := d.n
	c := n.s.begin(ctx, plan.OpFsync, n.relPath(), 0, 0)
	if e := c.errno(); e != 0 {
		return c.done(e, 0) // drop=unsynced drops nothing on a directory
	}
	if c.kind() == plan.KindLost {
		return c.done(0, 0)
	}
	var errno syscall.Errno
	if r, ok := d.FileHandle.(fs.FileFsyncdirer); ok {
		errno = r.Fsyncdir(ctx, flags)
	}
	if errno == 0 {
		n.s.dirSynced(n.StableAttr().Ino)
	}
	return c.done(errno, 0)
}

// writeTorn applies a torn write that keeps its last Keep bytes (from=tail)
// or a seeded subset of its sectors (sectors=random): each kept run of
// bytes is one write to the backing file (recorded by the model and the
// capture like any write), the rest of the range keeps its old bytes. The
// op's trace record gets the kept sectors in its Fault.
func (n *node) writeTorn(c *opCall, f fs.FileHandle, h *handle, path string, data []byte, off int64, headerCheck bool, old [2]byte) (uint32, syscall.Errno) {
	type run struct{ lo, hi int64 } // offsets into data
	var runs []run
	size := int64(len(data))
	if c.d.Tail {
		if keep := min(max(c.d.Keep, 0), size); keep > 0 {
			runs = append(runs, run{size - keep, size})
		}
	} else {
		sector := c.d.Sector
		_, cnt := sectorSpan(off, size, sector)
		kept := plan.KeptSectors(c.d.SectorDraw, int(cnt))
		for _, r := range keptRanges(off, size, sector, kept) {
			runs = append(runs, run{r[0] - off, r[1] - off})
		}
		c.d.Desc += " kept=" + keptList(kept)
	}
	var (
		persisted int64
		errno     syscall.Errno
		header    bool // bytes 18-19 of a database header were persisted
	)
	ino := n.StableAttr().Ino
	for _, r := range runs {
		nw, e := n.s.write(h, ino, path, c.call.Pid, data[r.lo:r.hi], off+r.lo)
		n.s.captureWrite(f, path, data[r.lo:r.lo+int64(nw)], off+r.lo)
		persisted += int64(nw)
		header = header || (off+r.lo <= 18 && off+r.lo+int64(nw) >= 20)
		if e != 0 {
			errno = e
			break
		}
	}
	var reported uint32
	if errno == 0 {
		if c.d.ThenOK {
			reported = uint32(size)
		} else if errno = c.d.Errno; errno == 0 {
			errno = syscall.EIO
		}
	}
	c.noteSize(h)
	c.done(errno, persisted)
	if headerCheck && header && (old[0] != data[18] || old[1] != data[19]) {
		n.s.traceRecord(trace.Record{
			Kind: trace.KindHeader, Pid: c.call.Pid, Op: trace.OpWrite, Path: path,
			OldMode: modeString(old[0], old[1]), NewMode: modeString(data[18], data[19]),
		})
	}
	return reported, errno
}
