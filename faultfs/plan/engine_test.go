package plan

import (
	"fmt"
	"math/rand"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"
)

func mustParse(t testing.TB, src string) *Plan {
	t.Helper()
	p, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fires feeds n identical events to a fresh engine and returns the 1-based
// event numbers at which a rule fired.
func fires(t *testing.T, src string, ev Call, n int) []int {
	t.Helper()
	e := NewEngine(mustParse(t, src), 1)
	var out []int
	for i := 1; i <= n; i++ {
		if _, ok := e.Decide(ev); ok {
			out = append(out, i)
		}
	}
	return out
}

var wal = Call{Op: OpWrite, Path: "dir/test.db-wal", Off: 0, Len: 4120, Pid: 100}

func TestEngineFiringSchedule(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []int
	}{
		{"eio", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"eio count=1", []int{1}},
		{"eio nth=1 count=1", []int{1}},
		{"eio nth=3", []int{3, 4, 5, 6, 7, 8, 9, 10}},
		{"eio nth=3 count=2", []int{3, 4}},
		{"eio after=2", []int{3, 4, 5, 6, 7, 8, 9, 10}},
		{"eio after=2 every=3", []int{3, 6, 9}},
		{"eio nth=3 every=2", []int{3, 5, 7, 9}},
		{"eio nth=2 after=4", []int{5, 6, 7, 8, 9, 10}},
		{"eio every=4", []int{1, 5, 9}},
		{"eio every=2 count=2", []int{1, 3}},
		{"eio state=off", nil},
	} {
		got := fires(t, tc.src, wal, 10)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: fired at %v, want %v", tc.src, got, tc.want)
		}
	}
}

func TestEngineMatching(t *testing.T) {
	for _, tc := range []struct {
		src  string
		ev   Call
		want bool
	}{
		{"eio op=write", wal, true},
		{"eio op=read", wal, false},
		{"eio op=read|write", wal, true},
		{"eio op=any", Call{Op: OpFsync, Path: "x"}, true},
		{"eio op=write", Call{Op: "nosuchop", Path: "x"}, false},
		{"eio path=*-wal", wal, true},
		{"eio path=*.db", wal, false},
		{"eio path=test.db-wal", wal, true},
		{"eio path=test*", wal, true},
		{"eio path=dir", wal, false},
		{"eio path=t?st.db-[vw]al", wal, true},
		{"eio path=*.db", Call{Op: OpRead, Path: "test.db"}, true},
		{"eio off=0..100", Call{Op: OpRead, Path: "a", Off: 100, Len: 10}, true},
		{"eio off=0..100", Call{Op: OpRead, Path: "a", Off: 101, Len: 10}, false},
		{"eio off=100..200", Call{Op: OpRead, Path: "a", Off: 91, Len: 10}, true},
		{"eio off=100..200", Call{Op: OpRead, Path: "a", Off: 90, Len: 10}, false},
		{"eio off=24", Call{Op: OpWrite, Path: "a", Off: 0, Len: 4096}, true},
		{"eio off=0..100", Call{Op: OpOpen, Path: "a"}, true},                       // no range: the point 0
		{"eio off=1..100", Call{Op: OpOpen, Path: "a"}, false},                      // ...which is outside 1..100
		{"eio op=truncate off=0..0", Call{Op: OpTruncate, Path: "a", Off: 0}, true}, // truncate to 0
		{"eio minlen=4096", wal, true},
		{"eio minlen=4121", wal, false},
		{"eio pid=100", wal, true},
		{"eio pid=101", wal, false},
		{"flip", Call{Op: OpRead, Path: "a", Len: 0}, false},
		{"flip bit=7", Call{Op: OpRead, Path: "a", Len: 1}, true},
		{"flip bit=8", Call{Op: OpRead, Path: "a", Len: 1}, false},
	} {
		e := NewEngine(mustParse(t, tc.src), 1)
		if _, got := e.Decide(tc.ev); got != tc.want {
			t.Errorf("%s on %+v: fired=%v, want %v", tc.src, tc.ev, got, tc.want)
		}
		if m := e.Counters()[0].Matched; (m == 1) != tc.want {
			t.Errorf("%s on %+v: matched=%d", tc.src, tc.ev, m)
		}
	}
}

