package faultfs_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
)

// TestControl drives every control command against a live mount and checks
// its effect on real writes and on the trace.
func TestControl(t *testing.T) {
	m := mountWithTrace(t, "")
	c := m.Client()
	f, err := os.Create(filepath.Join(m.Dir(), "c.db-wal"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write := func() error { _, err := f.WriteAt([]byte("x"), 0); return err }

	if err := write(); err != nil {
		t.Fatalf("no plan: %v", err)
	}
	// load
	if err := c.LoadPlan("eio op=write path=*-wal\nerrno op=fsync errno=ENOSPC\n"); err != nil {
		t.Fatal(err)
	}
	if err := write(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("after load: %v, want EIO", err)
	}
	if text, err := c.Plan(); err != nil || text != "eio op=write path=*-wal\nerrno op=fsync errno=ENOSPC\n" {
		t.Fatalf("Plan() = %q, %v", text, err)
	}
	// a bad plan is refused with its position and leaves the plan running
	err = c.LoadPlan("eio op=write\nbogus op=read\n")
	if err == nil || !strings.Contains(err.Error(), "2:1") {
		t.Fatalf("bad plan: %v, want an error at 2:1", err)
	}
	if err := write(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("after refused load: %v, want EIO still", err)
	}
	// a template is refused too: its placeholders have no values here
	err = c.LoadPlan("lost pid={pid:writer-1}\n")
	if err == nil || !strings.Contains(err.Error(), "{pid:writer-1} has no value") {
		t.Fatalf("template: %v, want a refusal naming the placeholder", err)
	}
	if text, err := c.Plan(); err != nil || text != "eio op=write path=*-wal\nerrno op=fsync errno=ENOSPC\n" {
		t.Fatalf("after refused template: Plan() = %q, %v", text, err)
	}
	// rule off / on
	if err := c.SetRule(1, false); err != nil {
		t.Fatal(err)
	}
	if err := write(); err != nil {
		t.Fatalf("rule 1 off: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("rule 2 still on: fsync %v, want ENOSPC", err)
	}
	if err := c.SetRule(1, true); err != nil {
		t.Fatal(err)
	}
	if err := write(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("rule 1 back on: %v", err)
	}
	if err := c.SetRule(9, false); err == nil {
		t.Fatal("SetRule(9) on a 2-rule plan succeeded")
	}
	// counters
	cs, err := c.Counters()
	if err != nil || len(cs) != 2 {
		t.Fatalf("counters %+v %v", cs, err)
	}
	if cs[0].Fired != 3 || cs[1].Fired != 1 || cs[0].Text != "eio op=write path=*-wal" {
		t.Fatalf("counters = %+v; want rule 1 fired 3, rule 2 fired 1", cs)
	}
	// enable / disable all
	if err := c.SetEnabled(false); err != nil {
		t.Fatal(err)
	}
	if err := write(); err != nil {
		t.Fatalf("disabled: %v", err)
	}
	if err := c.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	if err := write(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("re-enabled: %v", err)
	}
	// mark: written and flushed at once (read the file without Flush)
	if err := c.Mark("phase-2"); err != nil {
		t.Fatal(err)
	}
	recs, err := trace.ReadFile(m.TracePath())
	if err != nil {
		t.Fatal(err)
	}
	if last := recs[len(recs)-1]; last.Kind != trace.KindMark || last.Mark != "phase-2" {
		t.Fatalf("last record after Mark = %+v", last)
	}
	// clear
	if err := c.Clear(); err != nil {
		t.Fatal(err)
	}
	if err := write(); err != nil {
		t.Fatalf("after clear: %v", err)
	}
	if cs, _ := c.Counters(); len(cs) != 0 {
		t.Fatalf("counters after clear: %+v", cs)
	}
	// flush: records of ops before it are in the file
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	recs, _ = trace.ReadFile(m.TracePath())
	var plans []string
	for _, r := range recs {
		if r.Kind == trace.KindPlan {
			plans = append(plans, r.Plan)
		}
	}
	if len(plans) != 3 || plans[0] != "" || plans[2] != "" || !strings.HasPrefix(plans[1], "eio op=write") {
		t.Fatalf("plan records = %q; want start (empty), load, clear", plans)
	}
	if last := recs[len(recs)-1]; last.Op != "write" || last.Result != "ok" {
		t.Fatalf("last record after Flush = %+v, want the ok write", last)
	}
	// stop: the server unmounts and exits 0 (the file is closed first)
	f.Close()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	<-m.Exited()
	if err := m.Stop(); err != nil {
		t.Fatalf("Stop after control stop: %v", err)
	}
	if mountedIn(t, m.Dir()) {
		t.Fatal("still mounted after control stop")
	}
}

// mountedIn reports whether /proc/mounts lists dir.
func mountedIn(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[1] == dir {
			return true
		}
	}
	return false
}
