package prop

import (
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"time"

	"github.com/sqlchaos/sqlchaos/internal/found"
)

// Environment variables read by the properties (make soak sets the first).
const (
	// SoakEnv=1 lifts the bounds: many cases, long shrinks.
	SoakEnv = "SQLCHAOS_SOAK"
	// SeedEnv sets gopter's seed (the -seed flag wins over it).
	SeedEnv = "SQLCHAOS_SEED"
	// CasesEnv overrides the number of generated cases per property.
	CasesEnv = "SQLCHAOS_PROP_CASES"
	// RerunsEnv overrides how often a failure is re-run to count how many
	// attempts reproduce it.
	RerunsEnv = "SQLCHAOS_PROP_RERUNS"
	// FoundEnv names the directory failures are saved to (default
	// testdata/found at the module root).
	FoundEnv = found.Env
)

// Budget bounds one property run.
type Budget struct {
	Cases      int           // generated cases to try
	ShrinkRuns int           // most property evaluations spent shrinking
	ShrinkTime time.Duration // most wall time spent shrinking
	Reruns     int           // re-runs of the shrunk failure (cross-process timing)
	// MinRepro, when > 0, is the fraction of re-runs the reported case must
	// fail: a shrunk case that reproduces less often is given up for the
	// shrink step before it (bigger, but reliable), at most MaxBack times.
	MinRepro float64
	MaxBack  int
}

// Mode is how long the properties run.
type Mode int

// The three modes.
const (
	ModeShort Mode = iota // go test -short: a handful of cases
	ModeCI                // go test: a few more
	ModeSoak              // SQLCHAOS_SOAK=1 (make soak): long
)

func (m Mode) String() string {
	return [...]string{"short", "ci", "soak"}[m]
}

// CurrentMode returns ModeSoak when SQLCHAOS_SOAK=1, else ModeShort under
// -short, else ModeCI.
func CurrentMode(short bool) Mode {
	if os.Getenv(SoakEnv) == "1" {
		return ModeSoak
	}
	if short {
		return ModeShort
	}
	return ModeCI
}

// Scale picks a budget by mode: the short, CI and soak budgets of one
// property. SQLCHAOS_PROP_CASES and SQLCHAOS_PROP_RERUNS override theirs.
func Scale(m Mode, short, ci, soak Budget) Budget {
	b := [...]Budget{short, ci, soak}[m]
	if n, err := strconv.Atoi(os.Getenv(CasesEnv)); err == nil && n > 0 {
		b.Cases = n
	}
	if n, err := strconv.Atoi(os.Getenv(RerunsEnv)); err == nil && n >= 0 {
		b.Reruns = n
	}
	return b
}

// ResolveSeed returns the seed to use: flagSeed when set (non-zero), else
// $SQLCHAOS_SEED, else one drawn from the clock. from says which.
func ResolveSeed(flagSeed int64) (seed int64, from string, err error) {
	if flagSeed != 0 {
		return flagSeed, "-seed", nil
	}
	if v := os.Getenv(SeedEnv); v != "" && v != "random" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, "", fmt.Errorf("prop: %s=%q: want an integer, or random for a seed from the clock", SeedEnv, v)
		}
		return s, SeedEnv, nil
	}
	s := time.Now().UnixNano() & (1<<53 - 1) // printable, and exact as a JSON number
	if s == 0 {
		s = 1
	}
	return s, "clock", nil
}

// CaseSeed derives the seed of case i of a property run with seed, so that
// every case can be regenerated on its own (and a fuzz input, a seed, maps
// to exactly one case).
func CaseSeed(seed int64, name string, i int) int64 {
	h := fnv.New64a()
	var b [16]byte
	for k := 0; k < 8; k++ {
		b[k] = byte(uint64(seed) >> (8 * k))
		b[8+k] = byte(uint64(i) >> (8 * k))
	}
	h.Write(b[:])
	h.Write([]byte(name))
	return int64(h.Sum64() & (1<<53 - 1))
}
