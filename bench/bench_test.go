package bench

import (
	"context"
	"testing"
)

func TestRunBareSmall(t *testing.T) {
	rep, err := Run(context.Background(), Options{N: 50, Repeat: 1, Targets: []string{Bare}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 8 {
		t.Fatalf("got %d rows, want 8", len(rep.Rows))
	}
	for _, r := range rep.Rows {
		if r.Rates[Bare].Median <= 0 {
			t.Fatalf("%+v: no rate", r)
		}
	}
}
