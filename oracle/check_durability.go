package oracle

import (
	"fmt"
)

func init() {
	register(Checker{
		Name: "durability",
		Doc: "No acknowledged commit lost: every seq of a TypeCommit event (COMMIT returned success) " +
			"is in the final ledger table, read by a fault-free connection.",
		Check: checkDurability,
	})
}

func checkDurability(in *Input) Result {
	f := in.facts()
	if len(f.commits) == 0 {
		return Result{Verdict: Inconclusive, Summary: "no acknowledged commits in the histories"}
	}
	if !in.haveDB() {
		return Result{Verdict: Inconclusive, Summary: "the run saved no database"}
	}
	fin := in.final()
	seqs := f.sortedSeqs()
	if err := firstErr(fin.openErr, fin.ledgerErr); err != nil {
		if sqliteDamage(err) {
			res := Result{Verdict: Fail, Summary: fmt.Sprintf("ledger unreadable (%v): all %d acknowledged commits lost", err, len(seqs))}
			res.Evidence = append(res.Evidence, Evidence{Source: "db", Text: "reading " + in.Meta.Ledger + ": " + err.Error()})
			return res
		}
		return Result{Verdict: Inconclusive, Summary: "cannot read the ledger: " + err.Error()}
	}
	res := Result{}
	lost := 0
	for _, s := range seqs {
		if _, ok := fin.ledger[s]; !ok {
			lost++
			c := f.commits[s]
			res.Evidence = append(res.Evidence, histEv(c.Event, fmt.Sprintf("acknowledged commit seq %d (%s) at %s is not in the final ledger", s, c.Op, f.rel(c.T))))
		}
	}
	unlogged := 0
	for s := range fin.ledger {
		if _, ok := f.commits[s]; !ok {
			unlogged++
		}
	}
	if lost > 0 {
		res.Verdict = Fail
		res.Summary = fmt.Sprintf("%d of %d acknowledged commits lost", lost, len(seqs))
		return res
	}
	res.Verdict = Pass
	res.Summary = fmt.Sprintf("all %d acknowledged commits present (%d more unacknowledged commits in the ledger)", len(seqs), unlogged)
	return res
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
