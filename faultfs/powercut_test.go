package faultfs_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

// pcWriteRole writes 4 KiB blocks to a file (block i filled with byte i)
// and, with "fsync", fsyncs after each; it prints "done i" after each block
// and "error: ..." when a write or fsync fails.
const pcWriteRole = "faultfs-test-pcwrite"

// pcLateRole opens a file, prints "open", waits for a line on stdin, then
// writes one byte at offset 0 and prints "ok" or "error: ERRNO".
const pcLateRole = "faultfs-test-pclate"

func init() {
	reexec.Register(pcWriteRole, func(args []string) int {
		f, err := os.OpenFile(args[0], os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		for i := 0; ; i++ {
			if _, err := f.WriteAt(bytes.Repeat([]byte{byte(i)}, 4096), int64(i)*4096); err != nil {
				fmt.Println("error:", err)
				return 1
			}
			if args[1] == "fsync" {
				if err := f.Sync(); err != nil {
					fmt.Println("error:", err)
					return 1
				}
			}
			fmt.Println("done", i)
			time.Sleep(2 * time.Millisecond)
		}
	})
	reexec.Register(pcLateRole, func(args []string) int {
		f, err := os.OpenFile(args[0], os.O_RDWR, 0)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println("open")
		bufio.NewReader(os.Stdin).ReadString('\n')
		if _, err := f.WriteAt([]byte("L"), 0); err != nil {
			var errno syscall.Errno
			if errors.As(err, &errno) {
				fmt.Println("error:", plan.ErrnoName(errno))
			} else {
				fmt.Println("error:", err)
			}
			return 1
		}
		fmt.Println("ok")
		return 0
	})
}

// role is a helper process whose stdout lines arrive on a channel.
type role struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}
	mu    sync.Mutex
	last  string
}

func startRole(t *testing.T, name string, args ...string) *role {
	t.Helper()
	cmd, err := reexec.Command(name, args)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &role{cmd: cmd, stdin: in, lines: make(chan string, 1<<16), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			r.mu.Lock()
			r.last = sc.Text()
			r.mu.Unlock()
			r.lines <- sc.Text()
		}
		cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-r.done
	})
	return r
}

func (r *role) lastLine() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// waitLine waits for a line with the prefix and returns it.
func (r *role) waitLine(t *testing.T, prefix string, d time.Duration) string {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case l := <-r.lines:
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timer.C:
			t.Fatalf("no line %q within %v (last %q)", prefix, d, r.lastLine())
		}
	}
}

// kill SIGKILLs the role by pid and waits until it is reaped.
func (r *role) kill(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("pid %d did not die within 10s of SIGKILL (blocked in the frozen mount?)", r.cmd.Process.Pid)
	}
}

func records(recs []trace.Record, kind string) []trace.Record {
	var out []trace.Record
	for _, r := range recs {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

// syncDir fsyncs a directory of the mount.
func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", dir, err)
	}
}

