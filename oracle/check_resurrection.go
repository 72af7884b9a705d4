package oracle

import (
	"fmt"
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
	laterUnlogged := func(seq int64) (int64, bool) {
		i := sort.Search(len(unlogged), func(i int) bool { return unlogged[i] > seq })
		if i < len(unlogged) {
			return unlogged[i], true
		}
		return 0, false
	}

	// The last acknowledged fact about each row, in commit order.
	type key struct{ table, key string }
	last := map[key]expectRow{}
	created := map[key]bool{}
	tracked := map[string]bool{}
	var cascades []cascade
	born := map[string]int64{} // task -> seq of its first acknowledged insert
	// The acknowledged history is one order only when no seq was
	// acknowledged twice. On a forked history the branches' seqs interleave
	// with no order between them, and only the branch in the final ledger
	// can be judged: the expected state comes from the commits the ledger
	// confirms (seq and proc), and the acknowledged commits it lacks are
	// durability's to report.
	forked := len(f.forks()) > 0
	skipped := 0
	// Any acknowledged insert, on either branch, explains a row's existence
	// (a lost branch's pages can reach the main file through its writer's
	// checkpoints): no phantom.
	for _, c := range f.acks {
		for _, r := range c.Inserted {
			created[key{r.Table, r.Key}], tracked[r.Table] = true, true
		}
	}
	confirmed := f.confirmed(fin)
	for i, c := range f.acks {
		s := c.Seq
		if forked && !confirmed[i] {
			skipped++
			continue
		}
		for _, r := range c.Inserted {
			k := key{r.Table, r.Key}
			created[k], tracked[r.Table] = true, true
			last[k] = expectRow{seq: s, present: true, ev: c}
			if r.Table == "tasks" {
				if _, ok := born[r.Key]; !ok {
					born[r.Key] = s
				}
			}
		}
		for _, t := range c.Transitions {
			last[key{"tasks", t.Task}] = expectRow{seq: s, present: true, status: t.To, ev: c}
		}
		for _, r := range c.Deleted {
			if task, ok := cascadeTask(r.Key); ok {
				cascades = append(cascades, cascade{table: r.Table, task: task, seq: s, ev: c})
				continue
			}
			last[key{r.Table, r.Key}] = expectRow{seq: s, present: false, ev: c}
		}
	}
	// laterCascades returns the tasks whose rows of table a cascade after
	// seq deleted, leaving out tasks first inserted after seq (they cannot
	// own a row inserted at seq).
	laterCascades := func(table string, seq int64) map[string]cascade {
		out := map[string]cascade{}
		for _, c := range cascades {
			if c.table != table || c.seq <= seq {
				continue
			}
			if b, ok := born[c.task]; ok && b > seq {
				continue
			}
			if _, ok := out[c.task]; !ok {
				out[c.task] = c
			}
		}
		return out
	}
	explained := 0
	keys := make([]key, 0, len(last))
	for k := range last {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return last[keys[i]].seq < last[keys[j]].seq })

	res := Result{}
	bad, unsure := 0, 0
	for _, k := range keys {
		x := last[k]
		present, err := fin.rowExists(k.table, k.key)
		if err != nil {
			res.Evidence = append(res.Evidence, Evidence{Source: "db", Text: fmt.Sprintf("%s %s: %v", k.table, k.key, err)})
			unsure++
			continue
		}
		var status string
		if k.table == "tasks" && present && x.status != "" {
			if status, err = fin.taskStatus(k.key); err != nil {
				unsure++
				continue
			}
		}
		var what string
		switch {
		case !x.present && present:
			what = fmt.Sprintf("%s row %s deleted by acknowledged commit seq %d (%s) is present at the end", k.table, k.key, x.seq, x.ev.Op)
		case x.present && !present:
			what = fmt.Sprintf("%s row %s written by acknowledged commit seq %d (%s) is missing at the end", k.table, k.key, x.seq, x.ev.Op)
			if k.table == "tasks" {
				break
			}
			d := laterCascades(k.table, x.seq)
			if len(d) == 0 {
				break // no later cascade on this table could have removed it
			}
			owners := commitTasks(x.ev)
			var hit, miss []string
			for _, t := range owners {
				if _, ok := d[t]; ok {
					hit = append(hit, t)
				} else {
					miss = append(miss, t)
				}
			}
			switch {
			case len(owners) > 0 && len(miss) == 0:
				explained++ // every task its commit names was cascaded later
				continue
			case len(owners) > 0 && len(hit) == 0:
				what += fmt.Sprintf(" (its commit names %s; no later cascade deleted their %s rows)", strings.Join(owners, ", "), k.table)
			default:
				what += fmt.Sprintf(" — later cascades deleted the %s rows of %s, and its commit names %s: cannot tell whose row it was (inconclusive)",
					k.table, strings.Join(sortedKeys(d), ", "), orNone(owners))
				e := histEv(x.ev.Event, what)
				e.Seq = uint64(x.seq)
				res.Evidence = append(res.Evidence, e)
				unsure++
				continue
			}
		case x.status != "" && status != x.status:
			what = fmt.Sprintf("task %s is %q at the end; its last acknowledged transition (seq %d, %s) made it %q", k.key, status, x.seq, x.ev.Op, x.status)
		default:
			continue
		}
		e := histEv(x.ev.Event, what)
		e.Seq = uint64(x.seq)
		if u, ok := laterUnlogged(x.seq); ok {
			unsure++
			e.Text += fmt.Sprintf(" — but unacknowledged commit seq %d came later (inconclusive)", u)
		} else {
			bad++
		}
		res.Evidence = append(res.Evidence, e)
	}
	// Rows a cascade deleted that are present at the end.
	cascaded := 0
	for _, c := range cascades {
		ks, err := fin.keysOfTask(c.table, c.task)
		if err != nil {
			res.Evidence = append(res.Evidence, Evidence{Source: "db", Text: fmt.Sprintf("%s rows of task %s: %v", c.table, c.task, err)})
			unsure++
			continue
		}
		for _, kk := range ks {
			x, ok := last[key{c.table, kk}]
			if !ok || !x.present || x.seq >= c.seq {
				// Not inserted by an acknowledged commit (a phantom, judged
				// below, or an unrecorded insert), removed by an individual
				// delete (judged above), or inserted again at or after the
				// cascade.
				continue
			}
			cascaded++
			what := fmt.Sprintf("%s row %s of task %s, deleted by acknowledged commit seq %d (%s, cascade), is present at the end (inserted by seq %d)",
				c.table, kk, c.task, c.seq, c.ev.Op, x.seq)
			e := histEv(c.ev.Event, what)
			e.Seq = uint64(c.seq)
			if u, ok := laterUnlogged(c.seq); ok {
				unsure++
				cascaded--
				e.Text += fmt.Sprintf(" — but unacknowledged commit seq %d came later (inconclusive)", u)
			} else {
				bad++
			}
			res.Evidence = append(res.Evidence, e)
		}
	}
	// Rows nobody created, in the tables the histories track.
	tables := make([]string, 0, len(tracked))
	for t := range tracked {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	phantoms := 0
	for _, t := range tables {
		ks, err := fin.keys(t)
		if err != nil {
			res.Evidence = append(res.Evidence, Evidence{Source: "db", Text: fmt.Sprintf("listing %s: %v", t, err)})
			unsure++
			continue
		}
		for _, kk := range ks {
			if created[key{t, kk}] {
				continue
			}
			ev := Evidence{Source: "db", Text: fmt.Sprintf("%s row %s exists but no acknowledged commit inserted it", t, kk)}
			if len(unlogged) > 0 {
				unsure++
				ev.Text += fmt.Sprintf(" (%d unacknowledged commits could have: inconclusive)", len(unlogged))
			} else {
				phantoms++
			}
			res.Evidence = append(res.Evidence, ev)
		}
	}
	bad += phantoms
	forkNote := ""
	if forked {
		forkNote = fmt.Sprintf("; forked history: judged on the %d acknowledged commits the ledger confirms, %d others left to durability", len(f.acks)-skipped, skipped)
		res.Evidence = append(res.Evidence, Evidence{Source: "history", Text: fmt.Sprintf("forked history (a seq acknowledged more than once): %d acknowledged commits not in the final ledger under their process are not used to predict rows", skipped)})
	}
	switch {
	case bad > 0:
		res.Verdict = Fail
		res.Summary = fmt.Sprintf("%s contradict the acknowledged history (%d phantom, %d back after a cascade), %d inconclusive%s", plural(bad, "row"), phantoms, cascaded, unsure, forkNote)
	case unsure > 0:
		res.Verdict = Inconclusive
		res.Summary = fmt.Sprintf("%s could not be decided (later unacknowledged commits, unreadable rows, or rows whose task a later cascade may have deleted)%s", plural(unsure, "row"), forkNote)
	default:
		res.Verdict = Pass
		res.Summary = fmt.Sprintf("%d rows match their last acknowledged commit (%d of them removed by later cascades); %s; no phantoms in %d tracked tables%s",
			len(keys), explained, plural(len(cascades), "cascade"), len(tables), forkNote)
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
	return sortedKeys(set)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "no task"
	}
	return strings.Join(s, ", ")
}
