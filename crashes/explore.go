package crashes

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/internal/found"
	"github.com/sqlchaos/sqlchaos/oracle"
)

// Options configure an exploration.
type Options struct {
	RunDir     string
	CaptureDir string // default RUNDIR/capture
	DB         string // main database name; default kanban.db, or the only database recorded
	Ledger     string // commit ledger table; default meta.json's, else chaos_ledger
	// Mode is the durability rule; its empty fields (all of them when
	// nil) come from meta.json's switches (journal_mode, synchronous),
	// else the journal mode is guessed from the files and synchronous is
	// unknown (prefix rule only).
	Mode    *Mode
	Budget  int   // states to judge; <= 0: every systematic state and no random ones
	Seed    int64 // seed of every random choice (sampling, random states)
	Jobs    int   // parallel judges; default GOMAXPROCS
	Sector  int64 // sector size for torn writes; default 512
	Classes []Class
	// Progress, when set, gets a line every ProgressEvery (default 5s).
	Progress      io.Writer
	ProgressEvery time.Duration
	// NoShrink leaves failing multi-write states as found.
	NoShrink bool
	TmpDir   string // where images are written; default /dev/shm when writable
}

// Explorer holds a loaded recording, ready to enumerate and judge states.
type Explorer struct {
	opts       Options
	rec        *Recording
	tl         *timeline
	claims     []claim
	x          *expect
	mode       Mode
	modeSource string
	ledger     string
	notes      []string
}

// metaFile is the part of the runner's meta.json the explorer reads.
type metaFile struct {
	Scenario string            `json:"scenario"`
	Profile  string            `json:"profile"`
	Driver   string            `json:"driver"`
	Switches map[string]string `json:"switches"`
	Ledger   string            `json:"ledger"`
}

// Open loads a run directory's capture, histories and meta.json.
func Open(opts Options) (*Explorer, error) {
	if opts.Sector == 0 {
		opts.Sector = 512
	}
	if opts.Jobs <= 0 {
		opts.Jobs = runtime.GOMAXPROCS(0)
	}
	if len(opts.Classes) == 0 {
		opts.Classes = Classes
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 5 * time.Second
	}
	st, err := os.Stat(opts.RunDir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", opts.RunDir)
	}
	rec, err := LoadRecording(opts.RunDir, opts.CaptureDir)
	if err != nil {
		return nil, err
	}
	e := &Explorer{opts: opts, rec: rec, notes: append([]string(nil), rec.Notes...)}
	if e.opts.DB == "" {
		if e.opts.DB, err = guessDB(rec); err != nil {
			return nil, err
		}
	}
	var meta metaFile
	if b, err := os.ReadFile(filepath.Join(opts.RunDir, MetaFile)); err == nil {
		if err := json.Unmarshal(b, &meta); err != nil {
			return nil, fmt.Errorf("%s: %w", MetaFile, err)
		}
	}
	e.ledger = opts.Ledger
	if e.ledger == "" {
		e.ledger = meta.Ledger
	}
	if e.ledger == "" {
		e.ledger = "chaos_ledger"
	}
	e.mode, e.modeSource = e.pickMode(meta)
	events, err := history.ReadDir(filepath.Join(opts.RunDir, HistoriesDir))
	if err != nil {
		return nil, err
	}
	e.x = newExpect(events)
	if len(e.x.acks) == 0 {
		e.notes = append(e.notes, "no acknowledged commits in "+HistoriesDir+"/: only structure is judged")
	}
	if e.tl, e.claims, err = newTimeline(rec, e.opts.DB, opts.Sector); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Explorer) pickMode(meta metaFile) (Mode, string) {
	m, src := e.defaultMode(meta)
	if o := e.opts.Mode; o != nil {
		if o.Journal != "" {
			m.Journal = o.Journal
		}
		if o.Sync != "" {
			m.Sync = o.Sync
		}
		if o.Journal != "" && o.Sync != "" {
			src = "flags"
		} else {
			src = "flags, the rest " + src
		}
	}
	return m, src
}

// defaultMode reads meta.json's switches, else guesses the journal mode
// from the recording and leaves synchronous unknown (prefix rule only).
func (e *Explorer) defaultMode(meta metaFile) (Mode, string) {
	jm := strings.ToLower(meta.Switches["journal_mode"])
	sy := strings.ToLower(meta.Switches["synchronous"])
	if jm != "" && sy != "" {
		return Mode{Journal: jm, Sync: sy}, MetaFile
	}
	m := Mode{Journal: "delete", Sync: "unknown"}
	for _, o := range e.rec.Ops {
		if o.Kind == OpWrite && strings.HasSuffix(o.Path, "-wal") {
			m.Journal = "wal"
			break
		}
	}
	return m, "guessed (no meta.json switches): prefix rule only; set --sync"
}

// Mode returns the durability rule in use and where it came from.
func (e *Explorer) Mode() (Mode, string) { return e.mode, e.modeSource }

// DB returns the main database's name.
func (e *Explorer) DB() string { return e.opts.DB }

// Points returns the number of crash points.
func (e *Explorer) Points() int { return len(e.tl.points) }

// ClassStats counts one class's states.
type ClassStats struct {
	Class      Class `json:"class"`
	Candidates int   `json:"candidates"` // systematic: every state of the class; random: the budget share
	Run        int   `json:"run"`
	Pass       int   `json:"pass"`
	Fail       int   `json:"fail"`
	Detected   int   `json:"detected"`
	Unsure     int   `json:"inconclusive"`
	Errors     int   `json:"error"`
}

