package scenarios

import (
	"strings"
	"time"

	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/verdict"
)

// tornWriteResurrection is the torn-write-resurrection scenario.
var tornWriteResurrection = &Scenario{
	Name: "torn-write-resurrection",
	Fix:  "fix 1 (#31208): secure_delete, cell_size_check, synchronous=FULL",
	Doc: `Tasks with recognisable bodies are created, checkpointed, then many are deleted and the
board keeps writing new tasks into the freed space. Meanwhile page writes to the
database file (checkpoints) are torn: the first 512 bytes of the new page land, the
rest of the old page stays, and the write reports success. Without secure_delete the
freed cells of the deleted rows still hold their bytes, so a torn page can put a
deleted row back under a live cell pointer: it comes back as data. With secure_delete
the freed space is zeroed, and cell_size_check makes reads of a damaged page fail: the
damage is there (the write was torn) but it is detected, not resurrected.

Measured here (matrix --repeat 5, both drivers, every page write of the fault phase torn):
integrity_check failed in every run; in some runs a deleted row was back, but never in a
database that checks ok (the story's resurrection is silent: "as live data");
acknowledged task rows went missing in most runs, and in some the commit ledger itself
was damaged; in some runs no process surfaced the damage within the window (silent),
and in some a -wal was unlinked under another holder. Legacy and hardened look the same:
the finding pinned to both cells (tornCheckpointFinding). The legacy story stays
narrowed to real resurrection evidence (a deleted row present, a stale status, a row no
commit created) in a database whose integrity_check passes: should it ever be met, the
cell says so (unexpected: unpin).`,
	Roles: "gateway, 1 writer, CLI processes (create, delete)",
	Plan:  "torn op=write path=kanban.db minlen=4096 keep=512 then=ok\n",
	Expect: map[string]Expect{
		kanbancore.ProfileLegacy: {Fail: []string{oracle.Resurrection}, Pass: []string{oracle.Structure}, Why: "a deleted row comes back as live data, in a database that checks ok",
			Evidence: map[string][]string{oracle.Resurrection: {"is present at the end", "no acknowledged commit inserted it", "its last acknowledged transition"}}},
		kanbancore.ProfileHardened: {Fail: []string{oracle.Structure}, Pass: []string{oracle.Resurrection, oracle.Silent}, Why: "the damage is detected, nothing resurrects", Detects: true,
			Detection: map[string][]string{oracle.Silent: {"fired faults surfaced as errors"}}},
	},
	Findings: map[string]verdict.Pinned{
		kanbancore.ProfileLegacy:   tornCheckpointFinding,
		kanbancore.ProfileHardened: tornCheckpointFinding,
	},
	Setup: seedTasksBody(40, "1500"),
	Script: func(r *Script) error {
		r.Phase("delete")
		if err := startGateway(r, "gateway-1", nil); err != nil {
			return err
		}
		if err := deleteAndCheckpoint(r, 12); err != nil {
			return err
		}
		r.Phase("fault")
		if err := r.LoadPlan(r.MainPlan()); err != nil {
			return err
		}
		if err := r.StartConnected(RoleSpec{Role: RoleWriter, Proc: "writer-1", Interval: 5 * time.Second,
			Args: map[string]string{"ops": "create,delete,create,checkpoint", "body": "1500"}}); err != nil {
			return err
		}
		if err := r.CLILoop([]BoardOp{OpCreate, OpDelete, OpList}, 10*time.Second, r.LoadDuration(250*time.Second),
			map[string]string{"body": "1500"}); err != nil {
			return err
		}
		return clearThenListCreate(r, 60*time.Second)
	},
}

