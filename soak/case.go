package soak

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"iter"
	"math"
	"strconv"
	"strings"

	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/scenarios"
)

// Cell is one (scenario, profile, driver) triple of the matrix.
type Cell struct {
	Scenario string `json:"scenario"`
	Profile  string `json:"profile"`
	Driver   string `json:"driver"`
}

// String names the cell as the matrix does: scenario/profile/driver.
func (c Cell) String() string { return c.Scenario + "/" + c.Profile + "/" + c.Driver }

// Case is one cell run under one seed: the unit a shard runs.
type Case struct {
	Cell
	Seed int64 `json:"seed"`
}

// Name is the case's directory name under a shard's output directory:
// scenario-profile-driver-seed.
func (c Case) Name() string {
	return fmt.Sprintf("%s-%s-%s-%d", c.Scenario, c.Profile, c.Driver, c.Seed)
}

// String names the case for people: cell and seed.
func (c Case) String() string { return fmt.Sprintf("%s seed %d", c.Cell, c.Seed) }

// Drivers are the SQLite drivers a case can run under.
var Drivers = []string{"modernc", "mattn"}

// Filter narrows the catalog the way `chaosrun matrix` does: Scenarios
// empty means all, Profiles empty means each scenario's own matrix
// profiles, Drivers empty means both.
type Filter struct {
	Scenarios []string
	Profiles  []string
	Drivers   []string
}

// Cells lists the filter's cells from the scenario catalog in matrix order
// (catalog order, then profile, then driver). Unknown names are errors.
func Cells(f Filter) ([]Cell, error) {
	var scs []*scenarios.Scenario
	if len(f.Scenarios) == 0 {
		scs = scenarios.All()
	}
	for _, n := range f.Scenarios {
		sc, ok := scenarios.Lookup(n)
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q (see chaosrun list)", n)
		}
		scs = append(scs, sc)
	}
	for _, p := range f.Profiles {
		if _, err := kanbancore.ProfileByName(p); err != nil {
			return nil, err
		}
	}
	drivers := f.Drivers
	if len(drivers) == 0 {
		drivers = Drivers
	}
	for _, d := range drivers {
		if d != "modernc" && d != "mattn" {
			return nil, fmt.Errorf("unknown driver %q (want modernc or mattn)", d)
		}
	}
	var out []Cell
	seen := map[Cell]bool{}
	for _, sc := range scs {
		profiles := f.Profiles
		if len(profiles) == 0 {
			profiles = sc.MatrixProfiles()
		}
		for _, p := range profiles {
			for _, d := range drivers {
				c := Cell{sc.Name, p, d}
				if !seen[c] {
					seen[c] = true
					out = append(out, c)
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the filter leaves no cell to run")
	}
	return out, nil
}

// Seeds is a seed range: First..Last inclusive, or First.. without end
// (Open) for a soak bounded by its budget alone.
type Seeds struct {
	First, Last int64
	Open        bool
}

// ParseSeeds reads "A..B" (inclusive), "A.." (open) or "A" (one seed).
func ParseSeeds(s string) (Seeds, error) {
	lo, hi, ranged := strings.Cut(strings.TrimSpace(s), "..")
	first, err := strconv.ParseInt(lo, 10, 64)
	if err != nil {
		return Seeds{}, fmt.Errorf("seeds %q: want A..B, A.. or A with integer seeds", s)
	}
	if !ranged {
		return Seeds{First: first, Last: first}, nil
	}
	if hi == "" {
		return Seeds{First: first, Open: true}, nil
	}
	last, err := strconv.ParseInt(hi, 10, 64)
	if err != nil {
		return Seeds{}, fmt.Errorf("seeds %q: want A..B, A.. or A with integer seeds", s)
	}
	if last < first {
		return Seeds{}, fmt.Errorf("seeds %q: the range ends before it starts", s)
	}
	return Seeds{First: first, Last: last}, nil
}

// String writes the range back in ParseSeeds form.
func (s Seeds) String() string {
	if s.Open {
		return fmt.Sprintf("%d..", s.First)
	}
	return fmt.Sprintf("%d..%d", s.First, s.Last)
}

// Count is the number of seeds in a closed range (MaxInt64 when open).
func (s Seeds) Count() int64 {
	if s.Open || s.Last-s.First == math.MaxInt64 {
		return math.MaxInt64
	}
	return s.Last - s.First + 1
}

// Shard is one of Count shards of a soak, Index counting from 0 (as a
// Kubernetes Indexed Job's JOB_COMPLETION_INDEX does).
type Shard struct {
	Index, Count int
}

// ParseShard reads "I/N" with 0 <= I < N.
func ParseShard(s string) (Shard, error) {
	i, n, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want I/N, e.g. 0/4", s)
	}
	idx, err1 := strconv.Atoi(i)
	cnt, err2 := strconv.Atoi(n)
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: want I/N with integers, e.g. 0/4", s)
	}
	return NewShard(idx, cnt)
}

// NewShard checks 0 <= index < count.
func NewShard(index, count int) (Shard, error) {
	if count < 1 {
		return Shard{}, fmt.Errorf("shard count %d: want at least 1", count)
	}
	if index < 0 || index >= count {
		return Shard{}, fmt.Errorf("shard index %d out of range for %d shards (indexes count from 0: 0..%d)", index, count, count-1)
	}
	return Shard{index, count}, nil
}

// String writes the shard as I/N.
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Partition names the partition function, recorded in shard.json so that a
// merge can refuse shards cut by a different one.
const Partition = "fnv1a64+splitmix64 mod N"

// Owner returns the shard index, in 0..n-1, that runs case c.
//
// A case belongs to the shard its own hash points at, not to a position in
// a list: each shard decides alone, with no coordination and no shared case
// list, and a case lands on the same shard whatever else is being run (other
// scenarios, other seed ranges, a catalog that grew). Round-robin over the
// sorted list would balance counts exactly, but it hands a shard the same
// cells every seed whenever N divides the cell count (56 cells over 4, 7 or
// 8 shards), so one shard would get every slow cell; the hash mixes cells
// across shards, and counts balance to within a few percent once a shard has
// hundreds of cases. It also works for an open seed range.
func Owner(c Case, n int) int {
	h := fnv.New64a()
	h.Write([]byte(c.Scenario))
	h.Write([]byte{0})
	h.Write([]byte(c.Profile))
	h.Write([]byte{0})
	h.Write([]byte(c.Driver))
	h.Write([]byte{0})
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(c.Seed))
	h.Write(b[:])
	// splitmix64's finaliser: FNV's low bits are weak for small moduli.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return int(x % uint64(n))
}

// Cases yields, in run order, the cases of cells × seeds that shard sh
// owns: seed by seed, each seed's cells in the given order, so a budget
// that ends the soak early leaves whole seeds behind rather than whole
// cells. An open range never ends; the caller stops ranging.
func Cases(cells []Cell, seeds Seeds, sh Shard) iter.Seq[Case] {
	return func(yield func(Case) bool) {
		for seed := seeds.First; ; seed++ {
			for _, cell := range cells {
				c := Case{cell, seed}
				if Owner(c, sh.Count) == sh.Index && !yield(c) {
					return
				}
			}
			if !seeds.Open && seed == seeds.Last || seed == math.MaxInt64 {
				return
			}
		}
	}
}
