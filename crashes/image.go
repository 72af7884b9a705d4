package crashes

import (
	"fmt"
	"sort"
)

// replayer replays a timeline forward, keeping every file object's content
// and, per op, what it overwrote, so that an image with some writes lost or
// torn is built by undoing the file's ops back to the first altered write
// and redoing them with the alterations: the cost is the bytes written
// since then, not the file's size times the number of ops.
type replayer struct {
	tl      *timeline
	pos     int               // ops[:pos] applied
	files   [][]byte          // file object -> content
	names   map[string]int    // name -> file object
	undo    map[int]undoEntry // op index -> what it overwrote (writes, truncates)
	scratch [][]byte          // reused buffers for rebuilt files
}

type undoEntry struct {
	oldSize int
	old     []byte // write: the bytes it overwrote; truncate: the tail it cut
}

func newReplayer(tl *timeline) *replayer {
	r := &replayer{tl: tl, files: make([][]byte, tl.nFiles), names: map[string]int{}, undo: map[int]undoEntry{}}
	for n, id := range tl.initial {
		r.files[id] = append([]byte(nil), tl.rec.Initial[n]...)
		r.names[n] = id
	}
	return r
}

// advance applies ops up to (not including) index to.
func (r *replayer) advance(to int) {
	ops := r.tl.rec.Ops
	for ; r.pos < to; r.pos++ {
		i := r.pos
		o := ops[i]
		id := r.tl.fileOf[i]
		nameOp(r.names, o, id)
		switch o.Kind {
		case OpWrite:
			f := r.files[id]
			u := undoEntry{oldSize: len(f)}
			if lo := int(o.Off); lo < len(f) {
				u.old = append([]byte(nil), f[lo:min(len(f), lo+len(o.Data))]...)
			}
			r.undo[i] = u
			r.files[id] = writeAt(f, o.Data, o.Off)
		case OpTruncate:
			f := r.files[id]
			u := undoEntry{oldSize: len(f)}
			if int(o.Off) < len(f) {
				u.old = append([]byte(nil), f[o.Off:]...)
			}
			r.undo[i] = u
			r.files[id] = resize(f, int(o.Off))
		}
	}
}

// writeAt writes data at off into f, growing it (zero-filled) as needed.
func writeAt(f, data []byte, off int64) []byte {
	end := int(off) + len(data)
	if end > len(f) {
		f = resize(f, end)
	}
	copy(f[off:], data)
	return f
}

// resize truncates or zero-extends f to n bytes.
func resize(f []byte, n int) []byte {
	if n <= len(f) {
		return f[:n]
	}
	if n <= cap(f) {
		old := len(f)
		f = f[:n]
		clear(f[old:])
		return f
	}
	g := make([]byte, n, n+n/4)
	copy(g, f)
	return g
}

// Image is the content of the main database files a crash state leaves:
// name -> bytes, for the db, -wal and -journal present at the point.
type Image map[string][]byte

// build returns the image of state s at point pi. The replayer must be
// positioned at the point (advance(points[pi].idx)). The image shares the
// replayer's buffers: it is valid until the next build or advance, and
// must not be modified.
func (r *replayer) build(pi int, alts []Alt, undo uint64) (Image, error) {
	p := r.tl.points[pi]
	if r.pos != p.idx {
		return nil, fmt.Errorf("replayer at op %d, point at %d", r.pos, p.idx)
	}
	if undo != 0 {
		if len(alts) > 0 {
			return nil, fmt.Errorf("a directory undo does not combine with lost or torn writes")
		}
		ui, ok := r.tl.bySeq[undo]
		if !ok || ui >= p.idx {
			return nil, fmt.Errorf("directory op %d is not before the point", undo)
		}
		return imageOf(r.tl.db, r.tl.namesAt(ui), r.files), nil
	}
	byFile := map[int][]Alt{}
	for _, a := range alts {
		w, ok := r.tl.bySeq[a.Seq]
		if !ok || w >= p.idx {
			return nil, fmt.Errorf("write %d is not before the point", a.Seq)
		}
		id := r.tl.fileOf[w]
		byFile[id] = append(byFile[id], a)
	}
	img := Image{}
	k := 0
	for _, lf := range p.files {
		cur := r.files[lf.id]
		as := byFile[lf.id]
		if len(as) == 0 {
			img[lf.name] = cur
			continue
		}
		if k == len(r.scratch) {
			r.scratch = append(r.scratch, nil)
		}
		r.scratch[k] = r.rebuild(lf.id, cur, as, r.scratch[k][:0])
		img[lf.name] = r.scratch[k]
		k++
	}
	return img, nil
}