func TestEngineDecisions(t *testing.T) {
	for _, tc := range []struct {
		src  string
		ev   Call
		want Decision
	}{
		{"eio", wal, Decision{Rule: 1, Kind: KindEIO, Errno: syscall.EIO, FlipBit: -1, Desc: "eio"}},
		{"errno errno=ENOSPC", wal, Decision{Rule: 1, Kind: KindErrno, Errno: syscall.ENOSPC, FlipBit: -1, Desc: "errno ENOSPC"}},
		{"torn keep=512", wal, Decision{Rule: 1, Kind: KindTorn, Keep: 512, ThenOK: true, FlipBit: -1, Desc: "torn keep=512 then=ok"}},
		{"torn keep=512 then=EIO", wal, Decision{Rule: 1, Kind: KindTorn, Keep: 512, Errno: syscall.EIO, FlipBit: -1, Desc: "torn keep=512 then=EIO"}},
		{"lost", wal, Decision{Rule: 1, Kind: KindLost, FlipBit: -1, Desc: "lost"}},
		{"short keep=100", Call{Op: OpRead, Path: "a", Len: 4096}, Decision{Rule: 1, Kind: KindShort, Keep: 100, FlipBit: -1, Desc: "short keep=100"}},
		{"flip bit=9", wal, Decision{Rule: 1, Kind: KindFlip, FlipBit: 9, Desc: "flip bit=9"}},
		{"delay delay=10ms", wal, Decision{Rule: 1, Kind: KindDelay, Delay: 10 * time.Millisecond, FlipBit: -1, Desc: "delay 10ms"}},
	} {
		e := NewEngine(mustParse(t, tc.src), 1)
		d, ok := e.Decide(tc.ev)
		if !ok || d != tc.want {
			t.Errorf("%s: got %+v %v, want %+v", tc.src, d, ok, tc.want)
		}
	}
}

func TestEngineSeededDraws(t *testing.T) {
	const seed = 42
	e := NewEngine(mustParse(t, "flip op=write\ndelay op=fsync delay=10ms jitter=5ms"), seed)
	bits := map[int64]bool{}
	delays := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		d, ok := e.Decide(Call{Op: OpWrite, Path: "a.db", Len: 16})
		if !ok || d.FlipBit < 0 || d.FlipBit >= 128 {
			t.Fatalf("seed %d: flip decision %+v %v", seed, d, ok)
		}
		bits[d.FlipBit] = true
		d, ok = e.Decide(Call{Op: OpFsync, Path: "a.db"})
		if !ok || d.Delay < 10*time.Millisecond || d.Delay > 15*time.Millisecond || d.Desc != "delay "+d.Delay.String() {
			t.Fatalf("seed %d: delay decision %+v %v", seed, d, ok)
		}
		delays[d.Delay] = true
	}
	if len(bits) < 60 || len(delays) < 150 {
		t.Fatalf("seed %d: draws are not spread: %d distinct bits of 128, %d distinct delays of 200", seed, len(bits), len(delays))
	}
}

func TestEngineProbability(t *testing.T) {
	for _, p := range []float64{0.1, 0.5, 0.9} {
		e := NewEngine(mustParse(t, fmt.Sprintf("eio p=%g", p)), 7)
		const n = 20000
		fired := 0
		for i := 0; i < n; i++ {
			if _, ok := e.Decide(Call{Op: OpWrite, Path: fmt.Sprintf("f%d", i%7)}); ok {
				fired++
			}
		}
		if got := float64(fired) / n; got < p-0.02 || got > p+0.02 {
			t.Errorf("seed 7: p=%g fired %.3f of ops", p, got)
		}
	}
}

