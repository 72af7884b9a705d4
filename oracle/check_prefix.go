package oracle

import (
	"fmt"
	"sort"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
)

var prefixChecker = Checker{
	Name: Prefix,
	Doc: "After a power cut (trace record powercut), the acknowledged commits that survive are a prefix of " +
		"those acknowledged before the cut, in commit order: a commit may be lost only if every later one " +
		"is lost too (never a hole). SQLite promises this in WAL mode at any synchronous setting; " +
		"durability says whether the prefix is all of them. Inconclusive without a cut or a commit before it.",
	Check: checkPrefix,
}

func checkPrefix(in *Input) Result {
	f := in.facts()
	var cuts []trace.Record
	for _, r := range in.Trace {
		if r.Kind == trace.KindPowerCut {
			cuts = append(cuts, r)
		}
	}
	if len(cuts) == 0 {
		return Result{Verdict: Inconclusive, Summary: "no power cut in the trace"}
	}
	if !in.haveDB() {
		return Result{Verdict: Inconclusive, Summary: "the run saved no database"}
	}
	fin := in.final()
	if fin.ledgerErr != nil {
		return Result{Verdict: Inconclusive, Summary: "cannot read the ledger: " + fin.ledgerErr.Error()}
	}
	ok := f.confirmed(fin)
	res := Result{}
	holes, judged, lostTotal := 0, 0, 0
	var prev int64
	for _, cut := range cuts {
		// The commits acknowledged since the previous cut and before this one.
		var idx []int
		for i, c := range f.acks {
			if c.T > prev && c.T < cut.T {
				idx = append(idx, i)
			}
		}
		prev = cut.T
		if len(idx) == 0 {
			continue
		}
		judged++
		sort.SliceStable(idx, func(a, b int) bool { return f.acks[idx[a]].Seq < f.acks[idx[b]].Seq })
		// The last surviving commit; every lost one before it is a hole.
		last := -1
		for k, i := range idx {
			if ok[i] {
				last = k
			}
		}
		lost := 0
		for k, i := range idx {
			if ok[i] {
				continue
			}
			lost++
			if k < last {
				holes++
				c := f.acks[i]
				res.Evidence = append(res.Evidence, histEv(c.Event, fmt.Sprintf("acknowledged commit seq %d (%s) lost at the power cut (%s) while the later seq %d survived: a hole",
					c.Seq, c.Op, f.rel(cut.T), f.acks[idx[last]].Seq)))
			}
		}
		lostTotal += lost
		res.Evidence = append(res.Evidence, traceEv(cut, fmt.Sprintf("power cut %s: %d commits acknowledged before it, the first %d survive, %d lost",
			f.rel(cut.T), len(idx), last+1, lost)))
	}
	switch {
	case judged == 0:
		res.Verdict, res.Summary = Inconclusive, "no commit was acknowledged before a power cut"
	case holes > 0:
		res.Verdict, res.Summary = Fail, fmt.Sprintf("not a prefix: %s lost before a later commit that survived", plural(holes, "acknowledged commit"))
	default:
		res.Verdict, res.Summary = Pass, fmt.Sprintf("the survivors are a prefix at %s (%d acknowledged commits lost at the end)", plural(judged, "power cut"), lostTotal)
	}
	return res
}
