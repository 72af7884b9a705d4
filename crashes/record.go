package crashes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
)

// Trace kinds of faultfs's unsynced-write model (faultfs.TraceKindPowerCut,
// TraceKindUnsynced, TraceKindRecover; not imported, to keep go-fuse out).
const (
	traceKindPowerCut = "powercut"
	traceKindUnsynced = "unsynced"
	traceKindRecover  = "recover"
)

// Run directory names read by the explorer (the scenario runner's layout).
const (
	TraceFile    = "trace.jsonl"
	HistoriesDir = "histories"
	MetaFile     = "meta.json"
	// OutDir is where the explorer writes its report and minimal state
	// under the run directory.
	OutDir = "crashes"
)

// OpKind is what a recorded op did to the file namespace or a file.
type OpKind uint8

// The op kinds the explorer replays.
const (
	OpWrite OpKind = iota + 1
	OpTruncate
	OpSync
	OpCreate
	OpUnlink
	OpRename
	// OpSyncRecord is a successful fsync of a file or a directory as the
	// op trace saw it (the capture's OpSync covers files only): on ext4
	// any fsync commits the directory operations before it.
	OpSyncRecord
)

func (k OpKind) String() string {
	switch k {
	case OpWrite:
		return "write"
	case OpTruncate:
		return "truncate"
	case OpSync:
		return "fsync"
	case OpCreate:
		return "create"
	case OpUnlink:
		return "unlink"
	case OpRename:
		return "rename"
	case OpSyncRecord:
		return "fsync-record"
	}
	return fmt.Sprintf("op%d", k)
}

// Op is one recorded change, in trace order.
type Op struct {
	Seq  uint64 // trace seq (names the op in state IDs)
	T    int64  // CLOCK_MONOTONIC ns: completion for writes, start for fsyncs
	Kind OpKind
	Path string // relative to the mount root
	To   string // rename target
	Off  int64  // write offset; truncate: the new size
	Data []byte // write: the bytes persisted
}

// Recording is a captured run: the files at mount time and every op that
// changed them since, in trace order.
type Recording struct {
	Initial map[string][]byte // relative path -> content at mount
	Ops     []Op
	Notes   []string // what could not be read exactly (a truncated trace tail)
}

// LoadRecording reads the capture of a run directory: trace.jsonl with its
// capture records, and the capture directory (writes.bin, snapshot/),
// by default RUNDIR/capture or the directory the trace's snapshot record
// names.
func LoadRecording(runDir, captureDir string) (*Recording, error) {
	recs, err := trace.ReadFile(filepath.Join(runDir, TraceFile))
	rec := &Recording{Initial: map[string][]byte{}}
	switch {
	case errors.Is(err, trace.ErrTruncated):
		rec.Notes = append(rec.Notes, err.Error()+" (the ops after it are missing)")
	case err != nil:
		return nil, err
	}
	snapAt, err := findSnapshot(recs)
	if err != nil {
		return nil, err
	}
	if snapAt < 0 {
		return nil, fmt.Errorf("%s has no capture records: record the run with capture on (faultfs.Config.CaptureDir, chaosrun mount --capture DIR, or SQLCHAOS_CAPTURE=1 chaosrun run ...)", filepath.Join(runDir, TraceFile))
	}
	if captureDir == "" {
		captureDir = filepath.Join(runDir, trace.CaptureSubdir)
		if _, err := os.Stat(captureDir); err != nil && recs[snapAt].Path != "" {
			captureDir = recs[snapAt].Path
		}
	}
	writes, err := readCapture(captureDir, recs[snapAt], rec.Initial)
	if err != nil {
		return nil, err
	}
	if err := rec.addOps(recs[snapAt+1:], writes); err != nil {
		return nil, err
	}
	return rec, nil
}

// findSnapshot returns the index of the trace's one capture snapshot
// record (-1: none).
func findSnapshot(recs []trace.Record) (int, error) {
	snapAt := -1
	for i, r := range recs {
		if r.Kind == trace.KindCapture && r.Op == trace.CapOpSnapshot {
			if snapAt >= 0 {
				return -1, fmt.Errorf("%s: two capture snapshots (seq %d and %d): one mount per trace", TraceFile, recs[snapAt].Seq, r.Seq)
			}
			snapAt = i
		}
	}
	return snapAt, nil
}

// readCapture reads the capture directory: the snapshot at mount into
// initial, and returns the bytes of every captured write (writes.bin).
func readCapture(captureDir string, snapRec trace.Record, initial map[string][]byte) ([]byte, error) {
	writes, err := os.ReadFile(filepath.Join(captureDir, trace.CaptureWrites))
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	snap := filepath.Join(captureDir, trace.CaptureSnapshot)
	if _, err := os.Stat(snap); err != nil && errors.Is(err, fs.ErrNotExist) && snapRec.N == 0 {
		// An empty snapshot (nothing in the backing dir at mount); version
		// control does not keep the empty directory.
	} else if err := readSnapshot(snap, initial); err != nil {
		return nil, fmt.Errorf("capture snapshot: %w", err)
	}
	return writes, nil
}