// AltDesc describes one altered write.
type AltDesc struct {
	Seq  uint64 `json:"seq"`
	Path string `json:"path"`
	Off  int64  `json:"off"`
	Len  int    `json:"len"`
	Page int64  `json:"page,omitempty"` // 1-based database page (main db writes, page-aligned)
	What string `json:"what"`           // "lost", or "torn: kept sectors 0-3 of 8"
	// Synced: a barrier before the cut had reported this write durable.
	Synced bool `json:"synced,omitempty"`
}

// Finding is one judged state with what the explorer knows about it.
type Finding struct {
	ID        string    `json:"id"`
	Class     Class     `json:"class"`
	Point     uint64    `json:"point"`      // barrier trace seq; 0 = end
	PointFile string    `json:"point_file"` // the file the barrier synced
	Alts      []AltDesc `json:"alterations,omitempty"`
	// DirOps lists the directory operations a ClassDirLost state loses.
	DirOps     []string  `json:"dir_ops,omitempty"`
	Judgement  Judgement `json:"judgement"`
	Rebuild    string    `json:"rebuild"`
	ShrunkFrom string    `json:"shrunk_from,omitempty"`
	bytes      int
}

// Report is the result of an exploration.
type Report struct {
	Run        string       `json:"run"`
	DB         string       `json:"db"`
	Mode       Mode         `json:"mode"`
	ModeSource string       `json:"mode_source"`
	Seed       int64        `json:"seed"`
	Budget     int          `json:"budget"`
	Jobs       int          `json:"jobs"`
	Sector     int64        `json:"sector"`
	Ops        int          `json:"ops"`
	Writes     int          `json:"writes"`
	Barriers   int          `json:"barriers"`
	Points     int          `json:"points"`
	Classes    []ClassStats `json:"classes"`
	States     int          `json:"states"`
	// Opened counts the distinct images SQLite opened; the other states
	// had the same bytes at the same cut as one of them, and its verdict.
	Opened  int            `json:"opened"`
	Failing int            `json:"failing"`
	Kinds   map[string]int `json:"kinds,omitempty"` // failing states per problem kind
	// Detected counts the detected states (lost-synced or torn-synced,
	// SQLite reported damage); DetectedKinds what the damage did to the rows there (the
	// row checks still run when the image opens), and QuickCheckOK how many
	// of them quick_check alone would have passed.
	Detected      int            `json:"detected"`
	DetectedKinds map[string]int `json:"detected_kinds,omitempty"`
	QuickCheckOK  int            `json:"quick_check_ok"`
	// QuickCheckOKKinds: the row kinds among the detected states that
	// quick_check alone would have passed (wrong data quick_check serves).
	QuickCheckOKKinds map[string]int `json:"quick_check_ok_kinds,omitempty"`
	Elapsed           string         `json:"elapsed"`
	PerSecond         float64        `json:"states_per_second"`
	// PerMinuteCore is states per minute per core by the wall clock:
	// states / minutes / min(jobs, CPUs). On a shared machine it
	// understates; PerCPUMinute does not.
	PerMinuteCore float64 `json:"states_per_minute_per_core"`
	// CPUSeconds is the CPU time (user+system) the process spent while
	// judging; PerCPUMinute is states per minute of that CPU time: the
	// rate of one fully used core.
	CPUSeconds float64 `json:"cpu_seconds"`
	// OpenedPerCPUMinute is Opened per minute of CPU time.
	OpenedPerCPUMinute float64             `json:"opened_per_cpu_minute"`
	PerCPUMinute       float64             `json:"states_per_cpu_minute"`
	Minimal            *Finding            `json:"minimal,omitempty"`
	MinimalByKind      map[string]*Finding `json:"minimal_by_kind,omitempty"`
	// MinimalDetected is, per row kind, the smallest detected state whose
	// rows show it (e.g. deleted rows back, caught by integrity_check).
	MinimalDetected map[string]*Finding `json:"minimal_detected,omitempty"`
	Failures        []*Finding          `json:"failures,omitempty"` // the smallest, at most maxFailures
	Notes           []string            `json:"notes,omitempty"`
}

// maxFailures bounds the failures a report lists.
const maxFailures = 20

// planned is a state chosen for judging.
type planned struct {
	pi    int
	alts  []Alt
	undo  uint64 // ClassDirLost: the first directory op lost
	class Class
}

// id is the planned state's ID.
func (e *Explorer) id(p planned) string {
	return State{Point: e.tl.points[p.pi].seq, Alts: p.alts, Undo: p.undo}.ID()
}

// Plan chooses the states to judge: every state of each systematic class
// when the budget allows, else a seeded uniform sample; the budget is
// shared max-min fairly among the classes (random states take what the
// systematic ones leave, and at least a fair share).
func (e *Explorer) Plan() ([]planned, []ClassStats) {
	rng := rand.New(rand.NewPCG(uint64(e.opts.Seed), 0x5eed))
	want := map[Class]bool{}
	for _, c := range e.opts.Classes {
		want[c] = true
	}
	srcs, withVol := e.sources(want)
	randomOK := want[ClassRandom] && len(withVol) > 0 && e.opts.Budget > 0
	needs := make([]int, 0, len(srcs)+1)
	for _, s := range srcs {
		needs = append(needs, s.count)
	}
	if randomOK {
		needs = append(needs, e.opts.Budget) // random states demand the whole budget
	}
	quota := shareBudget(needs, e.opts.Budget)
	c := &choice{seen: map[string]bool{}}
	for k, s := range srcs {
		c.stats = append(c.stats, ClassStats{Class: s.class, Candidates: s.count})
		for _, i := range sample(rng, s.count, quota[k]) {
			c.add(e, s.get(i))
		}
	}
	if randomOK {
		q := quota[len(srcs)]
		c.stats = append(c.stats, ClassStats{Class: ClassRandom, Candidates: q})
		for tries := 0; q > 0 && tries < 20*q+100; tries++ {
			if p := e.randomState(rng, withVol); len(p.alts) > 0 && c.add(e, p) {
				q--
			}
		}
	}
	sort.SliceStable(c.out, func(i, j int) bool {
		if c.out[i].pi != c.out[j].pi {
			return c.out[i].pi < c.out[j].pi
		}
		return c.out[i].class.rank() < c.out[j].class.rank()
	})
	return c.out, c.stats
}

