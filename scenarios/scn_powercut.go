package scenarios

import (
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/verdict"
)

// powercutScript is the power-cut scenarios' script: the board under load
// (gateway and workers, two writers), a power cut from the plan (a timer,
// so it lands mid-load), every process killed, the disk as the seeded
// keep mode leaves it, then the board started again on the recovered
// files (SQLite's recovery runs in the first process that opens it) and
// used for a while.
func powercutScript(r *Script) error {
	r.Phase("load")
	if err := startGateway(r, "gateway-1", &WorkerTemplate{Heartbeats: 2, Interval: 5 * time.Second}); err != nil {
		return err
	}
	for _, w := range []string{"writer-1", "writer-2"} {
		if err := r.StartConnected(RoleSpec{Role: RoleWriter, Proc: w, Interval: 2 * time.Second,
			Args: map[string]string{"ops": "create,complete,heartbeat", "body": "600"}}); err != nil {
			return err
		}
	}
	if err := r.LoadPlan(r.MainPlan()); err != nil {
		return err
	}
	r.Phase("cut")
	if err := r.WaitPowerCut(600 * time.Second); err != nil {
		return err
	}
	if err := r.Clear(); err != nil {
		return err
	}
	r.Phase("restart")
	if err := startGateway(r, "gateway-2", &WorkerTemplate{Heartbeats: 1, Interval: 5 * time.Second}); err != nil {
		return err
	}
	if err := r.StartConnected(RoleSpec{Role: RoleWriter, Proc: "writer-3", Interval: 4 * time.Second,
		Args: map[string]string{"ops": "create,complete", "body": "600"}}); err != nil {
		return err
	}
	return r.CLILoop([]BoardOp{OpCreate, OpList, OpComplete}, 10*time.Second, r.LoadDuration(150*time.Second), nil)
}

// cutAfterCommits is the power-cut scenarios' precondition: the cut came
// after some acknowledged commits (the writers were running), and the
// board was used again after the recover.
func cutAfterCommits(in *oracle.Input, _ []oracle.Result) string {
	var cut int64
	for _, r := range in.Trace {
		if r.Kind == trace.KindPowerCut {
			cut = r.T
			break
		}
	}
	if cut == 0 {
		return "no power cut happened"
	}
	before, after := 0, 0
	for _, e := range in.Events {
		if e.Type != history.TypeCommit || e.Proc == "setup" {
			continue
		}
		if e.T < cut {
			before++
		} else {
			after++
		}
	}
	switch {
	case before < 5:
		return "fewer than 5 commits acknowledged before the power cut"
	case after < 3:
		return "fewer than 3 commits after the recover: the board was not used again"
	}
	return ""
}

// powercutStory is the power-cut scenarios' claim: under legacy
// (synchronous=NORMAL) acknowledged commits are lost, for legacyWhy, but a
// prefix survives intact; under hardened (FULL) every one survives.
func powercutStory(legacyWhy string) map[string]Expect {
	return map[string]Expect{
		kanbancore.ProfileLegacy: {Fail: []string{oracle.Durability}, Pass: []string{oracle.Prefix, oracle.Structure},
			Why: legacyWhy},
		kanbancore.ProfileHardened: {Pass: []string{oracle.Durability, oracle.Prefix, oracle.Structure},
			Why: "synchronous=FULL: every acknowledged commit survives the cut"},
	}
}

// powercutWAL: issue 9's power cut on the default WAL board.
var powercutWAL = &Scenario{
	Name: "powercut-wal",
	Fix:  "fix 1 (#31208): synchronous=FULL — a power cut in WAL mode",
	Doc: `The board runs under load (gateway and workers, two writers), and the power is cut
mid-load by a timer in the plan: faultfs freezes the mount, the runner SIGKILLs every
process, and the disk is left as a power cut leaves it — the last fsynced content of each
file plus a seeded random subset of the writes since (keep=random; directory entries not
yet synced through their directory may vanish too). The board then starts again on those
files: the first process to open it runs SQLite's recovery. SQLite's documented
guarantees decide: with synchronous=FULL in WAL mode every acknowledged commit survives;
with NORMAL the WAL is synced only at checkpoints, so the last acknowledged commits may be
lost, but the survivors are always a prefix of them (never a hole, never a resurrected
row), and the database is always intact. Legacy runs NORMAL (and no autocheckpoint), the
fix runs FULL.`,
	Roles:  "gateway + workers, 2 writers; after the cut: gateway, writer, CLI processes",
	Plan:   "powercut after=1s keep=random\n",
	Pre:    cutAfterCommits,
	Expect: powercutStory("synchronous=NORMAL: acknowledged commits since the last WAL sync are lost at the cut (a prefix survives)"),
	Setup:  seedTasks(6),
	Script: powercutScript,
}

// powercutDelete: the same power cut on a rollback-journal board.
var powercutDelete = &Scenario{
	Name: "powercut-delete",
	Fix:  "fix 1 (#31208): synchronous=FULL — a power cut on a rollback-journal board (the NFS fallback)",
	Doc: `The board of powercut-wal in journal_mode=delete (what the WAL→DELETE fallback gives
on a filesystem that refuses WAL). A commit there writes the rollback journal, syncs it,
writes the database file, syncs it, and deletes the journal: the delete is the commit.
The power is cut at a fixed point, instead of the 30th create of a rollback journal —
the next write transaction, moments after the previous one committed and deleted its
journal — and nothing written or renamed since the last fsync survives (keep=none).

Measured (matrix --repeat 5, both drivers): the previous commit, acknowledged to its
process, is rolled back at the next open under legacy (NORMAL) and hardened (FULL)
alike. The journal's unlink is a directory operation, and SQLite syncs the directory
after it only at synchronous=EXTRA (documented: "EXTRA provides additional durability
if the commit is followed closely by a power loss"); below that the unlink is lost,
the journal is back and hot, and the next opener rolls the commit back. The survivors
are still a prefix and the database is intact. --set synchronous=EXTRA holds.`,
	Roles:  "gateway + workers, 2 writers; after the cut: gateway, writer, CLI processes",
	Plan:   "powercut op=create path=*-journal nth=30 keep=none\n",
	Sets:   []string{"journal_mode=delete"},
	Pre:    cutAfterCommits,
	Expect: powercutStory("synchronous=NORMAL: the last acknowledged commit is lost at the cut (a prefix survives)"),
	Findings: map[string]verdict.Pinned{
		kanbancore.ProfileHardened: {
			What: "the commit acknowledged just before the cut is rolled back by the next opener under FULL as under NORMAL; the survivors are a prefix and integrity_check is ok",
			Why: "a rollback journal's unlink (the commit point in DELETE mode) is synced to the directory only at synchronous=EXTRA; " +
				"below it the power cut loses the unlink, the journal comes back hot and rolls the acknowledged commit back (--set synchronous=EXTRA holds)",
			Measured: Expect{Fail: []string{oracle.Durability}, Pass: []string{oracle.Prefix, oracle.Structure}},
		},
	},
	Setup:  seedTasks(6),
	Script: powercutScript,
}