// addOps appends the ops of the trace records after the snapshot, in
// order. It stops, with a note, where nothing after would replay
// faithfully.
func (rec *Recording) addOps(recs []trace.Record, writes []byte) error {
	for _, r := range recs {
		switch r.Kind {
		case traceKindPowerCut, traceKindUnsynced, traceKindRecover:
			// faultfs's unsynced-write model changed the backing files
			// outside any FUSE op (a power cut's recover, or a failed
			// fsync with drop=unsynced reverting writes): capture did not
			// see it, so nothing after it replays faithfully.
			rec.Notes = append(rec.Notes, fmt.Sprintf("the recording ends at trace seq %d: a %s record (faultfs reset files outside any op); the ops after it are left out", r.Seq, r.Kind))
			return nil
		case trace.KindCapture:
			if more, err := rec.addCaptured(r, writes); !more || err != nil {
				return err
			}
		case trace.KindOp:
			rec.addNamespaceOp(r)
		}
	}
	return nil
}

// addCaptured appends the op of a capture record: a write with its bytes,
// a fsync or a truncate. It reports false, with a note, when the write's
// bytes are beyond the end of writes.bin (the ops from there on are left
// out), and fails when capture stopped during the run.
func (rec *Recording) addCaptured(r trace.Record, writes []byte) (bool, error) {
	switch r.Op {
	case trace.CapOpWrite:
		if r.Cap == nil || *r.Cap < 0 || *r.Cap+r.Len > int64(len(writes)) {
			rec.Notes = append(rec.Notes, fmt.Sprintf("trace seq %d: write data beyond the end of %s (the capture was cut short); ops from here on are left out", r.Seq, trace.CaptureWrites))
			return false, nil
		}
		rec.Ops = append(rec.Ops, Op{Seq: r.Seq, T: r.T, Kind: OpWrite, Path: r.Path, Off: r.Off, Data: writes[*r.Cap : *r.Cap+r.Len]})
	case trace.CapOpFsync:
		rec.Ops = append(rec.Ops, Op{Seq: r.Seq, T: r.T, Kind: OpSync, Path: r.Path})
	case trace.CapOpTruncate:
		rec.Ops = append(rec.Ops, Op{Seq: r.Seq, T: r.T, Kind: OpTruncate, Path: r.Path, Off: r.Off})
	case trace.CapOpError:
		return false, fmt.Errorf("trace seq %d: capture stopped during the run: %s", r.Seq, r.Fault)
	}
	return true, nil
}

// addNamespaceOp appends the op of a successful FUSE op record that the
// capture does not hold: a create, unlink or rename, or a fsync (of a
// file or a directory) that no rule made lose data.
func (rec *Recording) addNamespaceOp(r trace.Record) {
	if r.Result != "ok" {
		return
	}
	switch r.Op {
	case trace.OpCreate:
		rec.Ops = append(rec.Ops, Op{Seq: r.Seq, T: r.T, Kind: OpCreate, Path: r.Path})
	case trace.OpUnlink:
		rec.Ops = append(rec.Ops, Op{Seq: r.Seq, T: r.T, Kind: OpUnlink, Path: r.Path})
	case trace.OpRename:
		rec.Ops = append(rec.Ops, Op{Seq: r.Seq, T: r.T, Kind: OpRename, Path: r.Path, To: r.To})
	case trace.OpFsync:
		if r.Rule == 0 || !strings.HasPrefix(r.Fault, "lost") {
			rec.Ops = append(rec.Ops, Op{Seq: r.Seq, T: r.T, Kind: OpSyncRecord, Path: r.Path})
		}
	}
}

func readSnapshot(dir string, into map[string][]byte) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		into[filepath.ToSlash(rel)] = b
		return err
	})
}

// dbNames returns the main database, -wal and -journal names of db.
func dbNames(db string) [3]string { return [3]string{db, db + "-wal", db + "-journal"} }

// guessDB picks the main database of a recording: kanban.db when the
// recording has it, else the only file whose name has no -wal, -journal
// or -shm suffix and that starts with the SQLite header.
func guessDB(rec *Recording) (string, error) {
	names := map[string]bool{}
	for p := range rec.Initial {
		names[p] = true
	}
	for _, o := range rec.Ops {
		if o.Kind == OpWrite || o.Kind == OpCreate {
			names[o.Path] = true
		}
	}
	if names["kanban.db"] {
		return "kanban.db", nil
	}
	var cands []string
	for n := range names {
		if strings.HasSuffix(n, "-wal") || strings.HasSuffix(n, "-journal") || strings.HasSuffix(n, "-shm") {
			continue
		}
		if b, ok := rec.Initial[n]; ok && strings.HasPrefix(string(b), "SQLite format 3\x00") {
			cands = append(cands, n)
			continue
		}
		for _, o := range rec.Ops {
			if o.Kind == OpWrite && o.Path == n && o.Off == 0 && strings.HasPrefix(string(o.Data), "SQLite format 3\x00") {
				cands = append(cands, n)
				break
			}
		}
	}
	sort.Strings(cands)
	switch len(cands) {
	case 0:
		return "", errors.New("no SQLite database in the recording (name one with --db)")
	case 1:
		return cands[0], nil
	}
	return "", fmt.Errorf("several databases in the recording (%s): name one with --db", strings.Join(cands, ", "))
}
