package crashes

import (
	"context"
	"os"
	"testing"
)

func TestZZProf(t *testing.T) {
	e, err := Open(Options{RunDir: os.Getenv("ZZRUN"), Budget: 600, Jobs: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	logReport(t, rep)
}
