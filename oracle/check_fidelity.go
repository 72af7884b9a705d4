package oracle

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sqlchaos/sqlchaos/history"
)

// shadowPhrases are messages that hide the error that really happened:
// a failed ROLLBACK reported instead of the I/O error that aborted the
// transaction.
var shadowPhrases = []string{"cannot rollback", "no transaction is active", "cannot commit - no transaction"}

var errorFidelityChecker = Checker{
	Name: ErrorFidelity,
	Doc: "The error a transaction surfaces names the injected cause: no surfaced error says \"cannot " +
		"rollback\" (or another message that shadows the real error, e.g. \"no transaction is active\"), and " +
		"the error that surfaces each fired fault (surface.go) has a class the fault explains (Explains: a " +
		"write EIO as IOERR, ENOSPC as FULL or IOERR, a read EIO as IOERR, CORRUPT or NOTADB, ...). " +
		"Inconclusive when no fault fired or none surfaced.",
	Check: checkFidelity,
}

func checkFidelity(in *Input) Result {
	f := in.facts()
	res := Result{}
	bad := 0
	for _, e := range f.errs {
		low := strings.ToLower(e.Err)
		for _, p := range shadowPhrases {
			if strings.Contains(low, p) {
				bad++
				text := fmt.Sprintf("surfaced %q", e.Err)
				for _, r := range f.fired {
					if r.T <= e.T && (r.Pid == 0 || int(r.Pid) == e.Pid || f.procs[int(r.Pid)] == "") && e.T-r.T <= f.window() {
						text += fmt.Sprintf(" — shadowing fault trace seq %d (%s)", r.Seq, describe(r))
						break
					}
				}
				res.Evidence = append(res.Evidence, histEv(e, text))
				break
			}
		}
	}
	surfaced, wrong := 0, 0
	for _, r := range f.fired {
		// The fault is named by its cause when some error that can surface
		// it (its own process's, or another opener's: an unrelated error
		// may come first) has a class the fault explains.
		es := f.surfacing(int(r.Pid), r.Path, r.T, nil)
		named := slices.ContainsFunc(es, func(e history.Event) bool { return Explains(r, SurfacingClass(e)) })
		if !named {
			// Another process's error that its own fault explains is
			// that fault's: it neither names nor misnames r.
			es = slices.DeleteFunc(es, func(e history.Event) bool { return e.Pid != int(r.Pid) && f.ownFault(e) })
		}
		if len(es) == 0 {
			continue
		}
		surfaced++
		if !named {
			wrong++
			e := es[0]
			res.Evidence = append(res.Evidence, histEv(e, fmt.Sprintf("fault trace seq %d (%s) surfaced only as %s, a class it cannot explain: %s", r.Seq, describe(r), SurfacingClass(e), errText(e))))
		}
	}
	switch {
	case bad > 0 || wrong > 0:
		res.Verdict = Fail
		res.Summary = fmt.Sprintf("%s shadow the real cause; %s surfaced with a class that does not match the fault", plural(bad, "surfaced error"), plural(wrong, "fault"))
	case len(f.fired) == 0:
		res.Verdict = Inconclusive
		res.Summary = "no fault fired, so no error could be shadowed"
	case surfaced == 0:
		res.Verdict = Inconclusive
		res.Summary = fmt.Sprintf("%s fired but none surfaced an error: no error to judge", plural(len(f.fired), "fault"))
	default:
		res.Verdict = Pass
		res.Summary = fmt.Sprintf("%d faults fired, %d surfaced with a matching class, none shadowed", len(f.fired), surfaced)
	}
	return res
}
