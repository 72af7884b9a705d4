package proctree

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The registry: every process started through Start, and every faultfs
// mount, is recorded in a file named after its anchor, in RegistryDir:
//
//	proc PID START NAME
//	mount "MOUNTPOINT"
//	tmp "DIR"
//
// When an anchor dies without cleaning up (SIGKILL, a crash, a test
// timeout), the next Sweep — run by the next test binary that mounts, the
// next scenario run — finds its file, kills what it recorded that is still
// alive, reaps what became its own zombies (a runner's orphans are
// re-parented to the nearest child subreaper), clears the mounts and
// removes the temporary directories.

// RegistryEnv overrides the registry directory (default
// $TMPDIR/sqlchaos-procs). Children inherit it.
const RegistryEnv = "SQLCHAOS_PROCREG"

// RegistryDir is the directory of the anchor files.
func RegistryDir() string {
	if d := os.Getenv(RegistryEnv); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "sqlchaos-procs")
}

// AnchorFile is the registry file of the anchor "PID:START".
func AnchorFile(anchor string) string {
	return filepath.Join(RegistryDir(), strings.Replace(anchor, ":", "-", 1))
}

// record appends one line to this process's anchor file. Errors are
// returned but callers may ignore them: the registry is a safety net.
func record(line string) error {
	if err := os.MkdirAll(RegistryDir(), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(AnchorFile(Anchor()), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// RecordProc records a started process (already running) under name.
func RecordProc(pid int, name string) error {
	s, ok := ReadStat(pid)
	if !ok {
		return fmt.Errorf("proctree: no process %d to record", pid)
	}
	name = strings.Join(strings.Fields(name), "_")
	if name == "" {
		name = "-"
	}
	return record(fmt.Sprintf("proc %d %d %s", pid, s.Start, name))
}

// RecordMount records a mount point this process's tree mounted.
func RecordMount(mountpoint string) error {
	return record("mount " + strconv.Quote(mountpoint))
}

// RecordTemp records a temporary directory of this process's tree, removed
// by the Sweep after a dead anchor (never while anything is mounted under
// it).
func RecordTemp(dir string) error {
	return record("tmp " + strconv.Quote(dir))
}

// SweepReport says what one Sweep found.
type SweepReport struct {
	Anchors []string // dead anchors whose leftovers were swept ("PID:START")
	Killed  []int    // recorded processes still alive, SIGKILLed
	Reaped  []int    // zombies reaped (they had become this process's children)
	Zombies []int    // zombies left: another process's children (it must reap them)
	Alive   []int    // still alive after SIGKILL and the wait (not removed)
	Mounts  []string // recorded mount points the unmount callback cleared
	Temps   []string // recorded temporary directories removed
}

// Empty reports whether the sweep found nothing to do.
func (r SweepReport) Empty() bool {
	return len(r.Killed)+len(r.Reaped)+len(r.Zombies)+len(r.Alive)+len(r.Mounts)+len(r.Temps) == 0
}

// String is a one-line summary.
func (r SweepReport) String() string {
	return fmt.Sprintf("dead anchors %v: killed %v, reaped %v, zombies left %v, alive %v, mounts %q, temporary dirs %q",
		r.Anchors, r.Killed, r.Reaped, r.Zombies, r.Alive, r.Mounts, r.Temps)
}

// Sweep clears what dead anchors left behind (see the registry above):
// recorded processes still alive get SIGKILL; zombies among them that are
// children of this process are reaped (never any other child: an exec.Cmd
// of this process keeps its exit status); every recorded mount point is
// passed to unmount, which reports whether it was still mounted and cleared
// it (nil: mounts are left alone). An anchor file is removed
// once nothing it recorded is left alive and every unmount succeeded. Live
// anchors are never touched. Sweeps of concurrent processes skip each
// other's files (flock).
func Sweep(unmount func(mountpoint string) (cleared bool, err error)) (SweepReport, error) {
	var rep SweepReport
	ents, err := os.ReadDir(RegistryDir())
	if errors.Is(err, os.ErrNotExist) {
		return rep, nil
	}
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, e := range ents {
		a := strings.Replace(e.Name(), "-", ":", 1)
		pid, start, err := parseAnchor(a)
		if err != nil || Alive(pid, start) {
			continue
		}
		if err := sweepFile(filepath.Join(RegistryDir(), e.Name()), a, unmount, &rep); err != nil {
			errs = append(errs, err)
		}
		rep.Anchors = append(rep.Anchors, a)
	}
	return rep, errors.Join(errs...)
}

type recProc struct {
	pid   int
	start uint64
	name  string
}

// anchorRecord is what one anchor file recorded.
type anchorRecord struct {
	procs         []recProc
	mounts, temps []string
}

// sweepFile sweeps one dead anchor's file (see Sweep): it takes the file's
// lock (another sweep holding it wins), reads what was recorded, adds what
// was started but never recorded, kills and reaps the processes, clears the
// mounts, removes the temporary directories once nothing is left alive and
// every unmount succeeded, and then the file itself.
func sweepFile(path, anchor string, unmount func(string) (bool, error), rep *SweepReport) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil // another sweep has it
	}
	rec := readAnchorFile(f)
	procs := addUnrecorded(anchor, rec.procs)
	left := killAndReap(procs, rep)
	errs := unmountRecorded(rec.mounts, unmount, rep)
	if left == 0 && len(errs) == 0 {
		errs = removeTemps(rec.temps, rep)
	}
	if left == 0 && len(errs) == 0 {
		os.Remove(path)
	}
	return errors.Join(errs...)
}

// readAnchorFile parses an anchor file's lines (see the registry above),
// skipping any it cannot parse.
func readAnchorFile(f *os.File) anchorRecord {
	var rec anchorRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		switch {
		case len(fl) >= 3 && fl[0] == "proc":
			pid, err1 := strconv.Atoi(fl[1])
			start, err2 := strconv.ParseUint(fl[2], 10, 64)
			if err1 == nil && err2 == nil {
				name := ""
				if len(fl) > 3 {
					name = fl[3]
				}
				rec.procs = append(rec.procs, recProc{pid, start, name})
			}
		case len(fl) >= 2 && fl[0] == "mount":
			if m, err := strconv.Unquote(strings.TrimSpace(strings.TrimPrefix(sc.Text(), "mount"))); err == nil {
				rec.mounts = append(rec.mounts, m)
			}
		case len(fl) >= 2 && fl[0] == "tmp":
			if d, err := strconv.Unquote(strings.TrimSpace(strings.TrimPrefix(sc.Text(), "tmp"))); err == nil {
				rec.temps = append(rec.temps, d)
			}
		}
	}
	return rec
}

