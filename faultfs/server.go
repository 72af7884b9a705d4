package faultfs

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

// ServerRole is the reexec role under which Start runs the server.
const ServerRole = "faultfs-server"

// FsName is the filesystem name of every faultfs mount; /proc/mounts lists
// it with type "fuse.chaosfs".
const FsName = "chaosfs"

func init() {
	reexec.Register(ServerRole, Serve)
}

// server is the state of one mounted faultfs.
type server struct {
	backing, mountpoint string
	seed                int64
	eng                 *plan.Engine
	tr                  *trace.Writer
	faultsOnly          bool
	directIO            bool
	stderr              io.Writer
	pids                pidCache
	track               tracker  // the unsynced-write model
	cut                 cutState // the power cut and the freeze

	mu      sync.Mutex
	open    map[*fs.Inode]map[*handle]struct{}
	trErr   error
	planMu  sync.Mutex // serialises plan loads with their trace records
	stopReq chan struct{}
	stopOne sync.Once
}

func (s *server) newHandle(fh fs.FileHandle, ino *fs.Inode, pid uint32, p string) *handle {
	h := &handle{lf: fh.(*fs.LoopbackFile), ino: ino, pid: pid, base: path.Base(p)}
	s.mu.Lock()
	set := s.open[ino]
	if set == nil {
		set = map[*handle]struct{}{}
		s.open[ino] = set
	}
	set[h] = struct{}{}
	s.mu.Unlock()
	return h
}

func (s *server) dropHandle(h *handle) {
	s.mu.Lock()
	if set := s.open[h.ino]; set != nil {
		delete(set, h)
		if len(set) == 0 {
			delete(s.open, h.ino)
		}
	}
	s.mu.Unlock()
}

// holders returns the sorted pids other than except holding ino open.
func (s *server) holders(ino *fs.Inode, except uint32) []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pids []uint32
	for h := range s.open[ino] {
		if h.pid != except && !slices.Contains(pids, h.pid) {
			pids = append(pids, h.pid)
		}
	}
	slices.Sort(pids)
	return pids
}

func mergePids(a, b []uint32) []uint32 {
	for _, p := range b {
		if !slices.Contains(a, p) {
			a = append(a, p)
		}
	}
	slices.Sort(a)
	return a
}

func (s *server) traceRecord(r trace.Record) {
	if s.tr == nil {
		return
	}
	if _, err := s.tr.Write(r); err != nil {
		s.mu.Lock()
		first := s.trErr == nil
		s.trErr = err
		s.mu.Unlock()
		if first {
			fmt.Fprintf(s.stderr, "faultfs: trace: %v\n", err)
		}
	}
}

// loadPlan installs p and writes a plan record with its canonical text. A
// plan with a powercut or drop=unsynced rule switches the unsynced-write
// model on (what is on the backing now counts as synced), and each timed
// powercut rule gets its timer. A plan the engine refuses (an unbound
// template) changes nothing and is returned as an error.
func (s *server) loadPlan(p *plan.Plan) error {
	s.planMu.Lock()
	defer s.planMu.Unlock()
	if err := s.eng.Load(p); err != nil {
		return err
	}
	if needsTracking(p) {
		s.track.enable()
	}
	s.armTimers(p, s.eng.Generation())
	s.traceRecord(trace.Record{Kind: trace.KindPlan, Plan: p.String()})
	return nil
}

func (s *server) requestStop() {
	s.stopOne.Do(func() { close(s.stopReq) })
}

