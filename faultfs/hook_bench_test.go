package faultfs

import (
	"context"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/faultfs/trace"
)

// BenchmarkOpHook measures what the server adds to every FUSE op besides the
// syscall itself: the engine decision and the trace record.
func BenchmarkOpHook(b *testing.B) {
	var rules strings.Builder
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&rules, "eio op=write path=never%d.db nth=1 count=1\n", i)
	}
	p20, err := plan.Parse(rules.String())
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		p     *plan.Plan
		trace bool
	}{
		{"norules-notrace", &plan.Plan{}, false},
		{"norules-trace", &plan.Plan{}, true},
		{"20rules-notrace", p20, false},
		{"20rules-trace", p20, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := &server{eng: plan.NewEngine(tc.p, 1), stderr: io.Discard}
			if tc.trace {
				s.tr = trace.NewWriter(io.Discard)
				defer s.tr.Close()
			}
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c := s.begin(ctx, plan.OpWrite, "dir/test.db-wal", int64(i)*4096, 4096)
				c.done(syscall.Errno(0), 4096)
			}
		})
	}
}
