package oracle

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

var resurrectionChecker = Checker{
	Name: Resurrection,
	Doc: "No deleted or overwritten row comes back: rows deleted by an acknowledged commit are absent " +
		"at the end, every task's final status is its last acknowledged transition, and no row exists " +
		"that no commit created. A row a later unacknowledged commit (in the ledger, not in any " +
		"history) may have touched is inconclusive, not passed. A deleted key \"task:<id>\" is kanbancore's " +
		"cascade: every row of that table with task_id=<id> at that commit; such rows present at the end " +
		"and inserted before the cascade are resurrected, and an inserted row missing at the end is " +
		"explained by a later cascade of the task its inserting commit names (transitions, tasks rows, " +
		"task_links ends, task:<id> keys); when that commit names no task, or names several of which only " +
		"some were deleted later, the row is inconclusive. On a forked history (a seq acknowledged twice, see " +
		"durability) the branches have no order between them: rows are predicted from the acknowledged commits " +
		"the final ledger confirms, the others are durability's to report, and an insert on any branch explains " +
		"a row's existence.",
	Check: checkResurrection,
}

type expectRow struct {
	seq     int64
	present bool   // false: deleted
	status  string // tasks only; "" = any
	ev      commitEv
}

// rowKey names a row of a tracked table.
type rowKey struct{ table, key string }

// prediction is what the acknowledged history says the final database
// holds: predictRows computes it from the histories alone, and the
// compare functions hold the database to it.
type prediction struct {
	last     map[rowKey]expectRow // the last acknowledged fact about each row
	created  map[rowKey]bool      // rows an acknowledged commit inserted, on any branch
	tracked  map[string]bool      // tables the histories write
	cascades []cascade            // cascaded deletes, in commit order
	born     map[string]int64     // task -> seq of its first acknowledged insert
	forked   bool                 // a seq was acknowledged more than once
	skipped  int                  // acknowledged commits not used (forked, not in the ledger)
}

// predictRows folds the acknowledged commits (sorted by seq) into the
// expected final state. The acknowledged history is one order only when no
// seq was acknowledged twice. On a forked history the branches' seqs
// interleave with no order between them, and only the branch in the final
// ledger can be judged: the expected state comes from the commits the
// ledger confirms (confirmed[i] for acks[i]), and the acknowledged commits
// it lacks are durability's to report. Any acknowledged insert, on either
// branch, explains a row's existence (a lost branch's pages can reach the
// main file through its writer's checkpoints): no phantom.
func predictRows(acks []commitEv, forked bool, confirmed []bool) prediction {
	p := prediction{last: map[rowKey]expectRow{}, created: map[rowKey]bool{}, tracked: map[string]bool{},
		born: map[string]int64{}, forked: forked}
	for _, c := range acks {
		for _, r := range c.Inserted {
			p.created[rowKey{r.Table, r.Key}], p.tracked[r.Table] = true, true
		}
	}
	for i, c := range acks {
		if forked && (i >= len(confirmed) || !confirmed[i]) {
			p.skipped++
			continue
		}
		p.apply(c)
	}
	return p
}

// apply folds one acknowledged commit into the prediction.
func (p *prediction) apply(c commitEv) {
	s := c.Seq
	for _, r := range c.Inserted {
		p.last[rowKey{r.Table, r.Key}] = expectRow{seq: s, present: true, ev: c}
		if _, ok := p.born[r.Key]; r.Table == "tasks" && !ok {
			p.born[r.Key] = s
		}
	}
	for _, t := range c.Transitions {
		p.last[rowKey{"tasks", t.Task}] = expectRow{seq: s, present: true, status: t.To, ev: c}
	}
	for _, r := range c.Deleted {
		if task, ok := cascadeTask(r.Key); ok {
			p.cascades = append(p.cascades, cascade{table: r.Table, task: task, seq: s, ev: c})
			continue
		}
		p.last[rowKey{r.Table, r.Key}] = expectRow{seq: s, present: false, ev: c}
	}
}

// laterCascades returns the tasks whose rows of table a cascade after seq
// deleted, leaving out tasks first inserted after seq (they cannot own a
// row inserted at seq).
func (p prediction) laterCascades(table string, seq int64) map[string]cascade {
	out := map[string]cascade{}
	for _, c := range p.cascades {
		if c.table != table || c.seq <= seq {
			continue
		}
		if b, ok := p.born[c.task]; ok && b > seq {
			continue
		}
		if _, ok := out[c.task]; !ok {
			out[c.task] = c
		}
	}
	return out
}

// keys returns the predicted rows in the order of their last commit.
func (p prediction) keys() []rowKey {
	keys := make([]rowKey, 0, len(p.last))
	for k := range p.last {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := p.last[keys[i]], p.last[keys[j]]
		if a.seq != b.seq {
			return a.seq < b.seq
		}
		return keys[i].table+"\x00"+keys[i].key < keys[j].table+"\x00"+keys[j].key
	})
	return keys
}

