package crashes

import (
	"fmt"
	"math"
	"sort"
)

// timeline is a Recording resolved into file objects and crash points.
//
// Files are tracked as objects, not names: a create makes a new object
// (the -journal of each rollback transaction is a new one), an unlink
// drops the name, a rename moves it. Metadata ops are durable at once
// (the model does not lose creates, unlinks or truncates; SQLite never
// relies on a directory fsync except at synchronous=EXTRA).
//
// A crash point is the moment just before a barrier (a successful fsync)
// of the main database, its -wal or its -journal completes, plus the end
// of the recording. At a point, a file's unsynced writes are those not
// covered by its last barrier before the point: written after that
// fsync started (their completion time is not before its start time).
type timeline struct {
	rec    *Recording
	db     string
	sector int64

	fileOf  []int   // per op: the file object it touched (-1: none)
	opsOf   [][]int // per file object: its write and truncate op indexes, in order
	nFiles  int
	initial map[string]int // name -> file object at mount
	bySeq   map[uint64]int // write/barrier seq -> op index
	points  []point
}

// point is one crash point.
type point struct {
	idx   int    // ops[:idx] happened; ops[idx] (the barrier) did not complete
	seq   uint64 // ops[idx].Seq; 0 for the end
	t     int64  // the cut's time: the barrier's start (MaxInt64 for the end)
	path  string // the file the barrier synced ("" for the end)
	files []liveFile
	// dirOps are the op indexes of the creates, unlinks and renames of
	// main names since the last fsync of anything (ClassDirLost).
	dirOps []int
}

// liveFile is a main file (db, -wal, -journal) present at a point.
type liveFile struct {
	name     string
	id       int
	volatile []int // op indexes of its writes not covered by its last barrier
	// lastBarrier is the op index of its last barrier before the point
	// (-1: none since it was created or mounted).
	lastBarrier int
}

// claim is a write that a barrier reported durable, and the point at
// which losing it is explored (ClassLostSynced).
type claim struct {
	write int // op index
	point int // index into points
}

// newTimeline resolves rec into file objects and crash points for the
// main database db, and returns with it the claims: the synced writes
// whose loss is explored, and where.
func newTimeline(rec *Recording, db string, sector int64) (*timeline, []claim, error) {
	if sector <= 0 {
		return nil, nil, fmt.Errorf("sector size must be positive, got %d", sector)
	}
	b := newTimelineBuilder(rec, db, sector)
	for i, o := range rec.Ops {
		b.step(i, o)
	}
	b.settleDirOps()
	b.snapshotPoint(len(rec.Ops), 0, math.MaxInt64, "")
	return b.tl, b.claims(), nil
}

// timelineBuilder is what newTimeline tracks while it walks the ops.
type timelineBuilder struct {
	tl    *timeline
	main  [3]string      // the db, -wal and -journal names
	names map[string]int // name -> file object, as of the op being walked

	// Per file object: writes since the last barrier, the last barrier.
	pending     map[int][]int
	lastBarrier map[int]int
	// barrierClaims: barrier op index -> the writes it made durable.
	barrierClaims map[int][]int
	// lastPointOf: barrier op index -> the last point at which it is its
	// file's last barrier and the file is live under a main name.
	lastPointOf map[int]int
	// ownPoint: barrier op index -> its own point (main files only).
	ownPoint map[int]int
	// walHeaders: op indexes of writes at offset 0 of the -wal (a WAL
	// restart rewrites the header).
	walHeaders []int
	// unsyncedDir: directory ops on main names since the last fsync of
	// any file or directory; synced: the op just walked was such a fsync.
	unsyncedDir []int
	synced      bool
}

// newTimelineBuilder starts a timeline with a file object for each file
// of the snapshot at mount, in name order.
func newTimelineBuilder(rec *Recording, db string, sector int64) *timelineBuilder {
	b := &timelineBuilder{
		tl: &timeline{rec: rec, db: db, sector: sector, fileOf: make([]int, len(rec.Ops)),
			initial: map[string]int{}, bySeq: map[uint64]int{}},
		main: dbNames(db), names: map[string]int{},
		pending: map[int][]int{}, lastBarrier: map[int]int{}, barrierClaims: map[int][]int{},
		lastPointOf: map[int]int{}, ownPoint: map[int]int{},
	}
	initNames := make([]string, 0, len(rec.Initial))
	for n := range rec.Initial {
		initNames = append(initNames, n)
	}
	sort.Strings(initNames)
	for _, n := range initNames {
		id := b.newFile()
		b.names[n], b.tl.initial[n] = id, id
	}
	return b
}

