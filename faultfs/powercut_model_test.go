package faultfs

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/faultfs/trace"
)

// These tests drive the unsynced-write model without FUSE: a server over a
// backing dir, handles on backing fds, and the same write/truncate/fsync
// entry points node.go calls.

// modelServer is a server with tracking on and a trace in memory.
type modelServer struct {
	*server
	buf *bytes.Buffer
}

func newModelServer(t *testing.T, seed int64) *modelServer {
	t.Helper()
	buf := &bytes.Buffer{}
	s := &server{backing: t.TempDir(), seed: seed, eng: plan.NewEngine(nil, seed), stderr: io.Discard,
		tr: trace.NewWriter(buf)}
	s.cut.init()
	s.track.enable()
	t.Cleanup(func() { s.tr.Close() })
	return &modelServer{s, buf}
}

// open opens (creating) a backing file as a handle, as node.Open would.
func (m *modelServer) open(t *testing.T, name string) (*handle, uint64) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(m.backing, name), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &handle{lf: fs.NewLoopbackFileFromOS(f), base: name}, st.Ino
}

func (m *modelServer) records(t *testing.T, kind string) []trace.Record {
	t.Helper()
	if err := m.tr.Flush(); err != nil {
		t.Fatal(err)
	}
	recs, err := trace.NewReader(bytes.NewReader(m.buf.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []trace.Record
	for _, r := range recs {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

func readBacking(t *testing.T, m *modelServer, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.backing, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// modelOp is one step of a random workload on one file.
type modelOp struct {
	kind byte // 'w' write, 't' truncate, 's' fsync
	off  int64
	data []byte
	size int64
}

// randomOps returns a workload of writes (aligned and not, overwriting and
// extending), truncates (shrinking and growing) and fsyncs.
func randomOps(rng *rand.Rand, n int) []modelOp {
	var ops []modelOp
	for i := 0; i < n; i++ {
		switch r := rng.Intn(10); {
		case r < 7:
			off := int64(rng.Intn(24 * 1024))
			if rng.Intn(2) == 0 {
				off &^= 511
			}
			data := make([]byte, 1+rng.Intn(6000))
			rng.Read(data)
			ops = append(ops, modelOp{kind: 'w', off: off, data: data})
		case r < 9:
			ops = append(ops, modelOp{kind: 't', size: int64(rng.Intn(20 * 1024))})
		default:
			ops = append(ops, modelOp{kind: 's'})
		}
	}
	return ops
}

// apply runs ops on the file; it returns the content at the last fsync.
func (m *modelServer) apply(t *testing.T, name string, ops []modelOp) []byte {
	t.Helper()
	h, ino := m.open(t, name)
	fd, _ := h.lf.PassthroughFd()
	synced := readBacking(t, m, name)
	for _, op := range ops {
		switch op.kind {
		case 'w':
			if nw, errno := m.write(h, ino, name, 7, op.data, op.off); errno != 0 || nw != len(op.data) {
				t.Fatalf("write: %d %v", nw, errno)
			}
		case 't':
			if errno := m.truncate(ino, name, 7, fd, op.size, func() syscall.Errno {
				return fs.ToErrno(syscall.Ftruncate(fd, op.size))
			}); errno != 0 {
				t.Fatal(errno)
			}
		case 's':
			m.synced(ino)
			synced = readBacking(t, m, name)
		}
	}
	return synced
}

// replayTrace rebuilds a file from its synced content and the trace's
// "unsynced" records of it: every kept write whole, every torn write in
// the sectors its Fault lists, every kept truncate.
func replayTrace(t *testing.T, synced []byte, recs []trace.Record, path string, sector int64) []byte {
	t.Helper()
	img := append([]byte(nil), synced...)
	put := func(off int64, b []byte) {
		if end := off + int64(len(b)); end > int64(len(img)) {
			img = append(img, make([]byte, end-int64(len(img)))...)
		}
		copy(img[off:], b)
	}
	for _, r := range recs {
		if r.Path != path || r.Result == UnsyncedDropped {
			continue
		}
		switch r.Op {
		case "truncate", "fallocate":
			if r.Off < int64(len(img)) {
				img = img[:r.Off]
			} else {
				img = append(img, make([]byte, r.Off-int64(len(img)))...)
			}
		case "write":
			data := writeData(t, r)
			if r.Result == UnsyncedKept {
				put(r.Off, data)
				continue
			}
			_, list, _ := strings.Cut(r.Fault, " kept=")
			idx, _, _ := strings.Cut(list, "/")
			first := r.Off / sector
			for _, k := range strings.Split(idx, ",") {
				ki, err := strconv.Atoi(k)
				if err != nil {
					t.Fatalf("bad kept list in %q", r.Fault)
				}
				lo := max(r.Off, (first+int64(ki))*sector)
				hi := min(r.Off+r.Len, (first+int64(ki)+1)*sector)
				put(lo, data[lo-r.Off:hi-r.Off])
			}
		}
	}
	return img
}

// writeData finds the bytes of the write a trace record names. Records
// carry no data, so the workload's writes are looked up by file and range
// (uniqueRanges makes them unique between fsyncs).
func writeData(t *testing.T, r trace.Record) []byte {
	t.Helper()
	b, ok := writeByRange[fmt.Sprintf("%s@%d+%d", r.Path, r.Off, r.Len)]
	if !ok {
		t.Fatalf("no data for %+v", r)
	}
	return b
}

var writeByRange = map[string][]byte{}

// uniqueRanges drops writes whose (off, len) repeats one seen since the
// last fsync, so a trace record names its write unambiguously.
func uniqueRanges(ops []modelOp, name string) []modelOp {
	seen := map[string]bool{}
	var out []modelOp
	for _, op := range ops {
		if op.kind == 's' {
			seen = map[string]bool{}
		}
		if op.kind == 'w' {
			k := fmt.Sprintf("%s@%d+%d", name, op.off, len(op.data))
			if seen[k] {
				continue
			}
			seen[k] = true
			writeByRange[k] = op.data
		}
		out = append(out, op)
	}
	return out
}

// TestModelResetModes: after random writes, truncates and fsyncs, a power
// cut resets the file to exactly its last-synced content (keep=none), to
// what it was at the cut (keep=all), or to the synced content plus the
// writes the trace says were kept, whole or by sectors (keep=random,
// keep=sectors), so the trace is an exact account of the reset.
func TestModelResetModes(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	var total RecoverResult
	for round := 0; round < 40; round++ {
		for _, keep := range plan.CutKeeps() {
			sector := int64(512)
			if round%2 == 1 {
				sector = 4096
			}
			name := fmt.Sprintf("f%d.db", round)
			m := newModelServer(t, seed+int64(round))
			ops := uniqueRanges(randomOps(rng, 30), name)
			synced := m.apply(t, name, ops)
			atCut := readBacking(t, m, name)
			if !m.powerCut(CutInfo{Trigger: "control", Keep: string(keep), Sector: sector}) {
				t.Fatal("powerCut refused")
			}
			res, err := m.recoverCut()
			if err != nil || res.Errors != "" {
				t.Fatalf("seed %d round %d keep=%s: recover: %v %s", seed, round, keep, err, res.Errors)
			}
			got := readBacking(t, m, name)
			recs := m.records(t, TraceKindUnsynced)
			switch keep {
			case plan.CutNone:
				if !bytes.Equal(got, synced) {
					t.Fatalf("seed %d round %d keep=none: file is not its synced content (%d vs %d bytes)", seed, round, len(got), len(synced))
				}
				if res.Kept+res.Torn != 0 || res.Dropped != len(recs) {
					t.Fatalf("seed %d round %d keep=none: %+v, %d records", seed, round, res, len(recs))
				}
			case plan.CutAll:
				if !bytes.Equal(got, atCut) {
					t.Fatalf("seed %d round %d keep=all: file differs from the cut", seed, round)
				}
			default:
				want := replayTrace(t, synced, recs, name, sector)
				if !bytes.Equal(got, want) {
					t.Fatalf("seed %d round %d keep=%s: file differs from the trace's account (%d vs %d bytes)", seed, round, keep, len(got), len(want))
				}
			}
			if keep == plan.CutRandom || keep == plan.CutSectors {
				total.Kept += res.Kept
				total.Torn += res.Torn
				total.Dropped += res.Dropped
			}
			if res.Writes != len(recs) {
				t.Fatalf("seed %d round %d: %d unsynced writes, %d trace records", seed, round, res.Writes, len(recs))
			}
			// After the recover everything counts as synced again.
			if st := m.track.stats(); st.Writes != 0 || m.cut.frozen.Load() {
				t.Fatalf("after recover: %+v frozen=%v", st, m.cut.frozen.Load())
			}
		}
	}
	// The seeded modes must have kept, torn and dropped writes, or the
	// comparisons above prove little.
	if total.Kept < 100 || total.Torn < 50 || total.Dropped < 100 {
		t.Fatalf("seed %d: keep=random|sectors kept %d, tore %d, dropped %d writes in all", seed, total.Kept, total.Torn, total.Dropped)
	}
	t.Logf("keep=random|sectors: kept %d, torn %d, dropped %d", total.Kept, total.Torn, total.Dropped)
}

// TestModelSameSeedSameFiles: the same seed and the same writes give
// byte-identical files after the cut, for every keep mode; another seed
// gives other files for keep=random and keep=sectors.
func TestModelSameSeedSameFiles(t *testing.T) {
	ops := randomOps(rand.New(rand.NewSource(3)), 200)
	run := func(seed int64, keep plan.CutKeep) []byte {
		m := newModelServer(t, seed)
		m.apply(t, "x.db-wal", ops)
		m.powerCut(CutInfo{Trigger: "control", Keep: string(keep), Sector: 512})
		if _, err := m.recoverCut(); err != nil {
			t.Fatal(err)
		}
		return readBacking(t, m, "x.db-wal")
	}
	for _, keep := range plan.CutKeeps() {
		a, b, c := run(11, keep), run(11, keep), run(12, keep)
		if !bytes.Equal(a, b) {
			t.Fatalf("keep=%s: seed 11 twice gives different files", keep)
		}
		if differs := !bytes.Equal(a, c); differs != (keep == plan.CutRandom || keep == plan.CutSectors) {
			t.Fatalf("keep=%s: seeds 11 and 12 differ=%v", keep, differs)
		}
	}
}

// TestModelDropUnsynced: a failed fsync with drop=unsynced reverts the
// file's unsynced writes at once and traces each as dropped; nothing is left
// to sync.
func TestModelDropUnsynced(t *testing.T) {
	m := newModelServer(t, 1)
	h, ino := m.open(t, "d.db")
	fd, _ := h.lf.PassthroughFd()
	m.write(h, ino, "d.db", 1, bytes.Repeat([]byte("a"), 4096), 0)
	m.synced(ino)
	m.write(h, ino, "d.db", 1, bytes.Repeat([]byte("b"), 100), 10)
	m.write(h, ino, "d.db", 1, bytes.Repeat([]byte("c"), 4096), 4096)
	m.dropUnsynced(ino, fd, 3, "eio drop=unsynced")
	if got := readBacking(t, m, "d.db"); !bytes.Equal(got, bytes.Repeat([]byte("a"), 4096)) {
		t.Fatalf("after drop: %d bytes, want the synced 4096 a's", len(got))
	}
	recs := m.records(t, TraceKindUnsynced)
	if len(recs) != 2 || recs[0].Off != 10 || recs[1].Off != 4096 || recs[0].Result != UnsyncedDropped || recs[0].Rule != 3 {
		t.Fatalf("records %+v", recs)
	}
	if st := m.track.stats(); st.Writes != 0 {
		t.Fatalf("unsynced after drop: %+v", st)
	}
}

// TestModelDirOps: creates, unlinks and renames not covered by a fsync of
// the directory are undone by keep=none (a created file disappears, an
// unlinked one comes back with its synced content, a rename is reverted);
// a directory fsync makes them durable.
func TestModelDirOps(t *testing.T) {
	m := newModelServer(t, 1)
	const root = 1 // the directory's inode, as node.go would pass it
	write := func(name, s string) {
		h, ino := m.open(t, name)
		m.write(h, ino, name, 1, []byte(s), 0)
		m.synced(ino)
	}
	write("old.db", "old synced")
	write("gone.db", "gone synced")
	write("moved.db", "moved synced")
	m.dirSynced(root) // nothing pending yet: a no-op

	// Unsynced: create new.db, unlink gone.db (with an unsynced write
	// before it), rename moved.db -> renamed.db.
	h, ino := m.open(t, "new.db")
	m.dirChanged(&dirOp{op: plan.OpCreate, path: "new.db", ino: ino}, root, root)
	m.write(h, ino, "new.db", 1, []byte("new"), 0)
	gh, gino := m.open(t, "gone.db")
	m.write(gh, gino, "gone.db", 1, []byte("GONE"), 0)
	held, heldIno := m.holdForUndo("gone.db")
	if held == nil || heldIno != gino {
		t.Fatalf("holdForUndo: %v %d want ino %d", held, heldIno, gino)
	}
	if err := os.Remove(filepath.Join(m.backing, "gone.db")); err != nil {
		t.Fatal(err)
	}
	m.dirChanged(&dirOp{op: plan.OpUnlink, path: "gone.db", held: held, heldIno: heldIno}, root, root)
	if err := os.Rename(filepath.Join(m.backing, "moved.db"), filepath.Join(m.backing, "renamed.db")); err != nil {
		t.Fatal(err)
	}
	m.dirChanged(&dirOp{op: plan.OpRename, path: "moved.db", to: "renamed.db"}, root, root)
	if st := m.track.stats(); st.DirOps != 3 {
		t.Fatalf("stats %+v, want 3 dir ops", st)
	}

	m.powerCut(CutInfo{Trigger: "control", Keep: string(plan.CutNone)})
	res, err := m.recoverCut()
	if err != nil || res.DirUndone != 3 || res.Unrestorable != 0 {
		t.Fatalf("recover: %+v %v", res, err)
	}
	names, _ := filepath.Glob(filepath.Join(m.backing, "*"))
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	if got := strings.Join(names, " "); got != "gone.db moved.db old.db" {
		t.Fatalf("backing after recover: %s", got)
	}
	if got := string(readBacking(t, m, "gone.db")); got != "gone synced" {
		t.Fatalf("restored gone.db = %q, want its synced content", got)
	}
	if got := string(readBacking(t, m, "moved.db")); got != "moved synced" {
		t.Fatalf("moved.db = %q", got)
	}

	// A directory fsync makes a create durable: keep=none keeps the file
	// (and drops only its unsynced write).
	h, ino = m.open(t, "durable.db")
	m.dirChanged(&dirOp{op: plan.OpCreate, path: "durable.db", ino: ino}, root, root)
	m.dirSynced(root)
	m.write(h, ino, "durable.db", 1, []byte("x"), 0)
	m.powerCut(CutInfo{Trigger: "control"})
	if res, err := m.recoverCut(); err != nil || res.DirOps != 0 || res.Dropped != 1 {
		t.Fatalf("recover: %+v %v", res, err)
	}
	if b := readBacking(t, m, "durable.db"); len(b) != 0 {
		t.Fatalf("durable.db = %q, want empty (created durably, write dropped)", b)
	}
}

// TestModelRecoverWithoutCut: recover needs a cut; a second cut while
// frozen is refused.
func TestModelRecoverWithoutCut(t *testing.T) {
	m := newModelServer(t, 1)
	if _, err := m.recoverCut(); err != ErrNotCut {
		t.Fatalf("recover without a cut: %v", err)
	}
	if !m.powerCut(CutInfo{Trigger: "control"}) || m.powerCut(CutInfo{Trigger: "control"}) {
		t.Fatal("the first cut must succeed and the second be refused")
	}
	st := m.state()
	if !st.Frozen || st.Cuts != 1 || st.Cut == nil || st.Cut.Keep != "none" || !st.Cut.Tracking {
		t.Fatalf("state %+v", st)
	}
	if recs := m.records(t, TraceKindPowerCut); len(recs) != 1 || recs[0].Fault != "powercut keep=none" || recs[0].Mark != "control" {
		t.Fatalf("powercut records %+v", recs)
	}
}

// TestModelOrphanWrites: writes through a descriptor of a file whose name
// is gone (unlinked before the model saw it) are not recorded under the
// name it had, so a later cut never "reverts" them onto the new file of
// that name.
func TestModelOrphanWrites(t *testing.T) {
	m := newModelServer(t, 1)
	oh, oino := m.open(t, "x.db-wal")
	if err := os.Remove(filepath.Join(m.backing, "x.db-wal")); err != nil {
		t.Fatal(err)
	}
	nh, nino := m.open(t, "x.db-wal")
	m.write(nh, nino, "x.db-wal", 1, []byte("new file, synced"), 0)
	m.synced(nino)
	// The old descriptor writes on, under the name its node still reports.
	if nw, errno := m.write(oh, oino, "x.db-wal", 2, []byte("ORPHAN WRITE"), 0); errno != 0 || nw != 12 {
		t.Fatalf("orphan write: %d %v", nw, errno)
	}
	if st := m.track.stats(); st.Writes != 0 {
		t.Fatalf("the orphan's write was recorded: %+v", st)
	}
	m.powerCut(CutInfo{Trigger: "control"})
	if _, err := m.recoverCut(); err != nil {
		t.Fatal(err)
	}
	if got := string(readBacking(t, m, "x.db-wal")); got != "new file, synced" {
		t.Fatalf("x.db-wal after the cut = %q", got)
	}
}
