package history

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestDataKeepsItsShape decodes one line per kind of data the writers
// produce and checks the typed fields and that encoding gives back the
// same JSON object.
func TestDataKeepsItsShape(t *testing.T) {
	cases := []struct {
		line  string
		check func(d Data) bool
	}{
		{`{"transitions":[{"task":"t1","from":"","to":"ready"}],"inserted":[{"table":"tasks","key":"t1"},{"table":"task_events","key":"7","task":"t1"}],"deleted":[{"table":"t","key":"2"}],"updated":[{"table":"tasks","key":"t1"}]}`,
			func(d Data) bool {
				return d.Transitions[0] == Transition{"t1", "", "ready"} && d.Inserted[1].Task == "t1" && d.Deleted[0].Key == "2" && d.Updated[0].Table == "tasks"
			}},
		{`{"role":"dispatcher","profile":"legacy","driver":"modernc","seed":0,"ppid":12}`,
			func(d Data) bool { return d.Role == "dispatcher" && d.Seed != nil && *d.Seed == 0 && d.Ppid == 12 }},
		{`{"handoff":true}`, func(d Data) bool { return d.Handoff }},
		{`{"pid":501,"proc":"gateway-1-w1","launcher":true}`, func(d Data) bool { return d.Pid == 501 && d.Launcher }},
		{`{"defunct":0,"pids":[601,602]}`, func(d Data) bool { return d.Defunct != nil && *d.Defunct == 0 && len(d.Pids) == 2 }},
		{`{"board":"kanban.db","dispatched":true,"skipped":true,"latched":true,"unconfirmed":true,"spawned":["t1"],"crashed":["t2"],"reclaimed":3}`,
			func(d Data) bool {
				return d.Skipped && d.Spawned[0] == "t1" && d.Crashed[0] == "t2" && d.Reclaimed == 3
			}},
		{`{"pid":9,"exit":0,"stdout":"0"}`, func(d Data) bool { return d.Exit != nil && *d.Exit == 0 && d.Stdout == "0" }},
		{`{"path":"/usr/bin/sqlite3","version":"3.40.1","shares_shm_check":false}`,
			func(d Data) bool { return d.SharesShmCheck != nil && !*d.SharesShmCheck }},
		{`{"db_locks":-1}`, func(d Data) bool { return d.DBLocks != nil && *d.DBLocks == -1 }},
		{`{"step":"r0 create 3"}`, func(d Data) bool { return d.Step == "r0 create 3" }},
	}
	for _, c := range cases {
		var d Data
		if err := json.Unmarshal([]byte(c.line), &d); err != nil {
			t.Fatalf("%s: %v", c.line, err)
		}
		if !c.check(d) {
			t.Errorf("%s decoded as %+v", c.line, d)
		}
		back, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var want, got map[string]any
		json.Unmarshal([]byte(c.line), &want)
		json.Unmarshal(back, &got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s encodes back as %s", c.line, back)
		}
	}
}

// TestReadRejectsBadData: an unknown data key or a value of another shape
// is an error naming the line, even on a last line without its newline.
func TestReadRejectsBadData(t *testing.T) {
	ok := `{"t":1,"type":"spawn","data":{"pid":5}}` + "\n"
	for _, bad := range []string{
		ok + `{"t":2,"type":"commit","data":{"pad":"x"}}` + "\n",
		ok + `{"t":2,"type":"spawn","data":{"pid":"5"}}` + "\n",
		ok + `{"t":2,"type":"commit","data":{"inserted":{"table":"t"}}}` + "\n",
		ok + `{"t":2,"type":"reap","data":[1]}` + "\n",
		ok + `{"t":2,"type":"reap","data":{"defunct":1.5}}`,
	} {
		path := filepath.Join(t.TempDir(), "h.jsonl")
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		evs, err := ReadFile(path)
		if err == nil || !strings.Contains(err.Error(), "h.jsonl:2:") {
			t.Errorf("%q: got %d events, err %v; want an error at line 2", bad, len(evs), err)
		}
	}
}

func TestFactsOfAnEventWithoutData(t *testing.T) {
	if d := (Event{}).Facts(); !reflect.DeepEqual(d, Data{}) {
		t.Fatalf("Facts of no data = %+v", d)
	}
	e := Event{Data: &Data{Pid: 7}}
	if e.Facts().Pid != 7 {
		t.Fatal("Facts lost the pid")
	}
}
