package oracle

import (
	"fmt"
	"strings"
)

var durabilityChecker = Checker{
	Name: Durability,
	Doc: "No acknowledged commit lost: every TypeCommit event (COMMIT returned success) has its row in the " +
		"final ledger table, read by a fault-free connection: the row with its seq names its process " +
		"(chaos_ledger.proc) and operation and was written no later than the acknowledgement. Commits are " +
		"keyed by (seq, proc), never by seq alone: a seq acknowledged twice (by two processes, or twice by one) " +
		"is a forked history (a -wal unlinked under a live writer: processes that open the board later " +
		"continue the counter from the main file while the writer continues it in its deleted WAL). At most " +
		"one of the acknowledgements can be in the ledger, so a fork alone fails, with every acknowledgement " +
		"of the seq as evidence.",
	Check: checkDurability,
}

// maxLostEvidence bounds the evidence lines per kind (lost commits, forks).
const maxLostEvidence = 40

func checkDurability(in *Input) Result {
	f := in.facts()
	if len(f.acks) == 0 {
		return Result{Verdict: Inconclusive, Summary: "no acknowledged commits in the histories"}
	}
	if !in.haveDB() {
		return Result{Verdict: Inconclusive, Summary: "the run saved no database"}
	}
	fin := in.final()
	if err := firstErr(fin.openErr, fin.ledgerErr); err != nil {
		if sqliteDamage(err) {
			res := Result{Verdict: Fail, Summary: fmt.Sprintf("ledger unreadable (%v): all %d acknowledged commits lost", err, len(f.acks))}
			res.Evidence = append(res.Evidence, Evidence{Source: "db", Text: "reading " + in.Meta.Ledger + ": " + err.Error()})
			return res
		}
		return Result{Verdict: Inconclusive, Summary: "cannot read the ledger: " + err.Error()}
	}
	res := Result{}
	// Forked history: one seq acknowledged by several processes.
	forks := f.forks()
	for i, s := range forks {
		if i == maxLostEvidence {
			res.Evidence = append(res.Evidence, Evidence{Source: "history", Text: fmt.Sprintf("… %d more seqs acknowledged more than once", len(forks)-i)})
			break
		}
		cs := f.bySeq[s]
		var who []string
		for _, c := range cs {
			who = append(who, fmt.Sprintf("%s (pid %d, %s at %s)", c.Proc, c.Pid, c.Op, f.rel(c.T)))
		}
		text := fmt.Sprintf("forked history: seq %d acknowledged %d times: %s; the ledger's row names ", s, len(cs), strings.Join(who, " and "))
		if r, ok := fin.ledger[s]; ok {
			text += fmt.Sprintf("%s (%s)", r.Proc, r.Op)
		} else {
			text += "nobody (no row)"
		}
		e := histEv(cs[0].Event, text)
		e.Seq = uint64(s)
		res.Evidence = append(res.Evidence, e)
	}
	lost := 0
	ok := f.confirmed(fin)
	for i, c := range f.acks {
		if ok[i] {
			continue
		}
		lost++
		if lost > maxLostEvidence {
			continue
		}
		text := fmt.Sprintf("acknowledged commit seq %d (%s by %s) at %s is not in the final ledger", c.Seq, c.Op, c.Proc, f.rel(c.T))
		if r, ok := fin.ledger[c.Seq]; ok {
			text = fmt.Sprintf("acknowledged commit seq %d (%s by %s) at %s is lost: the final ledger's row %d is %s's %s written at %s", c.Seq, c.Op, c.Proc, f.rel(c.T), c.Seq, r.Proc, r.Op, f.rel(r.T))
			if r.matches(c) {
				text += ", which another acknowledgement of that seq by the same process matches first"
			}
		}
		res.Evidence = append(res.Evidence, histEv(c.Event, text))
	}
	if lost > maxLostEvidence {
		res.Evidence = append(res.Evidence, Evidence{Source: "history", Text: fmt.Sprintf("… %d more lost commits", lost-maxLostEvidence)})
	}
	unlogged := len(f.unlogged(fin))
	switch {
	case lost > 0 || len(forks) > 0:
		res.Verdict = Fail
		res.Summary = fmt.Sprintf("%d of %d acknowledged commits lost", lost, len(f.acks))
		if len(forks) > 0 {
			res.Summary += fmt.Sprintf("; forked history: %s acknowledged more than once", plural(len(forks), "seq"))
		}
	default:
		res.Verdict = Pass
		res.Summary = fmt.Sprintf("all %d acknowledged commits present (%d more unacknowledged commits in the ledger)", len(f.acks), unlogged)
	}
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
