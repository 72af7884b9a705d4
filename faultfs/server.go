package faultfs

import (
	"errors"
	"flag"
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
// powercut rule gets its timer.
func (s *server) loadPlan(p *plan.Plan) {
	s.planMu.Lock()
	defer s.planMu.Unlock()
	if needsTracking(p) {
		s.track.enable()
	}
	s.eng.Load(p)
	s.armTimers(p, s.eng.Generation())
	s.traceRecord(trace.Record{Kind: trace.KindPlan, Plan: p.String()})
}

func (s *server) requestStop() {
	s.stopOne.Do(func() { close(s.stopReq) })
}

// MountUsage is the help text of the server's flags (`chaosrun mount`).
const MountUsage = `Usage: chaosrun mount --backing DIR --mountpoint DIR [--plan FILE] [--seed N]
                      [--trace FILE] [--control SOCK] [--trace-faults-only]
                      [--track-unsynced]

Mounts faultfs (type fuse.chaosfs) at --mountpoint, passing every operation
through to --backing after consulting the fault plan. Runs in the foreground,
prints one line "mounted <dir>" on stdout when ready, and unmounts on SIGINT,
SIGTERM or the control command "stop" (exit 0 after a clean unmount).
Must run as root (mounts straight from /dev/fuse). Never run SQLite in this
process.

Examples:
  # pass-through mount with an op trace
  chaosrun mount --backing /tmp/back --mountpoint /tmp/mnt --trace /tmp/ops.jsonl

  # fail the first WAL write once with EIO; change faults at run time via the socket
  echo 'eio op=write path=*-wal nth=1 count=1' > /tmp/plan.txt
  chaosrun mount --backing /tmp/back --mountpoint /tmp/mnt --plan /tmp/plan.txt \
      --seed 7 --trace /tmp/ops.jsonl --control /tmp/faultfs.sock

  # power-cut the mount after 2s of load, keeping a seeded subset of the
  # unsynced writes; after killing every user of the mount, reset the files
  # with the control request {"cmd":"recover"}
  echo 'powercut after=2s keep=random' > /tmp/plan.txt
  chaosrun mount --backing /tmp/back --mountpoint /tmp/mnt --plan /tmp/plan.txt \
      --seed 7 --trace /tmp/ops.jsonl --control /tmp/faultfs.sock

  # clear a stale or hung mount
  chaosrun umount /tmp/mnt

Flags:
`

// Serve is the server's main: it parses args, mounts, serves until asked to
// stop, unmounts, and returns the exit status (0 after a clean unmount, 1 on
// failure, 2 on bad flags, directories or plan).
func Serve(args []string) int {
	fl := flag.NewFlagSet("chaosrun mount", flag.ContinueOnError)
	fl.SetOutput(os.Stderr)
	backing := fl.String("backing", "", "backing directory (must exist)")
	mnt := fl.String("mountpoint", "", "mount point (must exist, an empty directory)")
	planFile := fl.String("plan", "", "fault plan file (default: no rules)")
	seed := fl.Int64("seed", 0, "seed of every random fault decision (default: time-based, printed on stderr)")
	tracePath := fl.String("trace", "", "write the op trace (JSONL) to this file")
	control := fl.String("control", "", "listen for control commands on this unix socket")
	faultsOnly := fl.Bool("trace-faults-only", false, "trace only operations a rule fired on (and holders)")
	trackUnsynced := fl.Bool("track-unsynced", false, "keep the unsynced-write model from the start (a power cut by control request needs it; a plan with a powercut or drop=unsynced rule switches it on by itself)")
	noDIO := fl.Bool("no-direct-io", false, "open db/wal/journal files page-cached (faults become unreliable; for benchmarks)")
	debug := fl.Bool("debug", false, "log every FUSE request on stderr")
	captureDir := fl.String("capture", "", "record every write's bytes and a snapshot of the backing dir in this directory, for offline crash-state exploration (needs --trace)")
	cacheTimeout := fl.Duration("cache-timeout", 0, "kernel entry/attr cache timeout (0: every lookup/stat reaches the server; keep 0 when anything touches the backing dir while mounted)")
	fl.Usage = func() {
		fmt.Fprint(fl.Output(), MountUsage)
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "chaosrun mount: "+format+"\n", a...)
		return code
	}
	if fl.NArg() > 0 {
		return fail(2, "unexpected arguments %q", fl.Args())
	}
	if *backing == "" || *mnt == "" {
		return fail(2, "--backing and --mountpoint are required (see --help)")
	}
	for _, d := range []*string{backing, mnt} {
		abs, err := filepath.Abs(*d)
		if err != nil {
			return fail(2, "%v", err)
		}
		st, err := os.Stat(abs)
		if err != nil {
			return fail(2, "%v", err)
		}
		if !st.IsDir() {
			return fail(2, "%s is not a directory", abs)
		}
		*d = abs
	}
	if *backing == *mnt {
		return fail(2, "--backing and --mountpoint must differ")
	}
	p := &plan.Plan{}
	if *planFile != "" {
		src, err := os.ReadFile(*planFile)
		if err != nil {
			return fail(2, "%v", err)
		}
		if p, err = plan.Parse(string(src)); err != nil {
			return fail(2, "plan %s: %v", *planFile, err)
		}
	}
	seedSet := false
	fl.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if !seedSet {
		*seed = time.Now().UnixNano()
		fmt.Fprintf(os.Stderr, "chaosrun mount: seed %d\n", *seed)
	}

	s := &server{
		backing: *backing, mountpoint: *mnt, seed: *seed,
		eng:        plan.NewEngine(&plan.Plan{}, *seed),
		faultsOnly: *faultsOnly,
		directIO:   !*noDIO,
		stderr:     os.Stderr,
		open:       map[*fs.Inode]map[*handle]struct{}{},
		stopReq:    make(chan struct{}),
	}
	s.cut.init()
	if *trackUnsynced {
		s.track.enable()
	}
	if *tracePath != "" {
		tw, err := trace.Create(*tracePath)
		if err != nil {
			return fail(2, "%v", err)
		}
		s.tr = tw
		defer tw.Close()
	}
	s.traceRecord(trace.Record{Kind: trace.KindMount, Seed: *seed, Path: *mnt, To: *backing})
	s.loadPlan(p)
	if err := s.startCapture(*captureDir); err != nil {
		return fail(2, "capture: %v", err)
	}
	defer s.stopCapture()

	var ln net.Listener
	if *control != "" {
		var err error
		if ln, err = listenControl(*control); err != nil {
			return fail(2, "control socket: %v", err)
		}
		defer os.Remove(*control)
		defer ln.Close()
	}

	fsrv, err := s.mount(*debug, *cacheTimeout)
	if err != nil {
		return fail(1, "mount %s: %v", *mnt, err)
	}
	if ln != nil {
		go s.serveControl(ln)
	}
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigc)
	waited := make(chan struct{})
	go func() { fsrv.Wait(); close(waited) }()

	fmt.Fprintf(os.Stdout, "mounted %s\n", *mnt)

	select {
	case <-waited: // unmounted or aborted from outside
		if mountedAt(*mnt) {
			unix.Unmount(*mnt, unix.MNT_DETACH)
		}
		return 0
	case sig := <-sigc:
		fmt.Fprintf(os.Stderr, "chaosrun mount: %v: unmounting %s\n", sig, *mnt)
	case <-s.stopReq:
	}
	s.thawForStop() // ops waiting on a power cut fail now, so the unmount is not held up
	if err := fsrv.Unmount(); err != nil {
		fmt.Fprintf(os.Stderr, "chaosrun mount: unmount %s: %v; detaching lazily\n", *mnt, err)
		if err := unix.Unmount(*mnt, unix.MNT_DETACH); err != nil {
			fmt.Fprintf(os.Stderr, "chaosrun mount: lazy unmount %s: %v\n", *mnt, err)
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
