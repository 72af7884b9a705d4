package trace

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"reflect"
	"testing"
	"time"
)

// TestAppendJSONCapField checks the capture fields (Kind "capture", Cap)
// against encoding/json and that an old trace line without them still
// reads (Cap nil).
func TestAppendJSONCapField(t *testing.T) {
	seed := time.Now().UnixNano()
	r := rand.New(rand.NewSource(seed))
	for i := 0; i < 5000; i++ {
		rec := randRecord(r)
		rec.Kind = KindCapture
		switch r.Intn(3) {
		case 1:
			zero := int64(0)
			rec.Cap = &zero
		case 2:
			v := r.Int63n(1 << 40)
			rec.Cap = &v
		}
		want, err := json.Marshal(&rec)
		if err != nil {
			t.Fatal(err)
		}
		got := AppendJSON(nil, &rec)
		if !bytes.Equal(got, want) {
			t.Fatalf("seed=%d record %d:\n got %s\nwant %s", seed, i, got, want)
		}
		var back Record
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.Cap, rec.Cap) {
			t.Fatalf("seed=%d: cap %v read back as %v", seed, rec.Cap, back.Cap)
		}
	}
	var old Record
	if err := json.Unmarshal([]byte(`{"seq":3,"t":9,"kind":"op","op":"write","path":"kanban.db","off":4096,"len":4096,"result":"ok","n":4096}`), &old); err != nil {
		t.Fatal(err)
	}
	if old.Cap != nil || old.N != 4096 {
		t.Fatalf("old line read as %+v", old)
	}
}
