package rowkey

import (
	"context"
	"database/sql"
	"reflect"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

func TestKeyColumnsAndExpr(t *testing.T) {
	for _, c := range []struct {
		pk   map[int]string
		cols []string
		expr string
	}{
		{nil, []string{"rowid"}, `CAST("rowid" AS TEXT)`},
		{map[int]string{1: "id"}, []string{"id"}, `CAST("id" AS TEXT)`},
		{map[int]string{2: "child", 1: "parent"}, []string{"parent", "child"}, `CAST("parent" AS TEXT)||'>'||CAST("child" AS TEXT)`},
	} {
		cols := keyColumns(c.pk)
		if !reflect.DeepEqual(cols, c.cols) {
			t.Errorf("keyColumns(%v) = %v, want %v", c.pk, cols, c.cols)
		}
		if got := Expr(cols); got != c.expr {
			t.Errorf("Expr(%v) = %s, want %s", cols, got, c.expr)
		}
	}
}

// TestReadRendersHistoryKeys reads real tables and renders their keys as
// the histories name rows.
func TestReadRendersHistoryKeys(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+t.TempDir()+"/k.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE tasks (id TEXT PRIMARY KEY, status TEXT)`,
		`CREATE TABLE task_links (child TEXT, parent TEXT, PRIMARY KEY (parent, child))`,
		`CREATE TABLE comments (body TEXT, task_id TEXT)`,
		`INSERT INTO tasks VALUES ('t1', 'todo')`,
		`INSERT INTO task_links VALUES ('t2', 't1')`,
		`INSERT INTO comments VALUES ('hi', 't1')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	for _, c := range []struct {
		table, key string
		task       bool
	}{{"tasks", "t1", false}, {"task_links", "t1>t2", false}, {"comments", "1", true}} {
		tb, err := Read(ctx, db, c.table)
		if err != nil {
			t.Fatal(c.table, err)
		}
		var key string
		if err := db.QueryRow("SELECT " + tb.Expr() + " FROM " + c.table).Scan(&key); err != nil {
			t.Fatal(c.table, err)
		}
		if key != c.key || tb.Has("task_id") != c.task {
			t.Errorf("%s: key %q, task_id %v; want %q, %v", c.table, key, tb.Has("task_id"), c.key, c.task)
		}
	}
	if _, err := Read(ctx, db, "missing"); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("Read of a missing table: %v, want no such table", err)
	}
}