// newFile makes a new file object.
func (b *timelineBuilder) newFile() int {
	b.tl.opsOf = append(b.tl.opsOf, nil)
	b.tl.nFiles++
	return b.tl.nFiles - 1
}

// isMain reports whether name is the db, its -wal or its -journal.
func (b *timelineBuilder) isMain(name string) bool {
	return name == b.main[0] || name == b.main[1] || name == b.main[2]
}

// step walks op i: the directory ops it leaves unsynced, the names it
// changes, the file object it touches.
func (b *timelineBuilder) step(i int, o Op) {
	b.tl.fileOf[i] = -1
	b.trackDirOps(i, o)
	switch o.Kind {
	case OpCreate:
		id := b.newFile()
		b.names[o.Path] = id
		b.tl.fileOf[i] = id
	case OpUnlink, OpRename:
		if id, ok := b.names[o.Path]; ok {
			b.tl.fileOf[i] = id
			delete(b.names, o.Path)
			if o.Kind == OpRename {
				b.names[o.To] = id
			}
		}
	case OpWrite, OpTruncate, OpSync:
		b.fileOp(i, o)
	}
}

// trackDirOps keeps the creates, unlinks and renames of main names since
// the last fsync of anything. A fsync makes the directory ops before it
// durable once it completes: the point at its own barrier still has
// them, so they are dropped at the next op.
func (b *timelineBuilder) trackDirOps(i int, o Op) {
	b.settleDirOps()
	switch o.Kind {
	case OpCreate, OpUnlink, OpRename:
		if b.isMain(o.Path) || b.isMain(o.To) {
			b.unsyncedDir = append(b.unsyncedDir, i)
			b.tl.bySeq[o.Seq] = i
		}
	case OpSync, OpSyncRecord:
		b.synced = true
	}
}

// settleDirOps drops the unsynced directory ops once a fsync completed.
func (b *timelineBuilder) settleDirOps() {
	if b.synced {
		b.unsyncedDir, b.synced = nil, false
	}
}

// fileOp walks a write, truncate or fsync of a file.
func (b *timelineBuilder) fileOp(i int, o Op) {
	id, ok := b.names[o.Path]
	if !ok && o.Kind == OpSync {
		return // a directory, or a file the recording never saw
	}
	if !ok {
		// A file the snapshot missed and no create made (created before
		// the trace started, or by a failed-then-retried open): it
		// starts empty.
		id = b.newFile()
		b.names[o.Path] = id
	}
	b.tl.fileOf[i] = id
	switch o.Kind {
	case OpWrite:
		b.tl.opsOf[id] = append(b.tl.opsOf[id], i)
		b.pending[id] = append(b.pending[id], i)
		b.tl.bySeq[o.Seq] = i
		if o.Path == b.main[1] && o.Off == 0 {
			b.walHeaders = append(b.walHeaders, i)
		}
	case OpTruncate:
		b.tl.opsOf[id] = append(b.tl.opsOf[id], i)
	case OpSync:
		b.barrier(i, o, id)
	}
}

// barrier walks a successful fsync of file object id: a crash point just
// before it completes (main files only), then the writes it made durable.
func (b *timelineBuilder) barrier(i int, o Op, id int) {
	b.tl.bySeq[o.Seq] = i
	if b.isMain(o.Path) {
		b.ownPoint[i] = len(b.tl.points)
		b.snapshotPoint(i, o.Seq, o.T, o.Path)
	}
	claimed, keep := claimedBy(b.tl.rec.Ops, b.pending[id], o.T)
	b.pending[id] = keep
	b.lastBarrier[id] = i
	b.barrierClaims[i] = claimed
}

// claimedBy splits a file's pending writes (op indexes, in order) at a
// fsync that started at time t: the writes completed before t are
// claimed durable; the others (completed at or after t) stay pending.
func claimedBy(ops []Op, pending []int, t int64) (claimed, keep []int) {
	for _, w := range pending {
		if ops[w].T < t {
			claimed = append(claimed, w)
		} else {
			keep = append(keep, w)
		}
	}
	return claimed, keep
}

