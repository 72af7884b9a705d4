package bench

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/sqlchaos/sqlchaos/faultfs"
)

// mounted is one running faultfs mount used as a benchmark target.
type mounted struct {
	target string
	dir    string
	m      *faultfs.Mount
}

// startMount starts a faultfs server process for target under root:
// root/backing is the backing dir, root/mnt the mount point, and for the
// trace target root/trace.jsonl the full op trace.
func startMount(ctx context.Context, target, root string, stderr io.Writer) (*mounted, error) {
	if stderr == nil {
		stderr = io.Discard
	}
	cfg := faultfs.Config{
		Backing:    filepath.Join(root, "backing"),
		Mountpoint: filepath.Join(root, "mnt"),
		Seed:       1,
		Stderr:     stderr,
	}
	switch target {
	case Fuse20:
		cfg.Plan = NeverFirePlan
	case Trace:
		cfg.Trace = filepath.Join(root, "trace.jsonl")
	}
	for _, d := range []string{cfg.Backing, cfg.Mountpoint} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	m, err := faultfs.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &mounted{target: target, dir: m.Dir(), m: m}, nil
}

// stop unmounts and ends the server; it is idempotent.
func (m *mounted) stop() error { return m.m.Stop() }

// fired returns how many faults the mount's rules fired.
func (m *mounted) fired() (int, error) {
	cs, err := m.m.Client().Counters()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cs {
		n += int(c.Fired)
	}
	return n, nil
}