// choice is the plan being chosen: the states so far (each ID once) and
// the classes' stats.
type choice struct {
	out   []planned
	stats []ClassStats
	seen  map[string]bool
}

// add adds p unless a state with its ID is already chosen, and reports
// whether it did.
func (c *choice) add(e *Explorer, p planned) bool {
	id := e.id(p)
	if c.seen[id] {
		return false
	}
	c.seen[id] = true
	c.out = append(c.out, p)
	return true
}

// shareBudget shares budget max-min fairly among demands: in order of
// need (smallest first, ties in the given order), each takes what it
// needs up to an equal share of what is left. It returns each demand's
// quota, in the demands' order; with no budget (<= 0) every demand gets
// what it needs.
func shareBudget(needs []int, budget int) []int {
	quota := make([]int, len(needs))
	if budget <= 0 {
		copy(quota, needs)
		return quota
	}
	order := make([]int, len(needs))
	for k := range order {
		order[k] = k
	}
	sort.SliceStable(order, func(i, j int) bool { return needs[order[i]] < needs[order[j]] })
	left := budget
	for i, k := range order {
		q := min(needs[k], left/(len(order)-i))
		quota[k] = q
		left -= q
	}
	return quota
}

// source is one systematic class's states, enumerated by index.
type source struct {
	class Class
	count int
	get   func(i int) planned
}

// pointWrite is a write (op index w) at a crash point (pi).
type pointWrite struct{ pi, w int }

// sources returns the wanted systematic classes' states, in class order,
// and the points that have unsynced writes.
func (e *Explorer) sources(want map[Class]bool) ([]source, []int) {
	withVol, vols := e.volatileWrites()
	var srcs []source
	add := func(c Class, s func() source) {
		if want[c] {
			srcs = append(srcs, s())
		}
	}
	add(ClassClean, e.cleanStates)
	add(ClassSynced, func() source { return e.syncedStates(withVol) })
	add(ClassLost, func() source { return e.lostStates(vols) })
	add(ClassLostSynced, e.lostSyncedStates)
	add(ClassTorn, func() source { return e.tornStates(ClassTorn, vols) })
	add(ClassTornSynced, func() source { return e.tornStates(ClassTornSynced, e.claimedWrites()) })
	add(ClassDirLost, e.dirLostStates)
	return srcs, withVol
}

// volatileWrites returns the points with unsynced writes and every
// unsynced write at every point.
func (e *Explorer) volatileWrites() (withVol []int, vols []pointWrite) {
	for pi, p := range e.tl.points {
		n := len(vols)
		for _, f := range p.files {
			for _, w := range f.volatile {
				vols = append(vols, pointWrite{pi, w})
			}
		}
		if len(vols) > n {
			withVol = append(withVol, pi)
		}
	}
	return withVol, vols
}

// claimedWrites returns the claims as writes at points.
func (e *Explorer) claimedWrites() []pointWrite {
	var ws []pointWrite
	for _, c := range e.claims {
		ws = append(ws, pointWrite{c.point, c.write})
	}
	return ws
}

// cleanStates: every point with nothing lost.
func (e *Explorer) cleanStates() source {
	return source{ClassClean, len(e.tl.points), func(i int) planned { return planned{pi: i, class: ClassClean} }}
}

// syncedStates: every point with unsynced writes, all of them lost.
func (e *Explorer) syncedStates(withVol []int) source {
	return source{ClassSynced, len(withVol), func(i int) planned {
		pi := withVol[i]
		var alts []Alt
		for _, f := range e.tl.points[pi].files {
			for _, w := range f.volatile {
				alts = append(alts, Alt{Seq: e.rec.Ops[w].Seq})
			}
		}
		return planned{pi: pi, alts: sortAlts(alts), class: ClassSynced}
	}}
}

// lostStates: every single unsynced write lost.
func (e *Explorer) lostStates(vols []pointWrite) source {
	return source{ClassLost, len(vols), func(i int) planned {
		return planned{pi: vols[i].pi, alts: []Alt{{Seq: e.rec.Ops[vols[i].w].Seq}}, class: ClassLost}
	}}
}

// lostSyncedStates: every claimed write lost at its claim point.
func (e *Explorer) lostSyncedStates() source {
	return source{ClassLostSynced, len(e.claims), func(i int) planned {
		c := e.claims[i]
		return planned{pi: c.point, alts: []Alt{{Seq: e.rec.Ops[c.write].Seq}}, class: ClassLostSynced}
	}}
}

// tornStates enumerates every systematic tear of each write of ws.
func (e *Explorer) tornStates(class Class, ws []pointWrite) source {
	var starts []int // prefix sums of torn masks per write
	total := 0
	for _, v := range ws {
		starts = append(starts, total)
		total += tornCount(e.tl.npieces(v.w))
	}
	return source{class, total, func(i int) planned {
		k := sort.Search(len(starts), func(k int) bool { return starts[k] > i }) - 1
		v := ws[k]
		masks := tornMasks(e.tl.npieces(v.w))
		return planned{pi: v.pi, alts: []Alt{{Seq: e.rec.Ops[v.w].Seq, Keep: masks[i-starts[k]]}}, class: class}
	}}
}