// ServerConfig is what one faultfs server serves: everything the flags of
// `chaosrun mount` say (cmd/chaosrun parses them into it), and the spec
// Start hands the server process it re-executes (role ServerRole).
type ServerConfig struct {
	Backing    string `json:"backing"`             // backing directory (must exist)
	Mountpoint string `json:"mountpoint"`          // mount point (must exist, an empty directory)
	PlanFile   string `json:"plan_file,omitempty"` // fault plan file; "" = Plan
	Plan       string `json:"plan,omitempty"`      // fault plan text when PlanFile is ""; "" = no rules
	Seed       int64  `json:"seed"`                // seed of every random fault decision
	// ClockSeed replaces Seed by one drawn from the clock, printed on
	// stderr (`chaosrun mount` without --seed).
	ClockSeed bool   `json:"clock_seed,omitempty"`
	Trace     string `json:"trace,omitempty"`   // op trace (JSONL) file; "" = none
	Control   string `json:"control,omitempty"` // control socket to listen on; "" = none
	// TraceFaultsOnly traces only the operations a rule fired on (and
	// holders).
	TraceFaultsOnly bool `json:"trace_faults_only,omitempty"`
	// TrackUnsynced keeps the unsynced-write model from the start (a power
	// cut by control request needs it; a plan with a powercut or
	// drop=unsynced rule switches it on by itself).
	TrackUnsynced bool `json:"track_unsynced,omitempty"`
	// NoDirectIO opens db/wal/journal files page-cached (faults become
	// unreliable; for benchmarks).
	NoDirectIO bool `json:"no_direct_io,omitempty"`
	Debug      bool `json:"debug,omitempty"` // log every FUSE request on stderr
	// Capture records every write's bytes and a snapshot of the backing dir
	// in this directory (needs the full Trace); "" = no capture.
	Capture string `json:"capture,omitempty"`
	// CacheTimeout is the kernel's entry/attr cache timeout (0: every
	// lookup/stat reaches the server).
	CacheTimeout time.Duration `json:"cache_timeout,omitempty"`
}

// Serve is the server's main: it checks cfg, mounts, serves until asked to
// stop (SIGINT, SIGTERM or the control command "stop"), unmounts, and
// returns the exit status: 0 after a clean unmount, 1 when the mount or the
// unmount failed (a busy mount is then detached lazily), 2 on a bad
// directory, plan, trace, capture directory or control socket. It prints
// "mounted <dir>" on stdout when ready and its errors on stderr.
func Serve(cfg ServerConfig) int {
	p, err := cfg.check()
	if err != nil {
		return serveFail(2, "%v", err)
	}
	if cfg.ClockSeed {
		cfg.Seed = time.Now().UnixNano()
		fmt.Fprintf(os.Stderr, "chaosrun mount: seed %d\n", cfg.Seed)
	}
	s := newServer(cfg)
	ln, closeAll, err := s.prepare(cfg, p)
	defer closeAll()
	if err != nil {
		return serveFail(2, "%v", err)
	}
	return s.serve(ln, cfg.Debug, cfg.CacheTimeout)
}

func serveFail(code int, format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "chaosrun mount: "+format+"\n", a...)
	return code
}

// check makes cfg's directories absolute, checks them, and parses the plan,
// refusing a template (its placeholders have no values in a mount).
func (cfg *ServerConfig) check() (*plan.Plan, error) {
	if cfg.Backing == "" || cfg.Mountpoint == "" {
		return nil, errors.New("--backing and --mountpoint are required (see --help)")
	}
	for _, d := range []*string{&cfg.Backing, &cfg.Mountpoint} {
		abs, err := filepath.Abs(*d)
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(abs)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("%s is not a directory", abs)
		}
		*d = abs
	}
	if cfg.Backing == cfg.Mountpoint {
		return nil, errors.New("--backing and --mountpoint must differ")
	}
	p, err := cfg.parsePlan()
	if err != nil {
		return nil, err
	}
	if err := p.CheckBound(); err != nil {
		return nil, fmt.Errorf("plan %s: %v (a scenario run binds a template's placeholders; a mount takes a concrete plan)", cmp.Or(cfg.PlanFile, "text"), err)
	}
	return p, nil
}

// parsePlan parses the plan cfg names: its text, its file, or none.
func (cfg *ServerConfig) parsePlan() (*plan.Plan, error) {
	if cfg.PlanFile == "" {
		if cfg.Plan == "" {
			return &plan.Plan{}, nil
		}
		return plan.Parse(cfg.Plan) // its errors say "plan:LINE:COL: ..."
	}
	src, err := os.ReadFile(cfg.PlanFile)
	if err != nil {
		return nil, err
	}
	p, err := plan.Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("plan %s: %v", cfg.PlanFile, err)
	}
	return p, nil
}

// newServer returns the server of cfg (checked), not yet mounted.
func newServer(cfg ServerConfig) *server {
	s := &server{
		backing: cfg.Backing, mountpoint: cfg.Mountpoint, seed: cfg.Seed,
		eng:        plan.NewEngine(&plan.Plan{}, cfg.Seed),
		faultsOnly: cfg.TraceFaultsOnly,
		directIO:   !cfg.NoDirectIO,
		stderr:     os.Stderr,
		open:       map[*fs.Inode]map[*handle]struct{}{},
		stopReq:    make(chan struct{}),
	}
	s.cut.init()
	if cfg.TrackUnsynced {
		s.track.enable()
	}
	return s
}

