// Package oracle judges a finished sqlchaos run. It reads only what the run
// left behind: the per-process histories, the faultfs trace and copies of
// the database files taken after unmount, which it opens with a fresh,
// fault-free SQLite connection (modernc) on a private copy so that judging
// is repeatable.
//
// Each Checker returns a Result with a three-valued Verdict. Inconclusive
// never counts as a pass: it means the run did not give the checker what it
// needs to decide. Corruption is judged only by the fault-free integrity
// check at the end: a transient read EIO surfaces as SQLITE_CORRUPT while
// nothing is corrupt, so errors in histories are evidence of detection, not
// of damage.
//
// # Where each idea lives
//
// The catalog is one list, all (oracle.go), in report order; each
// checker's name is a constant in names.go, which is how expectations
// name checkers, and its code is check_<name>.go. A checker that predicts
// and then compares keeps the prediction a pure function of the trace and
// histories, table-tested on its own: predictRows (check_resurrection.go),
// predictShortWrites (check_pagecount.go), predictDowngrades
// (check_journal.go). load.go reads a run directory into an Input;
// facts.go derives what the histories and the trace say (acknowledged
// commits, faults fired, surfaced errors); final.go reads the saved
// database; surface.go is the one rule of which error brings which fault
// to light (SurfacingClass, Explains). The record formats are other
// packages': histories are package history (history.Data for an event's
// facts), the trace is faultfs/trace. What a cell's results mean against
// its expectation is package verdict's decision, not the oracle's.
package oracle

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
)

// Verdict is a checker's decision.
type Verdict string

// The three verdicts.
const (
	Pass         Verdict = "pass"
	Fail         Verdict = "fail"
	Inconclusive Verdict = "inconclusive"
)

// Evidence is one fact a verdict rests on: a trace record, a history
// event, a row of the final database or a property of the saved files.
type Evidence struct {
	Source string `json:"source"`        // "trace" | "history" | "db" | "files"
	Seq    uint64 `json:"seq,omitempty"` // trace seq, or commit seq for history/db
	Proc   string `json:"proc,omitempty"`
	Pid    int    `json:"pid,omitempty"`
	T      int64  `json:"t,omitempty"` // CLOCK_MONOTONIC ns
	Text   string `json:"text"`
}

// Result is one checker's verdict with its evidence.
type Result struct {
	Checker  string     `json:"checker"`
	Verdict  Verdict    `json:"verdict"`
	Summary  string     `json:"summary"`
	Evidence []Evidence `json:"evidence,omitempty"`
}

// Meta describes the run; the runner writes it as meta.json.
type Meta struct {
	Scenario string            `json:"scenario"`
	Profile  string            `json:"profile"`
	Driver   string            `json:"driver"`
	Seed     int64             `json:"seed"`
	Plan     string            `json:"plan,omitempty"` // canonical plan text
	Switches map[string]string `json:"switches,omitempty"`
	// Ledger is the commit ledger table; default "chaos_ledger".
	Ledger string `json:"ledger,omitempty"`
	// Bounds tune the time-based checkers; zero fields take defaults.
	Bounds Bounds `json:"bounds,omitempty"`
	// Scale is the run's board clock: board seconds per wall second (0
	// means 1). Windows given in board time are divided by it.
	Scale float64 `json:"scale,omitempty"`
}

// Bounds are the scenario's time and count limits. Zero means the default
// given on each field. Durations are JSON strings such as "1.5s".
type Bounds struct {
	// Liveness: after the faults clear, the board must dispatch again
	// within this long (default 5s).
	Liveness Duration `json:"liveness,omitempty"`
	// SurfaceWindow: an error counts as surfacing a fault when it is
	// recorded at most this long after the fault, in board time (default
	// 30s; see surface.go for the whole rule).
	SurfaceWindow Duration `json:"surface_window,omitempty"`
	// StormSpawns and StormWindow: more than StormSpawns spawns of one task
	// within StormWindow is a respawn storm (defaults 5 and 2s).
	StormSpawns int      `json:"storm_spawns,omitempty"`
	StormWindow Duration `json:"storm_window,omitempty"`
	// MaxDefunct: the most defunct children of a dispatcher tolerated at
	// any tick (default 4).
	MaxDefunct int `json:"max_defunct,omitempty"`
}

