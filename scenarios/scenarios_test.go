package scenarios

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/internal/fusetest"
	"github.com/sqlchaos/sqlchaos/internal/reexec"
	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/oracle"
	"github.com/sqlchaos/sqlchaos/reports"
	"github.com/sqlchaos/sqlchaos/verdict"
)

// sleeperRole is a test role: it starts a child of its own (like a
// dispatcher's worker, in its process group) and sleeps until killed.
const sleeperRole = "scn-test-sleeper"

func init() {
	reexec.Register(sleeperRole, func(args []string) int {
		if len(args) == 0 {
			cmd, err := reexec.Command(sleeperRole, []string{"child"})
			if err != nil {
				return 2
			}
			if err := cmd.Start(); err != nil {
				return 2
			}
			fmt.Println(cmd.Process.Pid)
		}
		signal := make(chan struct{})
		<-signal
		return 0
	})
}

func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}

func TestClockScalesAndRoundTrips(t *testing.T) {
	c := Clock{Anchor: time.Unix(1000, 0), Scale: 100}
	if got := c.Wall(30 * time.Second); got != 300*time.Millisecond {
		t.Errorf("Wall(30s) = %v, want 300ms", got)
	}
	if got := c.Board(600 * time.Millisecond); got != 60*time.Second {
		t.Errorf("Board(600ms) = %v, want 60s", got)
	}
	d, err := ParseClock(c.String())
	if err != nil || !d.Anchor.Equal(c.Anchor) || d.Scale != c.Scale {
		t.Errorf("ParseClock(%q) = %+v, %v", c.String(), d, err)
	}
	now := NewClock(100)
	time.Sleep(20 * time.Millisecond)
	if el := now.Now().Sub(now.Anchor); el < 2*time.Second || el > 20*time.Second {
		t.Errorf("after 20ms wall, board time advanced %v, want about 2s", el)
	}
	for _, bad := range []string{"", "x", "1:0.5", "a:2"} {
		if _, err := ParseClock(bad); err == nil {
			t.Errorf("ParseClock(%q) accepted", bad)
		}
	}
}

// TestCatalogIsComplete checks every scenario of issue 4 is there with a
// doc, a parseable plan and an expectation for each profile it runs under.
func TestCatalogIsComplete(t *testing.T) {
	order := []string{"eio-wal-downgrade", "torn-write-resurrection", "torn-extend", "rollback-shadow",
		"dispatcher-restart-race", "transient-header-latch", "connect-eio-zombies", "redundant-wal-pragma",
		"header-peek-lock-drop", "page-count-wal-false-alarm", "first-connect-wal-init", "soak"}
	seen := map[string]bool{}
	for _, sc := range All() {
		if seen[sc.Name] {
			t.Errorf("scenario %s listed twice", sc.Name)
		}
		seen[sc.Name] = true
	}
	if got := len(All()); got < len(order) {
		t.Errorf("catalog has %d scenarios, issue 4 lists %d", got, len(order))
	}
	for _, name := range order {
		sc, ok := Lookup(name)
		if !ok {
			t.Errorf("scenario %s missing", name)
			continue
		}
		if len(sc.Doc) < 100 || sc.Fix == "" || sc.Roles == "" || sc.Script == nil {
			t.Errorf("%s: doc, fix, roles and script are required", name)
		}
		if err := checkTemplate(sc.Plan); err != nil {
			t.Errorf("%s: plan: %v", name, err)
		}
		for _, p := range sc.MatrixProfiles() {
			if _, err := kanbancore.ProfileByName(p); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if _, ok := sc.Expect[p]; !ok {
				t.Errorf("%s: no expectation for matrix profile %s", name, p)
			}
		}
		checkers := map[string]bool{}
		for _, c := range oracle.Checkers() {
			checkers[c.Name] = true
		}
		for p, e := range sc.Expect {
			for _, n := range append(append([]string(nil), e.Fail...), e.Pass...) {
				if !checkers[n] {
					t.Errorf("%s/%s: unknown checker %q", name, p, n)
				}
			}
		}
	}
}

