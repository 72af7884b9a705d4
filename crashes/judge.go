package crashes

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sqlchaos/sqlchaos/history"
)

// The judgements here are pure functions of the histories (what was
// acknowledged, when, and what each commit changed) and of what a
// fault-free SQLite connection read from one image (facts). They mirror
// the oracle's durability, resurrection and structure checkers, but judge
// against the commits the image's own ledger holds and the crash point's
// time: the oracle's checkers expect every acknowledged commit of the whole
// run, which a crash image legitimately lacks.

// Verdict is the judgement of one crash state.
type Verdict string

// Verdicts.
const (
	Pass         Verdict = "pass"
	Fail         Verdict = "fail"
	Detected     Verdict = "detected"     // lost-synced, torn-synced: SQLite reported the damage
	Inconclusive Verdict = "inconclusive" // only undecidable rows (unacknowledged commits in the image)
	Error        Verdict = "error"        // the harness could not judge (I/O, not SQLite)
)

// Problem kinds.
const (
	KindCorrupt        = "corrupt"         // open or integrity_check reported damage
	KindLostCommit     = "lost-commit"     // an acknowledged commit the cut's barriers made durable is missing
	KindLedgerHole     = "ledger-hole"     // the ledger's seqs are not 1..max: a commit in the middle is missing
	KindLedgerMismatch = "ledger-mismatch" // a ledger row names another process than the acknowledged commit of its seq
	KindResurrected    = "resurrected"     // a row deleted by a commit in the image is present
	KindLostRow        = "lost-row"        // a row inserted by a commit in the image (and not deleted) is missing
	KindFutureRow      = "future-row"      // a row only a commit not in the image inserted is present
	KindPhantom        = "phantom"         // a row no recorded commit inserted is present
	KindStaleStatus    = "stale-status"    // a task's status is not the last transition in the image
)

// Mode is the durability rule of a run's SQLite settings.
type Mode struct {
	Journal string `json:"journal"` // "wal" or "delete"
	Sync    string `json:"sync"`    // "full", "normal", "off"
}

// Durable reports whether, on an honest disk, every commit acknowledged
// before a power cut must survive it: synchronous=FULL (or EXTRA) in any
// journal mode, and NORMAL in rollback-journal mode (SQLite still syncs
// the journal and then the database before it deletes the journal). In
// WAL mode at NORMAL, and at OFF, only a prefix must survive.
func (m Mode) Durable() bool {
	switch m.Sync {
	case "full", "extra":
		return true
	case "normal":
		return m.Journal == "delete"
	}
	return false
}

func (m Mode) String() string { return m.Journal + "+" + strings.ToUpper(m.Sync) }

// Cut is the crash point as the judgement sees it.
type Cut struct {
	T     int64 // the cut's time (CLOCK_MONOTONIC); commits acknowledged before it were synced before it
	Lying bool  // a fsync lied (ClassLostSynced, ClassTornSynced): durability is not judged, damage SQLite reports is detected
}

// Problem is one kind of wrong data, with a few examples.
type Problem struct {
	Kind     string   `json:"kind"`
	Count    int      `json:"count"`
	Examples []string `json:"examples,omitempty"`
}

// Judgement is the verdict on one image.
type Judgement struct {
	Verdict    Verdict   `json:"verdict"`
	Integrity  string    `json:"integrity"`             // "ok", or the first line integrity_check (or the open) reported
	QuickCheck string    `json:"quick_check,omitempty"` // quick_check's first line ("ok" too), when integrity_check was not ok
	Commits    int       `json:"commits"`               // ledger rows in the image
	MaxSeq     int64     `json:"max_seq"`
	Problems   []Problem `json:"problems,omitempty"`
	Unsure     []Problem `json:"unsure,omitempty"`
	Notes      []string  `json:"notes,omitempty"`
}

// Kinds returns the problem kinds, sorted.
func (j Judgement) Kinds() []string {
	var out []string
	for _, p := range j.Problems {
		out = append(out, p.Kind)
	}
	sort.Strings(out)
	return out
}

// Summary is one line: the verdict and its problems.
func (j Judgement) Summary() string {
	var b strings.Builder
	b.WriteString(string(j.Verdict))
	for _, p := range j.Problems {
		fmt.Fprintf(&b, "; %d %s", p.Count, p.Kind)
		if len(p.Examples) > 0 {
			fmt.Fprintf(&b, " (%s)", p.Examples[0])
		}
	}
	if j.Integrity != "" {
		fmt.Fprintf(&b, "; integrity_check %s", j.Integrity)
	}
	if j.QuickCheck != "" {
		fmt.Fprintf(&b, "; quick_check %s", j.QuickCheck)
	}
	return b.String()
}

