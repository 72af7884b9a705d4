package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs"
	"github.com/sqlchaos/sqlchaos/faultfs/plan"
)

// ---- power cuts (the Script API) ----

// Track switches faultfs's unsynced-write model on: from now on, what
// was written and not yet fsynced (and directory entries not yet synced
// through their directory) is what a power cut may lose. Whatever is on
// disk now counts as synced.
func (r *Script) Track() error { return r.ctl.Track(true) }

// PowerCut cuts the power now (keep decides what unsynced writes survive:
// none, all, random, sectors), then does what a machine losing power
// does to its processes — every role, and every worker they spawned, is
// SIGKILLed by pid — and recovers the mount, as the disk looks when the
// power comes back. Roles started after it begin on the recovered files.
func (r *Script) PowerCut(keep string) error {
	if err := r.ctl.PowerCut(faultfs.PowerCutOptions{Keep: faultfsKeep(keep)}); err != nil {
		return fmt.Errorf("power cut: %w", err)
	}
	return r.afterCut()
}

// WaitPowerCut waits (up to limit of board time, at least 10 s of wall
// time) until a power cut of the loaded plan has fired, then kills every
// role and recovers the mount as PowerCut does.
func (r *Script) WaitPowerCut(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(r.ctx, max(r.clock.Wall(limit), 10*time.Second))
	defer cancel()
	if _, err := r.ctl.WaitCut(ctx); err != nil {
		return fmt.Errorf("waiting for the plan's power cut: %w", err)
	}
	return r.afterCut()
}

// afterCut kills every role process group at once (SIGKILL: nothing runs
// past a power cut), waits for them, and recovers the mount.
func (r *Script) afterCut() error {
	r.Mark("power cut: killing every role")
	groups, err := killGroups(r.procs.all(), 10*time.Second, func(p *proc) error {
		return fmt.Errorf("power cut: %s (pid %d) did not die of SIGKILL", p.name, p.pid())
	})
	if err != nil {
		return err
	}
	reapOrphans(groups, 5*time.Second)
	res, err := r.ctl.Recover()
	if err != nil {
		return fmt.Errorf("recover after the power cut: %w", err)
	}
	r.note("power cut recovered: %+v", res)
	return r.Mark("power restored")
}

func faultfsKeep(k string) plan.CutKeep {
	if k == "" {
		k = "none"
	}
	return plan.CutKeep(k)
}
