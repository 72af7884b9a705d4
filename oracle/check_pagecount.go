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

// pageCountMode is a value of the page-count switch as meta.json records
// it (kanbancore's page_count_check; the oracle reads the run's files, not
// kanbancore, so it names the values it judges by here).
type pageCountMode string

// The page-count switch values the checker tells apart.
const (
	pageCountOff       pageCountMode = "off"
	pageCountFalse     pageCountMode = "false"
	pageCountSkipInWAL pageCountMode = "skip-in-wal"
)

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
		if q.Kind != trace.KindOp || (q.Path != p && q.To != p) {
			continue
		}
		if op := q.Op; op == trace.OpTruncate || op == trace.OpUnlink || op == trace.OpRename {
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

// modeAt is when the database was seen in (wal) or out of WAL mode.
type modeAt struct {
	t   int64
	wal bool
}

// journalModes returns when the database was seen in or out of WAL mode:
// header flips in the trace and modes connections reported, in time order.
func journalModes(tr []trace.Record, events []history.Event) []modeAt {
	var out []modeAt
	for _, r := range tr {
		if r.Kind == trace.KindHeader && r.NewMode != "" {
			out = append(out, modeAt{r.T, r.NewMode == trace.HeaderWAL})
		}
	}
	for _, e := range events {
		if e.Type == history.TypeMode && e.Mode != "" {
			out = append(out, modeAt{e.T, strings.EqualFold(e.Mode, "wal")})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].t < out[j].t })
	return out
}

