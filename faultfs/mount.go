package faultfs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sqlchaos/sqlchaos/internal/proctree"
	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

// Config describes one mount started by Start.
type Config struct {
	Backing    string // existing backing directory
	Mountpoint string // existing empty directory to mount on
	Plan       string // plan text; "" = no rules
	Seed       int64  // seed of every random fault decision
	Trace      string // trace file; "" = no trace
	Control    string // control socket; "" = a temporary path
	Stderr     io.Writer
	// TraceFaultsOnly traces only the operations a rule fired on (and
	// unlinks/renames/truncates with holders); the default traces every op.
	TraceFaultsOnly bool
	// CacheTimeout is the kernel's entry/attr cache timeout. 0 (the default)
	// sends every lookup and stat to the server, so edits of the backing dir
	// are seen at once; 1s saves about 7 of 29 FUSE ops per DELETE-mode
	// commit (none in WAL mode) but may serve stale sizes and dentries.
	CacheTimeout time.Duration
	// CaptureDir, when set, records the bytes of every write and a snapshot
	// of the backing dir there (writes.bin, snapshot/; index records in the
	// trace, which must be set) for offline crash-state exploration
	// (chaosrun crashes). With it empty, $SQLCHAOS_CAPTURE set picks
	// <directory of Trace>/capture.
	CaptureDir string
	// StartTimeout bounds the wait for the "mounted" line (default 15s).
	StartTimeout time.Duration
	// StopTimeout bounds Stop's wait for a graceful exit before it declares
	// the server hung, takes its stacks (SIGQUIT), detaches, aborts and kills
	// (default 5s).
	StopTimeout time.Duration
	// Stacks is the directory where a hung server's goroutine stacks are
	// saved, as faultfs.txt (e.g. RUNDIR/stacks); "" sends them to Stderr.
	Stacks string
}

// Mount is a running faultfs server process.
type Mount struct {
	cfg     Config
	dir     string
	cmd     *child
	proc    *proctree.Child
	client  *Client
	tmp     string      // temp dir of the default socket; "" when Config.Control names one
	tail    *tailBuffer // the server's last output, for start errors
	minor   uint32      // FUSE connection id (minor device number), 0 if unknown
	exited  chan struct{}
	waitErr error

	stopOnce      sync.Once
	stopErr       error
	stopRequested atomic.Bool
	killed        atomic.Bool
}

// child is the server process.
type child struct {
	pid  int
	wait func() error
	kill func(sig syscall.Signal) error
}

// Start starts a faultfs server in a separate process (this binary
// re-executed in role ServerRole with cfg's ServerConfig; main or TestMain
// must call reexec.Init) and waits until it has mounted. ctx bounds the
// start-up only; end the mount with Stop.
//
// The server dies with this process: it is started with Pdeathsig SIGTERM
// (it unmounts on SIGTERM) from proctree's starter thread, it follows this
// process's anchor (proctree.WatchAnchor: SIGTERM, then SIGKILL), and it and
// its mount point are recorded in the anchor's registry, so that the first
// Start of the next process (SweepOrphans) clears a mount that a killed
// process left behind.
func Start(ctx context.Context, cfg Config) (*Mount, error) {
	sweepOnce.Do(func() {
		if rep, err := SweepOrphans(); err != nil || !rep.Empty() {
			fmt.Fprintf(os.Stderr, "faultfs: swept what a dead run left: %v (err %v)\n", rep, err)
		}
	})
	cfg.setDefaults()
	if err := cfg.resolveDirs(); err != nil {
		return nil, err
	}
	var tmp string // only for the default control socket
	if cfg.Control == "" {
		var err error
		if tmp, err = os.MkdirTemp("", "faultfs-"); err != nil {
			return nil, err
		}
		_ = proctree.RecordTemp(tmp)
		cfg.Control = filepath.Join(tmp, "ctl.sock")
	}
	m, ready, err := startServer(cfg, tmp)
	if err != nil {
		os.RemoveAll(tmp) // "" removes nothing
		return nil, err
	}
	if err := m.awaitMounted(ctx, ready); err != nil {
		m.Stop() // removes tmp
		<-m.exited
		msg := strings.TrimSpace(m.tail.String())
		if msg != "" {
			msg = "; server stderr: " + msg
		}
		return nil, fmt.Errorf("faultfs: mount %s: %v%s", cfg.Mountpoint, err, msg)
	}
	return m, nil
}

// setDefaults fills in Stderr and the timeouts.
func (cfg *Config) setDefaults() {
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 15 * time.Second
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 5 * time.Second
	}
}