// maxExamples bounds the examples kept per problem kind.
const maxExamples = 5

type problems struct {
	m     map[string]*Problem
	order []string
}

func (ps *problems) add(kind, example string) {
	if ps.m == nil {
		ps.m = map[string]*Problem{}
	}
	p := ps.m[kind]
	if p == nil {
		p = &Problem{Kind: kind}
		ps.m[kind] = p
		ps.order = append(ps.order, kind)
	}
	p.Count++
	if len(p.Examples) < maxExamples {
		p.Examples = append(p.Examples, example)
	}
}

func (ps *problems) list() []Problem {
	var out []Problem
	for _, k := range ps.order {
		out = append(out, *ps.m[k])
	}
	return out
}

// ack is one acknowledged commit.
type ack struct {
	Seq   int64
	Proc  string
	Op    string
	T     int64
	Ins   []history.RowRef
	Del   []history.RowRef
	Trans []history.Transition
}

type rowKey struct{ table, key string }

type rowEvent struct {
	ack    int // index into expect.acks
	insert bool
}

type cascadeEv struct {
	ack  int
	task string
}

// expect is what the histories say, indexed for judging many images.
type expect struct {
	acks     []ack                 // sorted by (seq, T, proc)
	bySeq    map[int64][]int       // seq -> ack indexes
	rows     map[rowKey][]rowEvent // in ack (seq) order
	cascades map[string][]cascadeEv
	insTask  map[rowKey]string // the task a child row belongs to (InsertedFor)
	trans    map[string][]int  // task -> ack indexes with a transition of it
	tables   []string          // tables any commit inserted into or deleted from
	keys     []rowKey          // the keys of rows, sorted
}

// newExpect indexes the TypeCommit events of the histories.
func newExpect(events []history.Event) *expect {
	x := &expect{bySeq: map[int64][]int{}, rows: map[rowKey][]rowEvent{}, cascades: map[string][]cascadeEv{},
		insTask: map[rowKey]string{}, trans: map[string][]int{}}
	for _, e := range history.Acknowledged(events) {
		a := ack{Seq: e.Seq, Proc: e.Proc, Op: e.Op, T: e.T}
		d := e.Facts()
		a.Ins, a.Del, a.Trans = d.Inserted, d.Deleted, d.Transitions
		x.acks = append(x.acks, a)
	}
	tables := map[string]bool{}
	for i, a := range x.acks {
		x.bySeq[a.Seq] = append(x.bySeq[a.Seq], i)
		for _, r := range a.Ins {
			k := rowKey{r.Table, r.Key}
			x.rows[k] = append(x.rows[k], rowEvent{ack: i, insert: true})
			if r.Task != "" {
				x.insTask[k] = r.Task
			}
			tables[r.Table] = true
		}
		for _, r := range a.Del {
			tables[r.Table] = true
			if t, ok := strings.CutPrefix(r.Key, "task:"); ok && t != "" {
				x.cascades[r.Table] = append(x.cascades[r.Table], cascadeEv{ack: i, task: t})
				continue
			}
			k := rowKey{r.Table, r.Key}
			x.rows[k] = append(x.rows[k], rowEvent{ack: i})
		}
		for _, t := range a.Trans {
			if l := x.trans[t.Task]; len(l) == 0 || l[len(l)-1] != i {
				x.trans[t.Task] = append(l, i)
			}
		}
	}
	for t := range tables {
		x.tables = append(x.tables, t)
	}
	sort.Strings(x.tables)
	for k := range x.rows {
		x.keys = append(x.keys, k)
	}
	sort.Slice(x.keys, func(i, j int) bool {
		if x.keys[i].table != x.keys[j].table {
			return x.keys[i].table < x.keys[j].table
		}
		return x.keys[i].key < x.keys[j].key
	})
	return x
}

// ledgerRow is one row of the image's commit ledger.
type ledgerRow struct {
	Seq  int64
	Proc string
	Op   string
}

// facts is what a fault-free connection read from one image.
type facts struct {
	openErr      error // opening or recovering failed
	damaged      bool  // openErr (or another error) is SQLite reporting damage
	integrity    []string
	quick        []string
	ledger       map[int64]ledgerRow
	ledgerErr    error
	rows         map[string]map[string]string // table -> key -> task_id ("" without one)
	rowsErr      map[string]error
	status       map[string]string // task -> status
	statusErr    error
	harnessError error // not SQLite's: the judgement is Error
}

