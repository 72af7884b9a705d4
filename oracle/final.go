package oracle

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sqlchaos/sqlchaos/internal/rowkey"
	_ "modernc.org/sqlite" // the fault-free judge connection
)

// final is what the fault-free connection and the raw files say about the
// database at the end of the run.
type final struct {
	db      *sql.DB
	openErr error // opening or the first query failed

	integrity    []string // integrity_check rows; ["ok"] when healthy
	integrityErr error

	ledger    map[int64]ledgerRow
	ledgerErr error

	// Raw header of files/kanban.db (not the copy), read before any open.
	header    []byte // first 100 bytes, nil if unreadable
	fileSize  int64
	walSize   int64 // -1 when there is no -wal file
	headerErr error

	keyExprs map[string]string   // table -> key expression (keyExpr)
	keyCols  map[string][]string // table -> its key columns in key order
}

type ledgerRow struct {
	Seq  int64
	Proc string
	Op   string
	T    int64
}

// haveDB reports whether the run saved a database at all.
func (in *Input) haveDB() bool { return in.DB != "" }

// final opens the copy once and runs the whole-database queries.
func (in *Input) final() *final {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.fin != nil {
		return in.fin
	}
	f := &final{walSize: -1}
	in.fin = f
	raw := filepath.Join(in.Files, DBName)
	if b, err := os.ReadFile(raw); err == nil {
		f.fileSize = int64(len(b))
		if len(b) >= 100 {
			f.header = b[:100]
		} else {
			f.headerErr = fmt.Errorf("%s is %d bytes, shorter than a header", DBName, len(b))
		}
	} else {
		f.headerErr = err
	}
	if st, err := os.Stat(raw + "-wal"); err == nil {
		f.walSize = st.Size()
	}
	if in.DB == "" {
		f.openErr = errors.New("no database saved")
		return f
	}
	db, err := sql.Open("sqlite", "file:"+in.DB+"?_pragma=busy_timeout(2000)")
	if err != nil {
		f.openErr = err
		return f
	}
	db.SetMaxOpenConns(1)
	f.db = db
	if _, err := db.Exec("PRAGMA query_only=1"); err != nil {
		f.openErr = err
		return f
	}
	f.integrity, f.integrityErr = queryStrings(db, "PRAGMA integrity_check")
	f.ledger = map[int64]ledgerRow{}
	rows, err := db.Query(fmt.Sprintf(`SELECT seq, proc, op, t FROM %q`, in.Meta.Ledger))
	if err != nil {
		f.ledgerErr = err
		return f
	}
	defer rows.Close()
	for rows.Next() {
		var r ledgerRow
		var proc, op sql.NullString
		var t sql.NullInt64
		if err := rows.Scan(&r.Seq, &proc, &op, &t); err != nil {
			f.ledgerErr = err
			return f
		}
		r.Proc, r.Op, r.T = proc.String, op.String, t.Int64
		f.ledger[r.Seq] = r
	}
	f.ledgerErr = rows.Err()
	return f
}

// queryStrings runs q with args and returns its first column as strings; on a
// scan error it returns the strings read so far with the error.
func queryStrings(db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.Query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// integrityOK reports whether integrity_check said exactly "ok".
func (f *final) integrityOK() bool {
	return f.integrityErr == nil && len(f.integrity) == 1 && f.integrity[0] == "ok"
}

// headerMode returns bytes 18-19 of the saved database as "2/2", "1/1"...
func (f *final) headerMode() string {
	if f.header == nil {
		return ""
	}
	return fmt.Sprintf("%d/%d", f.header[18], f.header[19])
}

// pageSize returns the header's page size (bytes 16-17; 1 means 65536).
func (f *final) pageSize() int64 {
	if f.header == nil {
		return 0
	}
	ps := int64(binary.BigEndian.Uint16(f.header[16:18]))
	if ps == 1 {
		ps = 65536
	}
	return ps
}

// headerPages returns the in-header page count (bytes 28-31).
func (f *final) headerPages() int64 {
	if f.header == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint32(f.header[28:32]))
}

// keyExpr returns the SQL expression that renders a row's key of table
// as the histories write it (see internal/rowkey): the single primary-key
// column (rowid when there is none), or, for a composite primary key, its
// columns in key order joined by ">" (kanbancore names a task_links row
// "parent>child").
func (f *final) keyExpr(table string) (string, error) {
	if e, ok := f.keyExprs[table]; ok {
		return e, nil
	}
	t, err := rowkey.Read(context.Background(), f.db, table)
	if err != nil {
		return "", err
	}
	if f.keyExprs == nil {
		f.keyExprs, f.keyCols = map[string]string{}, map[string][]string{}
	}
	f.keyExprs[table], f.keyCols[table] = t.Expr(), t.Key
	return t.Expr(), nil
}

// rowExists reports whether table has a row whose key (see keyExpr) is
// key. It looks the row up by its primary key, so that one damaged page
// does not make every row of the table unreadable.
func (f *final) rowExists(table, key string) (bool, error) {
	if f.db == nil {
		return false, f.openErr
	}
	if _, err := f.keyExpr(table); err != nil {
		return false, err
	}
	cols := f.keyCols[table]
	var conds []string
	var args []any
	if len(cols) == 1 {
		conds, args = []string{fmt.Sprintf("%q = ?", cols[0])}, []any{key}
	} else {
		parts := strings.SplitN(key, ">", len(cols))
		if len(parts) != len(cols) {
			return false, nil // not a key of this table's shape
		}
		for i, c := range cols {
			conds = append(conds, fmt.Sprintf("%q = ?", c))
			args = append(args, parts[i])
		}
	}
	var n int
	err := f.db.QueryRow(fmt.Sprintf("SELECT count(*) FROM %q WHERE %s", table, strings.Join(conds, " AND ")), args...).Scan(&n)
	return n > 0, err
}

// keys returns every row key of table (see keyExpr).
func (f *final) keys(table string) ([]string, error) {
	expr, err := f.keyExpr(table)
	if err != nil {
		return nil, err
	}
	return queryStrings(f.db, fmt.Sprintf("SELECT %s FROM %q", expr, table))
}

// keysOfTask returns the keys of table's rows whose task_id is task.
func (f *final) keysOfTask(table, task string) ([]string, error) {
	if f.db == nil {
		return nil, f.openErr
	}
	expr, err := f.keyExpr(table)
	if err != nil {
		return nil, err
	}
	return queryStrings(f.db, fmt.Sprintf("SELECT %s FROM %q WHERE task_id = ?", expr, table), task)
}

// taskStatus returns a task's final status, or "" when it has no row.
func (f *final) taskStatus(task string) (string, error) {
	if f.db == nil {
		return "", f.openErr
	}
	var s string
	err := f.db.QueryRow(`SELECT status FROM tasks WHERE id = ?`, task).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return s, err
}

// sqliteDamage reports whether err looks like SQLite refusing a damaged
// file (as opposed to a harness problem such as a missing copy).
func sqliteDamage(err error) bool {
	if err == nil {
		return false
	}
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "malformed") || strings.Contains(s, "not a database") ||
		strings.Contains(s, "corrupt") || strings.Contains(s, "no such table")
}
