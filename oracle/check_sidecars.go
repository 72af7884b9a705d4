package oracle

import (
	"fmt"
	"strings"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
)

var sidecarsChecker = Checker{
	Name: Sidecars,
	Doc: "No -wal or -shm file is unlinked or renamed over while another process holds it open (trace " +
		"Holders): the lock-cancellation hazard, where a connection keeps using a sidecar that is no longer " +
		"the file's. Truncations of either with other holders are listed but do not fail: SQLite truncates " +
		"the -wal under its locks (wal_checkpoint(TRUNCATE), journal_size_limit), and the first connection " +
		"to open the -shm truncates it to a few bytes while holding the DMS lock exclusively, which other " +
		"processes may have the file open without any lock yet. faultfs cannot see POSIX locks, so a " +
		"truncation's holders do not tell harm from routine; damage from a bad one shows in the data checks.",
	Check: checkSidecars,
}

func checkSidecars(in *Input) Result {
	if len(in.Trace) == 0 {
		return Result{Verdict: Inconclusive, Summary: "no trace"}
	}
	res := Result{}
	bad, walTrunc, shmTrunc, seen := 0, 0, 0, 0
	for _, r := range in.Trace {
		if r.Kind != trace.KindOp {
			continue
		}
		target := r.Path
		if r.Op == trace.OpRename {
			target = r.To
		}
		if !isSidecar(target) {
			continue
		}
		if r.Op != trace.OpUnlink && r.Op != trace.OpRename && r.Op != trace.OpTruncate {
			continue
		}
		seen++
		if len(r.Holders) == 0 {
			continue
		}
		text := fmt.Sprintf("%s by pid %d while pids %v held it open", describe(r), r.Pid, r.Holders)
		if r.Op == trace.OpTruncate {
			if strings.HasSuffix(target, "-wal") {
				walTrunc++
				res.Evidence = append(res.Evidence, traceEv(r, text+fmt.Sprintf(" (WAL truncation to %d bytes: not counted)", r.Off)))
			} else {
				shmTrunc++
				res.Evidence = append(res.Evidence, traceEv(r, text+fmt.Sprintf(" (-shm truncation to %d bytes, as the first opener holding the DMS lock does: not counted)", r.Off)))
			}
			continue
		}
		bad++
		res.Evidence = append(res.Evidence, traceEv(r, text))
	}
	if bad > 0 {
		res.Verdict = Fail
		res.Summary = fmt.Sprintf("%s unlinked or renamed over under another process's open handle", plural(bad, "sidecar"))
	} else {
		res.Verdict = Pass
		res.Summary = fmt.Sprintf("%s, none unlinked or renamed over under another holder", plural(seen, "sidecar unlink/rename/truncate"))
	}
	if walTrunc > 0 {
		res.Summary += fmt.Sprintf("; %d -wal truncations with other holders (legitimate under SQLite's locks)", walTrunc)
	}
	if shmTrunc > 0 {
		res.Summary += fmt.Sprintf("; %d -shm truncations with other holders (evidence only: faultfs cannot see the DMS lock)", shmTrunc)
	}
	return res
}
