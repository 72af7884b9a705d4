package oracle

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
)

var pageCountChecker = Checker{
	Name: PageCount,
	Doc: "Every torn extend is reported at commit time as a TORN_EXTEND error by the process that wrote it. " +
		"A torn extend is a faulted write (torn, short or lost: fewer bytes persisted, N, than asked, Len) on a " +
		"*.db file that SQLite was told succeeded, whose intended end (off+len) lies beyond the file's size " +
		"before the write, and after which no op restores the size to the intended end (a write reaching it, a " +
		"truncate or fallocate to at least it) before that process's next commit, return or error: the file is " +
		"left short. Sizes come from the trace: exactly from the sizes faultfs records after open, create, write " +
		"and truncate of main database files (Record.Size; the first sized record gives the starting size, a " +
		"write's own record the size it left, any later op of the file sized at least the intended end restores " +
		"it); for traces without them, inferred from create, writes' persisted ends, truncate sizes in Off, " +
		"fallocate, EOFs of short reads and, as an upper bound, the saved file. A torn page later covered by a size-restoring op is a hole of zeros " +
		"inside a file of the right size (a WAL checkpoint ends with ftruncate(nPage*pageSize)): no size check " +
		"can see it, so it is evidence here and judged by structure and silent. A skip-in-wal profile is not " +
		"asked to report torn extends made while the database was in WAL mode (trace header flips, connection " +
		"modes). TORN_EXTEND errors with no torn extend before them are false alarms: they fail on a healthy " +
		"database (structure passes) and are evidence otherwise. A saved database shorter than its header's " +
		"page count (no WAL left) with no TORN_EXTEND reported fails too.",
	Check: checkPageCount,
}

// PageCountSwitch is the profile switch naming the post-commit page-count
// check ("off" or empty means the profile has none).
const PageCountSwitch = "PageCountCheck"

// shortWrite is a faulted write on a database file that persisted less
// than it was asked to and would have extended the file.
type shortWrite struct {
	r        trace.Record
	before   int64 // the file's size before the write
	intended int64 // off+len
	// restore is the op that brought the size to intended before the
	// writer's next commit (nil: the file was left short).
	restore *trace.Record
	wal     bool // the database was in WAL mode at the write
	// known: before is the file's size; otherwise only a lower bound (the
	// trace saw no create, truncate or EOF of the file before the write,
	// e.g. a database made before the mount), and an unrestored write is
	// only possibly a torn extend.
	known bool
	// bounded > 0: known came from the saved file's size (bounded bytes),
	// not from the trace.
	bounded int64
	// sized: before and after come from faultfs's recorded sizes
	// (trace.Record.Size), exact; after is the file's size after the write.
	sized bool
	after int64
}

// finalSizeAfter returns the saved file's size as an upper bound on the
// size of trace record i's file at i, when no later op could have shrunk
// it.
func finalSizeAfter(in *Input, i int) (int64, bool) {
	p := in.Trace[i].Path
	for _, q := range in.Trace[i+1:] {
		if q.Kind == trace.KindOp && (q.Path == p || q.To == p) && (q.Op == "truncate" || q.Op == "unlink" || q.Op == "rename") {
			return 0, false
		}
	}
	st, err := os.Stat(filepath.Join(in.Files, filepath.FromSlash(p)))
	if err != nil || !st.Mode().IsRegular() {
		return 0, false
	}
	return st.Size(), true
}

// short reports whether the write left the file short: a torn extend.
func (w shortWrite) short() bool { return w.restore == nil && w.known }

// possible reports whether the write may have left the file short: not
// restored, but the size before it is unknown.
func (w shortWrite) possible() bool { return w.restore == nil && !w.known }

// journalModes returns when the database was seen in or out of WAL mode:
// header flips in the trace and modes connections reported, in time order.
func journalModes(in *Input) []struct {
	t   int64
	wal bool
} {
	type m = struct {
		t   int64
		wal bool
	}
	var out []m
	for _, r := range in.Trace {
		if r.Kind == trace.KindHeader && r.NewMode != "" {
			out = append(out, m{r.T, r.NewMode == "2/2"})
		}
	}
	for _, e := range in.Events {
		if e.Type == history.TypeMode && e.Mode != "" {
			out = append(out, m{e.T, strings.EqualFold(e.Mode, "wal")})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].t < out[j].t })
	return out
}

