package oracle

import (
	"fmt"
	"strings"
)

// shadowPhrases are messages that hide the error that really happened:
// a failed ROLLBACK reported instead of the I/O error that aborted the
// transaction.
var shadowPhrases = []string{"cannot rollback", "no transaction is active", "cannot commit - no transaction"}

func init() {
	register(Checker{
		Name: "error-fidelity",
		Doc: "The error a transaction surfaces names the injected cause: no surfaced error says \"cannot " +
			"rollback\" (or another message that shadows the real error, e.g. \"no transaction is active\").",
		Check: checkFidelity,
	})
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
					if r.T <= e.T && (r.Pid == 0 || int(r.Pid) == e.Pid || f.procs[int(r.Pid)] == "") && e.T-r.T <= int64(f.bounds.SurfaceWindow) {
						text += fmt.Sprintf(" — shadowing fault trace seq %d (%s)", r.Seq, describe(r))
						break
					}
				}
				res.Evidence = append(res.Evidence, histEv(e, text))
				break
			}
		}
	}
	switch {
	case bad > 0:
		res.Verdict = Fail
		res.Summary = fmt.Sprintf("%s shadow the real cause", plural(bad, "surfaced error"))
	case len(f.fired) == 0:
		res.Verdict = Inconclusive
		res.Summary = "no fault fired, so no error could be shadowed"
	default:
		res.Verdict = Pass
		res.Summary = fmt.Sprintf("%d faults fired, %s surfaced, none shadowed", len(f.fired), plural(len(f.errs), "error"))
	}
	return res
}
