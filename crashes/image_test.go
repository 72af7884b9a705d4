package crashes

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"
)

// randomRecording makes a recording over kanban.db, -wal and -journal with
// creates, unlinks, renames, writes (overlapping, extending, past the
// end), truncates and fsyncs, with write completion times and fsync start
// times that sometimes interleave.
func randomRecording(r *rand.Rand) *Recording {
	rec := &Recording{Initial: map[string][]byte{}}
	if r.IntN(2) == 0 {
		b := make([]byte, r.IntN(5000))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		rec.Initial["kanban.db"] = b
	}
	names := []string{"kanban.db", "kanban.db-wal", "kanban.db-journal", "other"}
	var seq uint64 = 10
	t := int64(1000)
	for i := 0; i < 40+r.IntN(80); i++ {
		seq += uint64(1 + r.IntN(3))
		t += int64(r.IntN(5))
		name := names[r.IntN(len(names))]
		o := Op{Seq: seq, T: t, Path: name}
		switch k := r.IntN(20); {
		case k < 12:
			o.Kind = OpWrite
			o.Off = int64(r.IntN(6000))
			o.Data = make([]byte, 1+r.IntN(2000))
			for i := range o.Data {
				o.Data[i] = byte(r.IntN(256))
			}
		case k < 15:
			o.Kind = OpSync
			o.T -= int64(r.IntN(4)) // started before some writes completed
		case k < 16:
			o.Kind = OpTruncate
			o.Off = int64(r.IntN(7000))
		case k < 18:
			o.Kind = OpCreate
		case k < 19:
			o.Kind = OpUnlink
		default:
			o.Kind = OpRename
			o.To = names[r.IntN(len(names))]
		}
		rec.Ops = append(rec.Ops, o)
	}
	return rec
}

// TestBuildMatchesNaiveReplay checks the undo/redo image builder against
// a replay of every op from the snapshot, for random recordings, points
// and alterations (lost and torn, synced or not).
func TestBuildMatchesNaiveReplay(t *testing.T) {
	seed := time.Now().UnixNano()
	r := rand.New(rand.NewPCG(uint64(seed), 7))
	for iter := 0; iter < 300; iter++ {
		rec := randomRecording(r)
		sector := []int64{512, 100, 4096}[r.IntN(3)]
		tl, _, err := newTimeline(rec, "kanban.db", sector)
		if err != nil {
			t.Fatal(err)
		}
		rp := newReplayer(tl)
		for pi, p := range tl.points {
			rp.advance(p.idx)
			for k := 0; k < 4; k++ {
				// Alter any writes of files live at the point.
				var alts []Alt
				for _, f := range p.files {
					for _, w := range tl.opsOf[f.id] {
						if w >= p.idx || rec.Ops[w].Kind != OpWrite || r.IntN(3) != 0 {
							continue
						}
						a := Alt{Seq: rec.Ops[w].Seq}
						if r.IntN(2) == 0 {
							a.Keep = make([]bool, tl.npieces(w))
							for i := range a.Keep {
								a.Keep[i] = r.IntN(2) == 0
							}
						}
						alts = append(alts, a)
					}
				}
				sort.Slice(alts, func(i, j int) bool { return alts[i].Seq < alts[j].Seq })
				got, err := rp.build(pi, alts, 0)
				if err != nil {
					t.Fatal(err)
				}
				want := naiveImage(tl, pi, alts, 0)
				sameImage(t, fmt.Sprintf("seed %d iter %d point %d alts %s", seed, iter, pi, State{Alts: alts}.ID()), got, want)
			}
			// Directory ops lost from each unsynced one on.
			for _, d := range p.dirOps {
				undo := rec.Ops[d].Seq
				got, err := rp.build(pi, nil, undo)
				if err != nil {
					t.Fatal(err)
				}
				sameImage(t, fmt.Sprintf("seed %d iter %d point %d undo %d", seed, iter, pi, undo), got, naiveImage(tl, pi, nil, undo))
			}
		}
	}
}