// dirLostStates: every unsynced directory op at every point lost (with
// the ones after it).
func (e *Explorer) dirLostStates() source {
	type pointDirOp struct{ pi, d int }
	var dirs []pointDirOp
	for pi, p := range e.tl.points {
		for _, d := range p.dirOps {
			dirs = append(dirs, pointDirOp{pi, d})
		}
	}
	return source{ClassDirLost, len(dirs), func(i int) planned {
		return planned{pi: dirs[i].pi, undo: e.rec.Ops[dirs[i].d].Seq, class: ClassDirLost}
	}}
}

// randomState draws a point with unsynced writes and, per unsynced write,
// kept (1/2), lost (1/4) or torn at a random subset of its sectors (1/4).
func (e *Explorer) randomState(rng *rand.Rand, withVol []int) planned {
	pi := withVol[rng.IntN(len(withVol))]
	var alts []Alt
	for _, f := range e.tl.points[pi].files {
		for _, w := range f.volatile {
			r := rng.IntN(4)
			seq := e.rec.Ops[w].Seq
			switch {
			case r < 2:
			case r == 2:
				alts = append(alts, Alt{Seq: seq})
			default:
				n := e.tl.npieces(w)
				keep := make([]bool, n)
				kept := 0
				for i := range keep {
					keep[i] = rng.IntN(2) == 0
					if keep[i] {
						kept++
					}
				}
				switch kept {
				case 0:
					alts = append(alts, Alt{Seq: seq})
				case n:
				default:
					alts = append(alts, Alt{Seq: seq, Keep: keep})
				}
			}
		}
	}
	return planned{pi: pi, alts: sortAlts(alts), class: ClassRandom}
}

func sortAlts(a []Alt) []Alt {
	sort.Slice(a, func(i, j int) bool { return a[i].Seq < a[j].Seq })
	return a
}

// sample returns q distinct indexes of [0, n) chosen uniformly (all of
// them, in order, when q >= n), sorted.
func sample(rng *rand.Rand, n, q int) []int {
	if q <= 0 || n <= 0 {
		return nil
	}
	if q >= n {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	// Floyd's algorithm.
	chosen := make(map[int]bool, q)
	for j := n - q; j < n; j++ {
		t := rng.IntN(j + 1)
		if chosen[t] {
			chosen[j] = true
		} else {
			chosen[t] = true
		}
	}
	out := make([]int, 0, q)
	for i := range chosen {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// job is a placed image waiting for its judge.
type job struct {
	n        int // index into plan
	d        *judgeDir
	placeErr error
	cut      Cut
}

type result struct {
	n     int
	j     Judgement
	dupOf int // >= 0: the image is byte for byte plan[dupOf]'s at the same cut; j is unset
}

// imageKey identifies a judged image: its bytes (hashed) and the cut it is
// judged at. Two states with one key get one judgement: it is a function
// of exactly these.
type imageKey struct {
	hash  uint64
	t     int64
	lying bool
}

var imageSeed = maphash.MakeSeed()

// hashImage hashes an image's file names and bytes.
func hashImage(img Image) uint64 {
	names := make([]string, 0, len(img))
	for n := range img {
		names = append(names, n)
	}
	sort.Strings(names)
	var h maphash.Hash
	h.SetSeed(imageSeed)
	for _, n := range names {
		h.WriteString(n)
		var l [8]byte
		binary.LittleEndian.PutUint64(l[:], uint64(len(img[n])))
		h.Write(l[:])
		h.Write(img[n])
	}
	return h.Sum64()
}

// trimWAL cuts img's -wal after its last frame SQLite's recovery can reach
// (walValidLen), in place.
func trimWAL(img Image, db string) {
	if w, ok := img[db+"-wal"]; ok {
		img[db+"-wal"] = w[:walValidLen(w)]
	}
}

// tmpParent returns where judge directories go.
func (e *Explorer) tmpParent() string {
	if e.opts.TmpDir != "" {
		return e.opts.TmpDir
	}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if f, err := os.CreateTemp("/dev/shm", "sqlchaos-probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return "/dev/shm"
		}
	}
	return os.TempDir()
}

// Run enumerates, builds and judges the planned states in parallel.
func (e *Explorer) Run(ctx context.Context) (*Report, error) {
	plan, stats := e.Plan()
	rep := e.newReport()
	tmp, err := os.MkdirTemp(e.tmpParent(), "sqlchaos-crashes-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	jr, err := e.judgeAll(ctx, tmp, plan)
	if err != nil {
		return nil, err
	}
	rep.Opened = jr.opened
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fails := e.tally(rep, plan, stats, jr)
	rep.Classes = stats
	rep.States = len(plan)
	rep.Failing = len(fails)
	e.rates(rep, jr)
	sortFindings(fails)
	if !e.opts.NoShrink {
		fails = e.shrink(ctx, fails)
	}
	for _, f := range fails {
		for _, k := range f.Judgement.Kinds() {
			if rep.MinimalByKind[k] == nil {
				rep.MinimalByKind[k] = f
			}
		}
	}
	if len(fails) > 0 {
		rep.Minimal = fails[0]
	}
	rep.Failures = fails[:min(len(fails), maxFailures)]
	return rep, nil
}

// newReport starts the report of a run: its parameters and the recording's
// op counts.
func (e *Explorer) newReport() *Report {
	rep := &Report{Run: e.opts.RunDir, DB: e.opts.DB, Mode: e.mode, ModeSource: e.modeSource, Seed: e.opts.Seed,
		Budget: e.opts.Budget, Jobs: e.opts.Jobs, Sector: e.opts.Sector, Ops: len(e.rec.Ops), Points: len(e.tl.points),
		Kinds: map[string]int{}, MinimalByKind: map[string]*Finding{}, DetectedKinds: map[string]int{},
		MinimalDetected: map[string]*Finding{}, QuickCheckOKKinds: map[string]int{}, Notes: append([]string(nil), e.notes...)}
	for _, o := range e.rec.Ops {
		switch o.Kind {
		case OpWrite:
			rep.Writes++
		case OpSync:
			rep.Barriers++
		}
	}
	return rep
}

// judged is what judgeAll found: a judgement per planned state (done
// false where the run stopped before it), how many distinct images SQLite
// opened, and the wall and CPU time it took.
type judged struct {
	j       []Judgement
	done    []bool
	opened  int
	elapsed time.Duration
	cpu     time.Duration
}

// judgeAll builds and judges every planned state. The planner replays and
// writes each image straight into a free judge directory (no copy of the
// files in memory); a judge opens it with SQLite and hands the directory
// back. One directory more than judges keeps the judges busy while the
// next image is written. States whose image (after the WAL cut) and cut
// equal an earlier state's are not opened again (a lost WAL frame and every
// tear of it leave the same readable WAL); they take its judgement.
func (e *Explorer) judgeAll(ctx context.Context, tmp string, plan []planned) (judged, error) {
	jobs := make(chan job, e.opts.Jobs+1)
	free := make(chan *judgeDir, e.opts.Jobs+1)
	results := make(chan result, 2*e.opts.Jobs)
	var dirs []*judgeDir
	defer func() {
		for _, d := range dirs {
			d.close()
		}
	}()
	for k := 0; k < e.opts.Jobs+1; k++ {
		d, err := newJudgeDir(tmp, e.opts.DB, e.ledger, e.x)
		if err != nil {
			return judged{}, err
		}
		dirs = append(dirs, d)
		free <- d
	}
	var wg sync.WaitGroup
	var werr atomic.Value
	for k := 0; k < e.opts.Jobs; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for jb := range jobs {
				j := jb.d.judgePlaced(ctx, jb.placeErr, jb.cut, e.mode)
				free <- jb.d
				results <- result{n: jb.n, j: j, dupOf: -1}
			}
		}()
	}
	start, cpu0 := time.Now(), cpuTime()
	var opened atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		if err := e.place(ctx, plan, free, jobs, results, &opened); err != nil {
			werr.Store(err)
		}
	}()
	go func() { wg.Wait(); close(results) }()

	jr := judged{j: make([]Judgement, len(plan)), done: make([]bool, len(plan))}
	dupOf := e.collect(plan, results, &jr, start, &opened)
	jr.elapsed, jr.cpu = time.Since(start), cpuTime()-cpu0
	for n := range plan {
		if jr.done[n] && dupOf[n] >= 0 {
			jr.j[n] = jr.j[dupOf[n]]
		}
	}
	jr.opened = int(opened.Load())
	if err, _ := werr.Load().(error); err != nil {
		return jr, err
	}
	return jr, nil
}

