package oracle

import (
	"testing"

	"github.com/sqlchaos/sqlchaos/history"
)

// TestLedgerRowMatches: a ledger row is an acknowledged commit's only when
// it names the commit's process and operation and was written no later
// than the acknowledgement; of two matching acknowledgements of one seq
// only the first after the row is confirmed, and a seq acknowledged twice
// is a fork.
func TestLedgerRowMatches(t *testing.T) {
	ack := func(seq int64, proc, op string, tm int64) commitEv {
		return commitEv{Event: history.Event{Seq: seq, Proc: proc, Op: op, T: tm, Type: history.TypeCommit}}
	}
	row := ledgerRow{Seq: 7, Proc: "cli-1", Op: "create_task", T: 100}
	for _, c := range []struct {
		name string
		c    commitEv
		want bool
	}{
		{"same proc, op, after the row", ack(7, "cli-1", "create_task", 150), true},
		{"other seq", ack(8, "cli-1", "create_task", 150), false},
		{"other proc", ack(7, "cli-2", "create_task", 150), false},
		{"other op", ack(7, "cli-1", "complete_task", 150), false},
		{"acknowledged before the row was written", ack(7, "cli-1", "create_task", 50), false},
		{"op not recorded", ack(7, "cli-1", "", 150), true},
	} {
		if got := row.matches(c.c); got != c.want {
			t.Errorf("%s: matches = %v, want %v", c.name, got, c.want)
		}
	}
	f := &facts{bySeq: map[int64][]commitEv{}}
	f.acks = []commitEv{ack(7, "cli-1", "create_task", 50), ack(7, "cli-1", "create_task", 150), ack(7, "cli-1", "create_task", 160), ack(8, "cli-2", "x", 170)}
	for _, c := range f.acks {
		f.bySeq[c.Seq] = append(f.bySeq[c.Seq], c)
	}
	fin := &final{ledger: map[int64]ledgerRow{7: row, 9: {Seq: 9, Proc: "cli-3", Op: "y", T: 180}}}
	got := f.confirmed(fin)
	if want := []bool{false, true, false, false}; len(got) != 4 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Errorf("confirmed = %v, want %v", got, want)
	}
	if u := f.unlogged(fin); len(u) != 1 || u[0] != 9 {
		t.Errorf("unlogged = %v, want [9]", u)
	}
	if fk := f.forks(); len(fk) != 1 || fk[0] != 7 {
		t.Errorf("forks = %v, want [7]", fk)
	}
}

// A commit with no transition (a comment, a respawn-guard event) names its
// task through its child rows, so a later cascade of that task explains the
// rows' absence instead of leaving them undecided.
func TestCommitTasksFromChildRows(t *testing.T) {
	c := commitEv{Commit: history.Commit{Inserted: []rowRef{
		{Table: "task_comments", Key: "7", Task: "t_1"},
		{Table: "task_events", Key: "12", Task: "t_1"},
	}}}
	if got := commitTasks(c); len(got) != 1 || got[0] != "t_1" {
		t.Fatalf("commitTasks = %v, want [t_1]", got)
	}
	c.Inserted[0].Task, c.Inserted[1].Task = "", ""
	if got := commitTasks(c); len(got) != 0 {
		t.Fatalf("without Task: commitTasks = %v, want none", got)
	}
}
