// Package deps pins the project's third-party modules so that `go mod tidy`
// keeps them while the packages that use them grow. It has no code.
package deps

import (
	_ "github.com/hanwen/go-fuse/v2/fs"
	_ "github.com/hanwen/go-fuse/v2/fuse"
	_ "github.com/leanovate/gopter"
	_ "github.com/mattn/go-sqlite3"
	_ "golang.org/x/sys/unix"
	_ "modernc.org/sqlite"
)