// tally accumulates the comparison of the database with a prediction.
type tally struct {
	res                 Result
	bad, unsure         int
	explained, cascaded int
	phantoms            int
	// laterUnlogged returns the first commit after seq that is in the
	// ledger but in no history: it may have changed the row.
	laterUnlogged func(seq int64) (int64, bool)
}

// judged records evidence e about a contradiction at seq: a failure,
// unless an unacknowledged commit came later (inconclusive).
func (t *tally) judged(e Evidence, seq int64) bool {
	if u, ok := t.laterUnlogged(seq); ok {
		t.unsure++
		e.Text += fmt.Sprintf(" — but unacknowledged commit seq %d came later (inconclusive)", u)
		t.res.Evidence = append(t.res.Evidence, e)
		return false
	}
	t.bad++
	t.res.Evidence = append(t.res.Evidence, e)
	return true
}

// unreadable records a database read that failed.
func (t *tally) unreadable(text string) {
	t.res.Evidence = append(t.res.Evidence, Evidence{Source: "db", Text: text})
	t.unsure++
}

func checkResurrection(in *Input) Result {
	f := in.facts()
	if len(f.acks) == 0 {
		return Result{Verdict: Inconclusive, Summary: "no acknowledged commits in the histories"}
	}
	fin := in.final()
	if err := firstErr(fin.openErr, fin.ledgerErr); err != nil {
		return Result{Verdict: Inconclusive, Summary: "cannot read the final database: " + err.Error()}
	}
	// Commits that made it into the database without being acknowledged
	// (by seq and proc): their effects are unknown.
	unlogged := f.unlogged(fin)
	t := &tally{laterUnlogged: func(seq int64) (int64, bool) {
		i := sort.Search(len(unlogged), func(i int) bool { return unlogged[i] > seq })
		if i < len(unlogged) {
			return unlogged[i], true
		}
		return 0, false
	}}
	p := predictRows(f.acks, len(f.forks()) > 0, f.confirmed(fin))
	keys := p.keys()
	for _, k := range keys {
		compareRow(p, k, fin, t)
	}
	compareCascades(p, fin, t)
	tables := comparePhantoms(p, fin, len(unlogged), t)
	return t.verdict(p, len(keys), len(tables), len(f.acks))
}

// compareRow holds one predicted row to the database.
func compareRow(p prediction, k rowKey, fin *final, t *tally) {
	x := p.last[k]
	present, err := fin.rowExists(k.table, k.key)
	if err != nil {
		t.unreadable(fmt.Sprintf("%s %s: %v", k.table, k.key, err))
		return
	}
	var status string
	if k.table == "tasks" && present && x.status != "" {
		if status, err = fin.taskStatus(k.key); err != nil {
			t.unsure++
			return
		}
	}
	var what string
	switch {
	case !x.present && present:
		what = fmt.Sprintf("%s row %s deleted by acknowledged commit seq %d (%s) is present at the end", k.table, k.key, x.seq, x.ev.Op)
	case x.present && !present:
		what = fmt.Sprintf("%s row %s written by acknowledged commit seq %d (%s) is missing at the end", k.table, k.key, x.seq, x.ev.Op)
		var done bool
		if what, done = explainMissing(p, k, x, what, t); done {
			return
		}
	case x.status != "" && status != x.status:
		what = fmt.Sprintf("task %s is %q at the end; its last acknowledged transition (seq %d, %s) made it %q", k.key, status, x.seq, x.ev.Op, x.status)
	default:
		return
	}
	e := histEv(x.ev.Event, what)
	e.Seq = uint64(x.seq)
	t.judged(e, x.seq)
}

// explainMissing decides whether a later cascade explains a missing
// non-task row: done is true when the row is settled (explained, or
// recorded as inconclusive); otherwise what may carry a note.
func explainMissing(p prediction, k rowKey, x expectRow, what string, t *tally) (string, bool) {
	if k.table == "tasks" {
		return what, false
	}
	d := p.laterCascades(k.table, x.seq)
	if len(d) == 0 {
		return what, false // no later cascade on this table could have removed it
	}
	owners := commitTasks(x.ev)
	var hit, miss []string
	for _, o := range owners {
		if _, ok := d[o]; ok {
			hit = append(hit, o)
		} else {
			miss = append(miss, o)
		}
	}
	switch {
	case len(owners) > 0 && len(miss) == 0:
		t.explained++ // every task its commit names was cascaded later
		return what, true
	case len(owners) > 0 && len(hit) == 0:
		return what + fmt.Sprintf(" (its commit names %s; no later cascade deleted their %s rows)", strings.Join(owners, ", "), k.table), false
	}
	what += fmt.Sprintf(" — later cascades deleted the %s rows of %s, and its commit names %s: cannot tell whose row it was (inconclusive)",
		k.table, strings.Join(slices.Sorted(maps.Keys(d)), ", "), cmp.Or(strings.Join(owners, ", "), "no task"))
	e := histEv(x.ev.Event, what)
	e.Seq = uint64(x.seq)
	t.res.Evidence = append(t.res.Evidence, e)
	t.unsure++
	return what, true
}

