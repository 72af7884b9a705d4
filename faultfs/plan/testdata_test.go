package plan

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// plansDir holds the example plans shipped with sqlchaos.
const plansDir = "../../testdata/plans"

// TestExamplePlans parses every example plan, checks that it starts with a
// comment header and that its canonical form round-trips.
func TestExamplePlans(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(plansDir, "*.plan"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("found %d plans in %s, want at least 6", len(files), plansDir)
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			p, err := ParseFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Rules) == 0 {
				t.Fatal("no rules")
			}
			src, _ := os.ReadFile(name)
			if !strings.HasPrefix(string(src), "# "+strings.TrimSuffix(filepath.Base(name), ".plan")+": ") {
				t.Errorf("the header comment should start with %q", "# "+strings.TrimSuffix(filepath.Base(name), ".plan")+": ")
			}
			q, err := Parse(p.String())
			if err != nil || !reflect.DeepEqual(p, q) {
				t.Fatalf("canonical form does not round-trip: %v\n%s", err, p)
			}
		})
	}
}

// TestExamplePlansBehave checks that some example plans do what their
// header says.
func TestExamplePlansBehave(t *testing.T) {
	load := func(name string) *Engine {
		p, err := ParseFile(filepath.Join(plansDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return NewEngine(p, 1)
	}
	fireCount := func(e *Engine, ev Call, n int) (fired int, last Decision) {
		for i := 0; i < n; i++ {
			if d, ok := e.Decide(ev); ok {
				fired++
				last = d
			}
		}
		return fired, last
	}

	e := load("eio-wal-once.plan")
	if n, _ := fireCount(e, Call{Op: OpWrite, Path: "test.db", Len: 4096}, 5); n != 0 {
		t.Errorf("eio-wal-once: fired %d times on the database", n)
	}
	if n, d := fireCount(e, Call{Op: OpWrite, Path: "test.db-wal", Len: 32}, 5); n != 1 || d.Desc != "eio" {
		t.Errorf("eio-wal-once: fired %d times on the WAL (%+v)", n, d)
	}

	e = load("torn-db-pages.plan")
	if n, _ := fireCount(e, Call{Op: OpWrite, Path: "test.db", Len: 100}, 5); n != 0 {
		t.Errorf("torn-db-pages: fired %d times on short writes", n)
	}
	if n, d := fireCount(e, Call{Op: OpWrite, Path: "test.db", Off: 8192, Len: 4096}, 10); n != 3 || d.Desc != "torn keep=512 then=ok" {
		t.Errorf("torn-db-pages: fired %d times on page writes (%+v)", n, d)
	}

	e = load("short-header-read.plan")
	hdr := Call{Op: OpRead, Path: "test.db", Off: 0, Len: 100}
	if n, _ := fireCount(e, hdr, 5); n != 1 {
		t.Errorf("short-header-read: fired %d times, want once while rule 2 is off", n)
	}
	if err := e.SetRule(2, true); err != nil {
		t.Fatal(err)
	}
	if n, d := fireCount(e, hdr, 5); n != 5 || d.Rule != 2 || d.Keep != 0 {
		t.Errorf("short-header-read: rule 2 on: fired %d times (%+v)", n, d)
	}

	e = load("enospc-wal.plan")
	if n, d := fireCount(e, Call{Op: OpWrite, Path: "test.db-wal", Len: 4120}, 60); n != 10 || d.Desc != "errno ENOSPC" {
		t.Errorf("enospc-wal: fired %d of 60 WAL writes, want the last 10 (%+v)", n, d)
	}

	e = load("powercut-wal-fsync.plan")
	walSync := Call{Op: OpFsync, Path: "test.db-wal"}
	if n, _ := fireCount(e, walSync, 39); n != 0 {
		t.Errorf("powercut-wal-fsync: fired %d times in the first 39 WAL fsyncs", n)
	}
	if n, d := fireCount(e, walSync, 100); n != 1 || d.Kind != KindPowercut || d.Cut != CutNone {
		t.Errorf("powercut-wal-fsync: fired %d times from the 40th WAL fsync on, want once (%+v)", n, d)
	}

	e = load("powercut-timed-sectors.plan")
	if r := e.Plan().Rules[0]; !r.Timed() || r.AfterDur != 2*time.Second || r.Cut != CutSectors || r.Sector != 512 {
		t.Errorf("powercut-timed-sectors: %+v", r)
	}

	e = load("fsync-eio-drop.plan")
	if n, d := fireCount(e, Call{Op: OpFsync, Path: "test.db"}, 10); n != 1 || !d.DropUnsynced || d.Desc != "eio drop=unsynced" {
		t.Errorf("fsync-eio-drop: fired %d times (%+v)", n, d)
	}

	e = load("torn-any-sector.plan")
	page := Call{Op: OpWrite, Path: "test.db", Off: 8192, Len: 4096}
	var descs []string
	for i := 0; i < 6; i++ {
		if d, ok := e.Decide(page); ok {
			descs = append(descs, d.Desc)
		}
	}
	if len(descs) != 4 || descs[0] != "torn keep=1024 from=tail then=ok" || !strings.HasPrefix(descs[1], "torn sectors=random sector=512 then=ok") {
		t.Errorf("torn-any-sector: %q", descs)
	}
}
