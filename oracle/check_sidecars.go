package oracle

import (
	"fmt"
	"strings"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
)

func init() {
	register(Checker{
		Name: "sidecars",
		Doc: "No -wal or -shm file is unlinked or renamed over, and no -shm truncated, while another process " +
			"holds it open (trace Holders). -wal truncations with holders are listed but do not fail: " +
			"SQLite's wal_checkpoint(TRUNCATE) and journal_size_limit do that legitimately under its locks.",
		Check: checkSidecars,
	})
}

func checkSidecars(in *Input) Result {
	if len(in.Trace) == 0 {
		return Result{Verdict: Inconclusive, Summary: "no trace"}
	}
	res := Result{}
	bad, walTrunc, seen := 0, 0, 0
	for _, r := range in.Trace {
		if r.Kind != trace.KindOp {
			continue
		}
		target := r.Path
		if r.Op == "rename" {
			target = r.To
		}
		if !isSidecar(target) {
			continue
		}
		if r.Op != "unlink" && r.Op != "rename" && r.Op != "truncate" {
			continue
		}
		seen++
		if len(r.Holders) == 0 {
			continue
		}
		text := fmt.Sprintf("%s by pid %d while pids %v held it open", describe(r), r.Pid, r.Holders)
		if r.Op != "unlink" && r.Op != "rename" && strings.HasSuffix(target, "-wal") {
			walTrunc++
			res.Evidence = append(res.Evidence, traceEv(r, text+" (WAL truncation: not counted)"))
			continue
		}
		bad++
		res.Evidence = append(res.Evidence, traceEv(r, text))
	}
	if bad > 0 {
		res.Verdict = Fail
		res.Summary = fmt.Sprintf("%s unlinked/replaced/truncated under another process's open handle", plural(bad, "sidecar"))
	} else {
		res.Verdict = Pass
		res.Summary = fmt.Sprintf("%s, none under another holder", plural(seen, "sidecar unlink/truncate"))
	}
	if walTrunc > 0 {
		res.Summary += fmt.Sprintf("; %d -wal truncations with other holders (legitimate under SQLite's locks)", walTrunc)
	}
	return res
}
