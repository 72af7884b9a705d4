package crashes

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/sqlchaos/sqlchaos/history"
)

func commitEv(seq int64, proc string, t int64, op string, c history.Commit) history.Event {
	return history.Event{Type: history.TypeCommit, Seq: seq, Proc: proc, T: t, Op: op, Data: &history.Data{Commit: c}}
}

func refs(table string, keys ...string) []history.RowRef {
	var out []history.RowRef
	for _, k := range keys {
		out = append(out, history.RowRef{Table: table, Key: k})
	}
	return out
}

// judgeHistory: seq 1 inserts t rows 1..3 and task A with event e1 (acked
// at t=100), seq 2 deletes t row 2 and moves A to done (t=200), seq 3
// inserts t row 9 (t=300).
func judgeHistory() *expect {
	return newExpect([]history.Event{
		commitEv(1, "w", 100, "insert", history.Commit{
			Inserted: append(append(refs("t", "1", "2", "3"), refs("tasks", "A")...),
				history.RowRef{Table: "task_events", Key: "e1", Task: "A"}),
			Transitions: []history.Transition{{Task: "A", From: "", To: "ready"}},
		}),
		commitEv(2, "w", 200, "delete", history.Commit{
			Deleted:     refs("t", "2"),
			Transitions: []history.Transition{{Task: "A", From: "ready", To: "done"}},
		}),
		commitEv(3, "v", 300, "insert", history.Commit{Inserted: refs("t", "9")}),
		{Type: history.TypeStart, Proc: "w", T: 1},
	})
}

// img returns facts for a healthy image holding ledger seqs and rows.
func img(seqs []int64, tRows []string, status string, events map[string]string) *facts {
	f := &facts{integrity: []string{"ok"}, ledger: map[int64]ledgerRow{}, rows: map[string]map[string]string{
		"t": {}, "tasks": {}, "task_events": {}}, rowsErr: map[string]error{}, status: map[string]string{}}
	procs := map[int64]string{1: "w", 2: "w", 3: "v", 4: "x"}
	ops := map[int64]string{1: "insert", 2: "delete", 3: "insert", 4: "mystery"}
	for _, s := range seqs {
		f.ledger[s] = ledgerRow{Seq: s, Proc: procs[s], Op: ops[s]}
	}
	for _, k := range tRows {
		f.rows["t"][k] = ""
	}
	if status != "" {
		f.rows["tasks"]["A"] = ""
		f.status["A"] = status
	}
	for k, task := range events {
		f.rows["task_events"][k] = task
	}
	return f
}

