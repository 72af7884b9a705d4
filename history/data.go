package history

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Data is what an event carries beyond its common fields: the JSON object
// under "data". Each group of fields is written by the events its comment
// names and left zero (and so absent from the JSON) elsewhere. Counts and
// facts whose zero value is itself a measurement are pointers, so that
// "absent" and "0" (or "false") stay apart.
//
// Reading a history whose data holds a key not listed here, or a value of
// another shape, is an error (see ReadFile).
type Data struct {
	// Commit is what a TypeCommit event's transaction changed.
	Commit

	// On TypeStart: the process's role, board profile, SQLite driver and
	// seed, and its parent's pid.
	Role    string `json:"role,omitempty"`
	Profile string `json:"profile,omitempty"`
	Driver  string `json:"driver,omitempty"`
	Seed    *int64 `json:"seed,omitempty"`
	Ppid    int    `json:"ppid,omitempty"`

	// Handoff on TypeExit: a launcher exiting as it hands its task to
	// the worker it starts.
	Handoff bool `json:"handoff,omitempty"`

	// Pid on TypeSpawn is the spawned worker's pid; on TypeReap a reaped
	// child's pid (Pids for several); on a shell run's TypeReturn and
	// TypeCommit the shell's pid.
	Pid  int   `json:"pid,omitempty"`
	Pids []int `json:"pids,omitempty"`
	// Proc and Launcher on TypeSpawn: the worker's process name, and
	// whether it was started through a launcher process.
	Proc     string `json:"proc,omitempty"`
	Launcher bool   `json:"launcher,omitempty"`
	// Defunct on TypeReap is the number of defunct children the
	// dispatcher counted at that tick (before reaping).
	Defunct *int `json:"defunct,omitempty"`

	// On the TypeReturn of a dispatcher "tick": the board ticked, whether
	// it dispatched, whether the tick was skipped (latched board),
	// latched or left unconfirmed, and the tasks spawned, the workers
	// found crashed and the stale claims reclaimed.
	Board       string   `json:"board,omitempty"`
	Dispatched  bool     `json:"dispatched,omitempty"`
	Skipped     bool     `json:"skipped,omitempty"`
	Latched     bool     `json:"latched,omitempty"`
	Unconfirmed bool     `json:"unconfirmed,omitempty"`
	Spawned     []string `json:"spawned,omitempty"`
	Crashed     []string `json:"crashed,omitempty"`
	Reclaimed   int      `json:"reclaimed,omitempty"`

	// On the TypeReturn of a sqlite3 shell run: its exit status and
	// trimmed standard output.
	Exit   *int   `json:"exit,omitempty"`
	Stdout string `json:"stdout,omitempty"`
	// On the TypeReturn of "shell_version": the shell's path, its SQLite
	// version and whether that version checks the -shm before acting as
	// the last connection (3.51 and later).
	Path           string `json:"path,omitempty"`
	Version        string `json:"version,omitempty"`
	SharesShmCheck *bool  `json:"shares_shm_check,omitempty"`
	// DBLocks on the TypeReturn of "lock_probe": the POSIX locks the
	// process holds on the database file (-1 when unknown).
	DBLocks *int `json:"db_locks,omitempty"`

	// Step on a property workload's TypeCall: the step, as prop.Step
	// prints it.
	Step string `json:"step,omitempty"`
}

// Commit is what a committed write transaction changed, as kanbancore
// reports it (the event's Op and Seq name the transaction).
type Commit struct {
	Transitions []Transition `json:"transitions,omitempty"` // status changes
	Inserted    []RowRef     `json:"inserted,omitempty"`    // rows inserted
	Deleted     []RowRef     `json:"deleted,omitempty"`     // rows deleted
	Updated     []RowRef     `json:"updated,omitempty"`     // rows updated, other than status transitions
}

// Transition is a task status change. From is "" for a created task, To
// "" for a deleted one.
type Transition struct {
	Task string `json:"task"`
	From string `json:"from"`
	To   string `json:"to"`
}

// RowRef names a row: its table and primary key, and for child rows
// (events, runs, comments) the task they belong to when known.
type RowRef struct {
	Table string `json:"table"`
	Key   string `json:"key"`
	Task  string `json:"task,omitempty"`
}

// UnmarshalJSON decodes a data object strictly: an unknown key, or a value
// of another shape, is an error.
func (d *Data) UnmarshalJSON(b []byte) error {
	type plain Data // without this method
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	*d = Data(p)
	return nil
}
