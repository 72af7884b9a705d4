package oracle

import (
	"fmt"
	"strings"
	"time"

	"github.com/sqlchaos/sqlchaos/history"
)

func init() {
	register(Checker{
		Name: "liveness",
		Doc: "After the faults clear (trace mark \"faults-cleared\" or an empty plan), the board dispatches " +
			"again within Bounds.Liveness: a TypeSpawn, or a successful return of a dispatch/tick operation " +
			"(not marked Data[\"skipped\"]). A permanent latch fails.",
		Check: checkLiveness,
	})
}

// isDispatch reports whether e shows the board dispatching.
func isDispatch(e history.Event) bool {
	if e.Type == history.TypeSpawn {
		return true
	}
	if e.Type != history.TypeReturn || e.Err != "" {
		return false
	}
	if s, _ := e.Data["skipped"].(bool); s {
		return false
	}
	return strings.HasPrefix(e.Op, "dispatch") || strings.HasPrefix(e.Op, "tick")
}

func checkLiveness(in *Input) Result {
	f := in.facts()
	if f.clearT == 0 {
		return Result{Verdict: Inconclusive, Summary: "the trace records no fault clearing (mark " + MarkFaultsCleared + " or empty plan)"}
	}
	bound := int64(time.Duration(f.bounds.Liveness))
	res := Result{Evidence: []Evidence{f.clearE}}
	for _, e := range in.Events {
		if e.T < f.clearT || !isDispatch(e) {
			continue
		}
		d := e.T - f.clearT
		res.Evidence = append(res.Evidence, histEv(e, fmt.Sprintf("dispatched %s after the faults cleared: %s %s", fmtDur(d), e.Type, e.Op+e.Task)))
		if d <= bound {
			res.Verdict = Pass
			res.Summary = fmt.Sprintf("dispatching again %s after the faults cleared (bound %v)", fmtDur(d), time.Duration(bound))
		} else {
			res.Verdict = Fail
			res.Summary = fmt.Sprintf("first dispatch %s after the faults cleared, over the bound %v", fmtDur(d), time.Duration(bound))
		}
		return res
	}
	n := 0
	for _, e := range f.errs {
		if e.T >= f.clearT {
			n++
			if n <= 5 {
				res.Evidence = append(res.Evidence, histEv(e, "after clear: "+errText(e)))
			}
		}
	}
	if f.tEnd-f.clearT < bound {
		res.Verdict = Inconclusive
		res.Summary = fmt.Sprintf("no dispatch, but the run ended %s after the faults cleared (bound %v)", fmtDur(f.tEnd-f.clearT), time.Duration(bound))
		return res
	}
	res.Verdict = Fail
	res.Summary = fmt.Sprintf("no dispatch in the %s after the faults cleared (bound %v; %s after clear): latched", fmtDur(f.tEnd-f.clearT), time.Duration(bound), plural(n, "error"))
	return res
}
