package faultfs_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
)

// TestHolders: a process holding x.db-wal (and x.db-shm) open while another
// unlinks or truncates it is named in the trace.
func TestHolders(t *testing.T) {
	m := mountWithTrace(t, "")
	wal := filepath.Join(m.Dir(), "x.db-wal")
	shm := filepath.Join(m.Dir(), "x.db-shm")
	os.WriteFile(wal, []byte("frames"), 0o644)
	os.WriteFile(shm, make([]byte, 32768), 0o644)
	pid, release := startHolder(t, wal, "open")
	pid2, release2 := startHolder(t, shm, "open")
	target := filepath.Join(m.Dir(), "z.db-wal")
	os.WriteFile(target, []byte("old"), 0o644)
	pid3, release3 := startHolder(t, target, "open")
	os.WriteFile(filepath.Join(m.Dir(), "tmp"), []byte("new"), 0o644)
	if err := os.Rename(filepath.Join(m.Dir(), "tmp"), target); err != nil {
		t.Fatal(err)
	}
	release3()
	if err := os.Truncate(shm, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(wal); err != nil {
		t.Fatal(err)
	}
	release()
	release2()
	// A file only this process holds names no holder (the caller is not
	// its own holder).
	own := filepath.Join(m.Dir(), "y.db-wal")
	f, err := os.Create(own)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(own); err != nil {
		t.Fatal(err)
	}
	recs := readTrace(t, m)
	u := one(t, find(recs, "unlink", "x.db-wal"), "unlink wal")
	if !slices.Equal(u.Holders, []uint32{uint32(pid)}) || u.Pid != uint32(os.Getpid()) {
		t.Errorf("unlink -wal record %+v; want holders [%d] by pid %d", u, pid, os.Getpid())
	}
	tr := one(t, find(recs, "truncate", "x.db-shm"), "truncate shm")
	if !slices.Equal(tr.Holders, []uint32{uint32(pid2)}) {
		t.Errorf("truncate -shm record %+v; want holders [%d]", tr, pid2)
	}
	rn := one(t, find(recs, "rename", "tmp"), "rename over held wal")
	if rn.To != "z.db-wal" || !slices.Equal(rn.Holders, []uint32{uint32(pid3)}) {
		t.Errorf("rename record %+v; want to=z.db-wal holders [%d]", rn, pid3)
	}
	if u2 := one(t, find(recs, "unlink", "y.db-wal"), "unlink own wal"); len(u2.Holders) != 0 {
		t.Errorf("unlink of a file only the caller holds: %+v", u2)
	}
}

// sqliteHeader returns a 4096-byte page 1 with the given read/write versions.
func sqliteHeader(r, w byte) []byte {
	p := make([]byte, 4096)
	copy(p, "SQLite format 3\x00")
	p[16], p[17] = 0x10, 0x00 // page size 4096
	p[18], p[19] = r, w
	return p
}

// TestHeaderModeFlip: a write over bytes 18-19 of a database header that
// changes them yields a header record with old and new values; one that keeps
// them does not, nor does a torn write that did not reach them.
func TestHeaderModeFlip(t *testing.T) {
	m := mountWithTrace(t, "torn op=write path=h.db keep=10 nth=3 count=1\n")
	os.WriteFile(filepath.Join(m.Backing(), "h.db"), sqliteHeader(2, 2), 0o644)
	f, err := os.OpenFile(filepath.Join(m.Dir(), "h.db"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, v := range []byte{1, 1, 2} { // 2/2 -> 1/1, 1/1 -> 1/1 (no change), torn 1/1 -> 2/2 (not persisted)
		if _, err := f.WriteAt(sqliteHeader(v, v), 0); err != nil {
			t.Fatal(err)
		}
	}
	f.WriteAt([]byte("not at offset 0, not a header"), 100)
	var hs []trace.Record
	for _, r := range readTrace(t, m) {
		if r.Kind == trace.KindHeader {
			hs = append(hs, r)
		}
	}
	h := one(t, hs, "header records")
	if h.Path != "h.db" || h.OldMode != "2/2" || h.NewMode != "1/1" || h.Pid != uint32(os.Getpid()) {
		t.Errorf("header record %+v; want h.db 2/2 -> 1/1", h)
	}
}

// TestKillThenUnmount: SIGKILL the server while a file on the mount is open;
// faultfs.Unmount (what `chaosrun umount` runs) clears the stale mount.
func TestKillThenUnmount(t *testing.T) {
	m := fusetest.Mount(t, faultfs.Config{Seed: 1})
	f, err := os.Create(filepath.Join(m.Dir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	if !mountedIn(t, m.Dir()) {
		t.Fatal("mount vanished on its own; the test does not exercise Unmount")
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, syscall.ENOTCONN) && !errors.Is(err, syscall.ECONNABORTED) {
		t.Errorf("write on dead mount: %v, want ENOTCONN", err)
	}
	if err := faultfs.Unmount(m.Dir()); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	if mountedIn(t, m.Dir()) {
		t.Fatal("still in /proc/mounts after Unmount")
	}
	if err := faultfs.Unmount(m.Dir()); !errors.Is(err, faultfs.ErrNotMounted) {
		t.Fatalf("second Unmount: %v, want ErrNotMounted", err)
	}
	for i := 0; i < 2; i++ {
		if err := m.Stop(); err != nil {
			t.Fatalf("Stop #%d after Kill and Unmount: %v", i+1, err)
		}
	}
	if err := m.Died(); err != nil {
		t.Fatalf("Died after a deliberate Kill: %v", err)
	}
}

// TestDiedReportsCrash: a server killed by someone else is reported by Died,
// and Stop still clears its stale mount.
func TestDiedReportsCrash(t *testing.T) {
	fusetest.Require(t)
	mnt, err := os.MkdirTemp("", "faultfs-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(mnt)
	m, err := faultfs.Start(context.Background(), faultfs.Config{Backing: t.TempDir(), Mountpoint: mnt})
	if err != nil {
		t.Fatal(err)
	}
	if m.Died() != nil {
		t.Fatal("Died while running")
	}
	syscall.Kill(m.Pid(), syscall.SIGKILL)
	<-m.Exited()
	if err := m.Died(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Died = %v, want the kill reported", err)
	}
	if err := m.Stop(); err != nil {
		t.Fatalf("Stop after a crash: %v", err)
	}
	if mountedIn(t, mnt) {
		t.Fatal("stale mount left after Stop")
	}
}

// TestStopIdempotentAndReaps: Stop unmounts, reaps the server (no zombie)
// and returns the same nil on every call.
func TestStopIdempotentAndReaps(t *testing.T) {
	fusetest.Require(t)
	mnt, err := os.MkdirTemp("", "faultfs-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(mnt)
	m, err := faultfs.Start(context.Background(), faultfs.Config{Backing: t.TempDir(), Mountpoint: mnt})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(m.Dir(), "a"), []byte("a"), 0o644)
	t0 := time.Now()
	for i := 0; i < 3; i++ {
		if err := m.Stop(); err != nil {
			t.Fatalf("Stop #%d: %v", i+1, err)
		}
	}
	t.Logf("Stop took %v", time.Since(t0))
	if mountedIn(t, m.Dir()) {
		t.Fatal("still mounted after Stop")
	}
	if err := syscall.Kill(m.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("server pid %d after Stop: kill(0) = %v, want ESRCH (reaped)", m.Pid(), err)
	}
}

// TestStopHungServer: with the server stopped (SIGSTOP) and a reader blocked
// on the mount, Stop goes down the ladder (detach, fusectl abort, SIGKILL):
// the mount goes away and the blocked reader fails instead of hanging.
func TestStopHungServer(t *testing.T) {
	fusetest.Require(t)
	mnt, err := os.MkdirTemp("", "faultfs-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(mnt)
	m, err := faultfs.Start(context.Background(), faultfs.Config{Backing: t.TempDir(), Mountpoint: mnt, StopTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	os.WriteFile(filepath.Join(m.Backing(), "f"), []byte("data"), 0o644)
	if err := syscall.Kill(m.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	cat := exec.Command("cat", filepath.Join(m.Dir(), "f"))
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	catDone := make(chan error, 1)
	go func() { catDone <- cat.Wait() }()
	select {
	case err := <-catDone:
		t.Fatalf("cat finished against a stopped server: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	t0 := time.Now()
	err = m.Stop()
	t.Logf("Stop of a hung server took %v (err %v)", time.Since(t0), err)
	if mountedIn(t, m.Dir()) {
		t.Fatal("still mounted after Stop of a hung server")
	}
	select {
	case err := <-catDone:
		if err == nil {
			t.Fatal("blocked cat succeeded; want it to fail when the connection is aborted")
		}
	case <-time.After(5 * time.Second):
		cat.Process.Kill()
		t.Fatal("blocked cat still hanging 5s after Stop")
	}
	if err := syscall.Kill(m.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("hung server not reaped: %v", err)
	}
}

// TestCleanStale: a mount left behind by a killed server under a root is
// found and cleared; mounts elsewhere are left alone.
func TestCleanStale(t *testing.T) {
	fusetest.Require(t)
	root, err := os.MkdirTemp("", "faultfs-root-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	sub := filepath.Join(root, "run1", "mnt")
	os.MkdirAll(sub, 0o755)
	m := fusetest.Mount(t, faultfs.Config{Mountpoint: sub})
	other := fusetest.Mount(t, faultfs.Config{})
	m.Kill()
	done, err := faultfs.CleanStale(root)
	if err != nil || !slices.Equal(done, []string{m.Dir()}) {
		t.Fatalf("CleanStale = %v, %v; want [%s]", done, err, m.Dir())
	}
	if mountedIn(t, m.Dir()) || !mountedIn(t, other.Dir()) {
		t.Fatal("CleanStale cleared the wrong mounts")
	}
}

// TestStartErrors: a bad plan or a missing directory fails Start with the
// server's own message, and leaves nothing mounted or running.
func TestStartErrors(t *testing.T) {
	fusetest.Require(t)
	mnt := t.TempDir()
	_, err := faultfs.Start(context.Background(), faultfs.Config{Backing: t.TempDir(), Mountpoint: mnt, Plan: "eio op=write\nnonsense\n", Stderr: testLog{t}})
	if err == nil || !strings.Contains(err.Error(), "2:1") {
		t.Fatalf("Start with a bad plan: %v; want the parse error at 2:1", err)
	}
	if mountedIn(t, mnt) {
		t.Fatal("mounted despite the bad plan")
	}
	_, err = faultfs.Start(context.Background(), faultfs.Config{Backing: filepath.Join(mnt, "nope"), Mountpoint: mnt})
	if err == nil {
		t.Fatal("Start with a missing backing dir succeeded")
	}
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) { w.t.Logf("%s", p); return len(p), nil }
