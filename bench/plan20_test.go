package bench

import (
	"os"
	"testing"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
)

// TestNeverFirePlan checks that the fuse20 plan parses to 20 rules and that
// the engine fires none of them on the ops a 1-row INSERT loop issues. (Run
// also reads the live counters of the mount and voids the numbers if any
// rule fired.)
func TestNeverFirePlan(t *testing.T) {
	p, err := plan.Parse(NeverFirePlan)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(p.Rules); got != 20 {
		t.Fatalf("NeverFirePlan has %d rules, want 20", got)
	}
	if got := countRules(NeverFirePlan); got != 20 {
		t.Fatalf("countRules = %d, want 20", got)
	}
	e := plan.NewEngine(p, 1)
	pid := uint32(os.Getpid())
	files := []string{"d/x.db", "d/x.db-wal", "d/x.db-shm", "d/x.db-journal"}
	ops := []plan.Op{plan.OpOpen, plan.OpCreate, plan.OpRead, plan.OpWrite, plan.OpFsync,
		plan.OpTruncate, plan.OpUnlink, plan.OpFlush, plan.OpRelease, plan.OpGetattr, plan.OpLookup}
	lens := []int64{0, 24, 100, 512, 4096, 32768, 1 << 20}
	n := 0
	for i := 0; i < 3000; i++ {
		for _, f := range files {
			op := ops[i%len(ops)]
			ln := lens[i%len(lens)]
			off := int64(i%2048) * 4096
			if d, fired := e.Decide(plan.Call{Op: op, Path: f, Off: off, Len: ln, Pid: pid}); fired {
				t.Fatalf("rule %d fired on %s %s off=%d len=%d: %s", d.Rule, op, f, off, ln, d.Desc)
			}
			n++
		}
	}
	for _, c := range e.Counters() {
		if c.Fired != 0 {
			t.Fatalf("rule %d (%s) fired %d times", c.Rule, c.Text, c.Fired)
		}
	}
	t.Logf("%d events, no rule fired", n)
}