// rebuild returns file id's content with alts applied, in buf: undo its
// ops back to the first altered write, then redo them with the
// alterations.
func (r *replayer) rebuild(id int, cur []byte, alts []Alt, buf []byte) []byte {
	ops := r.tl.rec.Ops
	first := r.tl.bySeq[alts[0].Seq]
	alt := make(map[int]Alt, len(alts))
	for _, a := range alts {
		w := r.tl.bySeq[a.Seq]
		alt[w] = a
		first = min(first, w)
	}
	list := r.tl.opsOf[id]
	lo := sort.SearchInts(list, first)
	hi := sort.SearchInts(list, r.pos)
	buf = append(buf[:0], cur...)
	for k := hi - 1; k >= lo; k-- {
		i := list[k]
		u := r.undo[i]
		o := ops[i]
		switch o.Kind {
		case OpWrite:
			buf = resize(buf, max(len(buf), int(o.Off)+len(u.old)))
			copy(buf[o.Off:], u.old)
			buf = resize(buf, u.oldSize)
		case OpTruncate:
			buf = resize(buf, u.oldSize)
			if len(u.old) > 0 {
				copy(buf[o.Off:], u.old)
			}
		}
	}
	for k := lo; k < hi; k++ {
		i := list[k]
		o := ops[i]
		switch o.Kind {
		case OpTruncate:
			buf = resize(buf, int(o.Off))
		case OpWrite:
			a, ok := alt[i]
			switch {
			case !ok:
				buf = writeAt(buf, o.Data, o.Off)
			case a.Lost():
			default:
				cuts := pieces(o.Off, len(o.Data), r.tl.sector)
				for j := 0; j+1 < len(cuts); j++ {
					if j < len(a.Keep) && a.Keep[j] {
						buf = writeAt(buf, o.Data[cuts[j]:cuts[j+1]], o.Off+int64(cuts[j]))
					}
				}
			}
		}
	}
	return buf
}

// namesAt returns the names as they were just before op index end: the
// snapshot's, with every create, unlink and rename before it (and the
// implicit creates of writes to unknown names).
func (tl *timeline) namesAt(end int) map[string]int {
	names := map[string]int{}
	for n, id := range tl.initial {
		names[n] = id
	}
	for i, o := range tl.rec.Ops[:end] {
		nameOp(names, o, tl.fileOf[i])
	}
	return names
}

// nameOp applies op o, of file object id (-1: none), to the names: a
// create names a new object, an unlink drops a name, a rename moves one,
// and a write or truncate to a name nobody created names the object the
// timeline made for it. Other ops change no name.
func nameOp(names map[string]int, o Op, id int) {
	if id < 0 {
		return
	}
	switch o.Kind {
	case OpCreate:
		names[o.Path] = id
	case OpUnlink:
		delete(names, o.Path)
	case OpRename:
		delete(names, o.Path)
		names[o.To] = id
	case OpWrite, OpTruncate:
		if _, ok := names[o.Path]; !ok {
			names[o.Path] = id
		}
	}
}

// naiveImage builds the image of a state by replaying every op from the
// snapshot (the reference the tests compare build against). Directory ops
// from undo on are skipped: their files keep whatever was written to them.
func naiveImage(tl *timeline, pi int, alts []Alt, undo uint64) Image {
	alt := map[uint64]Alt{}
	for _, a := range alts {
		alt[a.Seq] = a
	}
	files := make([][]byte, tl.nFiles)
	names := map[string]int{}
	for n, id := range tl.initial {
		files[id] = append([]byte(nil), tl.rec.Initial[n]...)
		names[n] = id
	}
	p := tl.points[pi]
	undone := false
	for i, o := range tl.rec.Ops[:p.idx] {
		id := tl.fileOf[i]
		undone = undone || (undo != 0 && o.Seq == undo)
		if !undone {
			nameOp(names, o, id)
		}
		switch o.Kind {
		case OpTruncate:
			files[id] = resize(files[id], int(o.Off))
		case OpWrite:
			a, ok := alt[o.Seq]
			if !ok {
				files[id] = writeAt(files[id], o.Data, o.Off)
				continue
			}
			if a.Lost() {
				continue
			}
			cuts := pieces(o.Off, len(o.Data), tl.sector)
			for j := 0; j+1 < len(cuts); j++ {
				if a.Keep[j] {
					files[id] = writeAt(files[id], o.Data[cuts[j]:cuts[j+1]], o.Off+int64(cuts[j]))
				}
			}
		}
	}
	return imageOf(tl.db, names, files)
}

// imageOf returns the image of db's main files under names, with the
// contents files (by file object).
func imageOf(db string, names map[string]int, files [][]byte) Image {
	img := Image{}
	for _, n := range dbNames(db) {
		if id, ok := names[n]; ok {
			img[n] = files[id]
		}
	}
	return img
}
