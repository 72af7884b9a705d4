package trace_test

import (
	"testing"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/faultfs/trace"
)

// TestOpNamesMatchPlanOps: the trace's op names are the plan's op kinds,
// one for one and in the same order, so a record's Op compares with them.
func TestOpNamesMatchPlanOps(t *testing.T) {
	names := []trace.OpName{trace.OpOpen, trace.OpCreate, trace.OpRead, trace.OpWrite, trace.OpFsync,
		trace.OpFlush, trace.OpRelease, trace.OpUnlink, trace.OpRename, trace.OpSetattr, trace.OpTruncate,
		trace.OpFallocate, trace.OpGetattr, trace.OpLookup, trace.OpMkdir, trace.OpReaddir}
	ops := plan.Ops()
	if len(names) != len(ops) {
		t.Fatalf("%d trace op names, %d plan ops", len(names), len(ops))
	}
	for i, op := range ops {
		if string(names[i]) != string(op) {
			t.Errorf("op %d: trace %q, plan %q", i, names[i], op)
		}
	}
}
