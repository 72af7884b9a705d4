package scenarios

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/internal/ledger"
	"github.com/sqlchaos/sqlchaos/kanbancore"
)

// spawner is the dispatcher's kanbancore.Spawner: each worker is this
// binary re-executed as scn-worker (or scn-launcher), a real OS child of
// the dispatcher in its process group, never waited for by Go: the
// board's reaper collects it with waitpid(-1).
type spawner struct {
	r *role
	n int
}

func (s *spawner) Spawn(ctx context.Context, task kanbancore.Task, workspace string) (int, error) {
	s.n++
	spec := s.r.spec
	spec.Role = RoleWorker
	if spec.Launcher {
		spec.Role = RoleLauncher
	}
	spec.Proc = fmt.Sprintf("%s-w%d", s.r.spec.Proc, s.n)
	spec.Task = task.ID
	spec.Op, spec.Args, spec.Count, spec.Interval = "", nil, 0, 0
	if spec.Worker == nil {
		spec.Worker = &WorkerTemplate{Heartbeats: 3, Interval: 10 * time.Second}
	}
	p, err := startRole(spec, os.Stderr, false, "")
	if err != nil {
		s.r.h.Write(ledger.ErrEvent(history.TypeError, 0, "spawn", task.ID, err))
		return 0, err
	}
	pid := p.pid()
	s.r.h.Write(history.Event{Type: history.TypeSpawn, Task: task.ID, Data: &history.Data{
		Pid: pid, Proc: spec.Proc, Launcher: spec.Launcher}})
	return pid, nil
}

// runDispatcher is the gateway: after the original's 5 s first-tick delay
// it ticks every Interval (60 s board time by default) through
// kanbancore.Gateway — one fresh connection per board per tick,
// DispatchOnce, the corrupt-board latch — and records each tick's outcome
// and the defunct children it counted before the tick.
func runDispatcher(r *role) error {
	interval := r.spec.Interval
	if interval == 0 {
		interval = 60 * time.Second
	}
	sp := &spawner{r: r}
	var openErr error
	g := &kanbancore.Gateway{
		Root: filepath.Dir(r.spec.DB),
		Opts: r.options(),
		Dispatch: kanbancore.DispatchOptions{Spawner: sp, MaxSpawn: r.spec.MaxSpawn,
			WorkspacesRoot: r.spec.WorkDir},
		OpenFn: func(ctx context.Context, path string, opts kanbancore.Options) (*kanbancore.Conn, error) {
			c, err := kanbancore.Open(ctx, path, opts)
			openErr = err
			return c, err
		},
	}
	if err := r.sleep(5 * time.Second); err != nil {
		return err
	}
	for n := 0; r.spec.Count == 0 || n < r.spec.Count; n++ {
		defunct := countDefunct(os.Getpid())
		openErr = nil
		id := r.h.NextID()
		r.h.Write(history.Event{Type: history.TypeCall, ID: id, Op: "tick"})
		res := g.Tick(r.ctx)
		ev := history.Event{Type: history.TypeReturn, ID: id, Op: "tick"}
		for _, bt := range res.Boards {
			// With several boards the flags add up and the last board's
			// other facts stand.
			if ev.Data == nil {
				ev.Data = &history.Data{}
			}
			d := ev.Data
			d.Board, d.Dispatched = bt.Board, bt.Dispatched
			d.Skipped = d.Skipped || bt.Skipped
			d.Latched = d.Latched || bt.Latched
			d.Unconfirmed = d.Unconfirmed || bt.Unconfirmed
			if bt.Result != nil {
				var ids []string
				for _, s := range bt.Result.Spawned {
					ids = append(ids, s.ID)
				}
				if len(ids) > 0 {
					d.Spawned = ids
				}
				if len(bt.Result.Crashed) > 0 {
					d.Crashed = bt.Result.Crashed
				}
				if bt.Result.Reclaimed > 0 {
					d.Reclaimed = bt.Result.Reclaimed
				}
			}
			if bt.Err != "" {
				err := openErr
				if err == nil {
					err = errors.New(bt.Err)
				}
				e := ledger.ErrEvent(history.TypeReturn, id, "tick", "", err)
				ev.Err, ev.Class, ev.Code = bt.Err, e.Class, e.Code
			}
		}
		r.h.Write(ev)
		r.h.Write(history.Event{Type: history.TypeReap, Data: &history.Data{Defunct: new(defunct), Pids: res.Reaped}})
		if err := r.sleep(interval); err != nil {
			return err
		}
	}
	return nil
}

// countDefunct counts the zombie children of pid by scanning /proc.
func countDefunct(pid int) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) S ppid ...: comm may hold spaces; cut at the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			continue
		}
		f := bytes.Fields(b[i+2:])
		if len(f) < 2 {
			continue
		}
		if string(f[0]) == "Z" {
			if pp, _ := strconv.Atoi(string(f[1])); pp == pid {
				n++
			}
		}
	}
	return n
}