// walAt reports whether the database was in WAL mode at t: the last mode
// seen at or before t, else the first one seen, else finalWAL.
func walAt(modes []modeAt, finalWAL bool, t int64) bool {
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

// txnEnd returns the end of pid's transaction running at t: its next
// commit, return or error after t (0: none, the end of the trace).
func txnEnd(events []history.Event, pid uint32, t int64) int64 {
	for _, e := range events {
		if e.Pid == int(pid) && e.T > t && (e.Type == history.TypeCommit || e.Type == history.TypeReturn || e.Type == history.TypeError) {
			return e.T
		}
	}
	return 0
}

// fileSize is what the trace tells of a database file's size so far.
type fileSize struct {
	n     int64
	known bool // n is the size, not just a lower bound
	sized bool // n is the size faultfs recorded after the last sized op
}

// fileSizes follows the sizes of database files through the trace.
type fileSizes map[string]*fileSize

func (s fileSizes) get(p string) *fileSize {
	if s[p] == nil {
		s[p] = &fileSize{}
	}
	return s[p]
}

// apply follows the op record r on a database file. Recorded sizes (open,
// create, write, truncate of main db files) are exact; everything else is
// the fallback inference for traces without them.
func (s fileSizes) apply(r trace.Record) {
	fs := s.get(r.Path)
	ok := r.Result == "ok"
	switch r.Op {
	case trace.OpCreate:
		if ok {
			*fs = fileSize{0, true, false}
		}
	case trace.OpUnlink:
		if ok {
			delete(s, r.Path)
		}
	case trace.OpRename:
		if ok && isDB(r.To) {
			*s.get(r.To) = *fs
			delete(s, r.Path)
		}
	case trace.OpTruncate:
		if ok {
			*fs = fileSize{r.Off, true, false} // faultfs records a truncate's new size in Off
		}
	case trace.OpFallocate:
		if ok && r.Off+r.Len > fs.n {
			fs.n = r.Off + r.Len
		}
	case trace.OpRead:
		if r.Rule == 0 && ok {
			if end := r.Off + r.N; r.N < r.Len {
				*fs = fileSize{end, true, fs.sized} // a short read ends at EOF
			} else if end > fs.n {
				fs.n = end
			}
		}
	case trace.OpWrite:
		if end := r.Off + r.N; r.N > 0 && end > fs.n {
			fs.n = end
		}
	}
	switch r.Op {
	case trace.OpCreate, trace.OpOpen, trace.OpTruncate, trace.OpWrite:
		if r.Size != nil {
			*fs = fileSize{*r.Size, true, true}
		}
	}
}

// restores reports whether the op record q (on the faulted file) brings
// the file's size to at least intended.
func restores(q trace.Record, intended int64) bool {
	if q.Size != nil && *q.Size >= intended {
		return true
	}
	switch q.Op {
	case trace.OpWrite:
		return q.Off+q.N >= intended
	case trace.OpTruncate:
		return q.Off >= intended
	case trace.OpFallocate:
		return q.Off+q.Len >= intended
	}
	return false
}

// restoreOf returns the first op after trace record i, before end (0: the
// end of the trace), that restores w's file to its intended end; nil when
// none does.
func restoreOf(tr []trace.Record, i int, w shortWrite, end int64) *trace.Record {
	if w.sized && w.after >= w.intended {
		return &tr[i] // the file reached the intended end anyway
	}
	for j := i + 1; j < len(tr); j++ {
		q := tr[j]
		if end != 0 && q.T > end {
			break
		}
		if q.Kind == trace.KindOp && q.Path == tr[i].Path && q.Result == "ok" && restores(q, w.intended) {
			return &tr[j]
		}
	}
	return nil
}

// tornExtendInput is what predictShortWrites reads: the trace, the
// histories, the saved database's journal mode and, for record i, the saved
// file's size when it bounds the size at i (see finalSizeAfter).
type tornExtendInput struct {
	trace     []trace.Record
	events    []history.Event
	finalWAL  bool
	finalSize func(i int) (int64, bool)
}

// predictShortWrites finds the faulted extending writes on database files
// and whether a later op restored the size before the writer's next commit:
// what the trace and histories imply, before any report is looked at.
func predictShortWrites(in tornExtendInput) []shortWrite {
	sizes := fileSizes{}
	modes := journalModes(in.trace, in.events)
	var out []shortWrite
	for i, r := range in.trace {
		if r.Kind != trace.KindOp || !isDB(r.Path) {
			continue
		}
		fs := sizes.get(r.Path)
		faulted := r.Op == trace.OpWrite && r.Rule > 0 && r.Result == "ok" && r.N < r.Len
		if faulted && r.Off+r.Len > fs.n {
			w := shortWrite{r: r, before: fs.n, intended: r.Off + r.Len, wal: walAt(modes, in.finalWAL, r.T), known: fs.known}
			if fs.sized && r.Size != nil {
				w.sized, w.after = true, *r.Size
			}
			w.restore = restoreOf(in.trace, i, w, txnEnd(in.events, r.Pid, r.T))
			if !w.known && in.finalSize != nil {
				// The saved file bounds the size from above when nothing
				// after the write could shrink it (no truncate, unlink
				// or rename): writes only grow a file, so before <=
				// final size, and a final size short of the intended
				// end proves the write was an extend.
				if ub, ok := in.finalSize(i); ok && ub < w.intended {
					w.known, w.bounded = true, ub
				}
			}
			out = append(out, w)
		}
		sizes.apply(r)
	}
	return out
}

// shortWrites finds the faulted extending writes of the run (see
// predictShortWrites), bounding unknown sizes by the saved files.
func shortWrites(in *Input) []shortWrite {
	return predictShortWrites(tornExtendInput{
		trace:     in.Trace,
		events:    in.Events,
		finalWAL:  in.final().headerMode() == trace.HeaderWAL,
		finalSize: func(i int) (int64, bool) { return finalSizeAfter(in, i) },
	})
}

// pageCountTally counts what comparing the predicted short writes with the
// reports found.
type pageCountTally struct {
	tornT                                    []int64 // when each torn extend happened
	missed, reported, excused, holes, unsure int
	falseAlarms                              int
	evidence                                 []Evidence
}

func isTornReport(e history.Event) bool { return strings.EqualFold(e.Class, history.ClassTornExtend) }

// reportedEv is the evidence of the report e of a fault at t.
func reportedEv(e history.Event, t int64) Evidence {
	return histEv(e, fmt.Sprintf("reported %s after the fault: %s", fmtDur(e.T-t), errText(e)))
}

// comparePossible compares a possible torn extend (size before unknown)
// with the reports.
func (c *pageCountTally) comparePossible(f *facts, w shortWrite, skipInWAL bool) {
	r := w.r
	text := fmt.Sprintf("possible torn extend: %s; the file's size before it is unknown to the trace (at least %d bytes), it was meant to reach %d and nothing restored that before the commit", describe(r), w.before, w.intended)
	if e, ok := f.surfacedBy(int(r.Pid), r.Path, r.T, isTornReport); ok {
		c.tornT = append(c.tornT, r.T)
		c.reported++
		c.evidence = append(c.evidence, traceEv(r, text), reportedEv(e, r.T))
		return
	}
	if !(skipInWAL && w.wal) {
		c.unsure++
	}
	c.evidence = append(c.evidence, traceEv(r, text+"; not reported (inconclusive)"))
}

// noteHole records a short write whose size was restored: a hole, not a
// torn extend.
func (c *pageCountTally) noteHole(w shortWrite) {
	c.holes++
	was := fmt.Sprintf("%d", w.before)
	if !w.known {
		was = "at least " + was
	}
	c.evidence = append(c.evidence, traceEv(w.r, fmt.Sprintf("hole, not a torn extend: %s; the file was %s bytes and seq %d (%s) took it to its intended end %d before the commit, so the torn page lies inside a file of the right size (judged by structure/silent)",
		describe(w.r), was, w.restore.Seq, describe(*w.restore), w.intended)))
}

// tornText describes a torn extend with what its sizes are known from.
func tornText(w shortWrite) string {
	r := w.r
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
	return text
}

// compareTorn compares a torn extend with the reports.
func (c *pageCountTally) compareTorn(f *facts, w shortWrite, skipInWAL bool) {
	r := w.r
	c.tornT = append(c.tornT, r.T)
	c.evidence = append(c.evidence, traceEv(r, tornText(w)))
	if e, ok := f.surfacedBy(int(r.Pid), r.Path, r.T, isTornReport); ok {
		c.reported++
		c.evidence = append(c.evidence, reportedEv(e, r.T))
		return
	}
	if skipInWAL && w.wal {
		c.excused++
		c.evidence = append(c.evidence, traceEv(r, "not reported; the profile skips the check in WAL mode, so it is not asked to"))
		return
	}
	c.missed++
}

// compareFalseAlarms counts the TORN_EXTEND reports with no torn extend
// before them (evidence for the first ten).
func (c *pageCountTally) compareFalseAlarms(f *facts) {
	for _, e := range f.errs {
		if !isTornReport(e) {
			continue
		}
		preceded := false
		for _, t := range c.tornT {
			if t <= e.T {
				preceded = true
			}
		}
		if !preceded {
			c.falseAlarms++
			if c.falseAlarms <= 10 {
				c.evidence = append(c.evidence, histEv(e, "false alarm (no torn extend before it): "+errText(e)))
			}
		}
	}
}

// compareShortWrites compares the predicted short writes with the
// TORN_EXTEND reports in the histories.
func compareShortWrites(f *facts, ws []shortWrite, skipInWAL bool) pageCountTally {
	var c pageCountTally
	for _, w := range ws {
		switch {
		case w.possible():
			c.comparePossible(f, w, skipInWAL)
		case !w.short():
			c.noteHole(w)
		default:
			c.compareTorn(f, w, skipInWAL)
		}
	}
	c.compareFalseAlarms(f)
	return c
}

// savedFileShort reports whether the saved database (no WAL left) is
// shorter than its header's page count, with the evidence.
func savedFileShort(fin *final) (bool, []Evidence) {
	ps := fin.pageSize()
	if ps <= 0 || fin.walSize > 0 || fin.headerPages() <= 0 {
		return false, nil
	}
	want := fin.headerPages() * ps
	if fin.fileSize >= want {
		return false, nil
	}
	return true, []Evidence{{Source: "files", Text: fmt.Sprintf("%s is %d bytes but its header counts %d pages of %d (%d bytes)", DBName, fin.fileSize, fin.headerPages(), ps, want)}}
}

func checkPageCount(in *Input) Result {
	switch {
	case !in.haveDB():
		return Result{Verdict: Inconclusive, Summary: "the run saved no database"}
	case len(in.Events) == 0:
		return Result{Verdict: Inconclusive, Summary: "no history events: no commit-time check to judge"}
	}
	f := in.facts()
	sw := pageCountMode(strings.ToLower(switchValue(in.Meta, PageCountSwitch)))
	skipInWAL := sw == pageCountSkipInWAL
	c := compareShortWrites(f, shortWrites(in), skipInWAL)
	fin := in.final()
	short, shortEv := savedFileShort(fin)
	res := Result{Evidence: append(c.evidence, shortEv...)}
	anyReported := false
	for _, e := range f.errs {
		if isTornReport(e) {
			anyReported = true
		}
	}
	shortUnreported := short && !anyReported && !(skipInWAL && fin.headerMode() == trace.HeaderWAL)
	healthy := in.resultOf("structure").Verdict == Pass
	res.Verdict, res.Summary = c.verdict(pageCountProfile(sw), short, shortUnreported, healthy)
	return res
}

// pageCountProfile says whether the profile has the page-count check.
func pageCountProfile(sw pageCountMode) string {
	if sw == "" || sw == pageCountOff || sw == pageCountFalse {
		return "profile has no page-count check"
	}
	return "profile has the page-count check (" + PageCountSwitch + "=" + string(sw) + ")"
}

// verdict judges the tally and the saved file's length: unreported torn
// extends, a short saved file nobody reported and false alarms on a
// healthy database fail; unreported extends of unknown prior size leave
// the check inconclusive.
func (c pageCountTally) verdict(prof string, short, shortUnreported, healthy bool) (Verdict, string) {
	counts := fmt.Sprintf("%s (%d reported, %d unreported, %d not asked in WAL mode), %s, %s", plural(len(c.tornT), "torn extend"), c.reported, c.missed, c.excused,
		plural(c.holes, "hole"), plural(c.falseAlarms, "false alarm"))
	switch {
	case c.missed > 0 || shortUnreported || (c.falseAlarms > 0 && healthy):
		summary := counts + "; " + prof
		if c.falseAlarms > 0 && healthy {
			summary += "; the false alarms were raised on a healthy database"
		}
		if short {
			summary += "; the saved file is shorter than its page count"
		}
		return Fail, summary
	case c.unsure > 0:
		return Inconclusive, fmt.Sprintf("%s; %s of unknown prior size not reported; %s", counts, plural(c.unsure, "unrestored faulted extend"), prof)
	}
	summary := counts + "; " + prof
	if c.falseAlarms > 0 {
		summary += "; false alarms on a damaged database are evidence only"
	}
	return Pass, summary
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
