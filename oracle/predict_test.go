package oracle

import (
	"testing"

	"github.com/sqlchaos/sqlchaos/history"
)

// ack builds an acknowledged commit for prediction tests.
func ack(seq int64, op string, ins, del []rowRef, tr ...transitionRef) commitEv {
	return commitEv{Event: history.Event{Seq: seq, Op: op}, Commit: history.Commit{Inserted: ins, Deleted: del, Transitions: tr}}
}

// TestPredictRows table-tests the prediction half of the resurrection
// checker on its own, with no database: what the acknowledged history says
// the final database holds.
func TestPredictRows(t *testing.T) {
	task := func(id string) rowRef { return rowRef{Table: "tasks", Key: id} }
	ev := func(id string) rowRef { return rowRef{Table: "task_events", Key: id} }
	type want struct {
		row     rowKey
		present bool
		status  string
		seq     int64
	}
	cases := []struct {
		name      string
		acks      []commitEv
		forked    bool
		confirmed []bool
		rows      []want
		cascades  int
		skipped   int
		created   []rowKey
	}{
		{name: "insert then delete: absent",
			acks: []commitEv{ack(1, "create", []rowRef{task("a")}, nil), ack(2, "delete", nil, []rowRef{task("a")})},
			rows: []want{{rowKey{"tasks", "a"}, false, "", 2}}},
		{name: "last transition sets the status",
			acks: []commitEv{ack(1, "create", []rowRef{task("a")}, nil),
				ack(2, "claim", nil, nil, transitionRef{Task: "a", From: "ready", To: "running"}),
				ack(3, "complete", nil, nil, transitionRef{Task: "a", From: "running", To: "done"})},
			rows: []want{{rowKey{"tasks", "a"}, true, "done", 3}}},
		{name: "a cascade is kept apart, the child row stays predicted present",
			acks: []commitEv{ack(1, "create", []rowRef{task("a"), ev("7")}, nil),
				ack(2, "delete", nil, []rowRef{task("a"), {Table: "task_events", Key: "task:a"}})},
			rows:     []want{{rowKey{"tasks", "a"}, false, "", 2}, {rowKey{"task_events", "7"}, true, "", 1}},
			cascades: 1},
		{name: "forked: only confirmed commits predict, every insert is created",
			acks: []commitEv{ack(1, "create", []rowRef{task("a")}, nil), ack(2, "create", []rowRef{task("b")}, nil),
				ack(2, "delete", nil, []rowRef{task("a")})},
			forked: true, confirmed: []bool{true, true, false},
			rows:    []want{{rowKey{"tasks", "a"}, true, "", 1}, {rowKey{"tasks", "b"}, true, "", 2}},
			skipped: 1, created: []rowKey{{"tasks", "a"}, {"tasks", "b"}}},
		{name: "not forked: confirmation is ignored",
			acks:      []commitEv{ack(1, "create", []rowRef{task("a")}, nil), ack(2, "delete", nil, []rowRef{task("a")})},
			confirmed: []bool{false, false},
			rows:      []want{{rowKey{"tasks", "a"}, false, "", 2}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := predictRows(c.acks, c.forked, c.confirmed)
			if len(p.last) != len(c.rows) {
				t.Errorf("%d rows predicted, want %d: %v", len(p.last), len(c.rows), p.last)
			}
			for _, w := range c.rows {
				x, ok := p.last[w.row]
				if !ok || x.present != w.present || x.status != w.status || x.seq != w.seq {
					t.Errorf("%v: got %+v (found %v), want present=%v status=%q seq=%d", w.row, x, ok, w.present, w.status, w.seq)
				}
			}
			if len(p.cascades) != c.cascades || p.skipped != c.skipped {
				t.Errorf("cascades=%d skipped=%d, want %d and %d", len(p.cascades), p.skipped, c.cascades, c.skipped)
			}
			for _, k := range c.created {
				if !p.created[k] {
					t.Errorf("%v not in created", k)
				}
			}
		})
	}
}

// TestLaterCascades: a cascade explains only rows of tasks born before the
// row's commit, on the same table, after it.
func TestLaterCascades(t *testing.T) {
	p := predictRows([]commitEv{
		ack(1, "create", []rowRef{{Table: "tasks", Key: "a"}}, nil),
		ack(3, "delete", nil, []rowRef{{Table: "task_events", Key: "task:a"}}),
		ack(4, "create", []rowRef{{Table: "tasks", Key: "b"}}, nil),
		ack(5, "delete", nil, []rowRef{{Table: "task_events", Key: "task:b"}}),
	}, false, nil)
	got := p.laterCascades("task_events", 2)
	if _, ok := got["a"]; !ok || len(got) != 1 {
		t.Errorf("laterCascades(task_events, 2) = %v, want only a (b was born at 4)", got)
	}
	if got := p.laterCascades("task_runs", 2); len(got) != 0 {
		t.Errorf("another table: %v", got)
	}
	if got := p.laterCascades("task_events", 5); len(got) != 0 {
		t.Errorf("after the last cascade: %v", got)
	}
}