// addUnrecorded adds to procs what was started but never recorded: a
// process started in the instant its starter died. The live ones still
// name the anchor in their environment; the zombies this process adopted
// are in the process group of a recorded role (workers are never group
// leaders).
func addUnrecorded(anchor string, procs []recProc) []recProc {
	groups := map[int]bool{}
	known := map[int]bool{}
	for _, p := range procs {
		groups[p.pid] = true
		known[p.pid] = true
	}
	for _, pid := range namingAnchor(anchor, groups) {
		if s, ok := ReadStat(pid); ok && !known[pid] {
			procs = append(procs, recProc{pid, s.Start, "unrecorded"})
			known[pid] = true
		}
	}
	for _, c := range Children(os.Getpid()) {
		if c.Zombie() && groups[c.Pgrp] && c.Pid != c.Pgrp && !known[c.Pid] {
			procs = append(procs, recProc{c.Pid, c.Start, "unrecorded"})
			known[c.Pid] = true
		}
	}
	return procs
}

// killAndReap SIGKILLs the processes still alive, then waits (bounded, 5 s)
// for them to exit, reaping those that are this process's zombies, and
// files each in rep (Killed, Reaped, then Alive or Zombies for those left).
// It returns how many are left neither gone nor a zombie.
func killAndReap(procs []recProc, rep *SweepReport) int {
	var pending []recProc
	for _, p := range procs {
		if Alive(p.pid, p.start) {
			syscall.Kill(p.pid, syscall.SIGKILL)
			rep.Killed = append(rep.Killed, p.pid)
		}
		if Same(p.pid, p.start) {
			pending = append(pending, p)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	left := 0
	for {
		pending, left = reapPass(pending, rep)
		if left == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range pending {
		if Alive(p.pid, p.start) {
			rep.Alive = append(rep.Alive, p.pid)
		} else if Same(p.pid, p.start) {
			rep.Zombies = append(rep.Zombies, p.pid)
		}
	}
	return left
}

// reapPass looks once at each pending process: gone ones are dropped, this
// process's zombies reaped (into rep.Reaped). It returns the processes still
// there and how many of them are not (reapable-later) zombies of others.
func reapPass(pending []recProc, rep *SweepReport) (still []recProc, left int) {
	me := os.Getpid()
	for _, p := range pending {
		s, ok := ReadStat(p.pid)
		if !ok || s.Start != p.start {
			continue // gone
		}
		if s.Zombie() && s.Ppid == me {
			var ws unix.WaitStatus
			if got, err := unix.Wait4(p.pid, &ws, unix.WNOHANG, nil); err == nil && got == p.pid {
				rep.Reaped = append(rep.Reaped, p.pid)
				continue
			}
			// A thread-group leader shows Z while its other threads
			// are still exiting; wait4 reaps it only after them.
			left++
		} else if !s.Zombie() {
			left++
		}
		still = append(still, p)
	}
	return still, left
}

// unmountRecorded passes each recorded mount point to unmount (nil: mounts
// are left alone) and files those it cleared in rep.Mounts.
func unmountRecorded(mounts []string, unmount func(string) (bool, error), rep *SweepReport) []error {
	if unmount == nil {
		return nil
	}
	var errs []error
	for _, m := range mounts {
		cleared, err := unmount(m)
		if err != nil {
			errs = append(errs, err)
		}
		if cleared {
			rep.Mounts = append(rep.Mounts, m)
		}
	}
	return errs
}

// removeTemps removes the recorded temporary directories that still exist,
// never one with anything mounted under it, and files them in rep.Temps.
func removeTemps(temps []string, rep *SweepReport) []error {
	var errs []error
	for _, d := range temps {
		if _, err := os.Lstat(d); err != nil {
			continue
		}
		if mountedUnder(d) {
			errs = append(errs, fmt.Errorf("proctree: %s: still mounted under it, not removed", d))
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Temps = append(rep.Temps, d)
	}
	return errs
}

// namingAnchor lists the live processes in one of the process groups
// whose environment names anchor ($SQLCHAOS_ANCHOR=anchor): a worker a
// dispatcher started in the instant it was killed, before it could record
// it. Only members of those groups are read (from their stat), and each
// environment read is bounded: reading /proc/PID/environ takes the
// process's mmap lock, which a process stuck in a page fault on a hung FUSE
// mount can hold for ever.
func namingAnchor(anchor string, groups map[int]bool) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	kv := []byte(AnchorEnv + "=" + anchor + "\x00")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		s, ok := ReadStat(pid)
		if !ok || s.Zombie() || !groups[s.Pgrp] {
			continue
		}
		env, ok := readEnviron(pid, 200*time.Millisecond)
		if ok && (bytes.HasPrefix(env, kv) || bytes.Contains(env, append([]byte{0}, kv...))) {
			out = append(out, pid)
		}
	}
	return out
}

// readEnviron reads /proc/PID/environ, giving up after d (the reading
// goroutine is then left behind, blocked until the kernel lets it go).
func readEnviron(pid int, d time.Duration) ([]byte, bool) {
	ch := make(chan []byte, 1)
	go func() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil {
			b = nil
		}
		ch <- b
	}()
	select {
	case b := <-ch:
		return b, b != nil
	case <-time.After(d):
		return nil, false
	}
}

// mountedUnder reports whether anything is mounted at dir or below it (or
// whether that cannot be told), from /proc/self/mountinfo.
func mountedUnder(dir string) bool {
	ms, err := ReadMountinfo()
	if err != nil {
		return true
	}
	dir = filepath.Clean(dir)
	for _, m := range ms {
		if m.Mountpoint == dir || strings.HasPrefix(m.Mountpoint, dir+"/") {
			return true
		}
	}
	return false
}