// judge decides one image.
func judge(x *expect, f *facts, cut Cut, mode Mode) Judgement {
	j := Judgement{}
	if f.harnessError != nil {
		j.Verdict = Error
		j.Notes = append(j.Notes, f.harnessError.Error())
		return j
	}
	var ps, unsure problems
	damaged := false
	switch {
	case f.openErr != nil:
		j.Integrity = "open: " + f.openErr.Error()
		if !f.damaged {
			j.Verdict = Error
			return j
		}
		ps.add(KindCorrupt, j.Integrity)
		damaged = true
	case !(len(f.integrity) == 1 && f.integrity[0] == "ok"):
		j.Integrity = firstLine(f.integrity)
		j.QuickCheck = "not run"
		if len(f.quick) > 0 {
			j.QuickCheck = firstLine(f.quick)
		}
		ps.add(KindCorrupt, "integrity_check: "+j.Integrity)
		damaged = true
	default:
		j.Integrity = "ok"
	}
	// The data, judged also on a damaged image that still opens: what the
	// damage did to the rows (resurrected, lost) says what a check that
	// missed it would have served.
	switch {
	case f.openErr != nil:
	case f.ledgerErr != nil && isDamage(f.ledgerErr):
		if !damaged {
			ps.add(KindCorrupt, "reading the ledger: "+f.ledgerErr.Error())
			damaged = true
		}
	case f.ledgerErr != nil:
		if !damaged {
			j.Verdict = Error
			j.Notes = append(j.Notes, "reading the ledger: "+f.ledgerErr.Error())
			return j
		}
	default:
		judgeData(x, f, cut, mode, &j, &ps, &unsure)
	}
	j.Problems, j.Unsure = ps.list(), unsure.list()
	switch {
	case damaged && cut.Lying:
		j.Verdict = Detected
	case len(j.Problems) > 0:
		j.Verdict = Fail
	case len(j.Unsure) > 0:
		j.Verdict = Inconclusive
	default:
		j.Verdict = Pass
	}
	return j
}

// judgeData judges the ledger, durability, rows and task statuses.
func judgeData(x *expect, f *facts, cut Cut, mode Mode, j *Judgement, ps, unsure *problems) {
	applied, unknown := judgeLedger(x, f.ledger, ps)
	j.Commits = len(f.ledger)
	for s := range f.ledger {
		j.MaxSeq = max(j.MaxSeq, s)
	}
	lost := judgeDurability(x, applied, cut.T)
	switch {
	case len(lost) == 0:
	case cut.Lying || !mode.Durable():
		j.Notes = append(j.Notes, fmt.Sprintf("%d acknowledged commits before the cut are not in the image (allowed: %s)", len(lost),
			map[bool]string{true: "a fsync lied", false: mode.String() + " keeps a prefix only"}[cut.Lying]))
	default:
		for _, i := range lost {
			a := x.acks[i]
			ps.add(KindLostCommit, fmt.Sprintf("seq %d (%s by %s), acknowledged before the cut", a.Seq, a.Op, a.Proc))
		}
	}
	judgeRows(x, f, applied, unknown, ps, unsure)
	judgeStatus(x, f, applied, unknown, ps, unsure)
}

// judgeLedger matches the image's ledger rows to acknowledged commits. It
// returns which acks the image holds (by ack index) and the seqs of ledger
// rows no acknowledgement explains (commits that were never acknowledged:
// their changes are unknown). Holes and rows naming another process than
// the acknowledged commit of their seq are problems.
func judgeLedger(x *expect, ledger map[int64]ledgerRow, ps *problems) (applied []bool, unknown []int64) {
	applied = make([]bool, len(x.acks))
	var maxSeq int64
	for s, r := range ledger {
		maxSeq = max(maxSeq, s)
		idx := x.bySeq[s]
		if len(idx) == 0 {
			unknown = append(unknown, s)
			continue
		}
		hit := -1
		for _, i := range idx {
			a := x.acks[i]
			if a.Proc == r.Proc && (r.Op == "" || a.Op == "" || a.Op == r.Op) {
				hit = i
				break
			}
		}
		if hit < 0 {
			a := x.acks[idx[0]]
			ps.add(KindLedgerMismatch, fmt.Sprintf("ledger seq %d is %s's %s; the acknowledged commit of seq %d is %s's %s", s, clip(r.Proc), clip(r.Op), s, a.Proc, a.Op))
			unknown = append(unknown, s)
			continue
		}
		applied[hit] = true
	}
	sort.Slice(unknown, func(i, j int) bool { return unknown[i] < unknown[j] })
	var holes []int64
	for s := int64(1); s < maxSeq; s++ {
		if _, ok := ledger[s]; !ok {
			holes = append(holes, s)
		}
	}
	for _, s := range holes {
		ps.add(KindLedgerHole, fmt.Sprintf("seq %d missing below seq %d", s, maxSeq))
	}
	return applied, unknown
}

