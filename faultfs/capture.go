package faultfs

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
)

// Capture mode records enough to rebuild, offline and without FUSE, every
// file image a power cut could leave behind (package crashes does that):
//
//   - CaptureDir/snapshot/ holds a copy of every regular file of the backing
//     directory taken at mount time, before the first request is served;
//   - CaptureDir/writes.bin holds the bytes every write really persisted
//     (after torn, lost and flip faults), one after another;
//   - the trace gets one record of kind trace.KindCapture per persisted write
//     (Off, Len, and Cap, the offset of its bytes in writes.bin), per
//     successful fsync (a barrier) and per successful truncate (Off = new
//     size), plus a first "snapshot" record.
//
// Creates, unlinks and renames are read from the trace's op records, so
// capture needs the full trace (--trace, not --trace-faults-only). -shm
// writes are not captured (SQLite rebuilds the wal-index on recovery), nor
// writes and fsyncs of files already unlinked (no image can hold them).
//
// The trace assigns the capture records their seq under one lock with the
// append to writes.bin, so seq order is writes.bin order. A write record
// is stamped (T) when the write completed, a fsync record when the fsync
// started: a write whose T is before a fsync's T was surely covered by it.
const (
	// CaptureWrites is the file of written bytes in the capture directory.
	CaptureWrites = trace.CaptureWrites
	// CaptureSnapshot is the directory of the backing dir's files at mount.
	CaptureSnapshot = trace.CaptureSnapshot
	// CaptureEnv, when set to a non-empty value, makes Start record a
	// capture into <directory of Config.Trace>/capture for every mount
	// whose Config has a Trace but no CaptureDir (so a scenario run can be
	// recorded without code changes: SQLCHAOS_CAPTURE=1 chaosrun run ...).
	CaptureEnv = "SQLCHAOS_CAPTURE"
	// CaptureSubdir is the capture directory's name under a run directory
	// when CaptureEnv chooses it.
	CaptureSubdir = trace.CaptureSubdir
)

// capturer appends persisted write data to writes.bin.
type capturer struct {
	mu     sync.Mutex
	f      *os.File
	off    int64
	broken bool
}

// captures maps a *server to its *capturer (one per mounted server).
var captures sync.Map

func (s *server) capturer() *capturer {
	v, ok := captures.Load(s)
	if !ok {
		return nil
	}
	return v.(*capturer)
}

// captureDir returns the capture directory of cfg's server (absolute), ""
// for none.
func captureDir(cfg *Config) string {
	dir := cfg.CaptureDir
	if dir == "" && os.Getenv(CaptureEnv) != "" && cfg.Trace != "" {
		dir = filepath.Join(filepath.Dir(cfg.Trace), CaptureSubdir)
	}
	if dir == "" {
		return ""
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return dir
}

// startCapture snapshots the backing directory into dir and starts
// recording write data. It must run before the mount serves requests.
func (s *server) startCapture(dir string) error {
	if dir == "" {
		return nil
	}
	if s.tr == nil || s.faultsOnly {
		return errors.New("--capture needs the full op trace (--trace, without --trace-faults-only)")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(s.backing, dir); err == nil && !strings.HasPrefix(rel, "..") {
		return fmt.Errorf("capture directory %s is inside the backing directory", dir)
	}
	snap := filepath.Join(dir, CaptureSnapshot)
	if err := os.RemoveAll(snap); err != nil {
		return err
	}
	if err := os.MkdirAll(snap, 0o755); err != nil {
		return err
	}
	files, bytes, err := snapshotDir(s.backing, snap)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, CaptureWrites), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	captures.Store(s, &capturer{f: f})
	s.traceRecord(trace.Record{Kind: trace.KindCapture, Op: trace.CapOpSnapshot, Path: dir, N: files, Len: bytes})
	return nil
}

// stopCapture closes writes.bin.
func (s *server) stopCapture() {
	cp := s.capturer()
	if cp == nil {
		return
	}
	captures.Delete(s)
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if err := cp.f.Close(); err != nil && !cp.broken {
		s.captureFailed(cp, err)
	}
}

// captureFailed records that capture stopped; later records are missing.
func (s *server) captureFailed(cp *capturer, err error) {
	cp.broken = true
	fmt.Fprintf(s.stderr, "faultfs: capture: %v\n", err)
	s.traceRecord(trace.Record{Kind: trace.KindCapture, Op: trace.CapOpError, Fault: err.Error()})
}

// captureWrite records the bytes a write persisted at off (data is exactly
// what reached the backing file; empty for a lost or failed write).
func (s *server) captureWrite(f fs.FileHandle, path string, data []byte, off int64) {
	cp := s.capturer()
	if cp == nil || len(data) == 0 || strings.HasSuffix(path, "-shm") || unlinked(f) {
		return
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.broken {
		return
	}
	at := cp.off
	n, err := cp.f.Write(data)
	cp.off += int64(n)
	if err != nil {
		s.captureFailed(cp, err)
		return
	}
	s.traceRecord(trace.Record{Kind: trace.KindCapture, Op: trace.CapOpWrite, Path: path, Off: off, Len: int64(len(data)), Cap: &at})
}

// captureSync records a barrier: a fsync of path that started at start
// and succeeded. A fsync a rule made fail or report a lost success is no
// barrier and is not recorded.
func (s *server) captureSync(f fs.FileHandle, start int64, path string, errno syscall.Errno) {
	cp := s.capturer()
	if cp == nil || errno != 0 || strings.HasSuffix(path, "-shm") || unlinked(f) {
		return
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if !cp.broken {
		s.traceRecord(trace.Record{T: start, Kind: trace.KindCapture, Op: trace.CapOpFsync, Path: path})
	}
}

// captureSetattr records a successful truncate of path to size.
func (s *server) captureSetattr(f fs.FileHandle, path string, isTrunc bool, size int64, errno syscall.Errno) {
	cp := s.capturer()
	if cp == nil || !isTrunc || errno != 0 || strings.HasSuffix(path, "-shm") || unlinked(f) {
		return
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if !cp.broken {
		s.traceRecord(trace.Record{Kind: trace.KindCapture, Op: trace.CapOpTruncate, Path: path, Off: size})
	}
}

// unlinked reports whether f is an open file whose name was removed (a
// -wal unlinked under a live writer). Its node may still report its old
// path, which by now names another file, and nothing written to it can be
// in any image, so capture skips it.
func unlinked(f fs.FileHandle) bool {
	h, ok := f.(*handle)
	if !ok {
		return false
	}
	fd, ok := h.lf.PassthroughFd()
	if !ok {
		return false
	}
	var st syscall.Stat_t
	return syscall.Fstat(fd, &st) == nil && st.Nlink == 0
}

// snapshotDir copies every regular file under src to the same relative
// path under dst and returns the number of files and bytes copied.
func snapshotDir(src, dst string) (files, bytes int64, err error) {
	err = filepath.WalkDir(src, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel == "." {
				return nil
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		n, err := copyRegular(p, filepath.Join(dst, rel))
		files++
		bytes += n
		return err
	})
	return files, bytes, err
}

func copyRegular(src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}
