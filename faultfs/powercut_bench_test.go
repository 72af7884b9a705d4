package faultfs

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
)

// BenchmarkWritePath measures the server's write path for a 4 KiB write
// (the hook of BenchmarkOpHook plus the backing pwrite) with the
// unsynced-write model off and on. With the model on, every write also
// fstats the file, reads the bytes it overwrites and copies both, and an
// fsync every 16 writes empties the log (a WAL+FULL commit is about 2
// writes and an fsync; NORMAL syncs far less often, so the log grows
// between checkpoints).
func BenchmarkWritePath(b *testing.B) {
	for _, tc := range []struct {
		name  string
		track bool
		every int // writes per fsync
	}{
		{"model-off", false, 16},
		{"model-on-fsync16", true, 16},
		{"model-on-fsync1000", true, 1000},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			f, err := os.OpenFile(filepath.Join(dir, "bench.db-wal"), os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			var st syscall.Stat_t
			syscall.Fstat(int(f.Fd()), &st)
			if err := f.Truncate(16 << 20); err != nil {
				b.Fatal(err)
			}
			s := &server{backing: dir, eng: plan.NewEngine(&plan.Plan{}, 1), stderr: io.Discard}
			s.cut.init()
			if tc.track {
				s.track.enable()
			}
			h := &handle{lf: fs.NewLoopbackFileFromOS(f), base: "bench.db-wal"}
			data := make([]byte, 4096)
			ctx := context.Background()
			b.SetBytes(4096)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				off := int64(i%4096) * 4096
				c := s.begin(ctx, plan.OpWrite, "bench.db-wal", off, 4096)
				nw, errno := s.write(h, st.Ino, "bench.db-wal", 1, data, off)
				c.done(errno, int64(nw))
				if i%tc.every == tc.every-1 {
					s.synced(st.Ino)
				}
			}
		})
	}
}