// snapshotPoint adds the crash point just before op idx: the main files
// live then, their unsynced writes and last barriers, and the unsynced
// directory ops.
func (b *timelineBuilder) snapshotPoint(idx int, seq uint64, t int64, path string) {
	p := point{idx: idx, seq: seq, t: t, path: path, dirOps: append([]int(nil), b.unsyncedDir...)}
	for _, n := range b.main {
		id, ok := b.names[n]
		if !ok {
			continue
		}
		lb, ok := b.lastBarrier[id]
		if !ok {
			lb = -1
		}
		p.files = append(p.files, liveFile{name: n, id: id, volatile: append([]int(nil), b.pending[id]...), lastBarrier: lb})
		if lb >= 0 {
			b.lastPointOf[lb] = len(b.tl.points)
		}
	}
	b.tl.points = append(b.tl.points, p)
}

// claims returns, barrier by barrier, the writes each made durable that
// are worth losing at each of its claim points (claimPoints): those later
// writes before the point do not cover.
func (b *timelineBuilder) claims() []claim {
	tl := b.tl
	barriers := make([]int, 0, len(b.lastPointOf))
	for br := range b.lastPointOf {
		barriers = append(barriers, br)
	}
	sort.Ints(barriers)
	var claims []claim
	for _, br := range barriers {
		for _, pi := range b.claimPoints(br) {
			for _, w := range b.barrierClaims[br] {
				if !tl.overwritten(w, tl.points[pi].idx) {
					claims = append(claims, claim{write: w, point: pi})
				}
			}
		}
	}
	return claims
}

// claimPoints returns where losing a write that barrier br claimed is
// explored, in order, each once, and only where br's file is live. A lost
// write stays lost (the page cache had served the right bytes until the
// cut), so any later point will do; three tell most. The first point
// after the barrier (least chance that later writes cover it up); in WAL
// mode, the first point after the next WAL restart (a lost checkpoint
// write is repaired from the WAL until the WAL is reset); and the last
// point before the file's next fsync.
func (b *timelineBuilder) claimPoints(br int) []int {
	tl := b.tl
	cands := []int{b.lastPointOf[br]}
	if op, ok := b.ownPoint[br]; ok && op+1 < len(tl.points) {
		cands = append(cands, op+1)
	}
	if k := sort.SearchInts(b.walHeaders, br+1); k < len(b.walHeaders) && tl.rec.Ops[br].Path == b.main[0] {
		if pi := tl.firstPointAfter(b.walHeaders[k]); pi < len(tl.points) {
			cands = append(cands, pi)
		}
	}
	sort.Ints(cands)
	var out []int
	for k, pi := range cands {
		if k > 0 && cands[k-1] == pi {
			continue
		}
		if tl.fileLiveAt(pi, tl.fileOf[br]) {
			out = append(out, pi)
		}
	}
	return out
}

// firstPointAfter returns the index of the first point after op idx
// (len(points) when none).
func (tl *timeline) firstPointAfter(idx int) int {
	return sort.Search(len(tl.points), func(k int) bool { return tl.points[k].idx > idx })
}

// overwritten reports whether later writes to the same file before op
// index end cover write w's whole range (so losing w changes nothing).
func (tl *timeline) overwritten(w, end int) bool {
	id := tl.fileOf[w]
	o := tl.rec.Ops[w]
	lo, hi := o.Off, o.Off+int64(len(o.Data))
	ops := tl.opsOf[id]
	k := sort.SearchInts(ops, w+1)
	// Intervals of later writes, merged greedily while scanning forward.
	type iv struct{ lo, hi int64 }
	var cov []iv
	for scanned := 0; k < len(ops) && ops[k] < end && scanned < 20000; k, scanned = k+1, scanned+1 {
		q := tl.rec.Ops[ops[k]]
		if q.Kind != OpWrite {
			continue
		}
		a, b := q.Off, q.Off+int64(len(q.Data))
		if b <= lo || a >= hi {
			continue
		}
		cov = append(cov, iv{max(a, lo), min(b, hi)})
	}
	sort.Slice(cov, func(i, j int) bool { return cov[i].lo < cov[j].lo })
	at := lo
	for _, c := range cov {
		if c.lo > at {
			return false
		}
		at = max(at, c.hi)
	}
	return at >= hi
}