func TestJudge(t *testing.T) {
	x := judgeHistory()
	wal := func(sync string) Mode { return Mode{Journal: "wal", Sync: sync} }
	ev := map[string]string{"e1": "A"}
	end := Cut{T: math.MaxInt64}
	cases := []struct {
		name  string
		f     *facts
		cut   Cut
		mode  Mode
		want  Verdict
		kinds []string
	}{
		{"all three commits", img([]int64{1, 2, 3}, []string{"1", "3", "9"}, "done", ev), end, wal("full"), Pass, nil},
		{"prefix 1..2 at normal", img([]int64{1, 2}, []string{"1", "3"}, "done", ev), end, wal("normal"), Pass, nil},
		{"prefix 1..2 at full, cut after seq 3's ack", img([]int64{1, 2}, []string{"1", "3"}, "done", ev), end, wal("full"), Fail, []string{KindLostCommit}},
		{"prefix 1..2 at full, cut before seq 3's ack", img([]int64{1, 2}, []string{"1", "3"}, "done", ev), Cut{T: 250}, wal("full"), Pass, nil},
		{"delete-normal is durable", img([]int64{1, 2}, []string{"1", "3"}, "done", ev), end, Mode{"delete", "normal"}, Fail, []string{KindLostCommit}},
		{"lying fsync: lost commits allowed", img([]int64{1}, []string{"1", "2", "3"}, "ready", ev), Cut{T: math.MaxInt64, Lying: true}, wal("full"), Pass, nil},
		{"resurrected row", img([]int64{1, 2, 3}, []string{"1", "2", "3", "9"}, "done", ev), end, wal("full"), Fail, []string{KindResurrected}},
		{"resurrected row, lying fsync", img([]int64{1, 2, 3}, []string{"1", "2", "3", "9"}, "done", ev), Cut{T: math.MaxInt64, Lying: true}, wal("full"), Fail, []string{KindResurrected}},
		{"deleted row back with its delete gone (normal)", img([]int64{1}, []string{"1", "2", "3"}, "ready", ev), end, wal("normal"), Pass, nil},
		{"lost row", img([]int64{1, 2, 3}, []string{"1", "9"}, "done", ev), end, wal("full"), Fail, []string{KindLostRow}},
		{"future row", img([]int64{1, 2}, []string{"1", "3", "9"}, "done", ev), end, wal("normal"), Fail, []string{KindFutureRow}},
		{"phantom row", img([]int64{1, 2, 3}, []string{"1", "3", "9", "77"}, "done", ev), end, wal("full"), Fail, []string{KindPhantom}},
		{"stale status", img([]int64{1, 2, 3}, []string{"1", "3", "9"}, "ready", ev), end, wal("full"), Fail, []string{KindStaleStatus}},
		{"ledger hole", img([]int64{1, 3}, []string{"1", "2", "3", "9"}, "ready", ev), end, wal("normal"), Fail, []string{KindLedgerHole}},
		{"unacknowledged later commit makes rows unsure", img([]int64{1, 2, 3, 4}, []string{"1", "2", "3", "9"}, "done", ev), end, wal("full"), Inconclusive, nil},
		{"lost child row", img([]int64{1, 2, 3}, []string{"1", "3", "9"}, "done", nil), end, wal("full"), Fail, []string{KindLostRow}},
		{"integrity failure on an honest disk", &facts{integrity: []string{"*** in database main ***", "Page 5: btreeInitPage() returns error code 11"},
			ledgerErr: errors.New("database disk image is malformed (11)")}, end, wal("full"), Fail, []string{KindCorrupt}},
		{"integrity failure when a fsync lied is detected", &facts{integrity: []string{"row 3 missing from index"}, ledgerErr: errors.New("database disk image is malformed (11)")},
			Cut{T: 1, Lying: true}, wal("full"), Detected, []string{KindCorrupt}},
		{"detected, and what the damage did to the rows", func() *facts {
			f := img([]int64{1, 2, 3}, []string{"1", "2", "3", "9"}, "done", ev)
			f.integrity, f.quick = []string{"*** in database main ***\nwrong # of entries in index i"}, []string{"ok"}
			return f
		}(), Cut{T: math.MaxInt64, Lying: true}, wal("full"), Detected, []string{KindCorrupt, KindResurrected}},
		{"a ledger that does not read, on an image that passed integrity_check", func() *facts {
			f := img(nil, nil, "", nil)
			f.ledgerErr = errors.New("database disk image is malformed (11)")
			return f
		}(), end, wal("full"), Fail, []string{KindCorrupt}},
		{"open reports damage", &facts{openErr: errors.New("file is not a database (26)"), damaged: true}, end, wal("full"), Fail, []string{KindCorrupt}},
		{"harness error", &facts{harnessError: errors.New("disk full")}, end, wal("full"), Error, nil},
		{"open error that is not damage", &facts{openErr: errors.New("unable to open database file")}, end, wal("full"), Error, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := judge(x, c.f, c.cut, c.mode)
			if j.Verdict != c.want || !reflect.DeepEqual(j.Kinds(), c.kinds) {
				t.Fatalf("verdict %s kinds %v, want %s %v\n%s", j.Verdict, j.Kinds(), c.want, c.kinds, j.Summary())
			}
		})
	}
}

func TestJudgeCascadeResurrection(t *testing.T) {
	x := newExpect([]history.Event{
		commitEv(1, "w", 10, "create", history.Commit{Inserted: []history.RowRef{
			{Table: "task_events", Key: "7", Task: "A"},
			{Table: "task_events", Key: "8", Task: "B"}}}),
		commitEv(2, "w", 20, "delete_task", history.Commit{Deleted: refs("task_events", "task:A")}),
	})
	f := &facts{integrity: []string{"ok"}, ledger: map[int64]ledgerRow{1: {1, "w", "create"}, 2: {2, "w", "delete_task"}},
		rows: map[string]map[string]string{"task_events": {"7": "A", "8": "B"}}, rowsErr: map[string]error{}}
	j := judge(x, f, Cut{T: math.MaxInt64}, Mode{"wal", "full"})
	if j.Verdict != Fail || !reflect.DeepEqual(j.Kinds(), []string{KindResurrected}) || j.Problems[0].Count != 1 {
		t.Fatalf("got %s", j.Summary())
	}
	delete(f.rows["task_events"], "7")
	if j := judge(x, f, Cut{T: math.MaxInt64}, Mode{"wal", "full"}); j.Verdict != Pass {
		t.Fatalf("after the cascade: %s", j.Summary())
	}
}

func TestModeDurable(t *testing.T) {
	for m, want := range map[Mode]bool{
		{"wal", "full"}: true, {"wal", "normal"}: false, {"wal", "off"}: false,
		{"delete", "full"}: true, {"delete", "normal"}: true, {"delete", "off"}: false,
		{"wal", "extra"}: true, {"delete", "unknown"}: false,
	} {
		if m.Durable() != want {
			t.Errorf("%v.Durable() = %v", m, !want)
		}
	}
}

func TestClip(t *testing.T) {
	for in, want := range map[string]string{
		"cli-5":                    "cli-5",
		"done":                     "done",
		"\x00\x00":                 `"\x00\x00"`,
		strings.Repeat("ab", 30):   strings.Repeat("ab", 20) + "…(60 bytes)",
		strings.Repeat("\x01", 50): `"` + strings.Repeat(`\x01`, 40) + `"…(50 bytes)`,
	} {
		if got := clip(in); got != want {
			t.Errorf("clip(%q) = %s, want %s", in, got, want)
		}
	}
}
