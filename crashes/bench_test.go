package crashes

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
)

// BenchmarkCaptureOverhead measures what capture mode costs a writer: two
// mounts at once, both with the full op trace, one also capturing; rounds
// of 200 commits (1 KiB rows) alternate between them, WAL and DELETE at
// synchronous=FULL, and the median per-round ratio capture/trace of
// commits/s is reported (interleaving, because on a shared machine the
// spread between runs one after another exceeds the effect).
//
//	go test -run '^$' -bench CaptureOverhead -benchtime 1x ./crashes/
func BenchmarkCaptureOverhead(b *testing.B) {
	fusetest.Require(b)
	for _, mode := range []string{"WAL", "DELETE"} {
		b.Run(mode, func(b *testing.B) {
			mount := func(capture bool) (string, string) {
				run := b.TempDir()
				cfg := faultfs.Config{Backing: b.TempDir(), Trace: filepath.Join(run, TraceFile)}
				if capture {
					cfg.CaptureDir = filepath.Join(run, "capture")
				}
				mnt, err := os.MkdirTemp("", "faultfs-bench-")
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { os.Remove(mnt) })
				cfg.Mountpoint = mnt
				m, err := faultfs.Start(b.Context(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { m.Stop() })
				return filepath.Join(mnt, "kanban.db"), run
			}
			paths := map[bool]string{}
			runs := map[bool]string{}
			for _, c := range []bool{false, true} {
				paths[c], runs[c] = mount(c)
				db := openDB(b, paths[c], "PRAGMA journal_mode="+mode, "PRAGMA synchronous=FULL")
				if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)`); err != nil {
					b.Fatal(err)
				}
				db.Close()
			}
			const perRound = 200
			var ratios []float64
			rates := map[bool][]float64{}
			for i := 0; i < 6*b.N; i++ {
				for _, c := range []bool{i%2 == 0, i%2 != 0} {
					db := openDB(b, paths[c], "PRAGMA synchronous=FULL")
					start := time.Now()
					for k := 0; k < perRound; k++ {
						if _, err := db.Exec(`INSERT INTO t(body) VALUES (randomblob(1024))`); err != nil {
							b.Fatal(err)
						}
					}
					rates[c] = append(rates[c], perRound/time.Since(start).Seconds())
					db.Close()
				}
				n := len(rates[true])
				ratios = append(ratios, rates[true][n-1]/rates[false][n-1])
			}
			med := func(v []float64) float64 {
				v = append([]float64(nil), v...)
				sort.Float64s(v)
				return v[len(v)/2]
			}
			b.ReportMetric(med(rates[false]), "commits/s-trace")
			b.ReportMetric(med(rates[true]), "commits/s-capture")
			b.ReportMetric(med(ratios), "capture/trace")
			st, _ := os.Stat(filepath.Join(runs[true], "capture", "writes.bin"))
			tr, _ := os.Stat(filepath.Join(runs[true], TraceFile))
			if st != nil && tr != nil {
				b.ReportMetric(float64(st.Size())/float64(len(rates[true])*perRound), "writes.bin-B/commit")
				b.ReportMetric(float64(tr.Size())/float64(len(rates[true])*perRound), "trace-B/commit")
			}
			b.Log(fmt.Sprintf("%s ratios: %s", mode, strings.Trim(fmt.Sprint(ratios), "[]")))
		})
	}
}