// pointOf returns the index of the point with barrier seq (0: the end).
func (tl *timeline) pointOf(seq uint64) (int, bool) {
	if seq == 0 {
		return len(tl.points) - 1, true
	}
	i := sort.Search(len(tl.points)-1, func(i int) bool { return tl.points[i].seq >= seq })
	if i < len(tl.points)-1 && tl.points[i].seq == seq {
		return i, true
	}
	return 0, false
}

// npieces returns the number of sector pieces of write op i.
func (tl *timeline) npieces(i int) int {
	o := tl.rec.Ops[i]
	return len(pieces(o.Off, len(o.Data), tl.sector)) - 1
}

// volatileAt reports whether write op w is unsynced at point pi.
func (tl *timeline) volatileAt(pi, w int) bool {
	for _, f := range tl.points[pi].files {
		for _, v := range f.volatile {
			if v == w {
				return true
			}
		}
	}
	return false
}

// liveAt reports whether write op w belongs to a main file live at pi.
func (tl *timeline) liveAt(pi, w int) bool { return tl.fileLiveAt(pi, tl.fileOf[w]) }

// fileLiveAt reports whether file object id is a main file live at pi.
func (tl *timeline) fileLiveAt(pi, id int) bool {
	for _, f := range tl.points[pi].files {
		if f.id == id {
			return true
		}
	}
	return false
}

// classify returns the class of a state given by ID (for --state).
func (tl *timeline) classify(pi int, alts []Alt, undo uint64) Class {
	if undo != 0 {
		return ClassDirLost
	}
	if len(alts) == 0 {
		return ClassClean
	}
	synced := false
	for _, a := range alts {
		if !tl.volatileAt(pi, tl.bySeq[a.Seq]) {
			synced = true
		}
	}
	switch {
	case synced && len(alts) == 1 && !alts[0].Lost():
		return ClassTornSynced
	case synced:
		return ClassLostSynced
	case len(alts) == 1 && alts[0].Lost():
		return ClassLost
	case len(alts) == 1:
		return ClassTorn
	}
	nv := 0
	allLost := true
	for _, f := range tl.points[pi].files {
		nv += len(f.volatile)
	}
	for _, a := range alts {
		allLost = allLost && a.Lost()
	}
	if allLost && len(alts) == nv {
		return ClassSynced
	}
	return ClassRandom
}

// validate checks that a parsed state names a point and writes of this
// recording, and trims torn masks to the writes' piece counts.
func (tl *timeline) validate(s *State) (int, error) {
	pi, ok := tl.pointOf(s.Point)
	if !ok {
		return 0, fmt.Errorf("state %s: no barrier of %s, its -wal or -journal has trace seq %d", s.ID(), tl.db, s.Point)
	}
	for k, a := range s.Alts {
		w, ok := tl.bySeq[a.Seq]
		if !ok || tl.rec.Ops[w].Kind != OpWrite {
			return 0, fmt.Errorf("state %s: trace seq %d is not a captured write", s.ID(), a.Seq)
		}
		if w >= tl.points[pi].idx {
			return 0, fmt.Errorf("state %s: write %d comes after the crash point", s.ID(), a.Seq)
		}
		if !tl.liveAt(pi, w) {
			return 0, fmt.Errorf("state %s: write %d is to a file that is gone at the crash point", s.ID(), a.Seq)
		}
		if a.Keep != nil {
			n := tl.npieces(w)
			for i := n; i < len(a.Keep); i++ {
				if a.Keep[i] {
					return 0, fmt.Errorf("state %s: write %d has %d sector pieces, the mask keeps piece %d", s.ID(), a.Seq, n, i)
				}
			}
			if len(a.Keep) < n {
				a.Keep = append(a.Keep, make([]bool, n-len(a.Keep))...)
			}
			s.Alts[k].Keep = a.Keep[:n]
		}
	}
	if s.Undo != 0 {
		i, ok := tl.bySeq[s.Undo]
		unsynced := false
		for _, d := range tl.points[pi].dirOps {
			unsynced = unsynced || (ok && d == i)
		}
		if !unsynced {
			return 0, fmt.Errorf("state %s: trace seq %d is not a create, unlink or rename of %s, its -wal or -journal unsynced at the point", s.ID(), s.Undo, tl.db)
		}
	}
	s.Class = tl.classify(pi, s.Alts, s.Undo)
	return pi, nil
}
