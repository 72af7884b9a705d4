package oracle

import (
	"cmp"
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

// walStart returns when the database was first seen in WAL mode (t0 when
// it already was at the start of the trace), with the evidence, or -1:
// the first header write from or to WAL, the first connection reporting
// WAL and, failing both, the final header (finalMode).
func walStart(tr []trace.Record, events []history.Event, t0 int64, finalMode string) (int64, Evidence) {
	var walT int64 = -1
	var walE Evidence
	for _, r := range tr {
		if r.Kind == trace.KindHeader && (r.NewMode == trace.HeaderWAL || r.OldMode == trace.HeaderWAL) {
			t, text := r.T, "database switched to WAL (header 1/1→2/2)"
			if r.OldMode == trace.HeaderWAL {
				t, text = t0, "database was WAL before this header write"
			}
			walT, walE = t, traceEv(r, text)
			break
		}
	}
	for _, e := range events {
		if e.Type == history.TypeMode && strings.EqualFold(e.Mode, "wal") {
			if walT < 0 || e.T < walT {
				walT, walE = e.T, histEv(e, "connection reports journal_mode=wal")
			}
			break
		}
	}
	if walT < 0 && finalMode == trace.HeaderWAL {
		walT, walE = t0, Evidence{Source: "files", Text: "final header bytes 18-19 = 2/2"}
	}
	return walT, walE
}

// downgrade is a move out of WAL mode seen in the trace or a history.
type downgrade struct {
	ev  Evidence
	pid int
	t   int64
}

// predictDowngrades returns the downgrades out of WAL after walT: header
// writes flipping bytes 18-19 from 2/2, then connections reporting a
// non-WAL mode that are not the report of a flip the same process made in
// the window before. also holds the mode reports that are evidence only
// (unknown modes, reports of a flip already counted).
func predictDowngrades(tr []trace.Record, events []history.Event, walT, window int64) (downs []downgrade, also []Evidence) {
	for _, r := range tr {
		if r.Kind == trace.KindHeader && r.OldMode == trace.HeaderWAL && r.NewMode != trace.HeaderWAL {
			downs = append(downs, downgrade{traceEv(r, fmt.Sprintf("header of %s flipped %s→%s", r.Path, r.OldMode, r.NewMode)), int(r.Pid), r.T})
		}
	}
	flips := len(downs)
	for _, e := range events {
		if e.Type != history.TypeMode || e.T < walT || e.Mode == "" || strings.EqualFold(e.Mode, "wal") {
			continue
		}
		if strings.EqualFold(e.Mode, "unknown") {
			// The newest WAL policy could not read the mode and touched
			// nothing: SQLite still follows the header, which the trace
			// watches for flips. Evidence, not a downgrade.
			also = append(also, histEv(e, "connection could not read its journal mode (unknown) and changed nothing"))
			continue
		}
		ev := histEv(e, "connection reports journal_mode="+e.Mode+" after the database was WAL")
		if reportsFlip(downs[:flips], e, window) {
			also = append(also, ev)
			continue
		}
		downs = append(downs, downgrade{ev, e.Pid, e.T})
	}
	return downs, also
}

// reportsFlip reports whether the mode report e is the report of one of
// the header flips its process made in the window before it.
func reportsFlip(flips []downgrade, e history.Event, window int64) bool {
	for _, d := range flips {
		if d.pid == e.Pid && e.T >= d.t && e.T-d.t <= window {
			return true
		}
	}
	return false
}

func checkJournalMode(in *Input) Result {
	f := in.facts()
	finalMode := in.final().headerMode()
	walT, walE := walStart(in.Trace, in.Events, f.t0, finalMode)
	if walT < 0 {
		return Result{Verdict: Inconclusive, Summary: "the database was never seen in WAL mode (final header " + cmp.Or(finalMode, "?") + ")"}
	}
	downs, also := predictDowngrades(in.Trace, in.Events, walT, f.window())
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
	if finalMode != "" && finalMode != trace.HeaderWAL {
		res.Evidence = append(res.Evidence, Evidence{Source: "files", Text: "final header bytes 18-19 = " + finalMode + " (not WAL)"})
		if len(downs) == 0 {
			silent++ // a downgrade nobody saw happen
		}
	}
	res.Verdict, res.Summary = journalVerdict(silent, len(downs), finalMode)
	return res
}

// journalVerdict judges silent downgrades (not surfaced, or seen only in
// the final header) against all downgrades and the final header.
func journalVerdict(silent, downs int, finalMode string) (Verdict, string) {
	switch {
	case silent > 0:
		return Fail, fmt.Sprintf("silent WAL downgrade: %s not surfaced as an error; final header %s", plural(silent, "downgrade"), cmp.Or(finalMode, "?"))
	case downs > 0:
		return Pass, fmt.Sprintf("%s, each surfaced as an error; final header %s", plural(downs, "downgrade"), cmp.Or(finalMode, "?"))
	case finalMode == "":
		return Inconclusive, "no downgrade seen, but the final header is unreadable"
	}
	return Pass, "stayed in WAL; final header 2/2"
}