// place is the planner: it builds each planned state's image in turn and
// hands it to a judge, or, when an earlier state left the same image and
// cut, reports the state as a duplicate of that one.
func (e *Explorer) place(ctx context.Context, plan []planned, free chan *judgeDir, jobs chan<- job, results chan<- result, opened *atomic.Int64) error {
	r := newReplayer(e.tl)
	seen := map[imageKey]int{}
	for n, p := range plan {
		if ctx.Err() != nil {
			return nil
		}
		r.advance(e.tl.points[p.pi].idx)
		img, err := r.build(p.pi, p.alts, p.undo)
		if err != nil {
			return err
		}
		trimWAL(img, e.opts.DB)
		cut := e.cut(p)
		key := imageKey{hashImage(img), cut.T, cut.Lying}
		if first, ok := seen[key]; ok {
			results <- result{n: n, dupOf: first}
			continue
		}
		seen[key] = n
		opened.Add(1)
		d := <-free
		jobs <- job{n: n, d: d, placeErr: placeFiles(d.dir, d.db, img, false), cut: cut}
	}
	return nil
}

// collect gathers the judges' results into jr until the results channel
// closes, printing progress every ProgressEvery, and returns which state
// each duplicate copies (-1 for none).
func (e *Explorer) collect(plan []planned, results <-chan result, jr *judged, start time.Time, opened *atomic.Int64) []int {
	dupOf := make([]int, len(plan))
	ticker := time.NewTicker(e.opts.ProgressEvery)
	defer ticker.Stop()
	count, failing := 0, 0
	for {
		select {
		case res, ok := <-results:
			if !ok {
				return dupOf
			}
			jr.j[res.n], jr.done[res.n], dupOf[res.n] = res.j, true, res.dupOf
			count++
			if res.dupOf < 0 && res.j.Verdict == Fail {
				failing++
			}
		case <-ticker.C:
			if e.opts.Progress != nil {
				el := time.Since(start)
				fmt.Fprintf(e.opts.Progress, "crashes: %d/%d states (%.0f%%, %d images opened), %.0f states/s, %d failing images, %v\n",
					count, len(plan), 100*float64(count)/float64(max(1, len(plan))), opened.Load(), float64(count)/el.Seconds(), failing, el.Round(time.Second))
			}
		}
	}
}