// shortWrites finds the faulted extending writes on database files and
// whether a later op restored the size before the writer's next commit.
func shortWrites(in *Input) []shortWrite {
	type fileSize struct {
		n     int64
		known bool // n is the size, not just a lower bound
		sized bool // n is the size faultfs recorded after the last sized op
	}
	size := map[string]*fileSize{}
	get := func(p string) *fileSize {
		if size[p] == nil {
			size[p] = &fileSize{}
		}
		return size[p]
	}
	modes := journalModes(in)
	finalWAL := in.final().headerMode() == "2/2"
	walAt := func(t int64) bool {
		wal, seen := finalWAL, false
		for _, m := range modes {
			if m.t > t {
				break
			}
			wal, seen = m.wal, true
		}
		if !seen && len(modes) > 0 {
			wal = modes[0].wal
		}
		return wal
	}
	// The end of the writer's transaction: its next commit, return or
	// error after t (0: none, the end of the trace).
	endOf := func(pid uint32, t int64) int64 {
		for _, e := range in.Events {
			if e.Pid == int(pid) && e.T > t && (e.Type == history.TypeCommit || e.Type == history.TypeReturn || e.Type == history.TypeError) {
				return e.T
			}
		}
		return 0
	}
	var out []shortWrite
	for i, r := range in.Trace {
		if r.Kind != trace.KindOp || !isDB(r.Path) {
			continue
		}
		fs := get(r.Path)
		ok := r.Result == "ok"
		// Recorded sizes (open, create, write, truncate of main db files)
		// are exact; everything below is the fallback inference for
		// traces without them.
		after := func() {
			if r.Size != nil {
				*fs = fileSize{*r.Size, true, true}
			}
		}
		switch r.Op {
		case "create":
			if ok {
				*fs = fileSize{0, true, false}
			}
			after()
		case "open":
			after()
		case "unlink":
			if ok {
				delete(size, r.Path)
			}
		case "rename":
			if ok && isDB(r.To) {
				*get(r.To) = *fs
				delete(size, r.Path)
			}
		case "truncate":
			if ok {
				*fs = fileSize{r.Off, true, false} // faultfs records a truncate's new size in Off
			}
			after()
		case "fallocate":
			if ok && r.Off+r.Len > fs.n {
				fs.n = r.Off + r.Len
			}
		case "read":
			if r.Rule == 0 && ok {
				if end := r.Off + r.N; r.N < r.Len {
					*fs = fileSize{end, true, fs.sized} // a short read ends at EOF
				} else if end > fs.n {
					fs.n = end
				}
			}
		case "write":
			before := fs.n
			faulted := r.Rule > 0 && ok && r.N < r.Len
			if faulted && r.Off+r.Len > before {
				w := shortWrite{r: r, before: before, intended: r.Off + r.Len, wal: walAt(r.T), known: fs.known}
				if fs.sized && r.Size != nil {
					w.sized, w.after = true, *r.Size
				}
				end := endOf(r.Pid, r.T)
				if w.sized && w.after >= w.intended {
					w.restore = &in.Trace[i] // the file reached the intended end anyway
				}
				for j := i + 1; j < len(in.Trace) && w.restore == nil; j++ {
					q := in.Trace[j]
					if end != 0 && q.T > end {
						break
					}
					if q.Kind != trace.KindOp || q.Path != r.Path || q.Result != "ok" {
						continue
					}
					if (q.Size != nil && *q.Size >= w.intended) || (q.Op == "write" && q.Off+q.N >= w.intended) ||
						(q.Op == "truncate" && q.Off >= w.intended) || (q.Op == "fallocate" && q.Off+q.Len >= w.intended) {
						w.restore = &in.Trace[j]
					}
				}
				if !w.known {
					// The saved file bounds the size from above when nothing
					// after the write could shrink it (no truncate, unlink
					// or rename): writes only grow a file, so before <=
					// final size, and a final size short of the intended
					// end proves the write was an extend.
					if ub, ok := finalSizeAfter(in, i); ok && ub < w.intended {
						w.known, w.bounded = true, ub
					}
				}
				out = append(out, w)
			}
			if end := r.Off + r.N; r.N > 0 && end > fs.n {
				fs.n = end
			}
			after()
		}
	}
	return out
}

