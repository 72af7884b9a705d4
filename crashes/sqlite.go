package crashes

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sqlchaos/sqlchaos/internal/rowkey"
	_ "modernc.org/sqlite" // the fault-free judge connection
)

// judgeDir is a private directory where one worker writes images and opens
// them with SQLite (modernc), one at a time.
type judgeDir struct {
	dir    string
	db     string // base name of the main database
	ledger string
	x      *expect
	keys   map[string]string // table -> key expression (internal/rowkey)
	taskID map[string]bool   // table -> has a task_id column
}

func newJudgeDir(parent, db, ledger string, x *expect) (*judgeDir, error) {
	dir, err := os.MkdirTemp(parent, "judge-")
	if err != nil {
		return nil, err
	}
	return &judgeDir{dir: dir, db: db, ledger: ledger, x: x, keys: map[string]string{}, taskID: map[string]bool{}}, nil
}

func (d *judgeDir) close() error { return os.RemoveAll(d.dir) }

// place writes img into dir (main db name kept, so SQLite finds its -wal
// or -journal and recovers from it) after removing what the last image
// left, -shm included. The -wal is cut after its last frame SQLite's
// recovery can reach (walValidLen): the same database to SQLite, less to
// read.
func place(dir, db string, img Image) error { return placeFiles(dir, db, img, true) }

// placeFiles is place; trimWAL false writes the -wal exactly as the image
// has it (for files a user or the oracle reads).
func placeFiles(dir, db string, img Image, trimWAL bool) error {
	names := dbNames(db)
	for _, n := range append(names[:], db+"-shm") {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	for n, b := range img {
		if trimWAL && n == names[1] {
			b = b[:walValidLen(b)]
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// judge writes img, reads its facts and judges them.
func (d *judgeDir) judge(ctx context.Context, img Image, cut Cut, mode Mode) Judgement {
	return d.judgePlaced(ctx, place(d.dir, d.db, img), cut, mode)
}

// judgePlaced judges the image already placed in d.dir (placeErr: what
// placing it failed with).
func (d *judgeDir) judgePlaced(ctx context.Context, placeErr error, cut Cut, mode Mode) Judgement {
	if placeErr != nil {
		return judge(d.x, &facts{harnessError: placeErr}, cut, mode)
	}
	return judge(d.x, d.read(ctx), cut, mode)
}

// read opens the image in d.dir and reads what the judgement needs.
func (d *judgeDir) read(ctx context.Context) *facts {
	f := &facts{rowsErr: map[string]error{}}
	path := filepath.Join(d.dir, d.db)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(2000)&_pragma=synchronous(0)")
	if err != nil {
		f.harnessError = err
		return f
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		f.openErr, f.damaged = err, isDamage(err)
		return f
	}
	defer conn.Close()
	f.integrity, err = strs(ctx, conn, "PRAGMA integrity_check")
	if err != nil {
		f.openErr, f.damaged = err, isDamage(err)
		return f
	}
	if !(len(f.integrity) == 1 && f.integrity[0] == "ok") {
		f.quick, _ = strs(ctx, conn, "PRAGMA quick_check")
	}
	// A table that does not exist yet (a cut before the schema was
	// created, or a lost schema write) is empty: what the ledger then
	// lacks, durability and the row checks report.
	f.ledger, f.ledgerErr = readLedger(ctx, conn, d.ledger)
	if noSuchTable(f.ledgerErr) {
		f.ledger, f.ledgerErr = map[int64]ledgerRow{}, nil
	}
	f.rows = map[string]map[string]string{}
	for _, t := range d.x.tables {
		rows, err := d.readKeys(ctx, conn, t)
		if noSuchTable(err) {
			rows, err = map[string]string{}, nil
		}
		if err != nil {
			f.rowsErr[t] = err
			continue
		}
		f.rows[t] = rows
	}
	if len(d.x.trans) > 0 {
		f.status, f.statusErr = readStatus(ctx, conn)
		if noSuchTable(f.statusErr) {
			f.status, f.statusErr = map[string]string{}, nil
		}
	}
	return f
}

func noSuchTable(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such table")
}

func strs(ctx context.Context, c *sql.Conn, q string, args ...any) ([]string, error) {
	rows, err := c.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s sql.NullString
		if err := rows.Scan(&s); err != nil {
			return out, err
		}
		out = append(out, s.String)
	}
	return out, rows.Err()
}

func readLedger(ctx context.Context, c *sql.Conn, table string) (map[int64]ledgerRow, error) {
	rows, err := c.QueryContext(ctx, fmt.Sprintf(`SELECT seq, proc, op FROM %q`, table))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]ledgerRow{}
	for rows.Next() {
		var r ledgerRow
		var proc, op sql.NullString
		if err := rows.Scan(&r.Seq, &proc, &op); err != nil {
			return out, err
		}
		r.Proc, r.Op = proc.String, op.String
		out[r.Seq] = r
	}
	return out, rows.Err()
}

func readStatus(ctx context.Context, c *sql.Conn) (map[string]string, error) {
	return pairs(ctx, c, `SELECT id, status FROM tasks`)
}

// pairs runs q, a query of two columns, and maps each row's first column
// to its second (NULL reads as ""; a later row wins). On a scan error it
// returns what it read so far with the error.
func pairs(ctx context.Context, c *sql.Conn, q string) (map[string]string, error) {
	rows, err := c.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			return out, err
		}
		out[k.String] = v.String
	}
	return out, rows.Err()
}

// readKeys returns every row key of table (rendered as the histories write
// it, internal/rowkey: the single primary-key column, rowid without one,
// or a composite key's columns joined by ">") with its task_id when the
// table has one.
func (d *judgeDir) readKeys(ctx context.Context, c *sql.Conn, table string) (map[string]string, error) {
	expr, ok := d.keys[table]
	if !ok {
		t, err := rowkey.Read(ctx, c, table)
		if err != nil {
			return nil, err
		}
		expr = t.Expr()
		d.keys[table], d.taskID[table] = expr, t.Has("task_id")
	}
	task := "''"
	if d.taskID[table] {
		task = `CAST("task_id" AS TEXT)`
	}
	return pairs(ctx, c, fmt.Sprintf("SELECT %s, %s FROM %q", expr, task, table))
}