func TestPlanTemplates(t *testing.T) {
	r := &Script{procs: newProcSet(os.Stderr), backing: t.TempDir()}
	if err := os.WriteFile(r.backing+"/kanban.db", make([]byte, 3*4096), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := r.bind("torn op=write path=kanban.db off={dbsize}..99999999 keep=1 count=1\neio off={dbpages}\n")
	if err != nil {
		t.Fatalf("bind: %v", err)
	}
	got := p.String()
	if !strings.Contains(got, "off=12288..") || !strings.Contains(got, "eio off=3\n") {
		t.Errorf("bind = %q", got)
	}
	if _, err := plan.Parse(got); err != nil || p.Templated() {
		t.Errorf("bound plan does not parse or is still a template: %v", err)
	}
	if _, err := r.bind("eio pid={pid:nobody}\n"); err == nil {
		t.Errorf("a {pid:} of an unknown process was bound")
	}
	if err := checkTemplate("eio op=wrte\n"); err == nil {
		t.Errorf("a bad plan passed checkTemplate")
	}
}

// TestCatalogExpectations: every expectation names real checkers; a fix
// that claims detection names the evidence of it; every pinned finding and
// rate is keyed by a profile the matrix runs (and a real driver), and
// describes itself.
func TestCatalogExpectations(t *testing.T) {
	names := map[string]bool{}
	for _, c := range oracle.Checkers() {
		names[c.Name] = true
	}
	checkExpect := func(where string, e Expect) {
		for _, list := range [][]string{e.Fail, e.Pass, keysOf(e.Evidence), keysOf(e.Detection)} {
			for _, n := range list {
				if !names[n] {
					t.Errorf("%s names checker %q, which does not exist", where, n)
				}
			}
		}
		if e.Detects && len(e.Detection) == 0 {
			t.Errorf("%s claims detection but names no evidence of it (Detection)", where)
		}
	}
	for _, sc := range All() {
		profiles := map[string]bool{}
		for _, p := range sc.MatrixProfiles() {
			profiles[p] = true
		}
		for p, e := range sc.Expect {
			checkExpect(sc.Name+" expect "+p, e)
		}
		keys := append(keysOf(sc.Findings), keysOf(sc.Rates)...)
		for _, k := range keys {
			p, d, _ := strings.Cut(k, "/")
			if !profiles[p] || (d != "" && d != "modernc" && d != "mattn") {
				t.Errorf("%s pins %q, not a cell of its matrix", sc.Name, k)
			}
		}
		for k, f := range sc.Findings {
			checkExpect(sc.Name+" finding "+k, f.Measured)
			if f.What == "" || f.Why == "" {
				t.Errorf("%s finding %s does not say what was measured and why", sc.Name, k)
			}
			p, d, ok := strings.Cut(k, "/")
			drivers := []string{d}
			if !ok {
				drivers = []string{"modernc", "mattn"}
			}
			for _, d := range drivers {
				if c := sc.Cell(p, d); c.Finding == nil || c.Target() != Finding {
					t.Errorf("%s: cell %s/%s does not carry its finding", sc.Name, p, d)
				}
			}
		}
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestCountDefunct makes a real zombie child and counts it from /proc.
func TestCountDefunct(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for countDefunct(os.Getpid()) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the exited child never showed as defunct")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Wait()
	if n := countDefunct(os.Getpid()); n != 0 {
		t.Errorf("after reaping, %d defunct children", n)
	}
}

// TestStopAllKillsTheGroup starts a role that starts a child of its own and
// checks stopAll leaves neither alive.
func TestStopAllKillsTheGroup(t *testing.T) {
	ps := newProcSet(os.Stderr)
	cmd, err := reexec.Command(sleeperRole, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: "sleeper", cmd: cmd, done: make(chan struct{})}
	var child int
	if _, err := fmt.Fscan(out, &child); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	ps.procs["sleeper"] = p
	ps.order = append(ps.order, "sleeper")
	ps.stopAll(500 * time.Millisecond)
	if !p.exited() {
		t.Errorf("role still running after stopAll")
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(child, 0) == nil && !isZombie(child) {
		if time.Now().After(deadline) {
			t.Fatalf("the role's child %d survived stopAll", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] == 'Z'
}

// cell is one matrix cell with the verdict it was observed to get here.
type cell struct {
	scenario, profile, driver string
	want                      Verdict
	// also: a checker that must have this verdict (documents what really
	// happens in an unexpected cell).
	checker string
	verdict oracle.Verdict
	note    string
}

// The short subset: cells whose outcome was verified on this machine
// (seed 1), including pinned findings whose evidence the judge checks, and the
// PR-era merged33482 cells.
var shortCells = []cell{
	{scenario: "eio-wal-downgrade", profile: "legacy", driver: "modernc", want: Reproduced, checker: "journal-mode", verdict: oracle.Fail},
	{scenario: "eio-wal-downgrade", profile: "hardened", driver: "modernc", want: Held, checker: "journal-mode", verdict: oracle.Pass},
	{scenario: "eio-wal-downgrade", profile: "legacy", driver: "mattn", want: Finding, checker: "journal-mode", verdict: oracle.Pass,
		note: "mattn reads page 1 at connect; the EIO fails the connect, the WAL pragma does no I/O"},
	{scenario: "rollback-shadow", profile: "legacy", driver: "mattn", want: Reproduced, checker: "error-fidelity", verdict: oracle.Fail},
	{scenario: "rollback-shadow", profile: "hardened", driver: "mattn", want: Held, checker: "error-fidelity", verdict: oracle.Pass},
	{scenario: "connect-eio-zombies", profile: "legacy", driver: "modernc", want: Reproduced, checker: "zombies", verdict: oracle.Fail},
	{scenario: "connect-eio-zombies", profile: "hardened", driver: "modernc", want: Held, checker: "zombies", verdict: oracle.Pass},
	{scenario: "dispatcher-restart-race", profile: "legacy", driver: "modernc", want: Reproduced, checker: "workers", verdict: oracle.Fail},
	{scenario: "dispatcher-restart-race", profile: "hardened", driver: "modernc", want: Held, checker: "workers", verdict: oracle.Pass},
	// The PR-era defects, guarded in CI: the raw-read page-count check
	// under a 3.40 sqlite3-shell peer loses acknowledged commits (forked
	// history), and raises false torn-extend alarms on a healthy WAL board.
	{scenario: "header-peek-lock-drop", profile: "merged33482", driver: "modernc", want: Reproduced, checker: "durability", verdict: oracle.Fail},
	{scenario: "page-count-wal-false-alarm", profile: "merged33482", driver: "modernc", want: Reproduced, checker: "page-count", verdict: oracle.Fail},
}

// The longer subset, without -short.
var longCells = []cell{
	{scenario: "transient-header-latch", profile: "legacy", driver: "modernc", want: Reproduced, checker: "liveness", verdict: oracle.Fail},
	{scenario: "transient-header-latch", profile: "hardened", driver: "modernc", want: Held, checker: "liveness", verdict: oracle.Pass},
	{scenario: "header-peek-lock-drop", profile: "hardened", driver: "modernc", want: Held, checker: "durability", verdict: oracle.Pass},
	{scenario: "redundant-wal-pragma", profile: "legacy", driver: "modernc", want: Finding, checker: "sidecars", verdict: oracle.Pass,
		note: "the pragma on an already-WAL file does no file I/O (feasibility Q5a), also under load"},
}

func TestMatrixSubset(t *testing.T) {
	fusetest.Require(t)
	cells := shortCells
	if !testing.Short() {
		cells = append(append([]cell(nil), shortCells...), longCells...)
	}
	for _, c := range cells {
		t.Run(c.scenario+"/"+c.profile+"/"+c.driver, func(t *testing.T) {
			cfg := Config{Scenario: c.scenario, Profile: c.profile, Driver: c.driver, Seed: 1, Out: t.TempDir(), Stderr: testLog{t}}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := Execute(ctx, cfg)
			if err != nil {
				t.Fatalf("seed %d: %v\nreplay: %s", cfg.Seed, err, RunCommand(cfg, ""))
			}
			var got oracle.Result
			for _, r := range res.Results {
				if r.Checker == c.checker {
					got = r
				}
			}
			// One judge: re-checking the saved cell gives the verdict the
			// run gave.
			if again, err := reports.Recheck(res.Dir); err != nil {
				t.Errorf("recheck: %v", err)
			} else if again.Verdict() != res.Outcome.Verdict || again.Why != res.Outcome.Why {
				t.Errorf("chaosrun check disagrees with the run: %s (%s), run gave %s (%s)", again.Verdict(), again.Why, res.Outcome.Verdict, res.Outcome.Why)
			}
			if res.Outcome.Verdict != c.want || got.Verdict != c.verdict {
				var b strings.Builder
				for _, r := range res.Results {
					fmt.Fprintf(&b, "  %s: %s: %s\n", r.Checker, r.Verdict, r.Summary)
				}
				t.Errorf("seed %d: outcome %s (%s), %s %s; want %s with %s %s %s\n%sreplay: %s",
					cfg.Seed, res.Outcome.Verdict, res.Outcome.Why, c.checker, got.Verdict, c.want, c.checker, c.verdict, c.note,
					b.String(), RunCommand(cfg, ""))
			}
		})
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestFaultThatNeverFiresIsInconclusive: a cell whose main rule never
// fires proves nothing — not held, not reproduced — and says so; a script
// that fails is inconclusive too.
func TestFaultThatNeverFiresIsInconclusive(t *testing.T) {
	fusetest.Require(t)
	cfg := Config{Scenario: "eio-wal-downgrade", Profile: "hardened", Driver: "modernc", Seed: 1, Out: t.TempDir(),
		Stderr: testLog{t}, PlanOverride: "eio op=read path=no-such-file.db count=1\n", Duration: 500 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Execute(ctx, cfg)
	if err != nil {
		t.Fatalf("seed %d: %v", cfg.Seed, err)
	}
	if res.Outcome.Verdict != Inconclusive || !strings.Contains(res.Outcome.Why, "no rule of the plan fired") {
		t.Fatalf("a plan that never fired gave %s (%s), want inconclusive\nreplay: %s", res.Outcome.Verdict, res.Outcome.Why, RunCommand(cfg, ""))
	}
	if res.Report.Facts.Fired != 0 || res.Report.Facts.Precondition == "" {
		t.Errorf("facts %+v", res.Report.Facts)
	}
}

// TestLegacyCellsAllowShadowedRollback: every cell of a profile with the
// unguarded ROLLBACK tolerates an error-fidelity failure (fix 3's class
// shows under load without any fault), except where error-fidelity is the
// story; hardened cells never do, so a planted write_txn=legacy stays red.
func TestLegacyCellsAllowShadowedRollback(t *testing.T) {
	sc, _ := Lookup("header-peek-lock-drop")
	results := []oracle.Result{{Checker: oracle.Durability, Verdict: oracle.Pass}, {Checker: oracle.Sidecars, Verdict: oracle.Pass},
		{Checker: oracle.ErrorFidelity, Verdict: oracle.Fail, Summary: "2 surfaced errors shadow the real cause"}}
	fired := verdict.Facts{}
	if o := verdict.Judge(results, sc.Cell(kanbancore.ProfileLegacy, "mattn"), fired); o.Verdict != Held || !strings.Contains(o.Why, "error-fidelity") {
		t.Errorf("legacy: %s (%s), want held naming error-fidelity", o.Verdict, o.Why)
	}
	if o := verdict.Judge(results, sc.Cell(kanbancore.ProfileHardened, "mattn"), fired); o.Verdict != Unexpected {
		t.Errorf("hardened: %s (%s), want unexpected", o.Verdict, o.Why)
	}
	rs, _ := Lookup("rollback-shadow")
	c := rs.Cell(kanbancore.ProfileLegacy, "modernc")
	if slices.Contains(c.Story.Allow, oracle.ErrorFidelity) || !slices.Contains(c.Story.Fail, oracle.ErrorFidelity) {
		t.Errorf("rollback-shadow legacy: %+v, want error-fidelity to fail, not merely allowed", c.Story)
	}
	if e := sc.Expect[kanbancore.ProfileLegacy]; slices.Contains(e.Allow, oracle.ErrorFidelity) {
		t.Errorf("Cell changed the scenario's own expectation: %+v", e)
	}
}
