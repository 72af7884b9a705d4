package prop

import (
	"flag"
	"os"
	"sync"
	"testing"

	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

var seedFlag = flag.Int64("seed", 0, "seed of every generator (default $"+SeedEnv+", else drawn from the clock)")

func TestMain(m *testing.M) {
	reexec.Init()
	flag.Parse()
	os.Exit(m.Run())
}

var (
	seedOnce sync.Once
	theSeed  int64
	seedFrom string
	seedErr  error
)

// testSeed returns the run's seed and logs it; on failure the test prints
// how to replay it.
func testSeed(t testing.TB) int64 {
	t.Helper()
	seedOnce.Do(func() { theSeed, seedFrom, seedErr = ResolveSeed(*seedFlag) })
	if seedErr != nil {
		t.Fatal(seedErr)
	}
	t.Logf("seed %d (from %s)", theSeed, seedFrom)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay: go test ./prop -run '^%s$' -seed %d   (or %s=%d)", t.Name(), theSeed, SeedEnv, theSeed)
		}
	})
	return theSeed
}