func checkPageCount(in *Input) Result {
	f := in.facts()
	switch {
	case !in.haveDB():
		return Result{Verdict: Inconclusive, Summary: "the run saved no database"}
	case len(in.Events) == 0:
		return Result{Verdict: Inconclusive, Summary: "no history events: no commit-time check to judge"}
	}
	sw := strings.ToLower(switchValue(in.Meta, PageCountSwitch))
	hasCheck := sw != "" && sw != "off" && sw != "false"
	skipInWAL := sw == "skip-in-wal"
	isTorn := func(e history.Event) bool { return strings.EqualFold(e.Class, history.ClassTornExtend) }
	res := Result{}
	var tornT []int64 // when each torn extend happened
	missed, reported, excused, holes, unsure := 0, 0, 0, 0, 0
	for _, w := range shortWrites(in) {
		r := w.r
		if w.possible() {
			text := fmt.Sprintf("possible torn extend: %s; the file's size before it is unknown to the trace (at least %d bytes), it was meant to reach %d and nothing restored that before the commit", describe(r), w.before, w.intended)
			if e, ok := f.surfacedBy(int(r.Pid), r.Path, r.T, isTorn); ok {
				tornT = append(tornT, r.T)
				reported++
				res.Evidence = append(res.Evidence, traceEv(r, text), histEv(e, fmt.Sprintf("reported %s after the fault: %s", fmtDur(e.T-r.T), errText(e))))
				continue
			}
			if !(skipInWAL && w.wal) {
				unsure++
			}
			res.Evidence = append(res.Evidence, traceEv(r, text+"; not reported (inconclusive)"))
			continue
		}
		if !w.short() {
			holes++
			was := fmt.Sprintf("%d", w.before)
			if !w.known {
				was = "at least " + was
			}
			res.Evidence = append(res.Evidence, traceEv(r, fmt.Sprintf("hole, not a torn extend: %s; the file was %s bytes and seq %d (%s) took it to its intended end %d before the commit, so the torn page lies inside a file of the right size (judged by structure/silent)",
				describe(r), was, w.restore.Seq, describe(*w.restore), w.intended)))
			continue
		}
		tornT = append(tornT, r.T)
		text := fmt.Sprintf("torn extend: %s; the file was %d bytes and was meant to reach %d, left short", describe(r), w.before, w.intended)
		if w.sized {
			text = fmt.Sprintf("torn extend: %s; the file was %d bytes, was meant to reach %d and is %d after it (sizes faultfs recorded), left short", describe(r), w.before, w.intended, w.after)
		}
		if w.bounded > 0 {
			text = fmt.Sprintf("torn extend: %s; meant to reach %d, left short (the saved file is %d bytes and nothing after the write could shrink it)", describe(r), w.intended, w.bounded)
		}
		if w.wal {
			text += " (database in WAL mode)"
		}
		res.Evidence = append(res.Evidence, traceEv(r, text))
		if e, ok := f.surfacedBy(int(r.Pid), r.Path, r.T, isTorn); ok {
			reported++
			res.Evidence = append(res.Evidence, histEv(e, fmt.Sprintf("reported %s after the fault: %s", fmtDur(e.T-r.T), errText(e))))
			continue
		}
		if skipInWAL && w.wal {
			excused++
			res.Evidence = append(res.Evidence, traceEv(r, "not reported; the profile skips the check in WAL mode, so it is not asked to"))
			continue
		}
		missed++
	}
	// False alarms: TORN_EXTEND with no torn extend before it.
	falseAlarms := 0
	for _, e := range f.errs {
		if !isTorn(e) {
			continue
		}
		preceded := false
		for _, t := range tornT {
			if t <= e.T {
				preceded = true
			}
		}
		if !preceded {
			falseAlarms++
			if falseAlarms <= 10 {
				res.Evidence = append(res.Evidence, histEv(e, "false alarm (no torn extend before it): "+errText(e)))
			}
		}
	}
	healthy := in.resultOf("structure").Verdict == Pass
	// The saved file itself.
	fin := in.final()
	short := false
	if ps := fin.pageSize(); ps > 0 && fin.walSize <= 0 && fin.headerPages() > 0 {
		if want := fin.headerPages() * ps; fin.fileSize < want {
			short = true
			res.Evidence = append(res.Evidence, Evidence{Source: "files", Text: fmt.Sprintf("%s is %d bytes but its header counts %d pages of %d (%d bytes)", DBName, fin.fileSize, fin.headerPages(), ps, want)})
		}
	}
	anyReported := false
	for _, e := range f.errs {
		if isTorn(e) {
			anyReported = true
		}
	}
	shortUnreported := short && !anyReported && !(skipInWAL && fin.headerMode() == "2/2")
	prof := "profile has the page-count check (" + PageCountSwitch + "=" + sw + ")"
	if !hasCheck {
		prof = "profile has no page-count check"
	}
	counts := fmt.Sprintf("%s (%d reported, %d unreported, %d not asked in WAL mode), %s, %s", plural(len(tornT), "torn extend"), reported, missed, excused,
		plural(holes, "hole"), plural(falseAlarms, "false alarm"))
	switch {
	case missed > 0 || shortUnreported || (falseAlarms > 0 && healthy):
		res.Verdict = Fail
		res.Summary = counts + "; " + prof
		if falseAlarms > 0 && healthy {
			res.Summary += "; the false alarms were raised on a healthy database"
		}
		if short {
			res.Summary += "; the saved file is shorter than its page count"
		}
	case unsure > 0:
		res.Verdict = Inconclusive
		res.Summary = fmt.Sprintf("%s; %s of unknown prior size not reported; %s", counts, plural(unsure, "unrestored faulted extend"), prof)
	default:
		res.Verdict = Pass
		res.Summary = counts + "; " + prof
		if falseAlarms > 0 {
			res.Summary += "; false alarms on a damaged database are evidence only"
		}
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
