package oracle

import (
	"testing"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
)

// TestPredictDowngrades table-tests the prediction half of the
// journal-mode checker: when the database was first in WAL mode and which
// moves out of it the trace and the histories show.
func TestPredictDowngrades(t *testing.T) {
	flip := func(t int64, pid uint32, from, to string) trace.Record {
		return trace.Record{T: t, Kind: trace.KindHeader, Pid: pid, Path: "kanban.db", OldMode: from, NewMode: to}
	}
	mode := func(t int64, pid int, m string) history.Event {
		return history.Event{Type: history.TypeMode, T: t, Pid: pid, Mode: m}
	}
	const t0, window = 1, 10
	cases := []struct {
		name      string
		trace     []trace.Record
		events    []history.Event
		finalMode string
		walT      int64
		downs     []int64 // the downgrades' times
		also      int
	}{
		{name: "never WAL", trace: []trace.Record{flip(5, 1, "0/0", trace.HeaderRollback)}, finalMode: trace.HeaderRollback, walT: -1},
		{name: "switch to WAL and back",
			trace: []trace.Record{flip(5, 1, trace.HeaderRollback, trace.HeaderWAL), flip(20, 2, trace.HeaderWAL, trace.HeaderRollback)},
			walT:  5, downs: []int64{20}},
		{name: "WAL before the first header write",
			trace: []trace.Record{flip(20, 2, trace.HeaderWAL, trace.HeaderRollback)},
			walT:  t0, downs: []int64{20}},
		{name: "a connection reports WAL first",
			events: []history.Event{mode(3, 1, "wal"), mode(8, 1, "delete")},
			walT:   3, downs: []int64{8}},
		{name: "the final header alone says WAL", finalMode: trace.HeaderWAL, walT: t0},
		{name: "the flipper's own report of its flip is evidence only",
			trace:  []trace.Record{flip(20, 2, trace.HeaderWAL, trace.HeaderRollback)},
			events: []history.Event{mode(25, 2, "delete")},
			walT:   t0, downs: []int64{20}, also: 1},
		{name: "another process's report, or one after the window, is a downgrade of its own",
			trace:  []trace.Record{flip(20, 2, trace.HeaderWAL, trace.HeaderRollback)},
			events: []history.Event{mode(25, 3, "delete"), mode(40, 2, "delete")},
			walT:   t0, downs: []int64{20, 25, 40}},
		{name: "an unknown mode is evidence only",
			events: []history.Event{mode(3, 1, "wal"), mode(8, 1, "unknown")},
			walT:   3, also: 1},
		{name: "reports before WAL do not count",
			events: []history.Event{mode(2, 1, "delete"), mode(3, 1, "wal")},
			walT:   3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			walT, _ := walStart(c.trace, c.events, t0, c.finalMode)
			if walT != c.walT {
				t.Fatalf("walStart = %d, want %d", walT, c.walT)
			}
			if walT < 0 {
				return
			}
			downs, also := predictDowngrades(c.trace, c.events, walT, window)
			var got []int64
			for _, d := range downs {
				got = append(got, d.t)
			}
			if len(got) != len(c.downs) || len(also) != c.also {
				t.Fatalf("downgrades at %v with %d evidence only, want %v with %d", got, len(also), c.downs, c.also)
			}
			for i := range got {
				if got[i] != c.downs[i] {
					t.Errorf("downgrades at %v, want %v", got, c.downs)
				}
			}
		})
	}
}
