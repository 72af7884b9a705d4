package oracle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sqlchaos/sqlchaos/faultfs/trace"
	"github.com/sqlchaos/sqlchaos/history"
)

// Run directory layout, agreed with the scenario runner.
const (
	MetaFile     = "meta.json"
	HistoriesDir = "histories" // *.jsonl, one per process
	TraceFile    = "trace.jsonl"
	FilesDir     = "files" // kanban.db, kanban.db-wal, kanban.db-shm after unmount
	DBName       = "kanban.db"
)

// DefaultLedger is the commit ledger table when Meta.Ledger is empty.
const DefaultLedger = "chaos_ledger"

// Load reads the run directory dir. It copies files/ to a private
// temporary directory, so opening the database (which may replay the WAL)
// never changes the saved run; call Close to remove the copy.
func Load(dir string) (*Input, error) {
	in := &Input{Dir: dir, Files: filepath.Join(dir, FilesDir)}
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("oracle: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("oracle: %s is not a run directory", dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, MetaFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		in.miss("no " + MetaFile)
	case err != nil:
		return nil, fmt.Errorf("oracle: %w", err)
	default:
		if err := json.Unmarshal(b, &in.Meta); err != nil {
			return nil, fmt.Errorf("oracle: %s: %w", MetaFile, err)
		}
	}
	if in.Meta.Ledger == "" {
		in.Meta.Ledger = DefaultLedger
	}
	in.Events, err = history.ReadDir(filepath.Join(dir, HistoriesDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("oracle: %w", err)
	}
	if len(in.Events) == 0 {
		in.miss("no history events in " + HistoriesDir + "/")
	}
	in.Trace, err = trace.ReadFile(filepath.Join(dir, TraceFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		in.miss("no " + TraceFile)
	case errors.Is(err, trace.ErrTruncated):
		in.Notes = append(in.Notes, err.Error())
	case err != nil:
		return nil, fmt.Errorf("oracle: %w", err)
	case len(in.Trace) == 0:
		in.missing = append(in.missing, TraceFile+" has no records")
	}
	if _, err := os.Stat(filepath.Join(in.Files, DBName)); err == nil {
		tmp, err := os.MkdirTemp("", "sqlchaos-judge-")
		if err != nil {
			return nil, fmt.Errorf("oracle: %w", err)
		}
		in.tmp = tmp
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			if err := copyFile(filepath.Join(in.Files, DBName+suffix), filepath.Join(tmp, DBName+suffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				in.Close()
				return nil, fmt.Errorf("oracle: copy %s%s: %w", DBName, suffix, err)
			}
		}
		in.DB = filepath.Join(tmp, DBName)
	} else {
		in.miss("no " + FilesDir + "/" + DBName)
	}
	return in, nil
}

// miss notes an input Load could not find, both as a note and as missing.
func (in *Input) miss(what string) {
	in.Notes = append(in.Notes, what)
	in.missing = append(in.missing, what)
}

// Missing lists the run's inputs that Load could not find (the meta, any
// history event, the trace, the saved database). When any is missing,
// every checker is inconclusive: nothing is judged on partial input.
func (in *Input) Missing() []string { return in.missing }

// Close closes the final database and removes the private copy.
func (in *Input) Close() error {
	if in.fin != nil && in.fin.db != nil {
		in.fin.db.Close()
	}
	if in.tmp != "" {
		err := os.RemoveAll(in.tmp)
		in.tmp = ""
		return err
	}
	return nil
}

func copyFile(src, dst string) error {
	s, err := os.Open(src)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(d, s); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
