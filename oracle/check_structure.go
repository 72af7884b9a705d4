package oracle

import (
	"fmt"
	"strings"

	"github.com/sqlchaos/sqlchaos/history"
)

// detectionClasses are the error classes that count as the application
// noticing damage.
var detectionClasses = map[string]bool{
	history.ClassCorrupt: true, history.ClassNotADB: true,
	history.ClassTornExtend: true, history.ClassIOERR: true,
}

var structureChecker = Checker{
	Name: Structure,
	Doc: "Final PRAGMA integrity_check on a fault-free copy. Where it fails the verdict is fail, and the " +
		"summary says whether the application detected damage when it happened (a CORRUPT, NOTADB, " +
		"TORN_EXTEND or IOERR error after the first fault) or whether the corruption is silent.",
	Check: checkStructure,
}

func checkStructure(in *Input) Result {
	if !in.haveDB() {
		return Result{Verdict: Inconclusive, Summary: "the run saved no database"}
	}
	fin := in.final()
	err := firstErr(fin.openErr, fin.integrityErr)
	if err != nil && !sqliteDamage(err) {
		return Result{Verdict: Inconclusive, Summary: "integrity_check could not run: " + err.Error()}
	}
	if err == nil && fin.integrityOK() {
		return Result{Verdict: Pass, Summary: "integrity_check ok",
			Evidence: []Evidence{{Source: "db", Text: "integrity_check: ok"}}}
	}
	res := Result{Verdict: Fail}
	if err != nil {
		res.Evidence = append(res.Evidence, Evidence{Source: "db", Text: "opening/checking the final database: " + err.Error()})
	}
	for i, line := range fin.integrity {
		if i == 10 {
			res.Evidence = append(res.Evidence, Evidence{Source: "db", Text: fmt.Sprintf("… %d more integrity_check lines", len(fin.integrity)-10)})
			break
		}
		res.Evidence = append(res.Evidence, Evidence{Source: "db", Text: "integrity_check: " + line})
	}
	det, ok := firstDetection(in)
	if ok {
		res.Evidence = append(res.Evidence, histEv(det, "first detection: "+errText(det)))
		res.Summary = fmt.Sprintf("corrupt (%s), detected by %s at %s", firstLine(fin, err), det.Proc, in.facts().rel(det.T))
	} else {
		res.Summary = fmt.Sprintf("SILENT corruption (%s): no process reported CORRUPT/NOTADB/TORN_EXTEND/IOERR after the first fault", firstLine(fin, err))
	}
	return res
}

// firstDetection returns the first damage-class error at or after the
// first fault that fired (or anywhere, when the trace shows no fault).
func firstDetection(in *Input) (history.Event, bool) {
	f := in.facts()
	var from int64
	if len(f.fired) > 0 {
		from = f.fired[0].T
	}
	for _, e := range f.errs {
		if e.T >= from && detectionClasses[strings.ToUpper(e.Class)] {
			return e, true
		}
	}
	return history.Event{}, false
}

func firstLine(fin *final, err error) string {
	if len(fin.integrity) > 0 {
		return fin.integrity[0]
	}
	if err != nil {
		return err.Error()
	}
	return "no integrity_check output"
}
