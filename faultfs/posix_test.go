package faultfs_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
)

// TestPOSIX is a no-fault conformance pass through one mount, modelled on
// go-fuse's posixtest: each subtest checks what it sees through the mount and,
// where it matters, what landed in the backing directory.
func TestPOSIX(t *testing.T) {
	m := fusetest.Mount(t, faultfs.Config{Seed: 1})
	mnt, back := m.Dir(), m.Backing()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, mnt, back string)
	}{
		{"CreateReadWrite", posixCreateReadWrite},
		{"Append", posixAppend},
		{"Truncate", posixTruncate},
		{"RenameUnlink", posixRenameUnlink},
		{"UnlinkWhileOpen", posixUnlinkWhileOpen},
		{"MkdirReaddir", posixMkdirReaddir},
		{"Fsync", posixFsync},
		{"FcntlLocksTwoProcesses", posixLocks},
		{"MmapShm", posixMmapShm},
		{"LargeFile", posixLargeFile},
		{"Sparse", posixSparse},
		{"Fallocate", posixFallocate},
	} {
		dir := tc.name
		if err := os.Mkdir(filepath.Join(mnt, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, filepath.Join(mnt, dir), filepath.Join(back, dir))
		})
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func posixCreateReadWrite(t *testing.T, mnt, back string) {
	p := filepath.Join(mnt, "a.db")
	if err := os.WriteFile(p, []byte("hello world"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, p); string(got) != "hello world" {
		t.Fatalf("read back %q", got)
	}
	if got := mustRead(t, filepath.Join(back, "a.db")); string(got) != "hello world" {
		t.Fatalf("backing has %q", got)
	}
	st, err := os.Stat(p)
	if err != nil || st.Size() != 11 || st.Mode().Perm() != 0o640 {
		t.Fatalf("stat: %v %v", st, err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("W"), 6); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := f.ReadAt(buf, 6); err != nil || string(buf) != "World" {
		t.Fatalf("pread after pwrite: %q %v", buf, err)
	}
	if _, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); !errors.Is(err, os.ErrExist) {
		t.Fatalf("O_EXCL on existing file: %v", err)
	}
	if _, err := os.Open(filepath.Join(mnt, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open missing: %v", err)
	}
}

func posixAppend(t *testing.T, mnt, back string) {
	p := filepath.Join(mnt, "log-journal")
	for _, s := range []string{"one\n", "two\n", "three\n"} {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if got := mustRead(t, filepath.Join(back, "log-journal")); string(got) != "one\ntwo\nthree\n" {
		t.Fatalf("appended file = %q", got)
	}
}

func posixTruncate(t *testing.T, mnt, back string) {
	p := filepath.Join(mnt, "t.db-wal")
	os.WriteFile(p, bytes.Repeat([]byte("x"), 10000), 0o644)
	if err := os.Truncate(p, 3000); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(back, "t.db-wal")); st == nil || st.Size() != 3000 {
		t.Fatalf("backing size after truncate(path): %v", st)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Size() != 0 {
		t.Fatalf("fstat after ftruncate(0): %d", st.Size())
	}
	if err := f.Truncate(8192); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, p); len(got) != 8192 || !bytes.Equal(got, make([]byte, 8192)) {
		t.Fatalf("extended file is not 8192 zero bytes (len %d)", len(got))
	}
	g, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	if st, _ := os.Stat(p); st.Size() != 0 {
		t.Fatalf("O_TRUNC left %d bytes", st.Size())
	}
}

func posixRenameUnlink(t *testing.T, mnt, back string) {
	a, b := filepath.Join(mnt, "a"), filepath.Join(mnt, "b")
	os.WriteFile(a, []byte("A"), 0o644)
	os.WriteFile(b, []byte("B"), 0o644)
	if err := os.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, b); string(got) != "A" {
		t.Fatalf("rename over: b = %q", got)
	}
	if _, err := os.Stat(a); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("source still there: %v", err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, b, unix.AT_FDCWD, filepath.Join(mnt, "c"), unix.RENAME_NOREPLACE); err != nil {
		t.Fatalf("renameat2 NOREPLACE: %v", err)
	}
	os.WriteFile(a, []byte("A2"), 0o644)
	if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, filepath.Join(mnt, "c"), unix.RENAME_NOREPLACE); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("renameat2 NOREPLACE onto existing: %v, want EEXIST", err)
	}
	for _, n := range []string{"a", "c"} {
		if err := os.Remove(filepath.Join(mnt, n)); err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := os.ReadDir(back); len(ents) != 0 {
		t.Fatalf("backing not empty after unlinks: %v", ents)
	}
	if err := os.Remove(a); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unlink missing: %v", err)
	}
}

func posixUnlinkWhileOpen(t *testing.T, mnt, back string) {
	p := filepath.Join(mnt, "u.db-shm")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("still here")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "still here" {
		t.Fatalf("read of unlinked open file: %q %v", buf, err)
	}
	if st, err := f.Stat(); err != nil || st.Size() != 10 {
		t.Fatalf("fstat of unlinked open file: %v %v", st, err)
	}
}

