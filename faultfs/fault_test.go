package faultfs_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

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
func find(recs []trace.Record, op trace.OpName, base string) []trace.Record {
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
}

// one returns the single record in recs, failing otherwise.
func one(t *testing.T, recs []trace.Record, what string) trace.Record {
	t.Helper()
	if len(recs) != 1 {
		t.Fatalf("%s: want exactly one record, got %+v", what, recs)
	}
	return recs[0]
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}

func TestTornWrite(t *testing.T) {
	m := mountWithTrace(t, "torn op=write path=*.db minlen=4096 keep=100 then=ok count=1\n"+
		"torn op=write path=*.db-wal keep=10 then=ENOSPC count=1\n")
	page := pattern(4096)
	f, err := os.Create(filepath.Join(m.Dir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := f.WriteAt(page[:50], 8192); err != nil || n != 50 {
		t.Fatalf("short write (below minlen) = %d, %v", n, err)
	}
	if n, err := f.WriteAt(page, 0); err != nil || n != 4096 {
		t.Fatalf("torn then=ok write reported %d, %v; want 4096, nil", n, err)
	}
	got, _ := os.ReadFile(filepath.Join(m.Backing(), "t.db"))
	if len(got) != 8192+50 || !bytes.Equal(got[:100], page[:100]) || !bytes.Equal(got[100:4096], make([]byte, 3996)) {
		t.Fatalf("backing after torn write: len %d, first 100 ok=%v, rest zero=%v", len(got),
			bytes.Equal(got[:100], page[:100]), bytes.Equal(got[100:4096], make([]byte, 3996)))
	}
	w, err := os.Create(filepath.Join(m.Dir(), "t.db-wal"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteAt(page[:64], 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("torn then=ENOSPC: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(m.Backing(), "t.db-wal")); !bytes.Equal(got, page[:10]) {
		t.Fatalf("wal backing after torn then=ENOSPC = %v, want first 10 bytes", got)
	}
	recs := readTrace(t, m)
	var fired []trace.Record
	for _, r := range find(recs, "write", "t.db") {
		if r.Rule != 0 {
			fired = append(fired, r)
		}
	}
	r := one(t, fired, "torn db write")
	if r.Rule != 1 || r.N != 100 || r.Len != 4096 || r.Result != "ok" || r.Fault != "torn keep=100 then=ok" {
		t.Errorf("torn record: %+v", r)
	}
	// The trace follows the main db file's length: 0 at create, 8242 after
	// the small write past the end, unchanged by the torn page at 0. The
	// -wal is not sized.
	if c := one(t, find(recs, "create", "t.db"), "create t.db"); c.Size == nil || *c.Size != 0 {
		t.Errorf("create t.db size = %v, want 0", c.Size)
	}
	if r.Size == nil || *r.Size != 8192+50 {
		t.Errorf("torn db write size = %v, want %d", r.Size, 8192+50)
	}
	for _, w := range find(recs, "write", "t.db-wal") {
		if w.Size != nil {
			t.Errorf("-wal write carries a size: %+v", w)
		}
	}
	r = one(t, find(recs, "write", "t.db-wal"), "torn wal write")
	if r.Rule != 2 || r.N != 10 || r.Result != "ENOSPC" {
		t.Errorf("torn wal record: %+v", r)
	}
}

func TestShortRead(t *testing.T) {
	m := mountWithTrace(t, "short op=read path=*.db off=0..100 keep=10 count=1\n")
	page := pattern(8192)
	os.WriteFile(filepath.Join(m.Backing(), "s.db"), page, 0o644)
	f, err := os.Open(filepath.Join(m.Dir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, err := syscall.Pread(int(f.Fd()), buf, 4096) // outside off=0..100: untouched
	if err != nil || n != 4096 || !bytes.Equal(buf, page[4096:]) {
		t.Fatalf("read outside the range = %d, %v", n, err)
	}
	n, err = syscall.Pread(int(f.Fd()), buf, 0)
	if err != nil || n != 10 || !bytes.Equal(buf[:10], page[:10]) {
		t.Fatalf("short read = %d, %v; want the first 10 bytes", n, err)
	}
	n, err = syscall.Pread(int(f.Fd()), buf, 0)
	if err != nil || n != 4096 {
		t.Fatalf("read after count=1 = %d, %v", n, err)
	}
	r := one(t, filterRule(find(readTrace(t, m), "read", "s.db")), "short read")
	if r.Rule != 1 || r.N != 10 || r.Len != 4096 || r.Fault != "short keep=10" {
		t.Errorf("short read record: %+v", r)
	}
}

// filterRule keeps the records a rule fired on.
func filterRule(recs []trace.Record) []trace.Record {
	var out []trace.Record
	for _, r := range recs {
		if r.Rule != 0 {
			out = append(out, r)
		}
	}
	return out
}

func TestLostWrite(t *testing.T) {
	m := mountWithTrace(t, "lost op=write path=*.db nth=2 count=1\n")
	f, err := os.Create(filepath.Join(m.Dir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, s := range []string{"aaaa", "bbbb", "cccc"} {
		if n, err := f.WriteAt([]byte(s), int64(4*i)); err != nil || n != 4 {
			t.Fatalf("write %d = %d, %v", i, n, err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(m.Backing(), "l.db")); string(got) != "aaaa\x00\x00\x00\x00cccc" {
		t.Fatalf("backing = %q; the 2nd write should be lost", got)
	}
	r := one(t, filterRule(find(readTrace(t, m), "write", "l.db")), "lost write")
	if r.Off != 4 || r.N != 0 || r.Result != "ok" || r.Fault != "lost" {
		t.Errorf("lost record: %+v", r)
	}
}

func TestFlip(t *testing.T) {
	m := mountWithTrace(t, "flip op=write path=w.db bit=11 count=1\nflip op=read path=r.db count=1\n")
	data := pattern(64)
	if err := os.WriteFile(filepath.Join(m.Dir(), "w.db"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(data)
	want[1] ^= 1 << 3
	if got, _ := os.ReadFile(filepath.Join(m.Backing(), "w.db")); !bytes.Equal(got, want) {
		t.Fatalf("write flip bit 11: backing byte 1 = %#x, want %#x", got[1], want[1])
	}
	os.WriteFile(filepath.Join(m.Backing(), "r.db"), data, 0o644)
	got, err := os.ReadFile(filepath.Join(m.Dir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	diff := 0
	for i := range data {
		diff += bitsSet(got[i] ^ data[i])
	}
	if diff != 1 {
		t.Fatalf("read flip: %d bits differ, want 1", diff)
	}
	if back, _ := os.ReadFile(filepath.Join(m.Backing(), "r.db")); !bytes.Equal(back, data) {
		t.Fatal("read flip changed the backing file")
	}
	recs := readTrace(t, m)
	if r := one(t, filterRule(find(recs, "write", "w.db")), "write flip"); r.Fault != "flip bit=11" || r.N != 64 {
		t.Errorf("write flip record: %+v", r)
	}
	if r := one(t, filterRule(find(recs, "read", "r.db")), "read flip"); r.Rule != 2 || r.N != 64 {
		t.Errorf("read flip record: %+v", r)
	}
}

func bitsSet(b byte) int {
	n := 0
	for ; b != 0; b &= b - 1 {
		n++
	}
	return n
}

func TestDelay(t *testing.T) {
	m := mountWithTrace(t, "delay op=fsync path=*.db delay=300ms count=1\n")
	f, err := os.Create(filepath.Join(m.Dir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t0 := time.Now()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Fatalf("delayed fsync took %v, want >= 300ms", d)
	}
	t0 = time.Now()
	f.Sync()
	if d := time.Since(t0); d > 250*time.Millisecond {
		t.Fatalf("second fsync took %v; count=1 should have ended the delay", d)
	}
	if r := one(t, filterRule(find(readTrace(t, m), "fsync", "d.db")), "delay"); r.Fault != "delay 300ms" || r.Result != "ok" {
		t.Errorf("delay record: %+v", r)
	}
}

func TestFailingOpenCreate(t *testing.T) {
	m := mountWithTrace(t, "errno op=open path=*.db errno=EACCES count=1\nerrno op=create path=*-journal errno=EROFS count=1\n")
	p := filepath.Join(m.Dir(), "o.db")
	os.WriteFile(filepath.Join(m.Backing(), "o.db"), []byte("x"), 0o644)
	if _, err := os.Open(p); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("first open: %v, want EACCES", err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatalf("second open: %v", err)
	}
	f.Close()
	j := filepath.Join(m.Dir(), "o.db-journal")
	if _, err := os.Create(j); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("first create: %v, want EROFS", err)
	}
	if _, err := os.Stat(filepath.Join(m.Backing(), "o.db-journal")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed create left a file: %v", err)
	}
	g, err := os.Create(j)
	if err != nil {
		t.Fatalf("second create: %v", err)
	}
	g.Close()
	recs := readTrace(t, m)
	if r := filterRule(find(recs, "open", "o.db")); len(r) != 1 || r[0].Result != "EACCES" {
		t.Errorf("open records: %+v", r)
	}
	if r := filterRule(find(recs, "create", "o.db-journal")); len(r) != 1 || r[0].Result != "EROFS" || r[0].Rule != 2 {
		t.Errorf("create records: %+v", r)
	}
}