// judgeDurability returns the acks (indexes) acknowledged before cutT that
// the image lacks.
func judgeDurability(x *expect, applied []bool, cutT int64) []int {
	var lost []int
	for i, a := range x.acks {
		if a.T < cutT && !applied[i] && !seqApplied(x, applied, a.Seq) {
			lost = append(lost, i)
		}
	}
	return lost
}

// seqApplied reports whether another acknowledgement of the same seq (the
// same event read twice) is applied.
func seqApplied(x *expect, applied []bool, seq int64) bool {
	for _, i := range x.bySeq[seq] {
		if applied[i] {
			return true
		}
	}
	return false
}

// laterUnknown reports whether an unacknowledged commit in the image came
// after seq (it may explain any difference about rows decided at seq).
func laterUnknown(unknown []int64, seq int64) bool {
	return len(unknown) > 0 && unknown[len(unknown)-1] > seq
}

// judgeRows compares the image's rows of every tracked table with the
// state the image's own ledger implies: the last applied insert or delete
// of each row (cascades included).
func judgeRows(x *expect, f *facts, applied []bool, unknown []int64, ps, unsure *problems) {
	for _, t := range x.tables {
		if err := f.rowsErr[t]; err != nil {
			unsure.add("unreadable", fmt.Sprintf("%s: %v", t, err))
		}
	}
	for _, k := range x.keys {
		tab, ok := f.rows[k.table]
		if !ok {
			continue // unreadable table (reported above) or not in this schema
		}
		task, present := tab[k.key]
		if !present {
			task = x.insTask[k]
		}
		compareRow(k, expectRow(x, k, task, applied), present, unknown, ps, unsure)
	}
	judgeUntrackedRows(x, f, unknown, ps, unsure)
}

// rowWant is what the image's own ledger implies about one row.
type rowWant struct {
	present bool   // the row should be in the image
	decided int64  // the seq of the commit that decided it (0: none in the image)
	cause   string // why, for the message
	// future: no commit in the image touched the row and the first that
	// did (not in the image) inserted it.
	future bool
	// unsure: a cascade of a task the row may belong to deleted it (whose
	// row it was is unknown), so any answer is unsure.
	unsure bool
}

// expectRow predicts row k of task ("" when unknown) from the applied
// acks: the last applied insert or delete decides, and an applied cascade
// of its task after its last insert deletes it. Without an applied event,
// a row first inserted by a later commit should be absent and a row first
// deleted by one should be present (it existed before).
func expectRow(x *expect, k rowKey, task string, applied []bool) rowWant {
	evs := x.rows[k]
	var last *rowEvent
	var lastInsSeq int64 = -1
	for i := range evs {
		if applied[evs[i].ack] {
			last = &evs[i]
			if evs[i].insert {
				lastInsSeq = x.acks[evs[i].ack].Seq
			}
		}
	}
	var w rowWant
	switch {
	case last != nil:
		a := x.acks[last.ack]
		w.present, w.decided = last.insert, a.Seq
		if last.insert {
			w.cause = fmt.Sprintf("inserted by seq %d (%s)", a.Seq, a.Op)
		} else {
			w.cause = fmt.Sprintf("deleted by seq %d (%s)", a.Seq, a.Op)
		}
	case evs[0].insert:
		a := x.acks[evs[0].ack]
		w.future, w.cause = true, fmt.Sprintf("inserted only by seq %d (%s), not in the image", a.Seq, a.Op)
	default:
		w.present, w.cause = true, "existed before its first recorded delete, which is not in the image"
	}
	if w.present && lastInsSeq >= 0 {
		cascadeRow(x, k.table, task, lastInsSeq, applied, &w)
	}
	return w
}

