package oracle

import (
	"fmt"
)

// dataCheckers are the checkers whose passing shows a fault was harmless.
var dataCheckers = []string{"journal-mode", "durability", "resurrection", "structure"}

var silentChecker = Checker{
	Name: Silent,
	Doc: "The general rule: every fault that fired is matched by an error surfaced in the process that " +
		"made the faulted call within Bounds.SurfaceWindow, or by passing data checks (journal-mode, " +
		"durability, resurrection, structure). Otherwise it is silent — the worst verdict. A fault with pid " +
		"0 (kernel writeback, e.g. of the mmapped -shm) has no calling process: it counts as surfaced only " +
		"by an IOERR (including SQLITE_IOERR_IN_PAGE, 8714) or CORRUPT error within the window in a process " +
		"that had opened that file (trace open/create by its pid at or before the fault; releases carry no " +
		"pid, so a process that closed it earlier still counts), never by an unrelated error elsewhere; else " +
		"the data checks decide.",
	Check: checkSilent,
}

func checkSilent(in *Input) Result {
	f := in.facts()
	if len(f.fired) == 0 {
		return Result{Verdict: Inconclusive, Summary: "no fault fired"}
	}
	res := Result{}
	var unmatched []Evidence
	matched := 0
	for _, r := range f.fired {
		if _, ok := f.surfacedFault(r); ok {
			matched++
			continue
		}
		unmatched = append(unmatched, traceEv(r, "no error surfaced: "+describe(r)))
	}
	if len(unmatched) == 0 {
		res.Verdict = Pass
		res.Summary = fmt.Sprintf("all %d fired faults surfaced as errors", matched)
		return res
	}
	var vs []Verdict
	var failing []string
	for _, name := range dataCheckers {
		r := in.resultOf(name)
		vs = append(vs, r.Verdict)
		if r.Verdict != Pass {
			failing = append(failing, fmt.Sprintf("%s %s", name, r.Verdict))
		}
	}
	data := worst(vs...)
	if len(unmatched) > 20 {
		more := len(unmatched) - 20
		unmatched = append(unmatched[:20], Evidence{Source: "trace", Text: fmt.Sprintf("… %d more", more)})
	}
	res.Evidence = unmatched
	switch data {
	case Pass:
		res.Verdict = Pass
		res.Summary = fmt.Sprintf("%d faults surfaced; %d did not but were harmless (data checks pass)", matched, len(f.fired)-matched)
	case Fail:
		res.Verdict = Fail
		res.Summary = fmt.Sprintf("SILENT: %d of %d fired faults surfaced no error and the data checks fail (%v)", len(f.fired)-matched, len(f.fired), failing)
	default:
		res.Verdict = Inconclusive
		res.Summary = fmt.Sprintf("%d faults surfaced no error and the data checks could not decide (%v)", len(f.fired)-matched, failing)
	}
	return res
}