// tornExtend is the torn-extend scenario.
var tornExtend = &Scenario{
	Name: "torn-extend",
	Fix:  "fix 6 (#32300): post-commit page-count invariant check",
	Doc: `The board runs in rollback-journal mode (journal_mode=delete: a filesystem that refuses
WAL, as NFS/SMB do, where the original falls back to DELETE on "locking protocol" or
"not authorized"). There a COMMIT writes its pages into the database file itself, in
ascending page order, page 1 (with the new page count) first. The write that extends
the file is torn: 512 bytes of the new last page land and success is reported, so
when the COMMIT returns the file ends short: its size is not a multiple of the page
size and holds fewer whole pages than the header counts. SQLite itself does not
notice (it rounds the size up to whole pages and reads the missing bytes as zeros).
The legacy board does not look, and the damage surfaces on some later read, or
never. The post-commit page-count check reports it at commit time in the process that
made the write (a TORN_EXTEND error): raw-read (pr32857, merged33482) and skip-in-wal
(hardened, active because the file is not in WAL mode). The check detects, it does
not repair: the torn page stays torn.

Task bodies are 3000 bytes, so one row fills a table leaf and a commit that extends
the file usually adds exactly one page, the torn one, which is then the file's last
page; the setup creates 12 such tasks first, past the root splits that add two pages
at once. Measured fault-free on this workload: of 191 extending commits 182 added one
page, 7 two and 2 three. When the first extend after the plan loads adds more than one
page, the torn page is not the last: the file keeps its size, the page is a hole, and
no size-based check can see it (the page-count checker then asks for no report).

Measured earlier in WAL mode (the default environment): the file never ends short.
The checkpoint copies pages in ascending order and then sets the file's size with
ftruncate(nPage*pageSize), so a torn page past the old end becomes a hole of zeros
inside a file of the right size and no size-based check can see it.`,
	Roles:    "gateway, 2 writers with 3000-byte bodies (the file grows a page per task), CLI processes",
	Plan:     "torn op=write path=kanban.db off={dbsize}..1099511627776 minlen=4096 keep=512 then=ok count=1\n",
	Sets:     []string{"journal_mode=delete"},
	Pre:      tornExtendHappened,
	Profiles: []string{kanbancore.ProfileLegacy, kanbancore.ProfileMerged33482, kanbancore.ProfileHardened},
	Expect: map[string]Expect{
		kanbancore.ProfileLegacy: {Fail: []string{oracle.PageCount}, Why: "the torn extend is not reported at commit time"},
		// The fix claims detection at commit time, not prevention: the
		// torn page stays torn (structure fails; the rows on it may be
		// lost, so resurrection may fail) but is reported.
		kanbancore.ProfileMerged33482: {Fail: []string{oracle.Structure}, Pass: []string{oracle.PageCount, oracle.Silent}, Why: "damage stays, reported at commit time (raw-read check)", Detects: true,
			Detection: map[string][]string{oracle.PageCount: {"TORN_EXTEND"}}, Allow: []string{oracle.Resurrection}},
		kanbancore.ProfilePR32857: {Fail: []string{oracle.Structure}, Pass: []string{oracle.PageCount, oracle.Silent}, Why: "damage stays, reported at commit time (raw-read check)", Detects: true,
			Detection: map[string][]string{oracle.PageCount: {"TORN_EXTEND"}}, Allow: []string{oracle.Resurrection}},
		kanbancore.ProfileHardened: {Fail: []string{oracle.Structure}, Pass: []string{oracle.PageCount, oracle.Silent}, Why: "damage stays, reported at commit time (skip-in-wal, not WAL here)", Detects: true,
			Detection: map[string][]string{oracle.PageCount: {"TORN_EXTEND"}}, Allow: []string{oracle.Resurrection}},
	},
	// Past the tables' first root splits (a root leaf that overflows adds
	// two pages at once), so that the first extend after the plan loads
	// is, as a rule, a single page.
	Setup: seedTasksBody(12, "3000"),
	Script: func(r *Script) error {
		r.Phase("warm")
		if err := startGateway(r, "gateway-1", nil); err != nil {
			return err
		}
		r.Phase("fault")
		if err := r.LoadPlan(r.MainPlan()); err != nil {
			return err
		}
		// In rollback-journal mode the committing process writes the
		// extending pages itself, inside its COMMIT, so its post-commit
		// check is the one that can see the short file.
		if err := startWriters(r, 2, 2*time.Second, map[string]string{"ops": "create", "body": "3000"}); err != nil {
			return err
		}
		if err := r.CLILoop([]BoardOp{OpCreate, OpList}, 10*time.Second, r.LoadDuration(400*time.Second),
			map[string]string{"body": "3000"}); err != nil {
			return err
		}
		return clearThenListCreate(r, 60*time.Second)
	},
}

// tornCheckpointFinding is what torn-write-resurrection measures under
// legacy and hardened alike (5 seeds per cell, both drivers). Every page
// write of the fault phase is torn, not the first four or twelve: a later
// checkpoint rewrites a torn page whole, and with a few tears the damage
// healed before anyone read it in some runs (integrity_check ok, every
// fault harmless), which made the cell flip.
var tornCheckpointFinding = verdict.Pinned{
	What: "torn checkpoint pages corrupt the database in every run (integrity_check fails); a deleted row is back in some runs, never in a database that checks ok; acknowledged " +
		"task rows go missing in most runs, in some the commit ledger itself is damaged (acknowledged commits lost), the damage surfaces " +
		"in no process within the window in some, and in some a -wal is unlinked under another holder — under legacy and hardened alike",
	Why: "the torn page keeps the new page's head (cell-pointer array, freeblock list) over the old page's tail, so cells the new head " +
		"points at are cut, or read back from the old tail (a deleted row's cell), but the page is malformed either way and " +
		"integrity_check sees it; secure_delete and cell_size_check change neither and make nothing surface. A deleted row comes back " +
		"in a database that checks ok through lost writes, which this plan does not inject (lost-write-resurrection shows it)",
	Measured: Expect{Fail: []string{oracle.Structure}, Allow: []string{oracle.Resurrection, oracle.Durability, oracle.Silent, oracle.Sidecars}},
}

// tornExtendHappened is torn-extend's precondition: the torn write really
// left the file short (page-count names a torn extend), not a hole inside
// a file of the right size, which no size check can see.
func tornExtendHappened(_ *oracle.Input, rs []oracle.Result) string {
	r, ok := resultOf(rs, oracle.PageCount)
	if !ok {
		return "page-count did not run"
	}
	for _, e := range r.Evidence {
		if strings.HasPrefix(e.Text, "torn extend:") {
			return ""
		}
	}
	return "the torn write did not leave the file short (a hole or an unknown size, see page-count: " + r.Summary + ")"
}
