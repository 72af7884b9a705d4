package kanbancore

import (
	"errors"
	"fmt"
	"strings"

	mattn "github.com/mattn/go-sqlite3"
	modernc "modernc.org/sqlite"
)

// ErrClass is the one error taxonomy for both drivers. The oracle's
// error-fidelity check and the gateway's corrupt-board latch branch on it.
type ErrClass int

// The classes. ClassOther is the zero value: anything that is not one of the
// SQLite conditions below (a constraint failure, a plain SQL error, a Go
// error).
const (
	ClassOther      ErrClass = iota
	ClassIOErr               // SQLITE_IOERR and its extended codes (778 write, 1034 fsync, …)
	ClassCorrupt             // SQLITE_CORRUPT; note a transient read EIO also surfaces as this
	ClassNotADB              // SQLITE_NOTADB, or the header magic check
	ClassBusy                // SQLITE_BUSY ("database is locked")
	ClassLocked              // SQLITE_LOCKED ("database table is locked")
	ClassFull                // SQLITE_FULL
	ClassCantOpen            // SQLITE_CANTOPEN
	ClassReadOnly            // SQLITE_READONLY, or a connection SQLite silently opened read-only
	ClassTornExtend          // the post-commit page-count check fired
)

var classNames = [...]string{
	ClassOther:      "OTHER",
	ClassIOErr:      "IOERR",
	ClassCorrupt:    "CORRUPT",
	ClassNotADB:     "NOTADB",
	ClassBusy:       "BUSY",
	ClassLocked:     "LOCKED",
	ClassFull:       "FULL",
	ClassCantOpen:   "CANTOPEN",
	ClassReadOnly:   "READONLY",
	ClassTornExtend: "TORN_EXTEND",
}

// String returns the class name as the history and reports spell it
// ("IOERR", "TORN_EXTEND", …).
func (c ErrClass) String() string {
	if c >= 0 && int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("ErrClass(%d)", int(c))
}

// SQLite primary result codes used by the classification.
const (
	codeError    = 1
	codeBusy     = 5
	codeLocked   = 6
	codeReadOnly = 8
	codeIOErr    = 10
	codeCorrupt  = 11
	codeFull     = 13
	codeCantOpen = 14
	codeNotADB   = 26
)

// Sentinel errors. errors.Is(err, ErrTornExtend) holds for every
// *TornExtendError, and so on.
var (
	ErrTornExtend = errors.New("torn-extend detected")
	ErrCorruptDB  = errors.New("kanban database is corrupt")
	ErrNotADB     = errors.New("file is not a database")
	ErrReadOnly   = errors.New("connection opened read-only")

	// Returned by the board operations.
	ErrUnknownTask      = errors.New("kanbancore: unknown task")
	ErrUnknownParent    = errors.New("kanbancore: unknown parent")
	ErrCycle            = errors.New("kanbancore: link would create a cycle")
	ErrSelfLink         = errors.New("kanbancore: a task cannot depend on itself")
	ErrInvalid          = errors.New("kanbancore: invalid argument")
	ErrTaskRunning      = errors.New("kanbancore: task is running with a claim")
	ErrHallucinatedCard = errors.New("kanbancore: completion names cards that do not exist")
)

// Error is a classified error: the class, SQLite's extended result code (0
// when none), the operation that surfaced it, and the original error, which
// stays reachable with errors.Is/As through Unwrap.
type Error struct {
	Class ErrClass
	Code  int    // SQLite extended result code, 0 if none
	Op    string // e.g. "connect", "claim_task", "BEGIN IMMEDIATE"
	Err   error
}

// Error returns "<op>: <original message>"; the original message is kept
// verbatim so substring checks ("disk I/O error", "cannot rollback") work.
func (e *Error) Error() string {
	if e.Op == "" {
		return e.Err.Error()
	}
	return e.Op + ": " + e.Err.Error()
}

// Unwrap returns the original error.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of the error's class (ErrTornExtend, ErrCorruptDB,
// ErrNotADB, ErrReadOnly).
func (e *Error) Is(target error) bool {
	switch target {
	case ErrTornExtend:
		return e.Class == ClassTornExtend
	case ErrNotADB:
		return e.Class == ClassNotADB
	case ErrReadOnly:
		return e.Class == ClassReadOnly
	}
	return false
}

// wrapErr classifies err and wraps it in an *Error with op, unless err is
// nil or already an *Error (its op is kept).
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	code, _ := SQLiteCode(err)
	return &Error{Class: Classify(err), Code: code, Op: op, Err: err}
}