func (b Bounds) withDefaults() Bounds {
	def := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	def(&b.Liveness, 5*time.Second)
	def(&b.SurfaceWindow, 30*time.Second)
	def(&b.StormWindow, 2*time.Second)
	if b.StormSpawns == 0 {
		b.StormSpawns = 5
	}
	if b.MaxDefunct == 0 {
		b.MaxDefunct = 4
	}
	return b
}

// Duration is a time.Duration that reads and writes JSON as "1.5s" (a
// number is read as nanoseconds).
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Input is everything a checker may look at.
type Input struct {
	Dir    string
	Events []history.Event // all processes, merged in T order
	Trace  []trace.Record
	// DB is the path of a private copy of the final database (with its
	// -wal/-shm), opened by a fresh fault-free connection; "" when the run
	// saved no database.
	DB   string
	Meta Meta
	// Files is the directory holding the saved files as the run left them
	// (never opened by SQLite).
	Files string
	// Notes records what Load could not read (a missing trace, a
	// truncated line), for reports.
	Notes []string

	missing []string

	once    sync.Once
	f       *facts
	fin     *final
	tmp     string
	results map[string]Result
	mu      sync.Mutex
}

// Checker is one invariant.
type Checker struct {
	Name  string
	Doc   string
	Check func(*Input) Result
}

// all is the catalog of checkers, in report order.
var all []Checker

func init() {
	all = []Checker{journalModeChecker, durabilityChecker, prefixChecker, resurrectionChecker, structureChecker, pageCountChecker,
		sidecarsChecker, errorFidelityChecker, workersChecker, zombiesChecker, livenessChecker, silentChecker}
}

// Checkers returns every checker in report order.
func Checkers() []Checker { return append([]Checker(nil), all...) }

// Judge runs every checker on in.
func Judge(in *Input) []Result {
	var out []Result
	for _, c := range all {
		out = append(out, in.result(c))
	}
	return out
}

// Run runs the checker named name, or returns false when there is none.
func Run(in *Input, name string) (Result, bool) {
	for _, c := range all {
		if c.Name == name {
			return in.result(c), true
		}
	}
	return Result{}, false
}

// result runs c once per Input (the silent checker reuses the data
// checkers' verdicts).
func (in *Input) result(c Checker) Result {
	in.mu.Lock()
	r, ok := in.results[c.Name]
	in.mu.Unlock()
	if ok {
		return r
	}
	if miss := in.Missing(); len(miss) > 0 {
		r = Result{Verdict: Inconclusive, Summary: "the run directory is incomplete (" + strings.Join(miss, "; ") + "): nothing is judged on partial input"}
	} else {
		r = c.Check(in)
	}
	r.Checker = c.Name
	in.mu.Lock()
	if in.results == nil {
		in.results = map[string]Result{}
	}
	in.results[c.Name] = r
	in.mu.Unlock()
	return r
}

func (in *Input) resultOf(name string) Result {
	r, _ := Run(in, name)
	return r
}

// verdictOf folds item verdicts: any fail fails, else any inconclusive is
// inconclusive, else pass.
func worst(vs ...Verdict) Verdict {
	v := Pass
	for _, x := range vs {
		switch x {
		case Fail:
			return Fail
		case Inconclusive:
			v = Inconclusive
		}
	}
	return v
}

// Failed reports whether any result is not a pass, with one line per
// non-passing result, like fstest.TestFS: usable from go test and the CLI.
func Failed(rs []Result) (bool, string) {
	var b strings.Builder
	bad := false
	for _, r := range rs {
		if r.Verdict != Pass {
			bad = true
			fmt.Fprintf(&b, "%s: %s: %s\n", r.Checker, r.Verdict, r.Summary)
		}
	}
	return bad, b.String()
}