// resolveDirs makes Backing and Mountpoint absolute, symlinks resolved.
func (cfg *Config) resolveDirs() error {
	var err error
	for _, d := range []*string{&cfg.Backing, &cfg.Mountpoint} {
		if *d == "" {
			return errors.New("faultfs: Config.Backing and Config.Mountpoint are required")
		}
		if *d, err = filepath.Abs(*d); err != nil {
			return err
		}
		// Not yet mounted, so resolving symlinks cannot hang.
		if *d, err = filepath.EvalSymlinks(*d); err != nil {
			return fmt.Errorf("faultfs: %w", err)
		}
	}
	return nil
}

// server is the ServerConfig the server process of cfg is started with.
func (cfg *Config) server() ServerConfig {
	return ServerConfig{
		Backing: cfg.Backing, Mountpoint: cfg.Mountpoint, Plan: cfg.Plan, Seed: cfg.Seed,
		Trace: cfg.Trace, Control: cfg.Control, TraceFaultsOnly: cfg.TraceFaultsOnly,
		Capture: captureDir(cfg), CacheTimeout: cfg.CacheTimeout,
	}
}

// startServer starts the server process of cfg and returns its Mount and
// a channel that gets the outcome of its first stdout line (nil: it said
// "mounted <dir>").
func startServer(cfg Config, tmp string) (*Mount, <-chan error, error) {
	cmd, err := reexec.Command(ServerRole, cfg.server())
	if err != nil {
		return nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	// If this process dies without Stop, the server unmounts on SIGTERM.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	_ = proctree.RecordMount(cfg.Mountpoint)
	tail := &tailBuffer{max: 4096}
	pc, err := proctree.StartChild(cmd, proctree.Options{Name: "faultfs", StacksDir: cfg.Stacks,
		Output: io.MultiWriter(cfg.Stderr, tail)})
	if err != nil {
		return nil, nil, fmt.Errorf("faultfs: start server: %w", err)
	}
	m := &Mount{
		cfg: cfg, dir: cfg.Mountpoint, tmp: tmp, proc: pc, tail: tail,
		exited: make(chan struct{}),
	}
	m.cmd = &child{
		pid:  cmd.Process.Pid,
		kill: func(sig syscall.Signal) error { return cmd.Process.Signal(sig) },
	}
	ready := make(chan error, 1)
	go func() {
		br := bufio.NewReader(stdout)
		line, err := br.ReadString('\n')
		want := "mounted " + cfg.Mountpoint
		switch {
		case err != nil:
			ready <- fmt.Errorf("server exited before mounting: %v", err)
		case strings.TrimSpace(line) != want:
			ready <- fmt.Errorf("server said %q, want %q", strings.TrimSpace(line), want)
		default:
			ready <- nil
		}
		io.Copy(io.Discard, br)
	}()
	go func() {
		<-pc.Done()
		pc.WaitOutput(2 * time.Second) // the tail holds the server's last words
		m.waitErr = pc.Err()
		close(m.exited)
	}()
	return m, ready, nil
}

// awaitMounted waits for the server's "mounted" line (bounded by
// Config.StartTimeout and ctx), then finds the connection and dials the
// control socket.
func (m *Mount) awaitMounted(ctx context.Context, ready <-chan error) error {
	timer := time.NewTimer(m.cfg.StartTimeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-ready:
	case <-timer.C:
		err = fmt.Errorf("no %q line within %v", "mounted", m.cfg.StartTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return err
	}
	m.minor = mountMinor(m.cfg.Mountpoint)
	m.client, err = Dial(m.cfg.Control)
	return err
}

// Pid is the server process's pid.
func (m *Mount) Pid() int { return m.cmd.pid }

// Client is the control client connected at start.
func (m *Mount) Client() *Client { return m.client }

// Dir is the mount point (absolute, symlinks resolved).
func (m *Mount) Dir() string { return m.dir }

// Backing is the backing directory (absolute, symlinks resolved).
func (m *Mount) Backing() string { return m.cfg.Backing }

// TracePath is the trace file, "" if none.
func (m *Mount) TracePath() string { return m.cfg.Trace }

// ControlPath is the control socket.
func (m *Mount) ControlPath() string { return m.cfg.Control }

// Exited is closed when the server process has exited and been reaped.
func (m *Mount) Exited() <-chan struct{} { return m.exited }

// Kill SIGKILLs the server, as a crash would, and waits until it is reaped.
// The mount stays behind (stale); Stop or Unmount clears it. A death caused
// by Kill is not reported by Died.
func (m *Mount) Kill() error {
	m.killed.Store(true)
	err := m.cmd.kill(syscall.SIGKILL)
	<-m.exited
	if errors.Is(err, os.ErrProcessDone) {
		err = nil
	}
	return err
}

// Hung reports a server that did not stop within Config.StopTimeout after
// Stop asked it to: Stop took its stacks with SIGQUIT (saved under
// Config.Stacks) and killed it. nil otherwise.
func (m *Mount) Hung() *proctree.Hang { return m.proc.Hung() }

// Died reports a server that ended badly: a crash or a kill by someone else
// than Kill, or a non-zero exit after Stop asked it to stop (status 1: the
// mount was busy and had to be detached lazily; 66: the race detector fired).
// It is nil while the server runs, after a clean exit, and when Kill or
// Stop's own escalation (SIGKILL of a hung server) ended it.
func (m *Mount) Died() error {
	select {
	case <-m.exited:
	default:
		return nil
	}
	if m.waitErr == nil || m.killed.Load() {
		return nil
	}
	if m.stopRequested.Load() {
		return fmt.Errorf("faultfs: server %d did not stop cleanly: %v", m.cmd.pid, m.waitErr)
	}
	return fmt.Errorf("faultfs: server %d died: %v", m.cmd.pid, m.waitErr)
}

// Stop unmounts and ends the server. It is idempotent and safe to call after
// the server died. The ladder: control "stop" (SIGTERM if the socket does not
// answer), wait up to Config.StopTimeout; then the server is hung (Hung): it
// gets SIGQUIT, which dumps its goroutines into Config.Stacks and ends it
// (the kernel aborts the connection when its /dev/fuse closes), SIGKILL
// after 2 s; then lazy unmount (MNT_DETACH) and fusectl abort of the
// connection, so blocked clients fail instead of hanging; always reaping the
// child. It never stats the mount point, which would hang on a dead server.
// It returns an error only if the mount is still listed afterwards; see Died
// for how the server ended.
func (m *Mount) Stop() error {
	m.stopOnce.Do(func() { m.stopErr = m.stop() })
	return m.stopErr
}

func (m *Mount) stop() error {
	select {
	case <-m.exited:
	default:
		m.stopRequested.Store(true)
		asked := false
		if m.client != nil {
			m.client.Timeout = min(2*time.Second, m.cfg.StopTimeout)
			asked = m.client.Stop() == nil
		}
		if !asked {
			m.cmd.kill(syscall.SIGTERM)
		}
		if !waitClosed(m.exited, m.cfg.StopTimeout) {
			m.killed.Store(true) // our own escalation, not a crash
			m.proc.Quit(fmt.Sprintf("no exit %v after stop", m.cfg.StopTimeout))
			unix.Unmount(m.dir, unix.MNT_DETACH)
			if m.minor != 0 {
				abortConn(m.minor)
			}
			if !waitClosed(m.exited, min(2*time.Second, m.cfg.StopTimeout)) {
				m.cmd.kill(syscall.SIGKILL)
				<-m.exited
			}
		}
	}
	if m.client != nil {
		m.client.Close()
	}
	var err error
	if mountedAt(m.dir) {
		unix.Unmount(m.dir, unix.MNT_DETACH)
		if m.minor != 0 {
			abortConn(m.minor)
		}
		if mountedAt(m.dir) {
			err = fmt.Errorf("faultfs: %s still mounted after stop", m.dir)
		}
	}
	os.RemoveAll(m.tmp)
	return err
}

func waitClosed(c <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c:
		return true
	case <-t.C:
		return false
	}
}

var sweepOnce sync.Once

// SweepOrphans clears what dead anchors (runs, test binaries, chaosrun
// processes killed before they could clean up) left behind, as recorded in
// proctree's registry: it kills their processes still alive, reaps those
// that became this process's zombies, and unmounts (lazily, aborting the
// connection) their faultfs mounts still listed. Live runs are never
// touched. Start calls it once per process; a scenario runner calls it at
// each start.
func SweepOrphans() (proctree.SweepReport, error) {
	return proctree.Sweep(func(mnt string) (bool, error) {
		if !mountedAt(mnt) {
			return false, nil
		}
		if err := Unmount(mnt); err != nil && !errors.Is(err, ErrNotMounted) {
			return false, err
		}
		return true, nil
	})
}

// ErrNotMounted is returned by Unmount for a directory with no FUSE mount.
var ErrNotMounted = errors.New("not a FUSE mount")

// Unmount clears the FUSE mount at dir even when its server is dead or hung:
// lazy unmount, then abort of the FUSE connection through fusectl, so that
// processes blocked on it fail instead of hanging. It does not touch dir.
func Unmount(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	// Resolve symlinks in the parent only: the mount point itself may be a
	// hung FUSE root that any stat would block on.
	if parent, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(parent, filepath.Base(abs))
	}
	ms, err := proctree.ReadMountinfo()
	if err != nil {
		return err
	}
	var found []proctree.MountEntry
	for _, m := range ms {
		if m.Mountpoint == abs && strings.HasPrefix(m.FsType, "fuse") {
			found = append(found, m)
		}
	}
	if len(found) == 0 {
		return fmt.Errorf("%s: %w", abs, ErrNotMounted)
	}
	var errs []error
	for range found {
		if err := unix.Unmount(abs, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
			errs = append(errs, fmt.Errorf("lazy unmount %s: %w", abs, err))
		}
	}
	for _, m := range found {
		if err := abortConn(m.Minor); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CleanStale lazily unmounts every faultfs (fuse.chaosfs) mount at or under
// root, as found in /proc/self/mountinfo, and returns their mount points.
// Harnesses call it at start-up to clear what a crashed run left behind.
func CleanStale(root string) ([]string, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	ms, err := proctree.ReadMountinfo()
	if err != nil {
		return nil, err
	}
	var done []string
	var errs []error
	for i := len(ms) - 1; i >= 0; i-- { // deepest (latest) first
		m := ms[i]
		if m.FsType != "fuse."+FsName {
			continue
		}
		if m.Mountpoint != abs && !strings.HasPrefix(m.Mountpoint, strings.TrimSuffix(abs, "/")+"/") {
			continue
		}
		if err := Unmount(m.Mountpoint); err != nil && !errors.Is(err, ErrNotMounted) {
			errs = append(errs, err)
			continue
		}
		done = append(done, m.Mountpoint)
	}
	return done, errors.Join(errs...)
}

// mountMinor returns the FUSE connection id of the faultfs mount at dir.
func mountMinor(dir string) uint32 {
	ms, err := proctree.ReadMountinfo()
	if err != nil {
		return 0
	}
	var minor uint32
	for _, m := range ms {
		if m.Mountpoint == dir && m.FsType == "fuse."+FsName {
			minor = m.Minor // the last (topmost) one wins
		}
	}
	return minor
}

func mountedAt(dir string) bool {
	ms, err := proctree.ReadMountinfo()
	if err != nil {
		return false
	}
	for _, m := range ms {
		if m.Mountpoint == dir && m.FsType == "fuse."+FsName {
			return true
		}
	}
	return false
}

// fusectlDir is where the fusectl filesystem is (or gets) mounted.
const fusectlDir = "/sys/fs/fuse/connections"

// abortConn aborts FUSE connection minor through fusectl. When fusectl is
// not mounted it mounts it for the abort and unmounts it again afterwards,
// so the ladder leaves no mount behind. A connection that no longer exists
// is not an error. Aborts are serialised within the process so that one
// abort never unmounts fusectl under another.
func abortConn(minor uint32) error {
	if minor == 0 {
		return nil
	}
	fusectlMu.Lock()
	defer fusectlMu.Unlock()
	mounted, err := ensureFusectl()
	if err != nil {
		return err
	}
	if mounted {
		defer unix.Unmount(fusectlDir, unix.MNT_DETACH)
	}
	p := filepath.Join(fusectlDir, strconv.FormatUint(uint64(minor), 10), "abort")
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fusectl abort %d: %w", minor, err)
	}
	defer f.Close()
	if _, err := f.WriteString("1"); err != nil {
		return fmt.Errorf("fusectl abort %d: %w", minor, err)
	}
	return nil
}

var fusectlMu sync.Mutex

// ensureFusectl mounts fusectl on fusectlDir unless it is there already;
// mounted reports whether this call mounted it.
func ensureFusectl() (mounted bool, err error) {
	ms, err := proctree.ReadMountinfo()
	if err != nil {
		return false, err
	}
	for _, m := range ms {
		if m.FsType == "fusectl" && m.Mountpoint == fusectlDir {
			return false, nil
		}
	}
	if err := unix.Mount("fusectl", fusectlDir, "fusectl", 0, ""); err != nil {
		if err == unix.EBUSY {
			return false, nil
		}
		return false, fmt.Errorf("mount fusectl on %s: %w", fusectlDir, err)
	}
	return true, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
