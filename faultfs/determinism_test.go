package faultfs_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/internal/sqlitex"
)

// detPlan is a probabilistic plan: every decision is a seeded draw. Delays
// do not change what SQLite does; EIO and ENOSPC do, so the workload's own
// error sequence must repeat as well.
const detPlan = `delay op=write path=*-wal minlen=4096 p=0.3 delay=20us
eio   op=write path=*-wal minlen=4096 p=0.1
errno op=write path=*.db minlen=4096 p=0.2 errno=ENOSPC
delay op=read path=*.db p=0.25 delay=10us
`

// firedKey is a fired record without what legitimately differs between
// runs (seq, time, pid).
type firedKey struct {
	Rule    int
	Op      string
	Path    string
	Off     int64
	Len     int64
	Result  string
	N       int64
	Fault   string
	Holders int
}

func (k firedKey) String() string {
	return fmt.Sprintf("rule=%d %s %s off=%d len=%d -> %s n=%d (%s)", k.Rule, k.Op, k.Path, k.Off, k.Len, k.Result, k.N, k.Fault)
}

func keys(recs []trace.Record) []firedKey {
	out := make([]firedKey, len(recs))
	for i, r := range recs {
		out[i] = firedKey{r.Rule, string(r.Op), r.Path, r.Off, r.Len, r.Result, r.N, r.Fault, len(r.Holders)}
	}
	return out
}

// detRun mounts with seed, sets up a WAL database with no rules, loads
// detPlan and runs a fixed single-process workload that records each
// statement's result code. It returns the fired records and the codes.
func detRun(t *testing.T, driver string, seed int64) ([]firedKey, []int) {
	t.Helper()
	e := mountFS(t, "", seed)
	db := openDB(t, driver, e.path("det.db"), "journal_mode=WAL", "synchronous=NORMAL", "wal_autocheckpoint=0")
	mustExec(t, db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	e.load(detPlan)
	var codes []int
	for i := 0; i < 120; i++ {
		_, err := db.Exec("INSERT INTO t(v) VALUES (?)", strings.Repeat(strconv.Itoa(i%10), 1000))
		codes = append(codes, sqlitex.Code(err))
		if i%40 == 39 {
			_, err := db.Exec("PRAGMA wal_checkpoint(PASSIVE)")
			codes = append(codes, sqlitex.Code(err))
		}
		if i%30 == 29 {
			var n int
			err := db.QueryRow("SELECT count(*) FROM t WHERE v LIKE '3%'").Scan(&n)
			codes = append(codes, sqlitex.Code(err), n)
		}
	}
	fired := keys(e.fired())
	if err := db.Close(); err != nil {
		codes = append(codes, sqlitex.Code(err))
	}
	return fired, codes
}

// TestDeterminism: two runs with the same seed, plan and single-process
// workload fire the same faults at the same ops (rule, op, path, offset,
// length, outcome) and the workload sees the same result codes; a
// different seed fires a different set. SQLCHAOS_SEED overrides the seed;
// without -short two more seeds run.
func TestDeterminism(t *testing.T) {
	seed := int64(20260401)
	if s := os.Getenv("SQLCHAOS_SEED"); s != "" && s != "random" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("SQLCHAOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	seeds := []int64{seed}
	if !testing.Short() {
		seeds = append(seeds, seed+1000, seed+2000)
	}
	forEachDriver(t, func(t *testing.T, driver string) {
		for _, seed := range seeds {
			detSeed(t, driver, seed)
		}
	})
}

func detSeed(t *testing.T, driver string, seed int64) {
	t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
		a, codesA := detRun(t, driver, seed)
		b, codesB := detRun(t, driver, seed)
		c, _ := detRun(t, driver, seed+1)
		failed := 0
		for _, k := range a {
			if strings.HasPrefix(k.Result, "E") {
				failed++
			}
		}
		t.Logf("seed %d: %d faults fired (%d failing an op), seed %d: %d", seed, len(a), failed, seed+1, len(c))
		if len(a) < 20 || failed == 0 {
			t.Fatalf("seed %d: only %d faults fired (%d errors); the plan does not exercise the engine", seed, len(a), failed)
		}
		if i := firstDiff(a, b); i >= 0 {
			t.Fatalf("seed %d: runs differ at fired record %d of %d/%d:\n run 1: %s\n run 2: %s",
				seed, i, len(a), len(b), at(a, i), at(b, i))
		}
		if fmt.Sprint(codesA) != fmt.Sprint(codesB) {
			t.Fatalf("seed %d: the workload's result codes differ:\n run 1: %v\n run 2: %v", seed, codesA, codesB)
		}
		if firstDiff(a, c) < 0 {
			t.Fatalf("seeds %d and %d fired identical faults (%d records)", seed, seed+1, len(a))
		}
	})
}

func firstDiff(a, b []firedKey) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func at(ks []firedKey, i int) string {
	if i < len(ks) {
		return ks[i].String()
	}
	return "(none)"
}