// TestPowerCutFreezeAndRecover: a power cut by control request freezes the
// mount — a writer's next write waits, SIGKILL still ends it, a process
// that arrives later waits and gets EIO at the recover — and the recover
// with keep=none leaves every file at its last-synced content: a synced
// file keeps its synced bytes and loses the rest, a file created since the
// last directory fsync disappears, and the trace names every dropped write.
func TestPowerCutFreezeAndRecover(t *testing.T) {
	m := mountWithTrace(t, "")
	if err := m.Track(true); err != nil {
		t.Fatal(err)
	}
	dir := m.Dir()
	// a.db: 8 KiB synced (file and directory), then 4 KiB more unsynced.
	f, err := os.Create(filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	synced := bytes.Repeat([]byte("s"), 8192)
	if _, err := f.Write(synced); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	syncDir(t, dir)
	if _, err := f.WriteAt(bytes.Repeat([]byte("u"), 4096), 4096); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte("x"), 100), 8192); err != nil {
		t.Fatal(err)
	}
	f.Close()
	late := startRole(t, pcLateRole, filepath.Join(dir, "a.db"))
	late.waitLine(t, "open", 10*time.Second)

	// A writer that never fsyncs, on a file created through the mount.
	w := startRole(t, pcWriteRole, filepath.Join(dir, "w.db"), "nosync")
	w.waitLine(t, "done 5", 10*time.Second)
	if err := m.PowerCut(faultfs.PowerCutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := m.PowerCut(faultfs.PowerCutOptions{}); err == nil {
		t.Fatal("a second PowerCut while frozen succeeded")
	}
	st, err := m.PowerState()
	if err != nil || !st.Frozen || st.Cuts != 1 || st.Cut.Trigger != "control" || st.Cut.Keep != "none" || !st.Cut.Tracking {
		t.Fatalf("state after the cut: %+v %v", st, err)
	}
	// The writer stops: its next write waits on the frozen mount.
	before := w.lastLine()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if st, _ := m.PowerState(); st.Blocked >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no op is waiting on the frozen mount")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if after := w.lastLine(); after != before {
		t.Fatalf("the writer went on after the cut: %q then %q", before, after)
	}
	w.kill(t)

	// A process writing now waits too, and fails with EIO at the recover:
	// its write never runs. (It opened the file before the cut: a path
	// lookup that waited would fail too, but the kernel retries a failed
	// revalidation, and the retry sees the recovered files.)
	fmt.Fprintln(late.stdin)
	deadline = time.Now().Add(5 * time.Second)
	for {
		if st, _ := m.PowerState(); st.Blocked >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the late stat does not wait on the frozen mount")
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err := m.Recover()
	if err != nil || res.Errors != "" {
		t.Fatalf("recover: %+v %v", res, err)
	}
	t.Logf("recover: %+v", res)
	if l := late.waitLine(t, "", 10*time.Second); l != "error: EIO" {
		t.Fatalf("the stat that waited on the cut says %q, want error: EIO", l)
	}
	if _, err := m.Recover(); err == nil {
		t.Fatal("a second Recover succeeded")
	}

	got, err := os.ReadFile(filepath.Join(m.Backing(), "a.db"))
	if err != nil || !bytes.Equal(got, synced) {
		t.Fatalf("a.db after recover: %d bytes %v, want its 8192 synced bytes", len(got), err)
	}
	if _, err := os.Stat(filepath.Join(m.Backing(), "w.db")); !os.IsNotExist(err) {
		t.Fatalf("w.db was created after the last directory fsync and must be gone: %v", err)
	}
	if res.DirUndone != 1 || res.Dropped < 8 || res.Kept != 0 || res.Torn != 0 {
		t.Fatalf("recover result %+v: want the create undone, every write dropped", res)
	}

	// The mount works again, and the new content counts as synced.
	if err := os.WriteFile(filepath.Join(dir, "after.db"), []byte("after"), 0o644); err != nil {
		t.Fatalf("write after recover: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "after.db")); err != nil || string(b) != "after" {
		t.Fatalf("read after recover: %q %v", b, err)
	}

	recs := readTrace(t, m)
	cut := records(recs, faultfs.TraceKindPowerCut)
	if len(cut) != 1 || cut[0].Mark != "control" || cut[0].Fault != "powercut keep=none" || cut[0].N < 8 {
		t.Fatalf("powercut records %+v", cut)
	}
	var aDropped, wDropped int
	for _, r := range records(recs, faultfs.TraceKindUnsynced) {
		switch {
		case r.Path == "a.db" && r.Op == "write" && r.Result == faultfs.UnsyncedDropped:
			aDropped++
			if (r.Off != 4096 || r.Len != 4096) && (r.Off != 8192 || r.Len != 100) {
				t.Errorf("unexpected dropped write of a.db: %+v", r)
			}
		case r.Path == "w.db" && r.Op == "write":
			wDropped++
			if r.Pid != uint32(w.cmd.Process.Pid) {
				t.Errorf("w.db write traced with pid %d, the writer was %d", r.Pid, w.cmd.Process.Pid)
			}
		case r.Path == "w.db" && r.Op == "create" && r.Result != faultfs.UnsyncedDropped:
			t.Errorf("create of w.db: %+v", r)
		}
	}
	if aDropped != 2 || wDropped < 6 {
		t.Fatalf("trace: %d dropped writes of a.db (want 2), %d of w.db (want >= 6)", aDropped, wDropped)
	}
	if rec := records(recs, faultfs.TraceKindRecover); len(rec) != 1 {
		t.Fatalf("recover records %+v", rec)
	}
	// Nothing the frozen mount refused ran: no op record of w.db after the cut.
	for _, r := range recs {
		if r.Kind == trace.KindOp && r.Path == "w.db" && r.Seq > cut[0].Seq && r.Op == "write" {
			t.Fatalf("a write of w.db ran after the cut: %+v", r)
		}
	}
}

// TestPowerCutPlanRule: `powercut op=fsync path=p.db nth=3 keep=all` cuts
// instead of the 3rd fsync: the writer acknowledged blocks 0 and 1 only,
// WaitCut reports the rule, the op and the path, and keep=all keeps the
// third block written before the cut. Then a timed cut (`powercut
// after=300ms`) fires on its own.
func TestPowerCutPlanRule(t *testing.T) {
	m := mountWithTrace(t, "powercut op=fsync path=p.db nth=3 keep=all\n")
	w := startRole(t, pcWriteRole, filepath.Join(m.Dir(), "p.db"), "fsync")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ci, err := m.WaitCut(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Trigger != "rule" || ci.Rule != 1 || ci.Op != "fsync" || ci.Path != "p.db" || ci.Pid != uint32(w.cmd.Process.Pid) || ci.Keep != "all" || !ci.Tracking {
		t.Fatalf("cut %+v", ci)
	}
	time.Sleep(100 * time.Millisecond)
	if l := w.lastLine(); l != "done 1" {
		t.Fatalf("the writer's last ack is %q, want done 1 (the 3rd fsync never returns)", l)
	}
	c, err := m.Client().Counters()
	if err != nil || len(c) != 1 || c[0].Fired != 1 {
		t.Fatalf("counters %+v %v", c, err)
	}
	w.kill(t)
	res, err := m.Recover()
	if err != nil || res.Kept < 1 || res.Dropped != 0 {
		t.Fatalf("recover keep=all: %+v %v", res, err)
	}
	got, err := os.ReadFile(filepath.Join(m.Backing(), "p.db"))
	if err != nil || len(got) != 3*4096 || got[2*4096] != 2 {
		t.Fatalf("p.db after keep=all: %d bytes %v; want 3 blocks, the unsynced third kept", len(got), err)
	}

	// A timed cut.
	start := time.Now()
	if err := m.Client().LoadPlan("powercut after=300ms"); err != nil {
		t.Fatal(err)
	}
	ci, err = m.WaitCut(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); ci.Trigger != "timer" || ci.N != 2 || el < 300*time.Millisecond || el > 5*time.Second {
		t.Fatalf("timed cut %+v after %v", ci, el)
	}
	if _, err := m.Recover(); err != nil {
		t.Fatal(err)
	}
	// A timer of a replaced plan never fires.
	if err := m.Client().LoadPlan("powercut after=200ms"); err != nil {
		t.Fatal(err)
	}
	if err := m.Client().Clear(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if st, err := m.PowerState(); err != nil || st.Frozen || st.Cuts != 2 {
		t.Fatalf("state after clearing a timed plan: %+v %v", st, err)
	}
}

// TestFsyncDropUnsynced: `eio op=fsync path=d.db nth=2 count=1
// drop=unsynced` fails the second fsync with EIO and reverts the writes it
// would have made durable, at once; the next fsync succeeds with nothing
// left to sync, and the trace names the dropped writes.
func TestFsyncDropUnsynced(t *testing.T) {
	m := mountWithTrace(t, "eio op=fsync path=d.db nth=2 count=1 drop=unsynced\n")
	f, err := os.Create(filepath.Join(m.Dir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	base := bytes.Repeat([]byte("a"), 4096)
	if _, err := f.Write(base); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("first fsync: %v", err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte("b"), 512), 1024); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte("c"), 4096), 4096); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("second fsync: %v, want EIO", err)
	}
	got, _ := os.ReadFile(filepath.Join(m.Backing(), "d.db"))
	if !bytes.Equal(got, base) {
		t.Fatalf("after the failed fsync the file has %d bytes, want the synced 4096 a's", len(got))
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("third fsync: %v (nothing left to sync)", err)
	}
	var dropped []trace.Record
	for _, r := range records(readTrace(t, m), faultfs.TraceKindUnsynced) {
		if r.Result == faultfs.UnsyncedDropped && r.Path == "d.db" {
			dropped = append(dropped, r)
		}
	}
	if len(dropped) != 2 || dropped[0].Off != 1024 || dropped[0].Len != 512 || dropped[1].Off != 4096 ||
		dropped[0].Rule != 1 || dropped[0].Fault != "eio drop=unsynced" {
		t.Fatalf("dropped records %+v", dropped)
	}
}

// TestTornTailAndSectors: torn from=tail keeps a write's last bytes; torn
// sectors=random keeps the sectors its trace record lists, which are not
// only prefixes.
func TestTornTailAndSectors(t *testing.T) {
	m := mountWithTrace(t, "torn op=write path=t.db keep=1000 from=tail count=1\n"+
		"torn op=write path=s.db sectors=random sector=512 count=6\n")
	for _, name := range []string{"t.db", "s.db"} {
		if err := os.WriteFile(filepath.Join(m.Backing(), name), bytes.Repeat([]byte("A"), 6*4096), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(filepath.Join(m.Dir(), "t.db"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.WriteAt(bytes.Repeat([]byte("B"), 4096), 4096); err != nil || n != 4096 {
		t.Fatalf("torn write reports %d %v, want success", n, err)
	}
	f.Close()
	got, _ := os.ReadFile(filepath.Join(m.Backing(), "t.db"))
	want := bytes.Repeat([]byte("A"), 6*4096)
	copy(want[2*4096-1000:], bytes.Repeat([]byte("B"), 1000))
	if !bytes.Equal(got, want) {
		t.Fatal("torn from=tail did not keep exactly the last 1000 bytes")
	}

	f, err = os.OpenFile(filepath.Join(m.Dir(), "s.db"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	want = bytes.Repeat([]byte("A"), 6*4096)
	for i := 0; i < 6; i++ {
		// Writes of 3000 bytes at an odd offset: partial first and last sectors.
		if _, err := f.WriteAt(bytes.Repeat([]byte{'a' + byte(i)}, 3000), int64(i)*4096+100); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	nonPrefix := 0
	for _, r := range find(readTrace(t, m), "write", "s.db") {
		_, list, ok := strings.Cut(r.Fault, " kept=")
		if !ok || !strings.HasPrefix(r.Fault, "torn sectors=random sector=512 then=ok") {
			t.Fatalf("torn record %+v", r)
		}
		idx, total, _ := strings.Cut(list, "/")
		if total != "7" { // [4096i+100, 4096i+3100) touches sectors 8i .. 8i+6
			t.Fatalf("write %+v spans %s sectors, want 7", r, total)
		}
		i := (r.Off - 100) / 4096
		kept := map[int]bool{}
		var n int64
		if idx != "" {
			for _, k := range strings.Split(idx, ",") {
				ki, _ := strconv.Atoi(k)
				kept[ki] = true
				lo := max(r.Off, (r.Off/512+int64(ki))*512)
				hi := min(r.Off+3000, (r.Off/512+int64(ki)+1)*512)
				copy(want[lo:hi], bytes.Repeat([]byte{'a' + byte(i)}, int(hi-lo)))
				n += hi - lo
			}
		}
		if r.N != n {
			t.Errorf("record %+v: N=%d, the kept sectors hold %d bytes", r, r.N, n)
		}
		for k := 0; k < 7; k++ {
			if kept[k] && k > 0 && !kept[k-1] {
				nonPrefix++
				break
			}
		}
	}
	got, _ = os.ReadFile(filepath.Join(m.Backing(), "s.db"))
	if !bytes.Equal(got, want) {
		t.Fatal("s.db does not hold exactly the sectors the trace lists")
	}
	if nonPrefix == 0 {
		t.Fatal("no torn write kept a non-prefix set of sectors (seed 1)")
	}
}

// TestLostFsync: `lost op=fsync` makes an fsync report success without
// syncing; the writes it should have made durable stay unsynced, and a
// power cut with keep=none loses them although the fsync "succeeded".
func TestLostFsync(t *testing.T) {
	m := mountWithTrace(t, "lost op=fsync path=l.db nth=2 count=1\n")
	if err := m.Track(true); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(m.Dir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syncDir(t, m.Dir())
	if _, err := f.WriteAt([]byte("first"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("SECOND"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("the lost fsync must report success: %v", err)
	}
	if st, err := m.PowerState(); err != nil || st.Unsynced.Writes != 1 {
		t.Fatalf("after the lost fsync: %+v %v; want the second write unsynced", st.Unsynced, err)
	}
	if err := m.PowerCut(faultfs.PowerCutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Recover(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(m.Backing(), "l.db")); string(b) != "first" {
		t.Fatalf("l.db after the cut = %q, want the content of the last real fsync, %q", b, "first")
	}
	w := find(readTrace(t, m), "fsync", "l.db")
	if len(w) != 2 || w[1].Rule != 1 || w[1].Fault != "lost" || w[1].Result != "ok" {
		t.Fatalf("fsync records %+v", w)
	}
}

// TestPowerCutSameSeedSameFiles: through the mount, the same writes and the
// same seed give byte-identical files after a cut with keep=random or
// keep=sectors, and another seed gives other files.
func TestPowerCutSameSeedSameFiles(t *testing.T) {
	run := func(seed int64, keep plan.CutKeep) map[string][]byte {
		m := fusetest.Mount(t, faultfs.Config{Seed: seed})
		if err := m.Track(true); err != nil {
			t.Fatal(err)
		}
		files := []string{"a.db", "a.db-wal"}
		for _, name := range files {
			if err := os.WriteFile(filepath.Join(m.Backing(), name), bytes.Repeat([]byte{'.'}, 64<<10), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var fs []*os.File
		for _, name := range files {
			f, err := os.OpenFile(filepath.Join(m.Dir(), name), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fs = append(fs, f)
		}
		for i := 0; i < 80; i++ {
			f := fs[i%2]
			data := bytes.Repeat([]byte{byte('A' + i%26)}, 700+37*i)
			if _, err := f.WriteAt(data, int64(i*811)%(60<<10)); err != nil {
				t.Fatal(err)
			}
			if i%25 == 24 {
				if err := f.Sync(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := m.PowerCut(faultfs.PowerCutOptions{Keep: keep, Sector: 512}); err != nil {
			t.Fatal(err)
		}
		res, err := m.Recover()
		if err != nil || res.Writes < 10 {
			t.Fatalf("recover: %+v %v", res, err)
		}
		out := map[string][]byte{}
		for _, name := range files {
			out[name], _ = os.ReadFile(filepath.Join(m.Backing(), name))
		}
		return out
	}
	for _, keep := range []plan.CutKeep{plan.CutRandom, plan.CutSectors} {
		a, b, c := run(21, keep), run(21, keep), run(22, keep)
		for name := range a {
			if !bytes.Equal(a[name], b[name]) {
				t.Errorf("keep=%s: seed 21 twice gives different %s", keep, name)
			}
		}
		if bytes.Equal(a["a.db"], c["a.db"]) && bytes.Equal(a["a.db-wal"], c["a.db-wal"]) {
			t.Errorf("keep=%s: seeds 21 and 22 give the same files", keep)
		}
	}
}