// tally counts each judged state into its class's stats and the report's
// kinds, keeps the smallest detected state per kind, and returns the
// failing states.
func (e *Explorer) tally(rep *Report, plan []planned, stats []ClassStats, jr judged) []*Finding {
	byClass := map[Class]*ClassStats{}
	for i := range stats {
		byClass[stats[i].Class] = &stats[i]
	}
	var fails []*Finding
	for n, p := range plan {
		if !jr.done[n] {
			continue
		}
		j := jr.j[n]
		byClass[p.class].count(j.Verdict)
		switch j.Verdict {
		case Fail:
			fails = append(fails, e.finding(p, j))
			for _, k := range j.Kinds() {
				rep.Kinds[k]++
			}
		case Detected:
			e.tallyDetected(rep, p, j)
		}
	}
	return fails
}

// count adds one state's verdict to the class's stats.
func (cs *ClassStats) count(v Verdict) {
	cs.Run++
	switch v {
	case Pass:
		cs.Pass++
	case Fail:
		cs.Fail++
	case Detected:
		cs.Detected++
	case Inconclusive:
		cs.Unsure++
	default:
		cs.Errors++
	}
}

// tallyDetected counts a state whose damage SQLite reported: its kinds,
// whether quick_check alone would pass, the smallest such state per kind.
func (e *Explorer) tallyDetected(rep *Report, p planned, j Judgement) {
	rep.Detected++
	if j.QuickCheck == "ok" {
		rep.QuickCheckOK++
		for _, k := range j.Kinds() {
			if k != KindCorrupt {
				rep.QuickCheckOKKinds[k]++
			}
		}
	}
	var f *Finding
	for _, k := range j.Kinds() {
		if k == KindCorrupt {
			continue
		}
		rep.DetectedKinds[k]++
		if f == nil {
			f = e.finding(p, j)
		}
		if m := rep.MinimalDetected[k]; m == nil || smaller(f, m) {
			rep.MinimalDetected[k] = f
		}
	}
}

// rates fills in the report's timings: states per second, per minute per
// core by the wall clock, and per CPU-minute.
func (e *Explorer) rates(rep *Report, jr judged) {
	rep.Elapsed = jr.elapsed.Round(time.Millisecond).String()
	rep.PerSecond = float64(rep.States) / jr.elapsed.Seconds()
	cores := min(e.opts.Jobs, runtime.NumCPU())
	rep.PerMinuteCore = rep.PerSecond * 60 / float64(cores)
	rep.CPUSeconds = jr.cpu.Seconds()
	if jr.cpu > 0 {
		rep.PerCPUMinute = float64(rep.States) / jr.cpu.Minutes()
		rep.OpenedPerCPUMinute = float64(rep.Opened) / jr.cpu.Minutes()
	}
}

// cpuTime returns the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cut returns the judgement's view of a planned state's crash point.
func (e *Explorer) cut(p planned) Cut {
	return Cut{T: e.tl.points[p.pi].t, Lying: p.class.Lying()}
}

// sortFindings orders findings smallest first (see smaller).
func sortFindings(fs []*Finding) {
	sort.SliceStable(fs, func(i, j int) bool { return smaller(fs[i], fs[j]) })
}

// smaller orders findings: fewer altered writes, then fewer altered
// bytes, then class, then earlier point.
func smaller(a, b *Finding) bool {
	if na, nb := len(a.Alts)+len(a.DirOps), len(b.Alts)+len(b.DirOps); na != nb {
		return na < nb
	}
	if a.bytes != b.bytes {
		return a.bytes < b.bytes
	}
	if a.Class.rank() != b.Class.rank() {
		return a.Class.rank() < b.Class.rank()
	}
	pa, pb := a.Point, b.Point
	if pa == 0 {
		pa = ^uint64(0)
	}
	if pb == 0 {
		pb = ^uint64(0)
	}
	return pa < pb
}

// finding describes a judged state.
func (e *Explorer) finding(p planned, j Judgement) *Finding {
	pt := e.tl.points[p.pi]
	s := State{Point: pt.seq, Alts: p.alts, Undo: p.undo, Class: p.class}
	f := &Finding{ID: s.ID(), Class: p.class, Point: pt.seq, PointFile: pt.path, Judgement: j,
		Rebuild: RebuildCommand(e.opts.RunDir, s.ID())}
	if p.undo != 0 {
		ui := e.tl.bySeq[p.undo]
		for _, d := range pt.dirOps {
			if d < ui {
				continue
			}
			o := e.rec.Ops[d]
			what := o.Kind.String() + " " + o.Path
			if o.Kind == OpRename {
				what += " -> " + o.To
			}
			f.DirOps = append(f.DirOps, fmt.Sprintf("trace seq %d: %s (lost)", o.Seq, what))
		}
	}
	if pt.seq == 0 {
		f.PointFile = "(end of the recording)"
	}
	for _, a := range p.alts {
		w := e.tl.bySeq[a.Seq]
		o := e.rec.Ops[w]
		d := AltDesc{Seq: a.Seq, Path: o.Path, Off: o.Off, Len: len(o.Data), Synced: !e.tl.volatileAt(p.pi, w)}
		if ps := e.pageSize(); o.Path == e.opts.DB && ps > 0 && o.Off%ps == 0 {
			d.Page = o.Off/ps + 1
		}
		if a.Lost() {
			d.What = "lost"
			f.bytes += len(o.Data)
		} else {
			var kept []string
			cuts := pieces(o.Off, len(o.Data), e.opts.Sector)
			for i, k := range a.Keep {
				if k {
					kept = append(kept, fmt.Sprint(i))
				} else {
					f.bytes += cuts[i+1] - cuts[i]
				}
			}
			d.What = fmt.Sprintf("torn: kept sector pieces %s of %d (%d-byte sectors)", strings.Join(kept, ","), len(a.Keep), e.opts.Sector)
		}
		f.Alts = append(f.Alts, d)
	}
	return f
}

