package bench

import (
	"os"
	"testing"

	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

func TestMain(m *testing.M) {
	reexec.Init() // the faultfs servers are this binary re-executed
	code := m.Run()
	stopShared()
	os.Exit(code)
}