// TestEngineFirstRuleWins checks that the first rule that may fire wins,
// and that later rules still count the match without using up count.
func TestEngineFirstRuleWins(t *testing.T) {
	e := NewEngine(mustParse(t, "eio nth=2 count=1\nerrno errno=ENOSPC count=2\nlost"), 1)
	var got []string
	for i := 0; i < 5; i++ {
		d, ok := e.Decide(wal)
		if !ok {
			got = append(got, "-")
			continue
		}
		got = append(got, fmt.Sprintf("%d:%s", d.Rule, d.Desc))
	}
	want := []string{"2:errno ENOSPC", "1:eio", "2:errno ENOSPC", "3:lost", "3:lost"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	c := e.Counters()
	for i, w := range []RuleCounter{
		{Rule: 1, Text: "eio nth=2 count=1", Matched: 5, Fired: 1, Exhausted: true},
		{Rule: 2, Text: "errno errno=ENOSPC count=2", Matched: 5, Fired: 2, Exhausted: true},
		{Rule: 3, Text: "lost op=write", Matched: 5, Fired: 2},
	} {
		if c[i] != w {
			t.Errorf("counter %d = %+v, want %+v", i+1, c[i], w)
		}
	}
}

func TestEngineRuntimeControl(t *testing.T) {
	e := NewEngine(mustParse(t, "eio path=*-wal\nlost path=*.db state=off"), 3)
	db := Call{Op: OpWrite, Path: "test.db", Len: 10}
	if _, ok := e.Decide(db); ok {
		t.Fatal("rule 2 is off but fired")
	}
	if err := e.SetRule(2, true); err != nil {
		t.Fatal(err)
	}
	if d, ok := e.Decide(db); !ok || d.Rule != 2 {
		t.Fatalf("rule 2 switched on: got %+v %v", d, ok)
	}
	if err := e.SetRule(1, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Decide(wal); ok {
		t.Fatal("rule 1 switched off but fired")
	}
	if got := e.Plan().String(); got != "eio path=*-wal state=off\nlost op=write path=*.db\n" {
		t.Fatalf("Plan() = %q", got)
	}
	if err := e.SetRule(3, true); err == nil {
		t.Fatal("SetRule(3) on a 2-rule plan succeeded")
	}
	if err := e.SetRule(0, true); err == nil {
		t.Fatal("SetRule(0) succeeded")
	}
	e.SetEnabled(false)
	if _, ok := e.Decide(db); ok {
		t.Fatal("engine disabled but a rule fired")
	}
	e.SetEnabled(true)
	if _, ok := e.Decide(db); !ok {
		t.Fatal("engine re-enabled but rule 2 did not fire")
	}
	c := e.Counters()
	if c[0].Matched != 0 || !c[0].Off || c[1].Matched != 2 || c[1].Fired != 2 || c[1].Off {
		t.Fatalf("counters %+v", c)
	}

	// Load replaces the plan and resets counters.
	e.Load(mustParse(t, "eio count=1"))
	if c := e.Counters(); len(c) != 1 || c[0].Matched != 0 || c[0].Fired != 0 {
		t.Fatalf("after Load: %+v", c)
	}
	if _, ok := e.Decide(db); !ok {
		t.Fatal("fresh count=1 rule did not fire")
	}
	if _, ok := e.Decide(db); ok {
		t.Fatal("count=1 rule fired twice")
	}
	if e.Seed() != 3 {
		t.Fatalf("Seed() = %d", e.Seed())
	}
}

func TestEnginePlanIsACopy(t *testing.T) {
	p := mustParse(t, "eio op=write|read")
	e := NewEngine(p, 1)
	p.Rules[0].Ops[0] = OpOpen
	p.Rules = nil
	if got := e.Plan().String(); got != "eio op=read|write\n" {
		t.Fatalf("engine plan changed with the caller's: %q", got)
	}
	q := e.Plan()
	q.Rules[0].Kind = KindLost
	if got := e.Plan().String(); got != "eio op=read|write\n" {
		t.Fatalf("Plan() result aliases the engine's: %q", got)
	}
}

// detPlan draws on every rule: p for the errors, a seeded bit and jitter.
const detPlan = `eio op=write path=*.db p=0.5
errno op=write|read path=*-wal p=0.5 errno=ENOSPC
flip op=read p=0.3
delay op=fsync delay=1ms jitter=1ms p=0.5
`

type step struct {
	ev Call
	d  Decision
	ok bool
}

// runPerPath feeds per-path sequences to an engine in the order given by
// rng and returns each path's decisions.
func runPerPath(e *Engine, seqs map[string][]Call, rng *rand.Rand) map[string][]step {
	out := map[string][]step{}
	next := map[string]int{}
	var paths []string
	for p := range seqs {
		paths = append(paths, p)
	}
	for len(paths) > 0 {
		i := rng.Intn(len(paths))
		p := paths[i]
		ev := seqs[p][next[p]]
		d, ok := e.Decide(ev)
		out[p] = append(out[p], step{ev, d, ok})
		if next[p]++; next[p] == len(seqs[p]) {
			paths = append(paths[:i], paths[i+1:]...)
		}
	}
	return out
}

func perPathWorkload() map[string][]Call {
	seqs := map[string][]Call{}
	ops := []Op{OpWrite, OpRead, OpFsync, OpGetattr}
	for _, p := range []string{"test.db", "test.db-wal", "test.db-shm", "other.db"} {
		for i := 0; i < 300; i++ {
			op := ops[(i*7+len(p))%len(ops)]
			seqs[p] = append(seqs[p], Call{Op: op, Path: p, Off: int64(i) * 4096, Len: 4096})
		}
	}
	return seqs
}

func TestEngineDeterminismAcrossInterleavings(t *testing.T) {
	const seed = 1234
	seqs := perPathWorkload()
	a := runPerPath(NewEngine(mustParse(t, detPlan), seed), seqs, rand.New(rand.NewSource(1)))
	b := runPerPath(NewEngine(mustParse(t, detPlan), seed), seqs, rand.New(rand.NewSource(2)))
	fired := 0
	for p := range seqs {
		if !reflect.DeepEqual(a[p], b[p]) {
			for i := range a[p] {
				if a[p][i] != b[p][i] {
					t.Fatalf("seed %d: path %s op %d differs across interleavings:\n%+v\n%+v", seed, p, i, a[p][i], b[p][i])
				}
			}
		}
		for _, s := range a[p] {
			if s.ok {
				fired++
			}
		}
	}
	if fired < 200 {
		t.Fatalf("seed %d: only %d faults fired; the test would prove little", seed, fired)
	}

	// A different seed gives different decisions.
	c := runPerPath(NewEngine(mustParse(t, detPlan), seed+1), seqs, rand.New(rand.NewSource(1)))
	diff := 0
	for p := range seqs {
		for i := range a[p] {
			if a[p][i] != c[p][i] {
				diff++
			}
		}
	}
	if diff < 100 {
		t.Fatalf("seeds %d and %d differ in only %d of 1200 decisions", seed, seed+1, diff)
	}
}

// TestEngineConcurrent runs Decide from many goroutines (go test -race
// checks the locking) and checks that count= holds under contention.
func TestEngineConcurrent(t *testing.T) {
	e := NewEngine(mustParse(t, "eio path=*.db count=50\nflip p=0.5"), 9)
	var wg sync.WaitGroup
	var mu sync.Mutex
	eio := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				d, ok := e.Decide(Call{Op: OpWrite, Path: fmt.Sprintf("f%d.db", g), Len: 8})
				if ok && d.Kind == KindEIO {
					mu.Lock()
					eio++
					mu.Unlock()
				}
				_ = e.Counters()
			}
		}(g)
	}
	wg.Wait()
	if eio != 50 {
		t.Fatalf("count=50 rule fired %d times", eio)
	}
	if c := e.Counters(); c[0].Matched != 4000 || c[0].Fired != 50 || !c[0].Exhausted || c[1].Matched != 4000 {
		t.Fatalf("counters %+v", c)
	}
}

