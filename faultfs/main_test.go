package faultfs_test

import (
	"os"
	"testing"

	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}