func sameImage(t *testing.T, what string, got, want Image) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: files %v, want %v", what, keys(got), keys(want))
	}
	for n, b := range want {
		if !bytes.Equal(got[n], b) {
			t.Fatalf("%s: %s: %d bytes differ from the naive replay's %d", what, n, len(got[n]), len(b))
		}
	}
}

func keys(img Image) []string {
	var out []string
	for k := range img {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestTimelineVolatileAndClaims checks which writes are unsynced at each
// point and which a barrier claimed, on a hand-written rollback-journal
// commit: journal written and synced, db pages written and synced, journal
// unlinked, and a write that completed after a fsync started.
func TestTimelineVolatileAndClaims(t *testing.T) {
	w := func(seq uint64, tm int64, path string, off int64) Op {
		return Op{Seq: seq, T: tm, Kind: OpWrite, Path: path, Off: off, Data: bytes.Repeat([]byte{byte(seq)}, 1024)}
	}
	rec := &Recording{Initial: map[string][]byte{"kanban.db": make([]byte, 2048)}, Ops: []Op{
		{Seq: 1, T: 10, Kind: OpCreate, Path: "kanban.db-journal"},
		w(2, 11, "kanban.db-journal", 0),
		w(3, 12, "kanban.db-journal", 512),
		{Seq: 4, T: 13, Kind: OpSync, Path: "kanban.db-journal"}, // point A: journal 2,3 unsynced
		w(5, 20, "kanban.db", 0),
		w(6, 22, "kanban.db", 1024),                      // completes after the db fsync below started
		{Seq: 7, T: 21, Kind: OpSync, Path: "kanban.db"}, // point B: db 5,6 unsynced
		{Seq: 8, T: 30, Kind: OpUnlink, Path: "kanban.db-journal"},
		w(9, 31, "kanban.db", 512),
		// end: db 6 (not covered by the fsync that started before it
		// completed) and 9 unsynced; the journal is gone
	}}
	tl, claims, err := newTimeline(rec, "kanban.db", 512)
	if err != nil {
		t.Fatal(err)
	}
	type pf struct {
		name string
		vol  []uint64
	}
	got := map[uint64][]pf{}
	for _, p := range tl.points {
		for _, f := range p.files {
			var v []uint64
			for _, i := range f.volatile {
				v = append(v, rec.Ops[i].Seq)
			}
			got[p.seq] = append(got[p.seq], pf{f.name, v})
		}
	}
	want := map[uint64][]pf{
		4: {{"kanban.db", nil}, {"kanban.db-journal", []uint64{2, 3}}},
		7: {{"kanban.db", []uint64{5, 6}}, {"kanban.db-journal", nil}},
		0: {{"kanban.db", []uint64{6, 9}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("volatile writes per point:\n got %v\nwant %v", got, want)
	}
	// Claims: the journal fsync claimed 2 and 3 (last point where it is
	// the journal's last barrier and the journal exists: seq 7); the db
	// fsync claimed 5 (explored at the end).
	var gc []string
	for _, c := range claims {
		gc = append(gc, State{Point: tl.points[c.point].seq, Alts: []Alt{{Seq: rec.Ops[c.write].Seq}}}.ID())
	}
	sort.Strings(gc)
	if wc := []string{"7/d2", "7/d3", "end/d5"}; !reflect.DeepEqual(gc, wc) {
		t.Fatalf("claims = %v, want %v", gc, wc)
	}
	// Unsynced directory ops: the journal's create until the journal's
	// fsync completes, its unlink after the database's fsync.
	dirs := map[uint64][]uint64{}
	for _, p := range tl.points {
		for _, d := range p.dirOps {
			dirs[p.seq] = append(dirs[p.seq], rec.Ops[d].Seq)
		}
	}
	if want := map[uint64][]uint64{4: {1}, 0: {8}}; !reflect.DeepEqual(dirs, want) {
		t.Fatalf("unsynced directory ops per point: %v, want %v", dirs, want)
	}
	// Classes of parsed states.
	for id, want := range map[string]Class{"7": ClassClean, "7/d5": ClassLost, "7/t5:3": ClassTorn, "7/d5/d6": ClassSynced,
		"7/d5/t6:1": ClassRandom, "end/d5": ClassLostSynced, "7/d2": ClassLostSynced, "end/t5:1": ClassTornSynced,
		"end/u8": ClassDirLost, "4/u1": ClassDirLost} {
		s, err := ParseID(id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tl.validate(&s); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if s.Class != want {
			t.Errorf("class of %s = %s, want %s", id, s.Class, want)
		}
	}
	for _, id := range []string{"5", "7/d9", "end/d2", "7/d4", "end/t5:1ff", "7/u8", "end/u1", "end/u9"} {
		s, err := ParseID(id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tl.validate(&s); err == nil {
			t.Errorf("validate(%s) = nil error", id)
		}
	}
	// The end image without alterations: the db with 5, 6 and 9 applied.
	rp := newReplayer(tl)
	rp.advance(tl.points[len(tl.points)-1].idx)
	img, err := rp.build(len(tl.points)-1, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := img["kanban.db-journal"]; ok || len(img["kanban.db"]) != 2048 || img["kanban.db"][0] != 5 || img["kanban.db"][512] != 9 || img["kanban.db"][1536] != 6 {
		t.Fatalf("end image: %v", keys(img))
	}
	// The journal's unlink lost: it is back, with what was written to it.
	img, err = rp.build(len(tl.points)-1, nil, 8)
	if err != nil {
		t.Fatal(err)
	}
	if j := img["kanban.db-journal"]; len(j) != 1536 || j[0] != 2 || j[512] != 3 || len(img["kanban.db"]) != 2048 {
		t.Fatalf("end/u8 image: %v, journal %d bytes", keys(img), len(j))
	}
}

// TestClaimsAfterWALRestart: a checkpoint's database write, reported
// durable by the database fsync, is explored as lost at the first point
// after the barrier, at the first point after the next WAL restart (the
// WAL header rewritten), and at the last point before the database's next
// fsync.
func TestClaimsAfterWALRestart(t *testing.T) {
	w := func(tm int64, path string, off int64) Op {
		return Op{T: tm, Kind: OpWrite, Path: path, Off: off, Data: bytes.Repeat([]byte{byte(tm)}, 4096)}
	}
	sync := func(tm int64, path string) Op { return Op{T: tm, Kind: OpSync, Path: path} }
	ops := []Op{
		w(1, "kanban.db-wal", 0), sync(2, "kanban.db-wal"), // point 0 (seq 2)
		w(3, "kanban.db", 4096), sync(4, "kanban.db"), // checkpoint: point 1 (seq 4)
		w(5, "kanban.db-wal", 8192), sync(6, "kanban.db-wal"), // point 2 (seq 6): first after the checkpoint
		w(7, "kanban.db-wal", 0), sync(8, "kanban.db-wal"), // restart; point 3 (seq 8): first after it
		w(9, "kanban.db-wal", 4096), sync(10, "kanban.db-wal"), // point 4 (seq 10)
		w(11, "kanban.db", 8192), sync(12, "kanban.db"), // next checkpoint: point 5 (seq 12), the last for the first
	}
	for i := range ops {
		ops[i].Seq = uint64(i + 1)
	}
	tl, claims, err := newTimeline(&Recording{Initial: map[string][]byte{}, Ops: ops}, "kanban.db", 512)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range claims {
		if tl.rec.Ops[c.write].Path == "kanban.db" {
			got = append(got, State{Point: tl.points[c.point].seq, Alts: []Alt{{Seq: tl.rec.Ops[c.write].Seq}}}.ID())
		}
	}
	sort.Strings(got)
	if want := []string{"12/d3", "6/d3", "8/d3", "end/d11"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("database claims = %v, want %v", got, want)
	}
}