// SQLiteCode returns the SQLite extended result code carried anywhere in
// err's chain, from either driver (modernc's (*sqlite.Error).Code() is
// already extended; mattn's sqlite3.Error carries ExtendedCode).
func SQLiteCode(err error) (int, bool) {
	if err == nil {
		return 0, false
	}
	var ke *Error
	if errors.As(err, &ke) && ke.Code != 0 {
		return ke.Code, true
	}
	var me *modernc.Error
	if errors.As(err, &me) && me != nil {
		return me.Code(), true
	}
	var ae mattn.Error
	if errors.As(err, &ae) {
		return mattnCode(ae), true
	}
	var ap *mattn.Error
	if errors.As(err, &ap) && ap != nil {
		return mattnCode(*ap), true
	}
	return 0, false
}

func mattnCode(e mattn.Error) int {
	if e.ExtendedCode != 0 {
		return int(e.ExtendedCode)
	}
	return int(e.Code)
}

// Classify maps err to its class. Our own typed errors (*Error,
// *TornExtendError, *CorruptError, *HeaderError) classify as what they are;
// otherwise the first SQLite error in the chain decides by its primary code.
func Classify(err error) ErrClass {
	if err == nil {
		return ClassOther
	}
	var rb *RollbackError
	if errors.As(err, &rb) {
		return Classify(rb.Rollback) // what the legacy caller saw
	}
	var ke *Error
	if errors.As(err, &ke) && ke.Class != ClassOther {
		return ke.Class
	}
	var te *TornExtendError
	if errors.As(err, &te) {
		return ClassTornExtend
	}
	var ce *CorruptError
	if errors.As(err, &ce) {
		return ClassCorrupt
	}
	var he *HeaderError
	if errors.As(err, &he) {
		return ClassNotADB
	}
	code, ok := SQLiteCode(err)
	if !ok {
		return ClassOther
	}
	return classOfCode(code)
}

func classOfCode(code int) ErrClass {
	switch code & 0xff {
	case codeIOErr:
		return ClassIOErr
	case codeCorrupt:
		return ClassCorrupt
	case codeNotADB:
		return ClassNotADB
	case codeBusy:
		return ClassBusy
	case codeLocked:
		return ClassLocked
	case codeFull:
		return ClassFull
	case codeCantOpen:
		return ClassCantOpen
	case codeReadOnly:
		return ClassReadOnly
	}
	return ClassOther
}

// IsCorruptBoardError reports whether err is what the original's gateway
// latch treats as a corrupt board: a *CorruptError (KanbanDbCorruptError), or
// an error whose message contains "file is not a database" or "database disk
// image is malformed". Note that a transient read EIO also says "malformed"
// (feasibility Q4); telling the two apart is the latch's job (quick_check).
func IsCorruptBoardError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrCorruptDB) {
		return true
	}
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "file is not a database") || strings.Contains(m, "database disk image is malformed")
}

// isOperational reports whether Python's sqlite3 module would raise err as
// OperationalError (the class the original's WAL fallback and integrity
// guard catch): SQLITE_ERROR, PERM, ABORT, BUSY, LOCKED, READONLY, INTERRUPT,
// IOERR, FULL, CANTOPEN, PROTOCOL, EMPTY, SCHEMA. CORRUPT and NOTADB are
// DatabaseError instead.
func isOperational(err error) bool {
	code, ok := SQLiteCode(err)
	if !ok {
		return false
	}
	switch code & 0xff {
	case 1, 3, 4, 5, 6, 8, 9, 10, 13, 14, 15, 16, 17:
		return true
	}
	return false
}

// isDatabaseError reports whether Python would raise err as a DatabaseError
// that is not an OperationalError (CORRUPT, NOTADB and the other codes that
// fall to the default branch), i.e. what the integrity guard classifies as
// corruption.
func isDatabaseError(err error) bool {
	code, ok := SQLiteCode(err)
	if !ok {
		return false
	}
	switch code & 0xff {
	case codeCorrupt, codeNotADB:
		return true
	}
	return false
}

// isBusyMessage is the hardened write_txn's retry test: the original retries
// only on messages containing "database is locked" or "database is busy".
func isBusyMessage(err error) bool {
	if err == nil {
		return false
	}
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "database is locked") || strings.Contains(m, "database is busy")
}

// RollbackError is what the legacy write_txn surfaces when its unguarded
// ROLLBACK fails: the ROLLBACK's error replaces the original in the message
// (exactly what a caller of the original saw: "cannot rollback - no
// transaction is active"), but both stay reachable with errors.Is/As, like
// Python's __context__. Classify sees the rollback error first.
type RollbackError struct {
	Rollback error // the failing ROLLBACK's error
	Cause    error // the error that made write_txn roll back
}

// Error returns the rollback error's message, as the legacy code surfaced it.
func (e *RollbackError) Error() string { return e.Rollback.Error() }

// Unwrap returns the rollback error, then the original cause.
func (e *RollbackError) Unwrap() []error { return []error{e.Rollback, e.Cause} }
