package oracle

import (
	"fmt"
	"sort"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
)

var workersChecker = Checker{
	Name: Workers,
	Doc: "At most one live worker per task at any time, and no respawn storm. A worker lives from its " +
		"TypeSpawn (Data.Pid) to its own TypeExit, a TypeReap naming its pid, or else its last " +
		"history event; one that wrote none lives to the first power cut after its spawn (the runner SIGKILLs " +
		"every process there), else to the end of the run.",
	Check: checkWorkers,
}

type worker struct {
	pid        int
	task       string
	start, end int64
	spawn      history.Event
	endHow     string
}

func workerLives(in *Input) []*worker {
	f := in.facts()
	var ws []*worker
	byPid := map[int]*worker{}
	for _, e := range in.Events {
		if e.Type != history.TypeSpawn {
			continue
		}
		pid := e.Facts().Pid
		w := &worker{pid: pid, task: e.Task, start: e.T, spawn: e}
		ws = append(ws, w)
		if pid != 0 {
			byPid[pid] = w
		}
	}
	lastSeen := map[int]int64{}
	for _, e := range in.Events {
		w := byPid[e.Pid]
		if w != nil && e.T >= w.start {
			lastSeen[e.Pid] = e.T
			if e.Type == history.TypeExit && w.end == 0 {
				w.end, w.endHow = e.T, "exit"
			}
		}
		if e.Type == history.TypeReap {
			d := e.Facts()
			for _, p := range append([]int{d.Pid}, d.Pids...) {
				if w := byPid[p]; w != nil && w.end == 0 && e.T >= w.start {
					w.end, w.endHow = e.T, "reaped by "+e.Proc
				}
			}
		}
	}
	cuts := powerCutTimes(in)
	for _, w := range ws {
		if w.end != 0 {
			continue
		}
		t, seen := lastSeen[w.pid]
		cut := cutAfter(cuts, w.start)
		switch {
		case seen:
			w.end, w.endHow = t, "last history event"
		case cut > 0:
			// Nothing outlives a power cut: the runner SIGKILLs every
			// process, and a killed worker records no exit.
			w.end, w.endHow = cut, "killed at the power cut"
		default:
			w.end, w.endHow = f.tEnd, "no exit recorded: alive to the end"
		}
	}
	return ws
}

// powerCutTimes returns the times of the trace's power cuts, in order.
func powerCutTimes(in *Input) []int64 {
	var ts []int64
	for _, r := range in.Trace {
		if r.Kind == trace.KindPowerCut {
			ts = append(ts, r.T)
		}
	}
	return ts
}

// cutAfter returns the first power cut after t, or 0.
func cutAfter(cuts []int64, t int64) int64 {
	for _, c := range cuts {
		if c > t {
			return c
		}
	}
	return 0
}

func checkWorkers(in *Input) Result {
	f := in.facts()
	ws := workerLives(in)
	if len(ws) == 0 {
		return Result{Verdict: Inconclusive, Summary: "no worker was spawned"}
	}
	byTask := map[string][]*worker{}
	for _, w := range ws {
		byTask[w.task] = append(byTask[w.task], w)
	}
	tasks := make([]string, 0, len(byTask))
	for t := range byTask {
		tasks = append(tasks, t)
	}
	sort.Strings(tasks)
	res := Result{}
	overlaps, storms := 0, 0
	win := int64(time.Duration(f.bounds.StormWindow))
	for _, t := range tasks {
		list := byTask[t]
		sort.Slice(list, func(i, j int) bool { return list[i].start < list[j].start })
		for i, a := range list {
			for _, b := range list[i+1:] {
				if b.start < a.end {
					overlaps++
					e := histEv(b.spawn, fmt.Sprintf("task %s: worker pid %d spawned at %s while pid %d (spawned %s by %s) was live until %s (%s)",
						t, b.pid, f.rel(b.start), a.pid, f.rel(a.start), a.spawn.Proc, f.rel(a.end), a.endHow))
					res.Evidence = append(res.Evidence, e)
				}
			}
		}
		for i := range list {
			n := 0
			for j := i; j < len(list) && list[j].start-list[i].start <= win; j++ {
				n++
			}
			if n > f.bounds.StormSpawns {
				storms++
				res.Evidence = append(res.Evidence, histEv(list[i].spawn, fmt.Sprintf("task %s: %d spawns within %v from %s (bound %d)", t, n, time.Duration(win), f.rel(list[i].start), f.bounds.StormSpawns)))
				break
			}
		}
	}
	if overlaps > 0 || storms > 0 {
		res.Verdict = Fail
		res.Summary = fmt.Sprintf("%s of two live workers on one task, %s", plural(overlaps, "overlap"), plural(storms, "respawn storm"))
		return res
	}
	res.Verdict = Pass
	res.Summary = fmt.Sprintf("%s for %s, never two at once, no storm", plural(len(ws), "worker"), plural(len(tasks), "task"))
	return res
}