func posixMkdirReaddir(t *testing.T, mnt, back string) {
	want := []string{"d1", "f1", "f2.db"}
	os.Mkdir(filepath.Join(mnt, "d1"), 0o755)
	os.WriteFile(filepath.Join(mnt, "f1"), nil, 0o644)
	os.WriteFile(filepath.Join(mnt, "f2.db"), nil, 0o644)
	ents, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("readdir = %v, want %v", got, want)
	}
	if !ents[0].IsDir() || ents[1].IsDir() {
		t.Fatalf("types wrong: %v", ents)
	}
	if err := os.Mkdir(filepath.Join(mnt, "d1"), 0o755); !errors.Is(err, os.ErrExist) {
		t.Fatalf("mkdir existing: %v", err)
	}
	if err := os.Remove(filepath.Join(mnt, "d1")); err != nil {
		t.Fatalf("rmdir: %v", err)
	}
	if st, err := os.Stat(filepath.Join(back, "d1")); err == nil {
		t.Fatalf("rmdir left %v in backing", st)
	}
}

func posixFsync(t *testing.T, mnt, back string) {
	f, err := os.Create(filepath.Join(mnt, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("x")
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		t.Fatalf("fdatasync: %v", err)
	}
	d, err := os.Open(mnt)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync dir: %v", err)
	}
}

// posixLocks checks that fcntl locks are kernel-local POSIX locks: another
// process's lock conflicts, F_GETLK names the holder's pid, and the lock goes
// away with the holder.
func posixLocks(t *testing.T, mnt, back string) {
	p := filepath.Join(mnt, "l.db")
	os.WriteFile(p, make([]byte, 4096), 0o644)
	pid, release := startHolder(t, p, "lock")
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: 0, Len: 1}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES) {
		t.Fatalf("F_SETLK against another process's lock: %v, want EAGAIN", err)
	}
	probe := syscall.Flock_t{Type: syscall.F_RDLCK, Whence: io.SeekStart, Start: 100, Len: 1}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &probe); err != nil {
		t.Fatal(err)
	}
	if probe.Type != syscall.F_WRLCK || probe.Pid != int32(pid) {
		t.Fatalf("F_GETLK = type %d pid %d, want F_WRLCK by %d", probe.Type, probe.Pid, pid)
	}
	release()
	lk = syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		t.Fatalf("F_SETLK after the holder exited: %v", err)
	}
	// POSIX: closing any fd of this process on the file drops its locks.
	g, _ := os.Open(p)
	g.Close()
	pid2, release2 := startHolder(t, p, "lock")
	release2()
	if pid2 == 0 {
		t.Fatal("second holder did not start")
	}
}

// posixMmapShm maps a -shm file shared from two descriptors (as two SQLite
// connections do) and checks both mappings and read(2) see the same bytes.
func posixMmapShm(t *testing.T, mnt, back string) {
	p := filepath.Join(mnt, "m.db-shm")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 32768
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	m1, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap -shm: %v", err)
	}
	defer unix.Munmap(m1)
	g, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	m2, err := unix.Mmap(int(g.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m2)
	copy(m1[100:], "shared")
	m2[20000] = 0x5a
	if string(m2[100:106]) != "shared" || m1[20000] != 0x5a {
		t.Fatal("two shared mappings of the -shm file do not see each other")
	}
	if err := unix.Msync(m1, unix.MS_SYNC); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := g.ReadAt(buf, 100); err != nil || string(buf) != "shared" {
		t.Fatalf("read(2) after msync: %q %v", buf, err)
	}
	if got := mustRead(t, filepath.Join(back, "m.db-shm")); len(got) != size || string(got[100:106]) != "shared" || got[20000] != 0x5a {
		t.Fatalf("backing -shm does not have the mapped writes")
	}
}

func posixLargeFile(t *testing.T, mnt, back string) {
	data := make([]byte, 8<<20+123)
	rand.New(rand.NewSource(1)).Read(data)
	p := filepath.Join(mnt, "big.db")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if got := sha256.Sum256(mustRead(t, p)); got != want {
		t.Fatal("large file read through the mount differs")
	}
	if got := sha256.Sum256(mustRead(t, filepath.Join(back, "big.db"))); got != want {
		t.Fatal("large file in the backing dir differs")
	}
}

func posixSparse(t *testing.T, mnt, back string) {
	p := filepath.Join(mnt, "sparse.db")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const off = 1 << 30
	if _, err := f.WriteAt([]byte("tail"), off); err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil || st.Size() != off+4 {
		t.Fatalf("size %v %v", st, err)
	}
	buf := make([]byte, 4096)
	if _, err := f.ReadAt(buf, 12345); err != nil || !bytes.Equal(buf, make([]byte, 4096)) {
		t.Fatalf("hole does not read as zeros: %v", err)
	}
	var bst syscall.Stat_t
	syscall.Stat(filepath.Join(back, "sparse.db"), &bst)
	if bst.Blocks*512 > 1<<20 {
		t.Fatalf("backing file is not sparse: %d bytes allocated", bst.Blocks*512)
	}
	if pos, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_DATA); err != nil || pos < off-4096 {
		t.Fatalf("SEEK_DATA = %d, %v; want near %d", pos, err, off)
	}
}

func posixFallocate(t *testing.T, mnt, back string) {
	f, err := os.Create(filepath.Join(mnt, "fa.db-wal"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, 1<<20); err != nil {
		t.Fatalf("fallocate: %v", err)
	}
	if st, _ := os.Stat(filepath.Join(back, "fa.db-wal")); st == nil || st.Size() != 1<<20 {
		t.Fatalf("backing size after fallocate: %v", st)
	}
}
