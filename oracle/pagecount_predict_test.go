package oracle

import (
	"testing"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
)

// TestPredictShortWrites table-tests the prediction half of the page-count
// checker on its own: which faulted writes the trace says extended a
// database file, from what size, and whether an op restored the size
// before the writer's transaction ended.
func TestPredictShortWrites(t *testing.T) {
	size := func(n int64) *int64 { return &n }
	op := func(t int64, name trace.OpName, off, n, ln int64) trace.Record {
		return trace.Record{Seq: uint64(t), T: t, Kind: trace.KindOp, Pid: 7, Op: name, Path: "kanban.db", Off: off, Len: ln, N: n, Result: "ok"}
	}
	torn := func(t, off, n, ln int64) trace.Record {
		r := op(t, trace.OpWrite, off, n, ln)
		r.Rule, r.Fault = 1, "torn keep=512 then=ok"
		return r
	}
	sized := func(r trace.Record, n int64) trace.Record { r.Size = size(n); return r }
	commit := history.Event{Type: history.TypeCommit, Pid: 7, T: 50}
	type want struct {
		before, intended int64
		known, restored  bool
		wal, sized       bool
		after, bounded   int64
	}
	cases := []struct {
		name      string
		trace     []trace.Record
		events    []history.Event
		finalWAL  bool
		finalSize int64 // > 0: the saved file's size bounds every record
		want      []want
	}{
		{name: "created file, torn extend, nothing restores it",
			trace: []trace.Record{op(1, trace.OpCreate, 0, 0, 0), op(2, trace.OpWrite, 0, 4096, 4096), torn(3, 4096, 512, 4096)},
			want:  []want{{before: 4096, intended: 8192, known: true}}},
		{name: "a later write before the commit restores the size: a hole",
			trace:  []trace.Record{op(1, trace.OpCreate, 0, 0, 0), torn(3, 0, 512, 4096), op(4, trace.OpWrite, 4096, 4096, 4096)},
			events: []history.Event{commit},
			want:   []want{{before: 0, intended: 4096, known: true, restored: true}}},
		{name: "a restoring write after the writer's commit comes too late",
			trace:  []trace.Record{op(1, trace.OpCreate, 0, 0, 0), torn(3, 0, 512, 4096), op(60, trace.OpWrite, 4096, 4096, 4096)},
			events: []history.Event{commit},
			want:   []want{{before: 0, intended: 4096, known: true}}},
		{name: "a truncate to the intended end restores it",
			trace: []trace.Record{op(1, trace.OpCreate, 0, 0, 0), torn(3, 0, 512, 4096), op(4, trace.OpTruncate, 4096, 0, 0)},
			want:  []want{{before: 0, intended: 4096, known: true, restored: true}}},
		{name: "a write inside the file is not an extend",
			trace: []trace.Record{op(1, trace.OpCreate, 0, 0, 0), op(2, trace.OpWrite, 0, 8192, 8192), torn(3, 0, 512, 4096)}},
		{name: "an unfaulted write is not a short write",
			trace: []trace.Record{op(1, trace.OpCreate, 0, 0, 0), op(2, trace.OpWrite, 0, 512, 4096)}},
		{name: "no create: the size before is only a lower bound",
			trace: []trace.Record{op(2, trace.OpWrite, 0, 4096, 4096), torn(3, 4096, 512, 4096)},
			want:  []want{{before: 4096, intended: 8192}}},
		{name: "no create, the saved file bounds the size",
			trace:     []trace.Record{op(2, trace.OpWrite, 0, 4096, 4096), torn(3, 4096, 512, 4096)},
			finalSize: 4608,
			want:      []want{{before: 4096, intended: 8192, known: true, bounded: 4608}}},
		{name: "a short read ends at EOF and makes the size known",
			trace: []trace.Record{op(1, trace.OpRead, 0, 4096, 8192), torn(3, 4096, 512, 4096)},
			want:  []want{{before: 4096, intended: 8192, known: true}}},
		{name: "recorded sizes are exact",
			trace: []trace.Record{sized(op(1, trace.OpOpen, 0, 0, 0), 4096), sized(torn(3, 4096, 512, 4096), 4608)},
			want:  []want{{before: 4096, intended: 8192, known: true, sized: true, after: 4608}}},
		{name: "a recorded size at the intended end restores at once",
			trace: []trace.Record{sized(op(1, trace.OpOpen, 0, 0, 0), 4096), sized(torn(3, 4096, 512, 4096), 8192)},
			want:  []want{{before: 4096, intended: 8192, known: true, sized: true, after: 8192, restored: true}}},
		{name: "a header flip to WAL before the write",
			trace: []trace.Record{op(1, trace.OpCreate, 0, 0, 0),
				{T: 2, Kind: trace.KindHeader, Path: "kanban.db", OldMode: trace.HeaderRollback, NewMode: trace.HeaderWAL}, torn(3, 0, 512, 4096)},
			want: []want{{before: 0, intended: 4096, known: true, wal: true}}},
		{name: "no mode seen: the saved database's mode",
			trace:    []trace.Record{op(1, trace.OpCreate, 0, 0, 0), torn(3, 0, 512, 4096)},
			finalWAL: true,
			want:     []want{{before: 0, intended: 4096, known: true, wal: true}}},
		{name: "an unlinked file starts again unknown",
			trace: []trace.Record{op(1, trace.OpCreate, 0, 0, 0), op(2, trace.OpUnlink, 0, 0, 0), torn(3, 0, 512, 4096)},
			want:  []want{{before: 0, intended: 4096}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := tornExtendInput{trace: c.trace, events: c.events, finalWAL: c.finalWAL}
			if c.finalSize > 0 {
				in.finalSize = func(int) (int64, bool) { return c.finalSize, true }
			}
			got := predictShortWrites(in)
			if len(got) != len(c.want) {
				t.Fatalf("%d short writes, want %d: %+v", len(got), len(c.want), got)
			}
			for i, w := range c.want {
				g := got[i]
				gw := want{before: g.before, intended: g.intended, known: g.known, restored: g.restore != nil,
					wal: g.wal, sized: g.sized, after: g.after, bounded: g.bounded}
				if gw != w {
					t.Errorf("short write %d: got %+v, want %+v", i, gw, w)
				}
			}
		})
	}
}