// pageSize returns the main database's page size from its first write or
// snapshot (0 if unknown).
func (e *Explorer) pageSize() int64 {
	hdr := e.rec.Initial[e.opts.DB]
	if len(hdr) < 18 {
		for _, o := range e.rec.Ops {
			if o.Kind == OpWrite && o.Path == e.opts.DB && o.Off == 0 && len(o.Data) >= 18 {
				hdr = o.Data
				break
			}
		}
	}
	if len(hdr) < 18 {
		return 0
	}
	ps := int64(hdr[16])<<8 | int64(hdr[17])
	if ps == 1 {
		ps = 65536
	}
	return ps
}

// shrink tries to drop alterations of failing multi-write states (the
// smallest few) while they keep failing with a common problem kind, and
// re-sorts.
func (e *Explorer) shrink(ctx context.Context, fails []*Finding) []*Finding {
	const maxShrink = 3
	if len(fails) == 0 || len(fails[0].Alts) <= 1 {
		return fails
	}
	tmp, err := os.MkdirTemp(e.tmpParent(), "sqlchaos-shrink-")
	if err != nil {
		return fails
	}
	defer os.RemoveAll(tmp)
	d, err := newJudgeDir(tmp, e.opts.DB, e.ledger, e.x)
	if err != nil {
		return fails
	}
	defer d.close()
	for k := 0; k < min(maxShrink, len(fails)); k++ {
		f := fails[k]
		if len(f.Alts) <= 1 {
			continue
		}
		s, err := ParseID(f.ID)
		if err != nil {
			continue
		}
		pi, ok := e.tl.pointOf(s.Point)
		if !ok {
			continue
		}
		kinds := f.Judgement.Kinds()
		alts := s.Alts
		var last Judgement
		for i := 0; i < len(alts) && len(alts) > 1; {
			try := append(append([]Alt(nil), alts[:i]...), alts[i+1:]...)
			p := planned{pi: pi, alts: try, class: e.tl.classify(pi, try, 0)}
			j, err := e.judgeOne(ctx, d, p)
			if err == nil && j.Verdict == Fail && shares(kinds, j.Kinds()) {
				alts, last = try, j
				continue
			}
			i++
		}
		if len(alts) < len(s.Alts) {
			p := planned{pi: pi, alts: alts, class: e.tl.classify(pi, alts, 0)}
			nf := e.finding(p, last)
			nf.ShrunkFrom = f.ID
			fails[k] = nf
		}
	}
	sortFindings(fails)
	return fails
}

