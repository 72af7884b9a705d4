package crashes

import (
	"context"
	"os"
	"path/filepath"
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
// power cut breaks it (SQLite's atomic commit, DELETE journal at FULL);
// one lost database write that a fsync had reported durable brings
// deleted rows back with integrity_check ok.
func TestFixtureRollbackDelete(t *testing.T) {
	run := copyFixture(t, fixtureDir)
	e, err := Open(Options{RunDir: run, Budget: 0, Jobs: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	logReport(t, rep)
	for _, cs := range rep.Classes {
		if cs.Run != cs.Candidates && cs.Class != ClassLost {
			t.Errorf("class %s: %d of %d candidates run", cs.Class, cs.Run, cs.Candidates)
		}
		if cs.Class != ClassLostSynced && (cs.Fail > 0 || cs.Errors > 0 || cs.Detected > 0 || cs.Unsure > 0) {
			t.Errorf("honest class %s: %+v", cs.Class, cs)
		}
	}
	f := rep.MinimalByKind[KindResurrected]
	if f == nil || f.Class != ClassLostSynced || f.Judgement.Integrity != "ok" || len(f.Alts) != 1 || f.Alts[0].Path != "kanban.db" || f.Alts[0].Page == 0 {
		t.Fatalf("minimal resurrection: %+v", f)
	}
	t.Logf("minimal resurrection %s (page %d): %s", f.ID, f.Alts[0].Page, f.Judgement.Summary())
}
