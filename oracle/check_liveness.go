package oracle

import (
	"fmt"
	"strings"
	"time"

	"github.com/sqlchaos/sqlchaos/history"
)

var livenessChecker = Checker{
	Name: Liveness,
	Doc: "After the faults clear (trace mark \"faults-cleared\", or an empty plan loaded over a plan with " +
		"rules; the mount's initial empty plan is no clearing), the board dispatches again within " +
		"Bounds.Liveness: a TypeSpawn, or a successful return of a dispatch/tick operation (not marked " +
		"Data.Skipped). A permanent latch fails. When nothing attempted to dispatch after the clear " +
		"(no dispatch/tick operation and no gateway/dispatcher process event), the verdict is inconclusive.",
	Check: checkLiveness,
}

// isDispatch reports whether e shows the board dispatching.
func isDispatch(e history.Event) bool {
	if e.Type == history.TypeSpawn {
		return true
	}
	if e.Type != history.TypeReturn || e.Err != "" {
		return false
	}
	if e.Facts().Skipped {
		return false
	}
	return strings.HasPrefix(e.Op, "dispatch") || strings.HasPrefix(e.Op, "tick")
}

// dispatchAttempted reports whether anything tried to dispatch at or
// after t: a dispatch/tick operation (call, return or error), or any event
// of a dispatcher process (start role containing "dispatcher" or
// "gateway", or, without a start event, a process named gateway-N or
// dispatcher-N).
func dispatchAttempted(in *Input, t int64) bool {
	role := map[int]string{}
	for _, e := range in.Events {
		if e.Type == history.TypeStart {
			role[e.Pid] = e.Facts().Role
		}
	}
	isDispatcher := func(e history.Event) bool {
		if r, ok := role[e.Pid]; ok {
			return strings.Contains(r, "dispatcher") || strings.Contains(r, "gateway")
		}
		name := strings.TrimRight(e.Proc, "0123456789")
		return name == "gateway-" || name == "dispatcher-"
	}
	for _, e := range in.Events {
		if e.T < t {
			continue
		}
		if strings.HasPrefix(e.Op, "dispatch") || strings.HasPrefix(e.Op, "tick") || isDispatcher(e) {
			return true
		}
	}
	return false
}

func checkLiveness(in *Input) Result {
	f := in.facts()
	if f.clearT == 0 {
		if !f.armed {
			return Result{Verdict: Inconclusive, Summary: "no fault plan with rules was loaded, so there was nothing to recover from"}
		}
		return Result{Verdict: Inconclusive, Summary: "the trace records no fault clearing (mark " + MarkFaultsCleared + ", or an empty plan over a plan with rules)"}
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
	if !dispatchAttempted(in, f.clearT) {
		res.Verdict = Inconclusive
		res.Summary = "nothing attempted to dispatch after the faults cleared (no dispatch/tick operation, no gateway or dispatcher process)"
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