// compareCascades finds rows a cascade deleted that are present at the end.
func compareCascades(p prediction, fin *final, t *tally) {
	for _, c := range p.cascades {
		ks, err := fin.keysOfTask(c.table, c.task)
		if err != nil {
			t.unreadable(fmt.Sprintf("%s rows of task %s: %v", c.table, c.task, err))
			continue
		}
		for _, kk := range ks {
			x, ok := p.last[rowKey{c.table, kk}]
			if !ok || !x.present || x.seq >= c.seq {
				// Not inserted by an acknowledged commit (a phantom, judged
				// below, or an unrecorded insert), removed by an individual
				// delete (judged above), or inserted again at or after the
				// cascade.
				continue
			}
			what := fmt.Sprintf("%s row %s of task %s, deleted by acknowledged commit seq %d (%s, cascade), is present at the end (inserted by seq %d)",
				c.table, kk, c.task, c.seq, c.ev.Op, x.seq)
			e := histEv(c.ev.Event, what)
			e.Seq = uint64(c.seq)
			if t.judged(e, c.seq) {
				t.cascaded++
			}
		}
	}
}

// comparePhantoms finds rows nobody created in the tracked tables and
// returns those tables.
func comparePhantoms(p prediction, fin *final, unlogged int, t *tally) []string {
	tables := make([]string, 0, len(p.tracked))
	for tb := range p.tracked {
		tables = append(tables, tb)
	}
	sort.Strings(tables)
	for _, tb := range tables {
		ks, err := fin.keys(tb)
		if err != nil {
			t.unreadable(fmt.Sprintf("listing %s: %v", tb, err))
			continue
		}
		for _, kk := range ks {
			if p.created[rowKey{tb, kk}] {
				continue
			}
			ev := Evidence{Source: "db", Text: fmt.Sprintf("%s row %s exists but no acknowledged commit inserted it", tb, kk)}
			if unlogged > 0 {
				t.unsure++
				ev.Text += fmt.Sprintf(" (%d unacknowledged commits could have: inconclusive)", unlogged)
			} else {
				t.phantoms++
				t.bad++
			}
			t.res.Evidence = append(t.res.Evidence, ev)
		}
	}
	return tables
}

// verdict turns the tally into the checker's result.
func (t *tally) verdict(p prediction, rows, tables, acks int) Result {
	res := t.res
	forkNote := ""
	if p.forked {
		forkNote = fmt.Sprintf("; forked history: judged on the %d acknowledged commits the ledger confirms, %d others left to durability", acks-p.skipped, p.skipped)
		res.Evidence = append(res.Evidence, Evidence{Source: "history", Text: fmt.Sprintf("forked history (a seq acknowledged more than once): %d acknowledged commits not in the final ledger under their process are not used to predict rows", p.skipped)})
	}
	switch {
	case t.bad > 0:
		res.Verdict = Fail
		res.Summary = fmt.Sprintf("%s contradict the acknowledged history (%d phantom, %d back after a cascade), %d inconclusive%s", plural(t.bad, "row"), t.phantoms, t.cascaded, t.unsure, forkNote)
	case t.unsure > 0:
		res.Verdict = Inconclusive
		res.Summary = fmt.Sprintf("%s could not be decided (later unacknowledged commits, unreadable rows, or rows whose task a later cascade may have deleted)%s", plural(t.unsure, "row"), forkNote)
	default:
		res.Verdict = Pass
		res.Summary = fmt.Sprintf("%d rows match their last acknowledged commit (%d of them removed by later cascades); %s; no phantoms in %d tracked tables%s",
			rows, t.explained, plural(len(p.cascades), "cascade"), tables, forkNote)
	}
	return res
}

// cascade is a kanbancore cascaded delete: Deleted(table, "task:<id>")
// removed every row of table with task_id=<id>.
type cascade struct {
	table, task string
	seq         int64
	ev          commitEv
}

// cascadeTask returns <id> for a row key "task:<id>".
func cascadeTask(k string) (string, bool) {
	t, ok := strings.CutPrefix(k, "task:")
	return t, ok && t != ""
}

// commitTasks returns the tasks a commit names: its transitions, rows of
// tasks it inserted, deleted or updated, both ends of task_links keys
// "parent>child", cascade and update keys "task:<id>", and the event's
// Task. kanbancore's child rows (events, runs) belong to one of them.
func commitTasks(c commitEv) []string {
	set := map[string]bool{}
	add := func(t string) {
		if t != "" {
			set[t] = true
		}
	}
	add(c.Task)
	for _, t := range c.Transitions {
		add(t.Task)
	}
	for _, list := range [][]rowRef{c.Inserted, c.Deleted, c.Updated} {
		for _, r := range list {
			add(r.Task)
			if t, ok := cascadeTask(r.Key); ok {
				add(t)
				continue
			}
			switch r.Table {
			case "tasks":
				add(r.Key)
			case "task_links":
				if p, ch, ok := strings.Cut(r.Key, ">"); ok {
					add(p)
					add(ch)
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}
