package faultfs_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
)

// mountWithTrace mounts with a trace file and the given plan.
func mountWithTrace(t *testing.T, planText string) *faultfs.Mount {
	t.Helper()
	return fusetest.Mount(t, faultfs.Config{Plan: planText, Seed: 1, Trace: filepath.Join(t.TempDir(), "trace.jsonl")})
}

// readTrace flushes the server's trace and reads it.
func readTrace(t *testing.T, m *faultfs.Mount) []trace.Record {
	t.Helper()
	if err := m.Client().Flush(); err != nil {
		t.Fatal(err)
	}
	recs, err := trace.ReadFile(m.TracePath())
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// find returns the trace records of kind op matching op and path base name.
func find(recs []trace.Record, op, base string) []trace.Record {
	var out []trace.Record
	for _, r := range recs {
		if r.Kind == trace.KindOp && r.Op == op && filepath.Base(r.Path) == base {
			out = append(out, r)
		}
	}
	return out
}

func TestEIOOnWrite(t *testing.T) {
	m := mountWithTrace(t, "eio op=write path=*-wal nth=1 count=1\n")
	f, err := os.Create(filepath.Join(m.Dir(), "x.db-wal"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = f.Write([]byte("hello"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("first write: got %v, want EIO", err)
	}
	if _, err := f.WriteAt([]byte("hello"), 0); err != nil {
		t.Fatalf("second write: %v (count=1 should have exhausted the rule)", err)
	}
	got, err := os.ReadFile(filepath.Join(m.Backing(), "x.db-wal"))
	if err != nil || string(got) != "hello" {
		t.Fatalf("backing file = %q, %v; want hello", got, err)
	}
	recs := readTrace(t, m)
	if len(recs) < 2 || recs[0].Kind != trace.KindMount || recs[0].Seed != 1 || recs[1].Kind != trace.KindPlan {
		t.Fatalf("trace must start with mount(seed=1) and plan records: %+v", recs[:min(2, len(recs))])
	}
	if recs[1].Plan != "eio op=write path=*-wal nth=1 count=1\n" {
		t.Errorf("plan record = %q", recs[1].Plan)
	}
	w := find(recs, "write", "x.db-wal")
	if len(w) != 2 {
		t.Fatalf("want 2 write records, got %+v", w)
	}
	if w[0].Rule != 1 || w[0].Result != "EIO" || w[0].N != 0 || w[0].Len != 5 || w[0].Pid != uint32(os.Getpid()) {
		t.Errorf("faulted write record: %+v", w[0])
	}
	if w[1].Rule != 0 || w[1].Result != "ok" || w[1].N != 5 {
		t.Errorf("second write record: %+v", w[1])
	}
	cs, err := m.Client().Counters()
	if err != nil || len(cs) != 1 || cs[0].Fired != 1 {
		t.Fatalf("counters = %+v, %v", cs, err)
	}
	_ = bytes.Equal
}
