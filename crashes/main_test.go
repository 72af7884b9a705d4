package crashes

import (
	"os"
	"testing"

	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

// TestMain lets faultfs.Start re-execute this test binary as the FUSE
// server (TestCaptureFUSE mounts one).
func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}
