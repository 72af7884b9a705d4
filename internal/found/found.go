// Package found says where failing cases are saved for replay: the
// properties' found plans (prop) and the crash explorer's minimal states
// (crashes, `chaosrun crashes --save`) share one directory and one
// environment variable to move it.
package found

import (
	"os"
	"path/filepath"
)

// Env overrides the directory failures are saved to.
const Env = "SQLCHAOS_FOUND_DIR"

// Dir is $SQLCHAOS_FOUND_DIR, else testdata/found at the module root
// (found by walking up to go.mod from the working directory; the working
// directory's testdata/found when there is no go.mod above it).
func Dir() string {
	if d := os.Getenv(Env); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return filepath.Join("testdata", "found")
	}
	return filepath.Join(moduleRoot(dir), "testdata", "found")
}

// moduleRoot returns the nearest directory at or above dir holding a
// go.mod, or dir itself when none does.
func moduleRoot(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