// plan20 is 20 rules of the kind a soak loads, none of which match the
// benchmark's event (a read of a file named main.db-journal... at offset 1M).
const plan20 = `eio op=write path=*-wal nth=1 count=1
torn op=write path=*.db minlen=4096 keep=512 then=ok count=3
short op=read path=*.db off=0..100 keep=0 count=1
errno op=open path=*.db errno=EIO count=1
errno op=write path=*-wal errno=ENOSPC after=100
lost op=write path=*-journal p=0.1
flip op=read path=*.db minlen=4096 p=0.01
delay op=fsync delay=1ms jitter=1ms
eio op=fsync path=*.db p=0.5
errno op=unlink path=*-wal errno=EBUSY
errno op=rename path=*-journal errno=EIO
eio op=truncate path=*-wal
short op=read path=*-wal keep=24
torn op=write path=*-journal keep=100
errno op=create path=*.db errno=EACCES
eio pid=1
eio op=read path=[a-c]*.tmp
eio op=getattr path=*-shm p=0.5
errno op=fallocate errno=ENOSPC
eio op=write path=*.db off=0..99
`

func BenchmarkDecideNoMatch(b *testing.B) {
	p := mustParse(b, plan20)
	if len(p.Rules) != 20 {
		b.Fatalf("plan has %d rules", len(p.Rules))
	}
	e := NewEngine(p, 1)
	ev := Call{Op: OpRead, Path: "sub/main.db-journal", Off: 1 << 20, Len: 4096, Pid: 77}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := e.Decide(ev); ok {
			b.Fatal("a rule fired")
		}
	}
}

