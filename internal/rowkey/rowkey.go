// Package rowkey renders a SQLite row's key the way the histories name
// rows (kanbancore's commit records): the single primary-key column, rowid
// when the table has no primary key, or a composite key's columns in key
// order joined by ">" (a task_links row is "parent>child"). The oracle and
// the crash explorer read keys through it, so both name a row alike.
package rowkey

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Queryer runs a query: *sql.DB, *sql.Conn and *sql.Tx all do.
type Queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Table is what PRAGMA table_info says about a table's key.
type Table struct {
	// Key lists the key columns in key order: the primary key's, or
	// "rowid" when the table has none.
	Key []string
	// Columns lists every column, in table order.
	Columns []string
}

// Read reads table's columns and primary key. A table with no columns
// (PRAGMA table_info returns none for a missing table) is an error that
// says "no such table".
func Read(ctx context.Context, q Queryer, table string) (Table, error) {
	rows, err := q.QueryContext(ctx, fmt.Sprintf("PRAGMA table_info(%q)", table))
	if err != nil {
		return Table{}, err
	}
	defer rows.Close()
	var t Table
	pk := map[int]string{}
	for rows.Next() {
		var cid, notnull, k int
		var name, typ string
		var dflt sql.NullString
		if err := rows.Scan(&cid, &name, &typ, &notnull, &dflt, &k); err != nil {
			return Table{}, err
		}
		t.Columns = append(t.Columns, name)
		if k > 0 {
			pk[k] = name
		}
	}
	if err := rows.Err(); err != nil {
		return Table{}, err
	}
	if len(t.Columns) == 0 {
		return Table{}, fmt.Errorf("no such table: %s", table)
	}
	t.Key = keyColumns(pk)
	return t, nil
}

// keyColumns orders the primary key's columns (by their 1-based position
// in the key), or returns rowid for a table without one.
func keyColumns(pk map[int]string) []string {
	if len(pk) == 0 {
		return []string{"rowid"}
	}
	cols := make([]string, 0, len(pk))
	for i := 1; i <= len(pk); i++ {
		cols = append(cols, pk[i])
	}
	return cols
}

// Expr returns the SQL expression that renders a row's key as text.
func (t Table) Expr() string { return Expr(t.Key) }

// Has reports whether the table has a column named col.
func (t Table) Has(col string) bool {
	for _, c := range t.Columns {
		if c == col {
			return true
		}
	}
	return false
}

// Expr returns the SQL expression that renders the key columns cols as
// text joined by ">": CAST("a" AS TEXT)||'>'||CAST("b" AS TEXT).
func Expr(cols []string) string {
	parts := make([]string, 0, len(cols))
	for _, c := range cols {
		parts = append(parts, fmt.Sprintf("CAST(%q AS TEXT)", c))
	}
	return strings.Join(parts, "||'>'||")
}
