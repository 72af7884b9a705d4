package faultfs_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs"
)

// BenchmarkShellCommit measures one acknowledged commit of the stock
// sqlite3 shell through faultfs (a 300-byte row per transaction), with the
// unsynced-write model off and on, in WAL mode at FULL and at NORMAL. Each
// op is a real commit: run it with -benchtime=500x or so.
func BenchmarkShellCommit(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		for _, track := range []bool{false, true} {
			name := sync + "-model-off"
			if track {
				name = sync + "-model-on"
			}
			b.Run(name, func(b *testing.B) {
				shell := sqliteShell(b)
				backing := b.TempDir()
				prepareDB(b, shell, backing)
				mnt, err := os.MkdirTemp("", "faultfs-bench-mnt-")
				if err != nil {
					b.Fatal(err)
				}
				m, err := faultfs.Start(context.Background(), faultfs.Config{Backing: backing, Mountpoint: mnt, Seed: 1, Stderr: io.Discard})
				if err != nil {
					os.Remove(mnt)
					b.Fatal(err)
				}
				b.Cleanup(func() {
					m.Stop()
					os.Remove(mnt)
				})
				if track {
					if err := m.Track(true); err != nil {
						b.Fatal(err)
					}
				}
				sh := startLoadShell(b, shell, filepath.Join(m.Dir(), "shell.db"), "PRAGMA synchronous="+sync+";")
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if !sh.commit(i+1, 10*time.Second) {
						b.Fatalf("commit %d not acknowledged: %s", i+1, sh.stderr.String())
					}
				}
				b.StopTimer()
				if track {
					st, err := m.PowerState()
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(st.Unsynced.Bytes), "unsynced-B")
				}
			})
		}
	}
}