// cascadeRow applies to w the first applied cascade of task's rows of
// table after seq insSeq (a cascade of any task when task is unknown,
// which leaves w unsure).
func cascadeRow(x *expect, table, task string, insSeq int64, applied []bool, w *rowWant) {
	for _, c := range x.cascades[table] {
		a := x.acks[c.ack]
		if !applied[c.ack] || a.Seq <= insSeq {
			continue
		}
		if task == "" {
			w.present, w.unsure = false, true
			w.decided, w.cause = a.Seq, fmt.Sprintf("maybe cascaded by seq %d (%s, task %s)", a.Seq, a.Op, c.task)
			return
		}
		if c.task == task {
			w.present, w.decided = false, a.Seq
			w.cause = fmt.Sprintf("cascaded by seq %d (%s, task %s)", a.Seq, a.Op, c.task)
			return
		}
	}
}

// compareRow reports row k when its presence differs from w: unsure when
// w is, or an unacknowledged commit in the image came after the commit
// that decided it; else a future row, a resurrected row or a lost row.
func compareRow(k rowKey, w rowWant, present bool, unknown []int64, ps, unsure *problems) {
	if w.present == present {
		return
	}
	what := fmt.Sprintf("%s row %s %s", k.table, k.key, w.cause)
	if w.unsure || laterUnknown(unknown, w.decided) {
		unsure.add("row", what+" (an unacknowledged commit in the image came later)")
		return
	}
	switch {
	case present && w.future:
		ps.add(KindFutureRow, what+", is present")
	case present:
		ps.add(KindResurrected, what+", is present")
	default:
		ps.add(KindLostRow, what+", is missing")
	}
}

// judgeUntrackedRows reports the rows of tracked tables that no recorded
// commit touched: phantoms, or unsure when unacknowledged commits are in
// the image.
func judgeUntrackedRows(x *expect, f *facts, unknown []int64, ps, unsure *problems) {
	for _, t := range x.tables {
		tab := f.rows[t]
		var extra []string
		for key := range tab {
			if _, ok := x.rows[rowKey{t, key}]; !ok {
				extra = append(extra, key)
			}
		}
		sort.Strings(extra)
		for _, key := range extra {
			what := fmt.Sprintf("%s row %s exists but no recorded commit inserted it", t, clip(key))
			if len(unknown) > 0 {
				unsure.add("row", what+" (unacknowledged commits in the image)")
				continue
			}
			ps.add(KindPhantom, what)
		}
	}
}

// judgeStatus checks each task's status against the last transition the
// image's ledger holds.
func judgeStatus(x *expect, f *facts, applied []bool, unknown []int64, ps, unsure *problems) {
	if f.status == nil {
		if f.statusErr != nil && len(x.trans) > 0 {
			unsure.add("unreadable", "tasks status: "+f.statusErr.Error())
		}
		return
	}
	tasks := make([]string, 0, len(x.trans))
	for t := range x.trans {
		tasks = append(tasks, t)
	}
	sort.Strings(tasks)
	for _, t := range tasks {
		got, ok := f.status[t]
		if !ok {
			continue // absent rows are judgeRows' business
		}
		last := -1
		for _, i := range x.trans[t] {
			if applied[i] {
				last = i
			}
		}
		if last < 0 {
			continue
		}
		a := x.acks[last]
		var want string
		for _, tr := range a.Trans {
			if tr.Task == t {
				want = tr.To
			}
		}
		if want == "" || got == want {
			continue
		}
		what := fmt.Sprintf("task %s is %s; its last transition in the image (seq %d, %s) made it %q", t, clip(got), a.Seq, a.Op, want)
		if laterUnknown(unknown, a.Seq) {
			unsure.add("row", what+" (an unacknowledged commit in the image came later)")
			continue
		}
		ps.add(KindStaleStatus, what)
	}
}

// clip renders a value read from a damaged image for a message: quoted
// when it is not plain text, and cut at 40 bytes.
func clip(v string) string {
	const max = 40
	cut := ""
	if len(v) > max {
		v, cut = v[:max], fmt.Sprintf("…(%d bytes)", len(v))
	}
	plain := true
	for _, r := range v {
		plain = plain && r >= 0x20 && r < 0x7f
	}
	if !plain {
		return fmt.Sprintf("%q", v) + cut
	}
	return v + cut
}

// firstLine returns the first line of a check's output that says what is
// wrong (SQLite prefixes the report with "*** in database main ***"), or
// "ok".
func firstLine(out []string) string {
	for _, row := range out {
		for _, l := range strings.Split(row, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "*** in database") {
				return l
			}
		}
	}
	return "no output"
}

// isDamage reports whether err is SQLite refusing a damaged file.
func isDamage(err error) bool {
	if err == nil {
		return false
	}
	s := strings.ToLower(err.Error())
	for _, w := range []string{"malformed", "not a database", "corrupt", "disk image", "(11)", "(26)"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}
