package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/internal/fusetest"
	"github.com/sqlchaos/sqlchaos/reports"
	"github.com/sqlchaos/sqlchaos/soak"
)

func soakT(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runSoak(context.Background(), args, func(k string) string { return env[k] }, &out, &errb, false)
	return code, out.String(), errb.String()
}

// withFakeRunner replaces the scenario runner with one that writes a
// report.json whose outcome is a pure function of the case.
func withFakeRunner(t *testing.T, outcome func(soak.Case) string) {
	t.Helper()
	prev := newSoakRunner
	t.Cleanup(func() { newSoakRunner = prev })
	newSoakRunner = func(time.Duration, func()) soak.Runner {
		return soak.RunnerFunc(func(_ context.Context, c soak.Case, dir string) (*reports.Report, error) {
			r := &reports.Report{Scenario: c.Scenario, Profile: c.Profile, Driver: c.Driver, Seed: c.Seed,
				Outcome: outcome(c), Elapsed: time.Duration(c.Seed) * time.Second, Replay: "chaosrun replay " + dir,
				Plan: "eio op=write path=*-wal nth=1 count=1\n"}
			if err := os.WriteFile(filepath.Join(dir, "trace.jsonl"), []byte("{}\n"), 0o644); err != nil {
				return nil, err
			}
			return r, reports.WriteReport(dir, r)
		})
	}
}

