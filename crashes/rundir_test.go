package crashes

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
)

// writeRunDir writes a run directory in exactly the layout faultfs capture
// mode and the scenario runner leave: capture/snapshot/, capture/writes.bin,
// trace.jsonl (capture records for writes, fsyncs and truncates; op records
// for creates, unlinks and renames), histories/*.jsonl and meta.json. The
// ops' Seq fields are ignored (the trace numbers records); it returns the
// seq each op got.
func writeRunDir(t testing.TB, dir string, initial map[string][]byte, ops []Op, events []history.Event, switches map[string]string) []uint64 {
	t.Helper()
	capDir := filepath.Join(dir, trace.CaptureSubdir)
	for n, b := range initial {
		p := filepath.Join(capDir, trace.CaptureSnapshot, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(capDir, trace.CaptureSnapshot), 0o755); err != nil {
		t.Fatal(err)
	}
	wb, err := os.Create(filepath.Join(capDir, trace.CaptureWrites))
	if err != nil {
		t.Fatal(err)
	}
	tw, err := trace.Create(filepath.Join(dir, TraceFile))
	if err != nil {
		t.Fatal(err)
	}
	must := func(seq uint64, err error) uint64 {
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	must(tw.Write(trace.Record{T: 1, Kind: trace.KindMount, Path: "/mnt", To: "/back"}))
	must(tw.Write(trace.Record{T: 1, Kind: trace.KindCapture, Op: trace.CapOpSnapshot, Path: capDir, N: int64(len(initial))}))
	var off int64
	var seqs []uint64
	for _, o := range ops {
		var r trace.Record
		switch o.Kind {
		case OpWrite:
			at := off
			if _, err := wb.Write(o.Data); err != nil {
				t.Fatal(err)
			}
			off += int64(len(o.Data))
			// The op record a real trace has next to it (ignored by the explorer).
			must(tw.Write(trace.Record{T: o.T, Kind: trace.KindOp, Op: "write", Path: o.Path, Off: o.Off, Len: int64(len(o.Data)), Result: "ok", N: int64(len(o.Data))}))
			r = trace.Record{T: o.T, Kind: trace.KindCapture, Op: trace.CapOpWrite, Path: o.Path, Off: o.Off, Len: int64(len(o.Data)), Cap: &at}
		case OpSync:
			r = trace.Record{T: o.T, Kind: trace.KindCapture, Op: trace.CapOpFsync, Path: o.Path}
		case OpTruncate:
			r = trace.Record{T: o.T, Kind: trace.KindCapture, Op: trace.CapOpTruncate, Path: o.Path, Off: o.Off}
		case OpCreate:
			r = trace.Record{T: o.T, Kind: trace.KindOp, Op: "create", Path: o.Path, Result: "ok"}
		case OpUnlink:
			r = trace.Record{T: o.T, Kind: trace.KindOp, Op: "unlink", Path: o.Path, Result: "ok"}
		case OpRename:
			r = trace.Record{T: o.T, Kind: trace.KindOp, Op: "rename", Path: o.Path, To: o.To, Result: "ok"}
		}
		seqs = append(seqs, must(tw.Write(r)))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := wb.Close(); err != nil {
		t.Fatal(err)
	}
	hd := filepath.Join(dir, HistoriesDir)
	if err := os.MkdirAll(hd, 0o755); err != nil {
		t.Fatal(err)
	}
	var lines []byte
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(append(lines, b...), '\n')
	}
	if err := os.WriteFile(filepath.Join(hd, "test.jsonl"), lines, 0o644); err != nil {
		t.Fatal(err)
	}
	if switches != nil {
		b, _ := json.Marshal(map[string]any{"scenario": "test", "switches": switches, "ledger": "chaos_ledger"})
		if err := os.WriteFile(filepath.Join(dir, MetaFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return seqs
}

// TestLoadRecordingRoundTrip writes a run directory in the capture format
// and reads it back.
func TestLoadRecordingRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ops := []Op{
		{T: 10, Kind: OpCreate, Path: "kanban.db-journal"},
		{T: 11, Kind: OpWrite, Path: "kanban.db-journal", Off: 0, Data: []byte("journal header")},
		{T: 12, Kind: OpSync, Path: "kanban.db-journal"},
		{T: 13, Kind: OpWrite, Path: "kanban.db", Off: 4096, Data: []byte("page two")},
		{T: 14, Kind: OpTruncate, Path: "kanban.db", Off: 8192},
		{T: 15, Kind: OpUnlink, Path: "kanban.db-journal"},
		{T: 16, Kind: OpRename, Path: "a", To: "b"},
	}
	seqs := writeRunDir(t, dir, map[string][]byte{"kanban.db": []byte("SQLite format 3\x00...")}, ops, nil, nil)
	rec, err := LoadRecording(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Ops) != len(ops) || string(rec.Initial["kanban.db"]) != "SQLite format 3\x00..." {
		t.Fatalf("read %d ops, initial %q", len(rec.Ops), rec.Initial["kanban.db"])
	}
	for i, o := range rec.Ops {
		w := ops[i]
		if o.Seq != seqs[i] || o.T != w.T || o.Kind != w.Kind || o.Path != w.Path || o.To != w.To || o.Off != w.Off || string(o.Data) != string(w.Data) {
			t.Errorf("op %d = %+v, want %+v (seq %d)", i, o, w, seqs[i])
		}
	}
	if db, err := guessDB(rec); err != nil || db != "kanban.db" {
		t.Fatalf("guessDB = %q, %v", db, err)
	}
	// A trace without capture records is refused with a hint.
	if err := os.WriteFile(filepath.Join(dir, TraceFile), []byte(`{"seq":1,"t":1,"kind":"mount"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRecording(dir, ""); err == nil {
		t.Fatal("a trace without capture records loaded")
	}
}

// TestLoadRecordingStopsAtPowerCut: faultfs's power cut (and a
// drop=unsynced fsync error) resets backing files outside any op, which
// capture cannot see; the recording ends at its first record, with a note.
func TestLoadRecordingStopsAtPowerCut(t *testing.T) {
	for _, kind := range []string{"powercut", "unsynced", "recover"} {
		dir := t.TempDir()
		ops := []Op{
			{T: 10, Kind: OpWrite, Path: "kanban.db", Off: 0, Data: []byte("SQLite format 3\x00")},
			{T: 11, Kind: OpSync, Path: "kanban.db"},
		}
		writeRunDir(t, dir, nil, ops, nil, nil)
		f, err := os.OpenFile(filepath.Join(dir, TraceFile), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		at := int64(0)
		fmt.Fprintf(f, `{"seq":90,"t":12,"kind":%q}`+"\n", kind)
		fmt.Fprintf(f, `{"seq":91,"t":13,"kind":"capture","op":"write","path":"kanban.db","off":0,"len":4,"cap":%d}`+"\n", at)
		f.Close()
		rec, err := LoadRecording(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Ops) != 2 || len(rec.Notes) != 1 || !strings.Contains(rec.Notes[0], "trace seq 90") {
			t.Fatalf("%s: %d ops, notes %q", kind, len(rec.Ops), rec.Notes)
		}
	}
}