// prepare readies what the server needs before it mounts: the trace (with
// its mount record), the plan, the capture and the control socket's
// listener (nil without one). closeAll releases what prepare got, in reverse
// order, also after an error.
func (s *server) prepare(cfg ServerConfig, p *plan.Plan) (ln net.Listener, closeAll func(), err error) {
	var closers []func()
	closeAll = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if cfg.Trace != "" {
		tw, err := trace.Create(cfg.Trace)
		if err != nil {
			return nil, closeAll, err
		}
		s.tr = tw
		closers = append(closers, func() { tw.Close() })
	}
	s.traceRecord(trace.Record{Kind: trace.KindMount, Seed: cfg.Seed, Path: cfg.Mountpoint, To: cfg.Backing})
	if err := s.loadPlan(p); err != nil {
		return nil, closeAll, err
	}
	if err := s.startCapture(cfg.Capture); err != nil {
		return nil, closeAll, fmt.Errorf("capture: %v", err)
	}
	closers = append(closers, s.stopCapture)
	if cfg.Control != "" {
		if ln, err = listenControl(cfg.Control); err != nil {
			return nil, closeAll, fmt.Errorf("control socket: %v", err)
		}
		closers = append(closers, func() { os.Remove(cfg.Control) }, func() { ln.Close() })
	}
	return ln, closeAll, nil
}

// serve mounts, serves the control socket (ln, if any), prints "mounted
// <dir>", waits for a signal, a stop request or an unmount from outside,
// and unmounts; it returns the exit status (see Serve).
func (s *server) serve(ln net.Listener, debug bool, cacheTimeout time.Duration) int {
	fsrv, err := s.mount(debug, cacheTimeout)
	if err != nil {
		return serveFail(1, "mount %s: %v", s.mountpoint, err)
	}
	if ln != nil {
		go s.serveControl(ln)
	}
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigc)
	waited := make(chan struct{})
	go func() { fsrv.Wait(); close(waited) }()

	fmt.Fprintf(os.Stdout, "mounted %s\n", s.mountpoint)

	select {
	case <-waited: // unmounted or aborted from outside
		if mountedAt(s.mountpoint) {
			unix.Unmount(s.mountpoint, unix.MNT_DETACH)
		}
		return 0
	case sig := <-sigc:
		fmt.Fprintf(os.Stderr, "chaosrun mount: %v: unmounting %s\n", sig, s.mountpoint)
	case <-s.stopReq:
	}
	s.thawForStop() // ops waiting on a power cut fail now, so the unmount is not held up
	if err := fsrv.Unmount(); err != nil {
		fmt.Fprintf(os.Stderr, "chaosrun mount: unmount %s: %v; detaching lazily\n", s.mountpoint, err)
		if err := unix.Unmount(s.mountpoint, unix.MNT_DETACH); err != nil {
			fmt.Fprintf(os.Stderr, "chaosrun mount: lazy unmount %s: %v\n", s.mountpoint, err)
		}
		return 1
	}
	return 0
}

// mount mounts the faulting loopback filesystem.
func (s *server) mount(debug bool, cacheTimeout time.Duration) (*fuse.Server, error) {
	rootOps, err := fs.NewLoopbackRoot(s.backing)
	if err != nil {
		return nil, err
	}
	lr := rootOps.(*fs.LoopbackNode)
	root := &node{LoopbackNode: lr, s: s}
	lr.RootData.RootNode = root
	// Zero timeouts by default: the harness reads and edits the backing
	// directory while mounted; cached entries would then hand SQLite stale
	// dentries and sizes.
	opts := &fs.Options{
		EntryTimeout:    &cacheTimeout,
		AttrTimeout:     &cacheTimeout,
		NegativeTimeout: &cacheTimeout,
		MountOptions: fuse.MountOptions{
			DirectMount:       true,
			DirectMountStrict: true,
			FsName:            FsName,
			Name:              FsName,
			EnableLocks:       false, // kernel-local POSIX locks; go-fuse's OFD forwarding breaks SQLite
			Debug:             debug,
		},
	}
	return fs.Mount(s.mountpoint, root, opts)
}