func TestSoakUsage(t *testing.T) {
	withFakeRunner(t, func(soak.Case) string { return reports.Held })
	out := t.TempDir()
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--out", out}, "give --seeds A..B, --budget D, or both"},
		{nil, []string{"--seeds", "30..1", "--out", out}, "ends before it starts"},
		{nil, []string{"--seeds", "x", "--out", out}, "want A..B"},
		{nil, []string{"--seeds", "5..", "--out", out}, "needs a --budget"},
		{nil, []string{"--seeds", "1..2", "--shard", "3/3", "--out", out}, "out of range for 3 shards"},
		{nil, []string{"--seeds", "1..2", "--shard", "1", "--out", out}, "want I/N"},
		{nil, []string{"--seeds", "1..2", "--shard", "0/2", "--shards", "2", "--out", out}, "not both"},
		{nil, []string{"--seeds", "1..2", "--shards", "4", "--out", out}, "no index"},
		{map[string]string{"JOB_COMPLETION_INDEX": "1"}, []string{"--seeds", "1..2", "--out", out}, "no shard count"},
		{map[string]string{"JOB_COMPLETION_INDEX": "x", "SQLCHAOS_SHARDS": "4"}, []string{"--seeds", "1..2", "--out", out}, "want an integer"},
		{map[string]string{"JOB_COMPLETION_INDEX": "4", "SQLCHAOS_SHARDS": "4"}, []string{"--seeds", "1..2", "--out", out}, "out of range"},
		{map[string]string{"JOB_COMPLETION_INDEX": "0", "SQLCHAOS_SHARDS": "four"}, []string{"--seeds", "1..2", "--out", out}, "want a shard count"},
		{nil, []string{"--seeds", "1..2", "--scenarios", "nope", "--out", out}, `unknown scenario "nope"`},
		{nil, []string{"--seeds", "1..2", "--profiles", "nope", "--out", out}, `unknown profile "nope"`},
		{nil, []string{"--seeds", "1..2", "--drivers", "sqlite", "--out", out}, `unknown driver "sqlite"`},
		{nil, []string{"--seeds", "1..2", "--keep", "some", "--out", out}, "want all or failing"},
		{nil, []string{"--seeds", "1..2", "--budget", "-1m", "--out", out}, "positive duration"},
		{nil, []string{"--seeds", "1..2", "extra", "--out", out}, `unexpected argument "extra"`},
		{nil, []string{"--seeds", "1..2", "--nope"}, "flag provided but not defined"},
	} {
		code, _, errOut := soakT(t, c.env, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("soak %v (env %v): exit %d, stderr %q; want exit 2 and %q", c.args, c.env, code, errOut, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(out, soak.ShardFile)); err == nil {
		t.Fatal("a usage error still ran the shard")
	}
}

func TestMergeUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runMerge(nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "give at least one shard directory") {
		t.Fatalf("no args: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := runMerge([]string{filepath.Join(t.TempDir(), "absent")}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "no such file") {
		t.Fatalf("absent dir: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := runMerge([]string{t.TempDir()}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "no shard.json or report.json") {
		t.Fatalf("empty dir: exit %d, %q", code, errb.String())
	}
}

// Shards from $JOB_COMPLETION_INDEX and a count, as an Indexed Job runs
// them, merge through the CLI into one passing report; an unexpected case
// fails the shard (unless --record-only) and the merge.
func TestSoakShardsMergeCLI(t *testing.T) {
	base := t.TempDir()
	withFakeRunner(t, func(soak.Case) string { return reports.Held })
	common := []string{"--seeds", "1..6", "--scenarios", "rollback-shadow,torn-extend", "--drivers", "modernc", "--keep", "failing"}
	var dirs []string
	total := 0
	for i := 0; i < 3; i++ {
		d := filepath.Join(base, fmt.Sprintf("shard-%d", i))
		dirs = append(dirs, d)
		code, out, errOut := soakT(t, map[string]string{"JOB_COMPLETION_INDEX": fmt.Sprint(i), "SQLCHAOS_SHARDS": "3"}, append(common, "--out", d)...)
		if code != 0 || !strings.Contains(out, fmt.Sprintf("shard %d/3 stopped (done)", i)) {
			t.Fatalf("shard %d: exit %d\n%s%s", i, code, out, errOut)
		}
		rec, err := soak.ReadShard(d)
		if err != nil {
			t.Fatal(err)
		}
		total += len(rec.Cases)
		for _, c := range rec.Cases {
			if _, err := os.Stat(filepath.Join(d, c.Dir, "trace.jsonl")); err == nil {
				t.Fatalf("--keep failing kept the trace of a held run %s", c.Dir)
			}
		}
	}
	cells, err := soak.Cells(soak.Filter{Scenarios: []string{"rollback-shadow", "torn-extend"}, Drivers: []string{"modernc"}})
	if err != nil {
		t.Fatal(err)
	}
	want := 6 * len(cells)
	if total != want {
		t.Fatalf("3 shards ran %d cases, want 6 seeds × %d cells", total, len(cells))
	}
	var out, errb bytes.Buffer
	merged := filepath.Join(base, "merged")
	if code := runMerge(append(dirs, "--out", merged), &out, &errb); code != 0 {
		t.Fatalf("merge: exit %d\n%s%s", code, out.String(), errb.String())
	}
	var m soak.Merged
	b, err := os.ReadFile(filepath.Join(merged, reports.ReportFile))
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil || !m.OK || m.Totals.Runs != want || m.Totals.Outcomes[reports.Held] != want || len(m.Shards) != 3 {
		t.Fatalf("merged report: %v %+v", err, m.Totals)
	}

	// One unexpected case: the shard exits 1, or 0 with --record-only; the merge exits 1.
	withFakeRunner(t, func(c soak.Case) string {
		if c.Seed == 2 && c.Scenario == "torn-extend" && c.Profile == "legacy" {
			return reports.Unexpected
		}
		return reports.Held
	})
	bad := filepath.Join(base, "bad")
	if code, out, errOut := soakT(t, nil, append(common, "--out", bad)...); code != 1 || !strings.Contains(errOut, "torn-extend/legacy/modernc seed 2: unexpected") {
		t.Fatalf("unexpected case: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(bad, "torn-extend-legacy-modernc-2", "trace.jsonl")); err != nil {
		t.Fatalf("--keep failing dropped the evidence of the unexpected run: %v", err)
	}
	if code, _, _ := soakT(t, nil, append(common, "--record-only", "--out", filepath.Join(base, "bad2"))...); code != 0 {
		t.Fatalf("--record-only: exit %d", code)
	}
	out.Reset()
	if code := runMerge([]string{"--out", filepath.Join(base, "merged-bad"), bad}, &out, &errb); code != 1 ||
		!strings.Contains(out.String(), "**torn-extend/legacy/modernc** seed 2: unexpected") {
		t.Fatalf("merge of an unexpected run: exit %d\n%s", code, out.String())
	}
}

// A setup error that repeats (no FUSE) stops the shard with exit 2.
func TestSoakSetupErrorExits2(t *testing.T) {
	prev := newSoakRunner
	t.Cleanup(func() { newSoakRunner = prev })
	newSoakRunner = func(time.Duration, func()) soak.Runner {
		return soak.RunnerFunc(func(context.Context, soak.Case, string) (*reports.Report, error) {
			return nil, fmt.Errorf("%w: faultfs: /dev/fuse: no such device", soak.ErrSetup)
		})
	}
	code, out, errOut := soakT(t, nil, "--seeds", "1..5", "--scenarios", "rollback-shadow", "--out", t.TempDir())
	if code != 2 || !strings.Contains(out, "stopped (setup-error)") || !strings.Contains(errOut, "/dev/fuse") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

// chaosrunBinary is $CHAOSRUN_BIN, or chaosrun built into a temporary
// directory (a FUSE-backed case re-executes the binary as the faultfs
// server and the roles, which a test binary cannot do here).
func chaosrunBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("CHAOSRUN_BIN"); b != "" {
		return b
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go on PATH to build chaosrun; set CHAOSRUN_BIN")
	}
	bin := filepath.Join(t.TempDir(), "chaosrun")
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// One real case end to end through the CLI: soak mounts faultfs, runs the
// scenario's processes, judges the run and records it; merge reads it back
// with the same outcome.
func TestSoakFUSEEndToEnd(t *testing.T) {
	fusetest.Require(t)
	bin := chaosrunBinary(t)
	base := t.TempDir()
	shard := filepath.Join(base, "shard-0")
	cmd := exec.Command(bin, "soak", "--shard", "0/1", "--seeds", "1..1", "--scenarios", "rollback-shadow",
		"--profiles", "hardened", "--drivers", "modernc", "--out", shard)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	rec, rerr := soak.ReadShard(shard)
	if rerr != nil {
		t.Fatalf("soak: %v; shard.json: %v", err, rerr)
	}
	if rec.Stopped != soak.StopDone || len(rec.Cases) != 1 || rec.Cases[0].Status != soak.Finished {
		t.Fatalf("shard.json: stopped %s, cases %+v", rec.Stopped, rec.Cases)
	}
	run, err := reports.ReadReport(filepath.Join(shard, rec.Cases[0].Dir))
	if err != nil {
		t.Fatal(err)
	}
	if run.Outcome != rec.Cases[0].Outcome || run.Scenario != "rollback-shadow" || run.Seed != 1 || len(run.Results) == 0 {
		t.Fatalf("report.json: %s seed %d outcome %s with %d results; shard.json says %s", run.Cell(), run.Seed, run.Outcome, len(run.Results), rec.Cases[0].Outcome)
	}
	merged := filepath.Join(base, "merged")
	mout, err := exec.Command(bin, "merge", "--out", merged, shard).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var m soak.Merged
	b, err := os.ReadFile(filepath.Join(merged, reports.ReportFile))
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil || m.Totals.Runs != 1 || m.Totals.Outcomes[run.Outcome] != 1 || (code == 0) != soakPassing(run.Outcome) {
		t.Fatalf("merge exit %d, %v, totals %+v for a %s run\n%s", code, err, m.Totals, run.Outcome, mout)
	}
}

// An interrupted shard exits 1 even with --record-only, so that an engine
// retries it (a pod evicted mid-soak), and its record says why it stopped.
func TestSoakInterruptedExits1(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prev := newSoakRunner
	t.Cleanup(func() { newSoakRunner = prev })
	newSoakRunner = func(time.Duration, func()) soak.Runner {
		return soak.RunnerFunc(func(ctx context.Context, c soak.Case, dir string) (*reports.Report, error) {
			cancel() // SIGTERM arrives during the first case
			return nil, fmt.Errorf("interrupted: %w (run directory %s)", ctx.Err(), dir)
		})
	}
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := runSoak(ctx, []string{"--seeds", "1..3", "--scenarios", "rollback-shadow", "--record-only", "--out", dir},
		func(string) string { return "" }, &out, &errb, false)
	rec, err := soak.ReadShard(dir)
	if err != nil {
		t.Fatal(err)
	}
	if code != 1 || rec.Stopped != soak.StopInterrupted || rec.Cases[0].Status != soak.Errored || rec.Cases[1].Status != soak.NotRun {
		t.Fatalf("exit %d, stopped %s, cases %+v\n%s%s", code, rec.Stopped, rec.Cases[:2], out.String(), errb.String())
	}
}

// --jobs must be at least 1; it reaches the shard and its first line.
func TestSoakJobsFlag(t *testing.T) {
	withFakeRunner(t, func(soak.Case) string { return reports.Held })
	if code, _, errOut := soakT(t, nil, "--seeds", "1..2", "--jobs", "0", "--out", t.TempDir()); code != 2 || !strings.Contains(errOut, "--jobs 0: want at least 1") {
		t.Fatalf("--jobs 0: exit %d, %q", code, errOut)
	}
	code, out, errOut := soakT(t, nil, "--seeds", "1..3", "--scenarios", "rollback-shadow", "--jobs", "3", "--out", t.TempDir())
	if code != 0 || !strings.Contains(errOut, ", 3 at once, output ") || !strings.Contains(out, "held") {
		t.Fatalf("--jobs 3: exit %d\n%s%s", code, out, errOut)
	}
	var a soakArgs
	a.flags(io.Discard)
	if a.jobs != defaultJobs() {
		t.Fatalf("--jobs defaults to %d, want defaultJobs() = %d", a.jobs, defaultJobs())
	}
}
