package found

import (
	"os"
	"path/filepath"
	"testing"
)

func TestModuleRoot(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	bare := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dir, want string }{
		{root, root},
		{deep, root},
		{bare, bare}, // no go.mod above (a temp dir): the directory itself
	} {
		if got := moduleRoot(c.dir); got != c.want {
			t.Errorf("moduleRoot(%s) = %s, want %s", c.dir, got, c.want)
		}
	}
}

func TestDirEnv(t *testing.T) {
	t.Setenv(Env, "/somewhere/found")
	if got := Dir(); got != "/somewhere/found" {
		t.Errorf("Dir() with %s set = %s", Env, got)
	}
	t.Setenv(Env, "")
	if got, want := Dir(), "testdata/found"; filepath.Base(filepath.Dir(got)) != "testdata" || filepath.Base(got) != "found" {
		t.Errorf("Dir() = %s, want .../%s", got, want)
	}
}