// plan20NoDraws is plan20 without p=, jitter= or seeded flips, so the
// engine keeps no per-path op index.
const plan20NoDraws = `eio op=write path=*-wal nth=1 count=1
torn op=write path=*.db minlen=4096 keep=512 then=ok count=3
short op=read path=*.db off=0..100 keep=0 count=1
errno op=open path=*.db errno=EIO count=1
errno op=write path=*-wal errno=ENOSPC after=100
lost op=write path=*-journal every=10
flip op=read path=*.db minlen=4096 bit=100 nth=1000
delay op=fsync delay=1ms
eio op=fsync path=*.db every=2
errno op=unlink path=*-wal errno=EBUSY
errno op=rename path=*-journal errno=EIO
eio op=truncate path=*-wal
short op=read path=*-wal keep=24
torn op=write path=*-journal keep=100
errno op=create path=*.db errno=EACCES
eio pid=1
eio op=read path=[a-c]*.tmp
eio op=getattr path=*-shm after=5
errno op=fallocate errno=ENOSPC
eio op=write path=*.db off=0..99
`

// BenchmarkDecideNoMatchNoDraws is BenchmarkDecideNoMatch for a plan that
// never draws.
func BenchmarkDecideNoMatchNoDraws(b *testing.B) {
	p := mustParse(b, plan20NoDraws)
	e := NewEngine(p, 1)
	if len(p.Rules) != 20 || e.mu.needIdx {
		b.Fatalf("plan has %d rules, needIdx=%v", len(p.Rules), e.mu.needIdx)
	}
	ev := Call{Op: OpRead, Path: "sub/main.db-journal", Off: 1 << 20, Len: 4096, Pid: 77}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := e.Decide(ev); ok {
			b.Fatal("a rule fired")
		}
	}
}