func shares(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// judgeOne builds and judges one state from scratch.
func (e *Explorer) judgeOne(ctx context.Context, d *judgeDir, p planned) (Judgement, error) {
	img, err := e.buildImage(p.pi, p.alts, p.undo)
	if err != nil {
		return Judgement{}, err
	}
	return d.judge(ctx, img, e.cut(p), e.mode), nil
}

// buildImage builds one state's image with a replayer of its own.
func (e *Explorer) buildImage(pi int, alts []Alt, undo uint64) (Image, error) {
	r := newReplayer(e.tl)
	r.advance(e.tl.points[pi].idx)
	return r.build(pi, alts, undo)
}

// parseState parses a state ID and checks it against the recording
// (timeline.validate): it returns the state, with its class set, and its
// point.
func (e *Explorer) parseState(id string) (State, int, error) {
	s, err := ParseID(id)
	if err != nil {
		return s, 0, err
	}
	pi, err := e.tl.validate(&s)
	return s, pi, err
}

// Rebuild builds the image of the state named by id into outDir (which
// must not hold another database's files), judges a private copy of it,
// and returns the finding.
func (e *Explorer) Rebuild(ctx context.Context, id, outDir string) (*Finding, error) {
	s, pi, err := e.parseState(id)
	if err != nil {
		return nil, err
	}
	p := planned{pi: pi, alts: s.Alts, undo: s.Undo, class: s.Class}
	img, err := e.buildImage(pi, p.alts, p.undo)
	if err != nil {
		return nil, err
	}
	if outDir != "" {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return nil, err
		}
		if err := placeFiles(outDir, e.opts.DB, img, false); err != nil {
			return nil, err
		}
	}
	tmp, err := os.MkdirTemp(e.tmpParent(), "sqlchaos-rebuild-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	d, err := newJudgeDir(tmp, e.opts.DB, e.ledger, e.x)
	if err != nil {
		return nil, err
	}
	defer d.close()
	j := d.judge(ctx, img, e.cut(p), e.mode)
	return e.finding(p, j), nil
}

// RebuildCommand is the command that rebuilds a state's image.
func RebuildCommand(runDir, id string) string {
	if abs, err := filepath.Abs(runDir); err == nil {
		runDir = abs
	}
	return fmt.Sprintf("chaosrun crashes %s --state %s --out DIR", shellQuote(runDir), id)
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r == '+' || r == ':' || r == ',' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// SavedState is the file the explorer writes for the minimal failing
// state: RUNDIR/crashes/minimal-state.json, and with --save a copy under
// testdata/found/.
type SavedState struct {
	Run      string   `json:"run"`
	DB       string   `json:"db"`
	Mode     Mode     `json:"mode"`
	Sector   int64    `json:"sector"`
	Seed     int64    `json:"seed"`
	Scenario string   `json:"scenario,omitempty"`
	Profile  string   `json:"profile,omitempty"`
	Driver   string   `json:"driver,omitempty"`
	State    *Finding `json:"state"`
	// Oracle is the oracle's own verdict on the state's image (CrossCheck),
	// or why it could not judge it.
	Oracle      []oracle.Result `json:"oracle,omitempty"`
	OracleError string          `json:"oracle_error,omitempty"`
}

// Save writes the report (RUNDIR/crashes/report.json) and, when a state
// failed, the minimal one with the oracle's second opinion on it
// (RUNDIR/crashes/minimal-state.json; with foundDir set also
// foundDir/crash-<run>-<state>.json). It returns the paths written and
// the saved state (nil when none failed).
func (e *Explorer) Save(rep *Report, foundDir string) ([]string, *SavedState, error) {
	out := filepath.Join(e.opts.RunDir, OutDir)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, nil, err
	}
	var paths []string
	write := func(p string, v any) error {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	}
	if err := write(filepath.Join(out, "report.json"), rep); err != nil {
		return paths, nil, err
	}
	if rep.Minimal == nil {
		os.Remove(filepath.Join(out, "minimal-state.json"))
		return paths, nil, nil
	}
	var meta metaFile
	if b, err := os.ReadFile(filepath.Join(e.opts.RunDir, MetaFile)); err == nil {
		json.Unmarshal(b, &meta)
	}
	abs, _ := filepath.Abs(e.opts.RunDir)
	ss := SavedState{Run: abs, DB: e.opts.DB, Mode: e.mode, Sector: e.opts.Sector, Seed: e.opts.Seed,
		Scenario: meta.Scenario, Profile: meta.Profile, Driver: meta.Driver, State: rep.Minimal}
	if res, err := e.CrossCheck(context.Background(), rep.Minimal.ID); err != nil {
		ss.OracleError = err.Error()
	} else {
		ss.Oracle = res
	}
	if err := write(filepath.Join(out, "minimal-state.json"), ss); err != nil {
		return paths, &ss, err
	}
	if foundDir != "" {
		if err := os.MkdirAll(foundDir, 0o755); err != nil {
			return paths, &ss, err
		}
		name := fmt.Sprintf("crash-%s-%s.json", filepath.Base(abs), strings.NewReplacer("/", "_", ":", "-").Replace(rep.Minimal.ID))
		if err := write(filepath.Join(foundDir, name), ss); err != nil {
			return paths, &ss, err
		}
	}
	return paths, &ss, nil
}

// FoundDir is where --save writes: $SQLCHAOS_FOUND_DIR, else
// testdata/found at the module root (walking up to go.mod from the working
// directory): found.Dir, shared with the properties' found plans.
func FoundDir() string { return found.Dir() }

// OracleCheckers are the oracle checkers CrossCheck runs on a state's
// image: the three the explorer's own judgements mirror.
var OracleCheckers = []string{oracle.Durability, oracle.Resurrection, oracle.Structure}

// CrossCheck judges the image of the state named by id with the oracle's
// own checkers (oracle.Load on a synthesized run directory: meta.json, the
// histories and the trace up to the cut, files/ holding the image) and
// returns their results. It is a second opinion for one state, too slow to
// run per state; the oracle knows nothing of crash points, so it expects
// every commit acknowledged before the cut (even when a fsync lied) and
// treats commits the image holds but nobody acknowledged before the cut
// as unknown (inconclusive rows).
func (e *Explorer) CrossCheck(ctx context.Context, id string) ([]oracle.Result, error) {
	if e.opts.DB != oracle.DBName {
		return nil, fmt.Errorf("the oracle judges %s only, this recording's database is %s", oracle.DBName, e.opts.DB)
	}
	s, pi, err := e.parseState(id)
	if err != nil {
		return nil, err
	}
	cutT := e.tl.points[pi].t
	tmp, err := os.MkdirTemp(e.tmpParent(), "sqlchaos-oracle-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	for _, d := range []string{oracle.HistoriesDir, oracle.FilesDir} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			return nil, err
		}
	}
	meta, err := os.ReadFile(filepath.Join(e.opts.RunDir, MetaFile))
	if err != nil {
		meta = []byte(`{"scenario":"crash-state","ledger":"` + e.ledger + `"}`)
	}
	if err := os.WriteFile(filepath.Join(tmp, oracle.MetaFile), meta, 0o644); err != nil {
		return nil, err
	}
	// Histories and trace up to the cut: what had happened when the power
	// went.
	hs, err := filepath.Glob(filepath.Join(e.opts.RunDir, HistoriesDir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		if err := filterLines(h, filepath.Join(tmp, oracle.HistoriesDir, filepath.Base(h)), cutT); err != nil {
			return nil, err
		}
	}
	if err := filterLines(filepath.Join(e.opts.RunDir, TraceFile), filepath.Join(tmp, oracle.TraceFile), cutT); err != nil {
		return nil, err
	}
	img, err := e.buildImage(pi, s.Alts, s.Undo)
	if err != nil {
		return nil, err
	}
	if err := placeFiles(filepath.Join(tmp, oracle.FilesDir), e.opts.DB, img, false); err != nil {
		return nil, err
	}
	in, err := oracle.Load(tmp)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	var out []oracle.Result
	for _, name := range OracleCheckers {
		if res, ok := oracle.Run(in, name); ok {
			out = append(out, res)
		}
	}
	return out, nil
}

// filterLines copies the JSON lines of src whose "t" is before cutT.
func filterLines(src, dst string, cutT int64) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var out []byte
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		b = rest
		var v struct {
			T int64 `json:"t"`
		}
		if json.Unmarshal(line, &v) != nil || v.T >= cutT {
			continue
		}
		out = append(append(out, line...), '\n')
	}
	return os.WriteFile(dst, out, 0o644)
}
