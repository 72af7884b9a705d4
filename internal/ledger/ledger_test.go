package ledger

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/kanbancore"
)

// TestObserver: with the counter, every write transaction gets the next
// seq, a ledger row and a commit event carrying it; without, seq 0 and no
// table is touched; NoModes drops journal-mode events.
func TestObserver(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name      string
		obs       Observer
		wantSeqs  []int64
		wantModes bool
	}{
		{"counter", Observer{}, []int64{1, 2}, true},
		{"no counter, no modes", Observer{NoCounter: true, NoModes: true}, []int64{0, 0}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "kanban.db")
			setup, err := kanbancore.Open(ctx, db, kanbancore.Options{Driver: kanbancore.DriverModernc, Switches: kanbancore.Hardened()})
			if err != nil {
				t.Fatal(err)
			}
			if !c.obs.NoCounter {
				if err := Create(ctx, setup); err != nil {
					t.Fatal(err)
				}
			}
			setup.Close()
			h, err := history.Create(filepath.Join(dir, "p.jsonl"), "p")
			if err != nil {
				t.Fatal(err)
			}
			obs := c.obs
			obs.H = h
			conn, err := kanbancore.Open(ctx, db, kanbancore.Options{Driver: kanbancore.DriverModernc, Switches: kanbancore.Hardened(), Observer: &obs})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				if _, err := kanbancore.CreateTask(ctx, conn, kanbancore.CreateOptions{Title: "t"}); err != nil {
					t.Fatal(err)
				}
			}
			conn.Close()
			h.Close()
			evs, err := history.ReadFile(filepath.Join(dir, "p.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			var seqs []int64
			modes := false
			for _, e := range evs {
				switch e.Type {
				case history.TypeCommit:
					if e.Op == "create_task" {
						seqs = append(seqs, e.Seq)
						if e.Facts().Inserted == nil {
							t.Errorf("commit without its inserted rows: %+v", e)
						}
					}
				case history.TypeMode:
					modes = true
				}
			}
			if len(seqs) != len(c.wantSeqs) || seqs[0] != c.wantSeqs[0] || seqs[1] != c.wantSeqs[1] {
				t.Errorf("create_task commits carry seqs %v, want %v", seqs, c.wantSeqs)
			}
			if modes != c.wantModes {
				t.Errorf("journal-mode events recorded: %v, want %v", modes, c.wantModes)
			}
		})
	}
}