// TestEngineCutAndTornDecisions checks the decisions of the kinds and keys
// issue 9 added: torn from the tail or a seeded subset of sectors, a power
// cut and its keep modes, and an fsync error that drops unsynced writes.
func TestEngineCutAndTornDecisions(t *testing.T) {
	const seed = 5
	fsync := Call{Op: OpFsync, Path: "dir/test.db-wal", Pid: 100}
	for _, tc := range []struct {
		src  string
		ev   Call
		want Decision
	}{
		{"torn keep=512 from=tail", wal, Decision{Rule: 1, Kind: KindTorn, Keep: 512, ThenOK: true, Tail: true, FlipBit: -1,
			Desc: "torn keep=512 from=tail then=ok"}},
		{"torn sectors=random sector=1K then=EIO", wal, Decision{Rule: 1, Kind: KindTorn, Errno: syscall.EIO, Sector: 1024, FlipBit: -1,
			SectorDraw: Draw(seed, 1, wal.Path, 0, PurposeTornSectors), Desc: "torn sectors=random sector=1024 then=EIO"}},
		{"powercut op=fsync path=*-wal", fsync, Decision{Rule: 1, Kind: KindPowercut, Cut: CutNone, FlipBit: -1, Desc: "powercut keep=none"}},
		{"powercut keep=random", fsync, Decision{Rule: 1, Kind: KindPowercut, Cut: CutRandom, FlipBit: -1, Desc: "powercut keep=random"}},
		{"powercut keep=sectors sector=4K", fsync, Decision{Rule: 1, Kind: KindPowercut, Cut: CutSectors, Sector: 4096, FlipBit: -1,
			Desc: "powercut keep=sectors sector=4096"}},
		{"eio op=fsync drop=unsynced", fsync, Decision{Rule: 1, Kind: KindEIO, Errno: syscall.EIO, DropUnsynced: true, FlipBit: -1,
			Desc: "eio drop=unsynced"}},
		{"errno op=fsync errno=EIO drop=unsynced", fsync, Decision{Rule: 1, Kind: KindErrno, Errno: syscall.EIO, DropUnsynced: true, FlipBit: -1,
			Desc: "errno EIO drop=unsynced"}},
	} {
		e := NewEngine(mustParse(t, tc.src), seed)
		d, ok := e.Decide(tc.ev)
		if !ok || d != tc.want {
			t.Errorf("%s: got %+v %v, want %+v", tc.src, d, ok, tc.want)
		}
	}
}

// TestEnginePowercutFiresOnce: a power cut's count defaults to 1, so
// `powercut op=fsync nth=2` cuts at the 2nd fsync and never again; count=0
// makes it persistent like any other rule.
func TestEnginePowercutFiresOnce(t *testing.T) {
	fsync := Call{Op: OpFsync, Path: "test.db-wal"}
	if got := fires(t, "powercut op=fsync nth=2", fsync, 6); !reflect.DeepEqual(got, []int{2}) {
		t.Errorf("powercut nth=2 fired at %v, want [2]", got)
	}
	if got := fires(t, "powercut op=fsync nth=2 count=0", fsync, 5); !reflect.DeepEqual(got, []int{2, 3, 4, 5}) {
		t.Errorf("powercut nth=2 count=0 fired at %v, want [2 3 4 5]", got)
	}
	if got := fires(t, "powercut op=fsync path=*.db", fsync, 3); got != nil {
		t.Errorf("powercut on *.db fired on a -wal fsync at %v", got)
	}
}

// fakeClock is a settable clock for after=DURATION.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newClockedEngine(t *testing.T, src string) (*Engine, *fakeClock) {
	t.Helper()
	clk := &fakeClock{now: time.Unix(1000, 0)}
	e := NewEngine(nil, 1)
	e.clock = clk.Now
	e.Load(mustParse(t, src))
	return e, clk
}

