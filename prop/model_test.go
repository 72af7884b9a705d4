package prop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/kanbancore"
)

// modelCheck runs w in several processes without faults and checks the
// result: the ledger replay (every run) and, for partitioned workloads, the
// pure model's final state.
func modelCheck(ctx context.Context, dir, driver, profile string, w Workload) Evaluation {
	d, err := os.MkdirTemp(dir, "run-")
	if err != nil {
		return Evaluation{Err: err}
	}
	defer os.RemoveAll(d)
	run, err := RunWorkload(ctx, d, driver, profile, w, nil)
	if err != nil {
		return Evaluation{Err: err}
	}
	replayed, bad := ReplayLedger(run)
	if w.Partitioned {
		m, err := ModelFinal(run)
		if err != nil {
			return Evaluation{Err: err}
		}
		if !m.Equal(run.Final) {
			bad = append(bad, "the model disagrees with the database:\n  model: "+m.String()+"\n  db:    "+run.Final.String())
		}
	}
	commits := run.Counter
	why := fmt.Sprintf("%d steps, %d roles, %d commits, %v; final %s", len(w.Steps), w.Roles, commits, run.Wall.Round(time.Millisecond), replayed.String())
	if len(bad) > 0 {
		return Evaluation{Fail: true, Why: strings.Join(bad, "\n") + "\n" + why}
	}
	return Evaluation{Why: why}
}

// TestPropModelAgreement is property 2 of issue 5: with no faults,
// kanbancore in several OS processes ends in a state the model accepts.
// Every run's committed history is replayed in commit-counter order (no
// counter gaps, every transition from the status the replay holds and
// allowed for its transaction, no ready task with an unfinished parent,
// the replay's final state equal to the database's); partitioned workloads
// (each dependency component in one process) are also replayed through the
// pure model kanbancore/model, whose final state must equal the database's.
func TestPropModelAgreement(t *testing.T) {
	seed := testSeed(t)
	b := budget(t,
		Budget{Cases: 4, ShrinkRuns: 15, ShrinkTime: 40 * time.Second, Reruns: 3},
		Budget{Cases: 12, ShrinkRuns: 40, ShrinkTime: 2 * time.Minute, Reruns: 5},
		Budget{Cases: 100, ShrinkRuns: 150, ShrinkTime: 10 * time.Minute, Reruns: 10})
	profiles := []string{kanbancore.ProfileHardened}
	if CurrentMode(testing.Short()) == ModeSoak {
		profiles = kanbancore.ProfileNames()
	}
	for _, driver := range []string{"modernc", "mattn"} {
		for _, part := range []bool{false, true} {
			for _, profile := range profiles {
				name := fmt.Sprintf("%s/%s/shared", driver, profile)
				if part {
					name = fmt.Sprintf("%s/%s/partitioned", driver, profile)
				}
				t.Run(name, func(t *testing.T) {
					space := DefaultWorkloadSpace()
					space.Partitioned = part
					dir := t.TempDir()
					s := &Search{Name: "model-agreement-" + strings.ReplaceAll(name, "/", "-"), Gen: GenWorkload(space), Seed: seed, Budget: b, Logf: t.Logf,
						Key: func(v interface{}) string { return v.(Workload).String() },
						Check: func(ctx context.Context, v interface{}) Evaluation {
							return modelCheck(ctx, dir, driver, profile, v.(Workload))
						}}
					f, st, err := s.Run(context.Background())
					t.Logf("%d cases, %d runs, %v", st.Cases, st.Evals, st.Wall.Round(time.Millisecond))
					if err != nil {
						t.Fatalf("setup: %v", err)
					}
					if f != nil {
						w := f.Shrunk.(Workload)
						t.Fatalf("model agreement violated:\n%s\n  seed %d case %d; shrunk %d → %d steps in %d steps / %d runs / %v; reproduced %d of %d re-runs (cross-process timing is not seeded)\n  smallest workload: %s\n  replay: go test ./prop -run '^%s$' -seed %d",
							f.Last.Why, f.Seed, f.Case, len(f.Original.(Workload).Steps), len(w.Steps), f.Shrinks, f.ShrinkRuns, f.ShrinkTime.Round(time.Millisecond),
							f.Reproduced, f.Reruns, w.String(), t.Name(), f.Seed)
					}
				})
			}
		}
	}
}

// TestReplayLedgerCatchesLostUpdate feeds the replay a history in which two
// processes both moved one task ready→running (a lost update) and checks
// that it says so: the replay is not a check that cannot fail.
func TestReplayLedgerCatchesLostUpdate(t *testing.T) {
	dir := t.TempDir()
	w := Workload{Roles: 1, Tasks: 2, Steps: []Step{{Role: 0, Op: OpCreate, Task: 0}, {Role: 0, Op: OpClaim, Task: 0}}}
	run, err := RunWorkload(context.Background(), filepath.Join(dir), "modernc", kanbancore.ProfileHardened, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, bad := ReplayLedger(run); len(bad) > 0 {
		t.Fatalf("clean run judged bad: %v", bad)
	}
	if m, err := ModelFinal(run); err != nil || !m.Equal(run.Final) || m.Status["t00"] != "running" {
		t.Fatalf("model final %v (err %v), db %v: want t00=running in both", m, err, run.Final)
	}
	// Duplicate the claim commit as if a second process had made it too.
	var dup = -1
	for i, e := range run.Events {
		if e.Type == "commit" && e.Op == "claim_task" {
			dup = i
		}
	}
	if dup < 0 {
		t.Fatal("no claim commit in the history")
	}
	e := run.Events[dup]
	e.Seq, e.Proc = run.Counter+1, "role-x"
	run.Events = append(run.Events, e)
	run.Counter++
	run.LedgerRows++
	_, bad := ReplayLedger(run)
	found := false
	for _, b := range bad {
		found = found || strings.Contains(b, "ready→running but the replayed status is \"running\"")
	}
	if !found {
		t.Fatalf("lost update not reported; replay said: %v", bad)
	}
	// And the model comparison sees a wrong final state.
	run.Final.Status["t00"] = "ready"
	if _, bad := ReplayLedger(run); !strings.Contains(strings.Join(bad, "\n"), "differs from the database") {
		t.Fatalf("final-state mismatch not reported: %v", bad)
	}
}
