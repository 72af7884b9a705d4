// Package sqlitex opens a SQLite database on either of the project's two
// drivers by name and reads SQLite's extended result code out of either
// driver's error. It is deliberately tiny: tests and the benchmark use it;
// kanbancore has its own error classification.
package sqlitex

import (
	"database/sql"
	"errors"
	"fmt"

	modernc "modernc.org/sqlite" // also registers "sqlite"
)

// Driver names accepted by Open.
const (
	Modernc = "modernc" // modernc.org/sqlite, pure Go
	Mattn   = "mattn"   // github.com/mattn/go-sqlite3, cgo
)

// SQLite result codes the project's tests and tools name. Primary codes are
// the low byte of an extended code.
const (
	IOERR      = 10   // SQLITE_IOERR
	CORRUPT    = 11   // SQLITE_CORRUPT
	FULL       = 13   // SQLITE_FULL
	CANTOPEN   = 14   // SQLITE_CANTOPEN
	NOTADB     = 26   // SQLITE_NOTADB
	READONLY   = 8    // SQLITE_READONLY
	BUSY       = 5    // SQLITE_BUSY
	IOERRRead  = 266  // SQLITE_IOERR_READ
	IOERRShort = 522  // SQLITE_IOERR_SHORT_READ
	IOERRWrite = 778  // SQLITE_IOERR_WRITE
	IOERRFsync = 1034 // SQLITE_IOERR_FSYNC
)

// Drivers returns the driver names Open accepts, modernc first.
func Drivers() []string { return []string{Modernc, Mattn} }

// SQLName maps a driver name ("modernc" or "mattn") to its database/sql name.
func SQLName(driver string) (string, error) {
	switch driver {
	case Modernc:
		return "sqlite", nil
	case Mattn:
		if mattnSQLName == "" {
			return "", errors.New("sqlitex: the mattn driver needs cgo")
		}
		return mattnSQLName, nil
	}
	return "", fmt.Errorf("sqlitex: unknown driver %q (want modernc or mattn)", driver)
}

// Open opens path on driver with a pool of exactly one connection, so every
// statement runs on the same SQLite connection, and runs each pragma (e.g.
// "journal_mode=WAL") on it in order. It does not create the file: SQLite
// does that on first use.
func Open(driver, path string, pragmas ...string) (*sql.DB, error) {
	name, err := SQLName(driver)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(name, path)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	for _, p := range pragmas {
		if _, err := db.Exec("PRAGMA " + p); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlitex: PRAGMA %s: %w", p, err)
		}
	}
	return db, nil
}

// Code returns SQLite's extended result code carried by err (e.g. 778 for
// SQLITE_IOERR_WRITE), or 0 if err holds no SQLite error from either driver.
func Code(err error) int {
	if err == nil {
		return 0
	}
	var me *modernc.Error
	if errors.As(err, &me) {
		return me.Code()
	}
	if mattnCode != nil {
		return mattnCode(err)
	}
	return 0
}

// Primary returns the primary result code of err (the low byte of Code).
func Primary(err error) int { return Code(err) & 0xff }