// TestEngineAfterDuration: after=DURATION gates a rule on the time since
// the plan was loaded; matches before it are not counted, so nth= counts
// from the deadline. after=N keeps meaning "skip N matches".
func TestEngineAfterDuration(t *testing.T) {
	e, clk := newClockedEngine(t, "eio op=write after=2s nth=2 count=1\nlost op=write after=2")
	var got []string
	for i := 0; i < 8; i++ {
		if i == 4 {
			clk.Add(2 * time.Second)
		}
		d, ok := e.Decide(wal)
		if !ok {
			got = append(got, "-")
			continue
		}
		got = append(got, d.Desc)
	}
	// Writes 1-4 come before the deadline: rule 1 does not count them, rule
	// 2 skips its first two. After it, rule 1 fires at its 2nd match.
	want := []string{"-", "-", "lost", "lost", "lost", "eio", "lost", "lost"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if c := e.Counters(); c[0].Matched != 4 || c[0].Fired != 1 || c[1].Matched != 8 {
		t.Fatalf("counters %+v: rule 1 should count only the 4 writes after 2s", c)
	}
	// Load restarts the clock.
	e.Load(mustParse(t, "eio after=1s"))
	if _, ok := e.Decide(wal); ok {
		t.Fatal("after=1s fired right after a new Load")
	}
	clk.Add(time.Second)
	if _, ok := e.Decide(wal); !ok {
		t.Fatal("after=1s did not fire 1s after Load")
	}
}

// TestEngineTimedPowercut: `powercut after=2s` alone is fired by the
// server's timer through FireTimed, once, never by an op; with a selection
// key it is an ordinary op-driven rule gated on the time.
func TestEngineTimedPowercut(t *testing.T) {
	e, clk := newClockedEngine(t, "powercut after=2s keep=random")
	if r := e.Plan().Rules[0]; !r.Timed() {
		t.Fatalf("%s is not Timed", r)
	}
	gen := e.Generation()
	if _, ok := e.FireTimed(gen, 1); ok {
		t.Fatal("FireTimed fired before the deadline")
	}
	clk.Add(3 * time.Second)
	if _, ok := e.Decide(wal); ok {
		t.Fatal("a timed powercut fired on an op")
	}
	if _, ok := e.FireTimed(gen+1, 1); ok {
		t.Fatal("FireTimed fired for a plan generation that does not exist")
	}
	if _, ok := e.FireTimed(gen, 2); ok {
		t.Fatal("FireTimed fired rule 2 of a 1-rule plan")
	}
	e.SetEnabled(false)
	if _, ok := e.FireTimed(gen, 1); ok {
		t.Fatal("FireTimed fired while the engine is disabled")
	}
	e.SetEnabled(true)
	d, ok := e.FireTimed(gen, 1)
	if want := (Decision{Rule: 1, Kind: KindPowercut, Cut: CutRandom, FlipBit: -1, Desc: "powercut keep=random"}); !ok || d != want {
		t.Fatalf("FireTimed = %+v %v, want %+v", d, ok, want)
	}
	if _, ok := e.FireTimed(gen, 1); ok {
		t.Fatal("FireTimed fired twice")
	}
	if c := e.Counters()[0]; c.Fired != 1 || c.Matched != 1 || !c.Exhausted {
		t.Fatalf("counters %+v", c)
	}

	// Replacing the plan makes the old generation's timers harmless.
	e.Load(mustParse(t, "powercut after=2s"))
	clk.Add(3 * time.Second)
	if _, ok := e.FireTimed(gen, 1); ok {
		t.Fatal("a timer of the replaced plan fired")
	}
	if _, ok := e.FireTimed(e.Generation(), 1); !ok {
		t.Fatal("the new plan's timed rule did not fire")
	}

	// With op= the rule is op-driven: the first fsync after 2s.
	e, clk = newClockedEngine(t, "powercut op=fsync after=2s")
	fsync := Call{Op: OpFsync, Path: "test.db-wal"}
	if e.Plan().Rules[0].Timed() {
		t.Fatal("powercut op=fsync after=2s is Timed")
	}
	if _, ok := e.Decide(fsync); ok {
		t.Fatal("fired before 2s")
	}
	clk.Add(2 * time.Second)
	if _, ok := e.FireTimed(e.Generation(), 1); ok {
		t.Fatal("FireTimed fired an op-driven rule")
	}
	if d, ok := e.Decide(fsync); !ok || d.Kind != KindPowercut {
		t.Fatalf("first fsync after 2s: %+v %v", d, ok)
	}
}

// TestKeptSectors: the sector subsets a draw picks are deterministic, each
// sector is kept about half the time, independently, and subsets that are
// neither a prefix nor a suffix come out (any sector order, not only the
// head of a write).
func TestKeptSectors(t *testing.T) {
	const n = 100 // more than 64 sectors: the chained words are used too
	kept := make([]int, n)
	var nonPrefix, nonSuffix, middleOnly int
	const draws = 4000
	for i := 0; i < draws; i++ {
		d := Draw(11, 1, "test.db", uint64(i), PurposeTornSectors)
		ks := KeptSectors(d, n)
		if !reflect.DeepEqual(ks, KeptSectors(d, n)) {
			t.Fatal("KeptSectors is not deterministic")
		}
		for k, ok := range ks {
			if ok {
				kept[k]++
			}
		}
		if !isPrefix(ks) {
			nonPrefix++
		}
		rev := make([]bool, n)
		for k := range ks {
			rev[n-1-k] = ks[k]
		}
		if !isPrefix(rev) {
			nonSuffix++
		}
		four := KeptSectors(d, 4)
		if !four[0] && !four[3] && (four[1] || four[2]) {
			middleOnly++
		}
	}
	for k, c := range kept {
		if f := float64(c) / draws; f < 0.45 || f > 0.55 {
			t.Errorf("sector %d kept in %.3f of draws, want about 0.5", k, f)
		}
	}
	if nonPrefix < draws*9/10 || nonSuffix < draws*9/10 || middleOnly < draws/10 {
		t.Fatalf("subsets are not spread: %d non-prefix, %d non-suffix, %d middle-only of %d", nonPrefix, nonSuffix, middleOnly, draws)
	}
	// Neighbouring sectors are independent: P(k and k+1 kept) ~ 1/4.
	both := 0
	for i := 0; i < draws; i++ {
		ks := KeptSectors(Draw(12, 2, "x-wal", uint64(i), PurposeCutSectors), 70)
		if ks[63] && ks[64] {
			both++
		}
	}
	if f := float64(both) / draws; f < 0.2 || f > 0.3 {
		t.Fatalf("sectors 63 and 64 both kept in %.3f of draws, want about 0.25", f)
	}
	if Kept(0) != true || Kept(1<<63) != false {
		t.Fatal("Kept: top bit 0 keeps, 1 drops")
	}
}

// isPrefix reports whether ks is true...true false...false.
func isPrefix(ks []bool) bool {
	seenFalse := false
	for _, k := range ks {
		if k && seenFalse {
			return false
		}
		seenFalse = seenFalse || !k
	}
	return true
}

// TestEngineTornSectorsDeterminism: the sector draw of torn sectors=random
// is the engine's per-path hash, so the same seed and per-path sequence give
// the same sectors whatever the interleaving with other files, and another
// seed gives others.
func TestEngineTornSectorsDeterminism(t *testing.T) {
	const src = "torn path=*.db sectors=random sector=512\ntorn path=*-wal sectors=random sector=4K"
	seqs := perPathWorkload()
	a := runPerPath(NewEngine(mustParse(t, src), 77), seqs, rand.New(rand.NewSource(1)))
	b := runPerPath(NewEngine(mustParse(t, src), 77), seqs, rand.New(rand.NewSource(2)))
	c := runPerPath(NewEngine(mustParse(t, src), 78), seqs, rand.New(rand.NewSource(1)))
	fired, diff := 0, 0
	for p := range seqs {
		if !reflect.DeepEqual(a[p], b[p]) {
			t.Fatalf("seed 77: path %s differs across interleavings", p)
		}
		for i, s := range a[p] {
			if s.ok {
				fired++
				if s.d.SectorDraw != c[p][i].d.SectorDraw {
					diff++
				}
			}
		}
	}
	if fired < 100 || diff < fired*9/10 {
		t.Fatalf("%d torn writes fired, %d differ between seeds 77 and 78", fired, diff)
	}
}
