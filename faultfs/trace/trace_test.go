package trace

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func randString(r *rand.Rand) string {
	alphabet := []string{"a", "Z", "/", "-wal", "\"", "\\", "\n", "\t", "\x00", "\x1f", "<", ">", "&", "é", "\u2028", "\u2029", "\xff", "\b", "\f", "💥", " "}
	n := r.Intn(6)
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		b.WriteString(alphabet[r.Intn(len(alphabet))])
	}
	return b.String()
}

func randRecord(r *rand.Rand) Record {
	rec := Record{
		Seq: r.Uint64() >> uint(r.Intn(64)), T: r.Int63() - r.Int63(), Kind: randString(r),
		Pid: uint32(r.Intn(3) * r.Intn(1<<20)), Op: OpName(randString(r)), Path: randString(r), To: randString(r),
		Off: int64(r.Intn(3)-1) * r.Int63n(1<<40), Len: int64(r.Intn(2)) * r.Int63n(1<<20),
		Result: randString(r), N: int64(r.Intn(2)) * r.Int63n(5000), Rule: r.Intn(3) - 1,
		Fault: randString(r), OldMode: randString(r), NewMode: randString(r), Mark: randString(r),
		Plan: randString(r), Seed: r.Int63() - r.Int63(),
	}
	switch r.Intn(3) {
	case 1:
		rec.Holders = []uint32{}
	case 2:
		rec.Holders = []uint32{uint32(r.Intn(100000)), 7}
	}
	switch r.Intn(3) {
	case 1:
		zero := int64(0)
		rec.Size = &zero
	case 2:
		size := r.Int63n(1 << 40)
		rec.Size = &size
	}
	return rec
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	seed := time.Now().UnixNano()
	r := rand.New(rand.NewSource(seed))
	for i := 0; i < 20000; i++ {
		rec := randRecord(r)
		want, err := json.Marshal(&rec)
		if err != nil {
			t.Fatal(err)
		}
		got := AppendJSON(nil, &rec)
		if !bytes.Equal(got, want) {
			t.Fatalf("seed=%d record %d:\n got %s\nwant %s", seed, i, got, want)
		}
	}
}

func TestWriterReaderRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace.jsonl")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	in := []Record{
		{Kind: KindMount, Seed: 42, Path: "/m"},
		{Kind: KindOp, Pid: 12, Op: "write", Path: "a.db-wal", Off: 32, Len: 4096, Result: "EIO", Rule: 1, Fault: "errno EIO"},
		{Kind: KindOp, Op: "unlink", Path: "a.db-wal", Result: "ok", Holders: []uint32{5, 6}},
		{Kind: KindHeader, Path: "a.db", OldMode: "2/2", NewMode: "1/1"},
		{Kind: KindPlan, Plan: "eio op=write\n"},
	}
	for i, rec := range in {
		seq, err := w.Write(rec)
		if err != nil || seq != uint64(i+1) {
			t.Fatalf("Write %d = %d, %v", i, seq, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	out, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("read %d records, want %d", len(out), len(in))
	}
	var last int64
	for i := range out {
		if out[i].Seq != uint64(i+1) || out[i].T < last || out[i].T == 0 {
			t.Errorf("record %d: seq %d t %d (prev t %d)", i, out[i].Seq, out[i].T, last)
		}
		last = out[i].T
		want := in[i]
		want.Seq, want.T = out[i].Seq, out[i].T
		if !reflect.DeepEqual(out[i], want) {
			t.Errorf("record %d: got %+v want %+v", i, out[i], want)
		}
	}
}

func TestWriterFlushesOnTimer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace.jsonl")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(Record{Kind: KindMark, Mark: "x"})
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		recs, err := ReadFile(path)
		if err == nil && len(recs) == 1 && recs[0].Mark == "x" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("record not flushed within 2s without Flush/Close")
}

func TestReaderTruncatedAndBadLines(t *testing.T) {
	dir := t.TempDir()
	good := `{"seq":1,"t":5,"kind":"mark","mark":"a"}` + "\n"
	p := filepath.Join(dir, "cut.jsonl")
	os.WriteFile(p, []byte(good+`{"seq":2,"t":6,"ki`), 0o644)
	recs, err := ReadFile(p)
	if !errors.Is(err, ErrTruncated) || len(recs) != 1 || recs[0].Mark != "a" {
		t.Fatalf("truncated: %v %+v", err, recs)
	}
	p2 := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(p2, []byte(good+"not json\n"+good), 0o644)
	recs, err = ReadFile(p2)
	if err == nil || errors.Is(err, ErrTruncated) || len(recs) != 1 {
		t.Fatalf("bad line: %v %+v", err, recs)
	}
	if want := "line 2"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Fatalf("error %q does not name %q", err, want)
	}
	p3 := filepath.Join(dir, "noeol.jsonl")
	os.WriteFile(p3, []byte(good+`{"seq":2,"t":6,"kind":"mark"}`), 0o644)
	recs, err = ReadFile(p3)
	if err != nil || len(recs) != 2 {
		t.Fatalf("complete final line without newline: %v %+v", err, recs)
	}
}
