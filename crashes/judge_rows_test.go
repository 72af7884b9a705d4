package crashes

import "testing"

// TestExpectRow predicts rows from the applied commits alone: seq 1
// inserts row r of task A, seq 2 deletes it, seq 3 inserts it again, seq 4
// cascades task A's rows of the table; row f is first inserted by seq 2.
func TestExpectRow(t *testing.T) {
	r, f := rowKey{"c", "r"}, rowKey{"c", "f"}
	d := rowKey{"c", "d"}
	x := &expect{
		acks: []ack{{Seq: 1, Op: "insert"}, {Seq: 2, Op: "delete"}, {Seq: 3, Op: "insert"}, {Seq: 4, Op: "archive"}},
		rows: map[rowKey][]rowEvent{
			r: {{ack: 0, insert: true}, {ack: 1}, {ack: 2, insert: true}},
			f: {{ack: 1, insert: true}},
			d: {{ack: 1}},
		},
		cascades: map[string][]cascadeEv{"c": {{ack: 3, task: "A"}}},
	}
	applied := func(seqs ...int64) []bool {
		out := make([]bool, len(x.acks))
		for _, s := range seqs {
			out[s-1] = true
		}
		return out
	}
	for _, c := range []struct {
		name    string
		k       rowKey
		task    string
		applied []bool
		want    rowWant
	}{
		{"inserted", r, "A", applied(1), rowWant{present: true, decided: 1, cause: "inserted by seq 1 (insert)"}},
		{"deleted", r, "A", applied(1, 2), rowWant{decided: 2, cause: "deleted by seq 2 (delete)"}},
		{"inserted again", r, "A", applied(1, 2, 3), rowWant{present: true, decided: 3, cause: "inserted by seq 3 (insert)"}},
		{"cascaded", r, "A", applied(1, 2, 3, 4), rowWant{decided: 4, cause: "cascaded by seq 4 (archive, task A)"}},
		{"another task's cascade", r, "B", applied(1, 2, 3, 4), rowWant{present: true, decided: 3, cause: "inserted by seq 3 (insert)"}},
		{"cascade of an unknown task", r, "", applied(1, 4), rowWant{decided: 4, cause: "maybe cascaded by seq 4 (archive, task A)", unsure: true}},
		{"no commit in the image", r, "A", applied(), rowWant{future: true, cause: "inserted only by seq 1 (insert), not in the image"}},
		{"future row", f, "", applied(1), rowWant{future: true, cause: "inserted only by seq 2 (delete), not in the image"}},
		{"existed before its delete", d, "", applied(1), rowWant{present: true, cause: "existed before its first recorded delete, which is not in the image"}},
	} {
		if got := expectRow(x, c.k, c.task, c.applied); got != c.want {
			t.Errorf("%s: expectRow = %+v, want %+v", c.name, got, c.want)
		}
	}
}

// TestCompareRow: a row whose presence differs from the prediction is a
// problem of the kind the difference names, or unsure when the prediction
// is, or an unacknowledged commit came after the deciding one.
func TestCompareRow(t *testing.T) {
	k := rowKey{"c", "r"}
	for _, c := range []struct {
		name    string
		w       rowWant
		present bool
		unknown []int64
		kind    string // "" none, "row" unsure
	}{
		{"as predicted", rowWant{present: true, decided: 1}, true, nil, ""},
		{"resurrected", rowWant{decided: 2}, true, nil, KindResurrected},
		{"lost", rowWant{present: true, decided: 2}, false, nil, KindLostRow},
		{"future", rowWant{future: true}, true, nil, KindFutureRow},
		{"unsure cascade", rowWant{decided: 4, unsure: true}, true, nil, "row"},
		{"later unknown commit", rowWant{decided: 2}, true, []int64{3}, "row"},
		{"earlier unknown commit", rowWant{decided: 2}, true, []int64{1}, KindResurrected},
	} {
		var ps, unsure problems
		compareRow(k, c.w, c.present, c.unknown, &ps, &unsure)
		got := ""
		if l := ps.list(); len(l) > 0 {
			got = l[0].Kind
		}
		if l := unsure.list(); len(l) > 0 {
			got = l[0].Kind
		}
		if got != c.kind || len(ps.list())+len(unsure.list()) > 1 {
			t.Errorf("%s: got %q (problems %v, unsure %v), want %q", c.name, got, ps.list(), unsure.list(), c.kind)
		}
	}
}
