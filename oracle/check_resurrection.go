package oracle

import (
	"fmt"
	"sort"
)

func init() {
	register(Checker{
		Name: "resurrection",
		Doc: "No deleted or overwritten row comes back: rows deleted by an acknowledged commit are absent " +
			"at the end, every task's final status is its last acknowledged transition, and no row exists " +
			"that no commit created. A row a later unacknowledged commit (in the ledger, not in any " +
			"history) may have touched is inconclusive, not passed.",
		Check: checkResurrection,
	})
}

type expectRow struct {
	seq     int64
	present bool   // false: deleted
	status  string // tasks only; "" = any
	ev      commitEv
}

func checkResurrection(in *Input) Result {
	f := in.facts()
	if len(f.commits) == 0 {
		return Result{Verdict: Inconclusive, Summary: "no acknowledged commits in the histories"}
	}
	fin := in.final()
	if err := firstErr(fin.openErr, fin.ledgerErr); err != nil {
		return Result{Verdict: Inconclusive, Summary: "cannot read the final database: " + err.Error()}
	}
	// Commits that made it into the database without being acknowledged:
	// their effects are unknown.
	var unlogged []int64
	for s := range fin.ledger {
		if _, ok := f.commits[s]; !ok {
			unlogged = append(unlogged, s)
		}
	}
	sort.Slice(unlogged, func(i, j int) bool { return unlogged[i] < unlogged[j] })
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
	for _, s := range f.sortedSeqs() {
		c := f.commits[s]
		for _, r := range c.Inserted {
			k := key{r.Table, r.Key}
			created[k], tracked[r.Table] = true, true
			last[k] = expectRow{seq: s, present: true, ev: c}
		}
		for _, t := range c.Transitions {
			last[key{"tasks", t.Task}] = expectRow{seq: s, present: true, status: t.To, ev: c}
		}
		for _, r := range c.Deleted {
			last[key{r.Table, r.Key}] = expectRow{seq: s, present: false, ev: c}
		}
	}
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
	switch {
	case bad > 0:
		res.Verdict = Fail
		res.Summary = fmt.Sprintf("%s contradict the acknowledged history (%d phantom), %d inconclusive", plural(bad, "row"), phantoms, unsure)
	case unsure > 0:
		res.Verdict = Inconclusive
		res.Summary = fmt.Sprintf("%s could not be decided (later unacknowledged commits or unreadable rows)", plural(unsure, "row"))
	default:
		res.Verdict = Pass
		res.Summary = fmt.Sprintf("%d rows match their last acknowledged commit; no phantoms in %d tracked tables", len(keys), len(tables))
	}
	return res
}
