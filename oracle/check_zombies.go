package oracle

import (
	"fmt"

	"github.com/sqlchaos/sqlchaos/history"
)

var zombiesChecker = Checker{
	Name: Zombies,
	Doc: "Defunct children of the dispatcher stay bounded across ticks: no TypeReap event counts more " +
		"than Bounds.MaxDefunct defunct children (Data.Defunct).",
	Check: checkZombies,
}

func checkZombies(in *Input) Result {
	f := in.facts()
	res := Result{}
	ticks, peak, over := 0, -1, 0
	var peakE history.Event
	for _, e := range in.Events {
		if e.Type != history.TypeReap {
			continue
		}
		defunct := e.Facts().Defunct
		if defunct == nil {
			continue
		}
		n := *defunct
		ticks++
		if n > peak {
			peak, peakE = n, e
		}
		if n > f.bounds.MaxDefunct {
			over++
			if over <= 5 {
				res.Evidence = append(res.Evidence, histEv(e, fmt.Sprintf("%d defunct children at %s (bound %d)", n, f.rel(e.T), f.bounds.MaxDefunct)))
			}
		}
	}
	if ticks == 0 {
		return Result{Verdict: Inconclusive, Summary: "no reap events with a defunct count"}
	}
	if over > 0 {
		res.Verdict = Fail
		res.Summary = fmt.Sprintf("defunct children exceeded %d at %d of %d ticks (peak %d)", f.bounds.MaxDefunct, over, ticks, peak)
		return res
	}
	res.Verdict = Pass
	res.Evidence = append(res.Evidence, histEv(peakE, fmt.Sprintf("peak %d defunct", peak)))
	res.Summary = fmt.Sprintf("at most %d defunct children over %d ticks (bound %d)", peak, ticks, f.bounds.MaxDefunct)
	return res
}
