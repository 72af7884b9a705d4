//go:build cgo

package sqlitex

import (
	"errors"

	mattn "github.com/mattn/go-sqlite3"
)

func init() {
	mattnSQLName = "sqlite3"
	mattnCode = func(err error) int {
		var e mattn.Error
		if errors.As(err, &e) {
			return int(e.ExtendedCode)
		}
		var pe *mattn.Error
		if errors.As(err, &pe) && pe != nil {
			return int(pe.ExtendedCode)
		}
		return 0
	}
}
