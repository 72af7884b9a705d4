package crashes

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// copyFixture copies a recorded run directory to a temporary one (the
// explorer writes its report into the run directory).
func copyFixture(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestFixtureRollbackDelete explores the recorded rollback-journal run of
// testdata/crashes (no FUSE needed): every systematic state. No honest
// power cut breaks it (SQLite's atomic commit, DELETE journal at FULL).
// One lost database write that a fsync had reported durable brings
// deleted rows back with integrity_check ok (issue 9's lost leaf write,
// secure_delete ON). Of the torn writes a fsync reported durable, none
// that kept the new page head (its first sector) brings a row back
// silently: the rows come back only when the old head survived.
func TestFixtureRollbackDelete(t *testing.T) {
	run := copyFixture(t, fixtureDir)
	explore := func(classes ...Class) *Report {
		e, err := Open(Options{RunDir: run, Budget: 0, Jobs: 2, Seed: 1, Classes: classes})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := e.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		logReport(t, rep)
		return rep
	}
	rep := explore()
	for _, cs := range rep.Classes {
		if cs.Run != cs.Candidates && cs.Class != ClassLost {
			t.Errorf("class %s: %d of %d candidates run", cs.Class, cs.Run, cs.Candidates)
		}
		if !cs.Class.Lying() && cs.Class != ClassDirLost && (cs.Fail > 0 || cs.Errors > 0 || cs.Detected > 0 || cs.Unsure > 0) {
			t.Errorf("honest class %s: %+v", cs.Class, cs)
		}
	}
	// A directory op lost: the rollback journal's unlink after the last
	// commit (SQLite syncs the directory after it only at
	// synchronous=EXTRA), so the journal is hot again and the
	// acknowledged DELETE rolls back: its rows come back, consistently
	// with a ledger that lost the commit.
	rep = explore(ClassDirLost)
	if f := rep.Minimal; f == nil || !reflect.DeepEqual(f.Judgement.Kinds(), []string{KindLostCommit}) || len(f.DirOps) != 1 ||
		!strings.Contains(f.DirOps[0], "unlink kanban.db-journal") || f.Point != 0 || f.Judgement.Integrity != "ok" {
		t.Fatalf("dir-lost: minimal %+v", f)
	}
	if rep.Kinds[KindLostCommit] != rep.Failing {
		t.Fatalf("dir-lost: kinds %v", rep.Kinds)
	}

	rep = explore(ClassLostSynced)
	f := rep.MinimalByKind[KindResurrected]
	if f == nil || f.Class != ClassLostSynced || f.Judgement.Integrity != "ok" || len(f.Alts) != 1 || f.Alts[0].Path != "kanban.db" || f.Alts[0].Page == 0 {
		t.Fatalf("minimal resurrection: %+v", f)
	}
	t.Logf("lost write %s (page %d): %s", f.ID, f.Alts[0].Page, f.Judgement.Summary())
	// The oracle's own checkers, on a run directory synthesized for this
	// one image, agree: the rows are wrong, the structure is fine.
	e, err := Open(Options{RunDir: run})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.CrossCheck(context.Background(), f.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range res {
		got[r.Checker] = string(r.Verdict)
		t.Logf("oracle %s: %s: %s", r.Checker, r.Verdict, r.Summary)
	}
	if got["resurrection"] != "fail" || got["structure"] != "pass" {
		t.Fatalf("oracle on %s: %v", f.ID, got)
	}

	rep = explore(ClassTornSynced)
	if len(rep.Failures) != rep.Failing {
		t.Fatalf("%d failing, %d listed", rep.Failing, len(rep.Failures))
	}
	silent := 0
	for _, f := range rep.Failures {
		if !shares(f.Judgement.Kinds(), []string{KindResurrected}) {
			continue
		}
		silent++
		s, err := ParseID(f.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s.Alts[0].Keep[0] {
			t.Errorf("%s kept the new page head and brought rows back: %s", f.ID, f.Judgement.Summary())
		}
		t.Logf("torn write %s: %s: %s", f.ID, f.Alts[0].What, f.Judgement.Summary())
	}
	if silent == 0 {
		t.Logf("no torn write brings a row back silently")
	}
}
