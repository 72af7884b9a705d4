package oracle

import (
	"fmt"
	"strings"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
)

var journalModeChecker = Checker{
	Name: JournalMode,
	Doc: "No silent WAL→DELETE downgrade: trace header writes flipping bytes 18-19 from 2/2, " +
		"connections reporting a non-WAL mode after the database was WAL, and the final header. " +
		"A downgrade fails unless the process that made it surfaced an error at or after it.",
	Check: checkJournalMode,
}

func checkJournalMode(in *Input) Result {
	f := in.facts()
	fin := in.final()
	var walT int64 = -1 // when the database was first seen in WAL
	var walE Evidence
	for _, r := range in.Trace {
		if r.Kind == trace.KindHeader && (r.NewMode == "2/2" || r.OldMode == "2/2") {
			t, text := r.T, "database switched to WAL (header 1/1→2/2)"
			if r.OldMode == "2/2" {
				t, text = f.t0, "database was WAL before this header write"
			}
			if walT < 0 || t < walT {
				walT, walE = t, traceEv(r, text)
			}
			break
		}
	}
	for _, e := range in.Events {
		if e.Type == history.TypeMode && strings.EqualFold(e.Mode, "wal") {
			if walT < 0 || e.T < walT {
				walT, walE = e.T, histEv(e, "connection reports journal_mode=wal")
			}
			break
		}
	}
	finalMode := fin.headerMode()
	if walT < 0 && finalMode == "2/2" {
		walT, walE = f.t0, Evidence{Source: "files", Text: "final header bytes 18-19 = 2/2"}
	}
	if walT < 0 {
		return Result{Verdict: Inconclusive, Summary: "the database was never seen in WAL mode (final header " + orQ(finalMode) + ")"}
	}
	type downgrade struct {
		ev  Evidence
		pid int
		t   int64
	}
	var downs []downgrade
	for _, r := range in.Trace {
		if r.Kind == trace.KindHeader && r.OldMode == "2/2" && r.NewMode != "2/2" {
			downs = append(downs, downgrade{traceEv(r, fmt.Sprintf("header of %s flipped %s→%s", r.Path, r.OldMode, r.NewMode)), int(r.Pid), r.T})
		}
	}
	flips := len(downs)
	var also []Evidence
	for _, e := range in.Events {
		if e.Type == history.TypeMode && e.T >= walT && strings.EqualFold(e.Mode, "unknown") {
			// The newest WAL policy could not read the mode and touched
			// nothing: SQLite still follows the header, which the trace
			// watches for flips. Evidence, not a downgrade.
			also = append(also, histEv(e, "connection could not read its journal mode (unknown) and changed nothing"))
			continue
		}
		if e.Type == history.TypeMode && e.T >= walT && e.Mode != "" && !strings.EqualFold(e.Mode, "wal") {
			ev := histEv(e, "connection reports journal_mode="+e.Mode+" after the database was WAL")
			same := false // the report of a header flip this process just made
			for _, d := range downs[:flips] {
				if d.pid == e.Pid && e.T >= d.t && e.T-d.t <= f.window() {
					same = true
				}
			}
			if same {
				also = append(also, ev)
				continue
			}
			downs = append(downs, downgrade{ev, e.Pid, e.T})
		}
	}
	res := Result{Evidence: []Evidence{walE}}
	silent := 0
	for _, d := range downs {
		res.Evidence = append(res.Evidence, d.ev)
		if e, ok := f.surfacedBy(d.pid, DBName, d.t, nil); ok {
			res.Evidence = append(res.Evidence, histEv(e, "surfaced: "+errText(e)))
		} else {
			silent++
		}
	}
	res.Evidence = append(res.Evidence, also...)
	if finalMode != "" && finalMode != "2/2" {
		res.Evidence = append(res.Evidence, Evidence{Source: "files", Text: "final header bytes 18-19 = " + finalMode + " (not WAL)"})
		if len(downs) == 0 {
			silent++ // a downgrade nobody saw happen
		}
	}
	switch {
	case silent > 0:
		res.Verdict = Fail
		res.Summary = fmt.Sprintf("silent WAL downgrade: %s not surfaced as an error; final header %s", plural(silent, "downgrade"), orQ(finalMode))
	case len(downs) > 0:
		res.Verdict = Pass
		res.Summary = fmt.Sprintf("%s, each surfaced as an error; final header %s", plural(len(downs), "downgrade"), orQ(finalMode))
	case finalMode == "":
		res.Verdict = Inconclusive
		res.Summary = "no downgrade seen, but the final header is unreadable"
	default:
		res.Verdict = Pass
		res.Summary = "stayed in WAL; final header 2/2"
	}
	return res
}

func orQ(s string) string {
	if s == "" {
		return "?"
	}
	return s
}
