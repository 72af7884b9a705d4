package oracle

import (
	"fmt"
	"strings"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
)

func init() {
	register(Checker{
		Name: "page-count",
		Doc: "Every injected torn or short write extending a *.db file (offset at or past the size the trace " +
			"has seen so far) is reported at commit time as a TORN_EXTEND error by the process that wrote it; " +
			"TORN_EXTEND errors with no torn fault before them are false alarms. A saved database shorter than " +
			"its header's page count (with no WAL left to replay) is a persisted torn extend.",
		Check: checkPageCount,
	})
}

// PageCountSwitch is the profile switch naming the post-commit page-count
// check ("off" or empty means the profile has none).
const PageCountSwitch = "PageCountCheck"

// tornExtends returns the fired faults that tore a write extending a
// database file. Sizes are estimated from the trace: the furthest byte any
// write persisted or any read returned, and exact EOFs seen by short reads.
func tornExtends(in *Input) []trace.Record {
	size := map[string]int64{}
	var out []trace.Record
	for _, r := range in.Trace {
		if r.Kind != trace.KindOp || !isDB(r.Path) {
			continue
		}
		old := size[r.Path]
		switch r.Op {
		case "create":
			size[r.Path] = 0
		case "truncate", "setattr":
			if r.Len > 0 || r.Op == "truncate" {
				size[r.Path] = r.Len
			}
		case "read":
			if r.N > 0 && r.Off+r.N > old {
				size[r.Path] = r.Off + r.N
			}
		case "write":
			torn := r.Rule > 0 && (strings.HasPrefix(r.Fault, "torn") || strings.HasPrefix(r.Fault, "short") || (r.Len > 0 && r.N < r.Len))
			if torn && r.Off >= old {
				out = append(out, r)
			}
			if end := r.Off + r.N; end > old {
				size[r.Path] = end
			}
		}
	}
	return out
}

func checkPageCount(in *Input) Result {
	f := in.facts()
	sw := strings.ToLower(switchValue(in.Meta, PageCountSwitch))
	hasCheck := sw != "" && sw != "off" && sw != "false"
	isTorn := func(e history.Event) bool { return strings.EqualFold(e.Class, history.ClassTornExtend) }
	res := Result{}
	torn := tornExtends(in)
	missed := 0
	for _, r := range torn {
		res.Evidence = append(res.Evidence, traceEv(r, "torn extend: "+describe(r)))
		if e, ok := f.surfaced(r.Pid, r.T, isTorn); ok {
			res.Evidence = append(res.Evidence, histEv(e, fmt.Sprintf("reported %s after the fault: %s", fmtDur(e.T-r.T), errText(e))))
		} else {
			missed++
		}
	}
	// False alarms: TORN_EXTEND with no torn fault (any file) before it.
	var firstTornT int64 = -1
	for _, r := range f.fired {
		if strings.HasPrefix(r.Fault, "torn") || strings.HasPrefix(r.Fault, "short") || (r.Op == "write" && r.N < r.Len) {
			firstTornT = r.T
			break
		}
	}
	falseAlarms := 0
	for _, e := range f.errs {
		if isTorn(e) && (firstTornT < 0 || e.T < firstTornT) {
			falseAlarms++
			if falseAlarms <= 10 {
				res.Evidence = append(res.Evidence, histEv(e, "false alarm (no torn write before it): "+errText(e)))
			}
		}
	}
	// The saved file itself.
	fin := in.final()
	short := false
	if ps := fin.pageSize(); ps > 0 && fin.walSize <= 0 && fin.headerPages() > 0 {
		if want := fin.headerPages() * ps; fin.fileSize < want {
			short = true
			res.Evidence = append(res.Evidence, Evidence{Source: "files", Text: fmt.Sprintf("%s is %d bytes but its header counts %d pages of %d (%d bytes)", DBName, fin.fileSize, fin.headerPages(), ps, want)})
		}
	}
	prof := "profile has the page-count check (" + PageCountSwitch + "=" + sw + ")"
	if !hasCheck {
		prof = "profile has no page-count check"
	}
	switch {
	case missed > 0 || falseAlarms > 0 || (short && missed == len(torn)):
		res.Verdict = Fail
		res.Summary = fmt.Sprintf("%d of %s unreported, %s; %s", missed, plural(len(torn), "torn extend"), plural(falseAlarms, "false alarm"), prof)
		if short {
			res.Summary += "; the saved file is shorter than its page count"
		}
	default:
		res.Verdict = Pass
		res.Summary = fmt.Sprintf("%s, all reported; no false alarms; %s", plural(len(torn), "torn extend"), prof)
	}
	return res
}

// switchValue looks a profile switch up by its Go name or snake_case name.
func switchValue(m Meta, name string) string {
	for k, v := range m.Switches {
		if strings.EqualFold(strings.ReplaceAll(k, "_", ""), name) {
			return v
		}
	}
	return ""
}
