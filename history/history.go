// Package history is the append-only JSONL record that every scenario process
// writes: each operation's call and return, what committed, and every error
// with its class. An event's own facts (the rows and transitions of a
// commit, a spawned worker's pid, a tick's outcome, ...) are typed fields
// of Data, the one place that lists them; a history holding anything else
// does not load. Scenarios write it; the oracle reads it. It is a leaf
// package.
//
// # Where each idea lives
//
// history.go: the Event and its types; data.go: Data, every fact an event
// may carry, and the commit record (Commit, Transition, RowRef) that
// mirrors kanbancore's (history imports nothing of the project, so
// internal/ledger converts); writer.go and reader.go: the JSONL file. What
// writes a history is internal/ledger (commits, errors, journal modes)
// and the scenario roles (everything else).
package history

import (
	"cmp"
	"slices"
)

// Event types.
const (
	TypeStart  = "start"  // process started (Data: Role, Profile, Driver, Seed, Ppid)
	TypeCall   = "call"   // an operation was invoked
	TypeReturn = "return" // it returned (Err empty = acknowledged)
	TypeCommit = "commit" // a write transaction committed (Seq = commit counter)
	TypeError  = "error"  // an error surfaced (also carried on failed returns)
	TypeMode   = "mode"   // a connection reported its journal mode (Mode)
	TypeSpawn  = "spawn"  // a worker process was spawned (Task, Data.Pid)
	TypeReap   = "reap"   // zombie children were reaped / counted (Data.Defunct, Data.Pids)
	TypeExit   = "exit"   // process exits
)

// Event is one line of a process's history.
type Event struct {
	T    int64  `json:"t"`    // CLOCK_MONOTONIC ns
	Proc string `json:"proc"` // role instance, e.g. "worker-3"
	Pid  int    `json:"pid"`
	Type string `json:"type"`
	ID   int64  `json:"id,omitempty"` // call id, pairs call and return
	Op   string `json:"op,omitempty"` // kanban operation, e.g. "claim"
	Task string `json:"task,omitempty"`
	// Seq is the commit counter value written inside the transaction.
	Seq int64 `json:"seq,omitempty"`
	// Err is the surfaced error's text; Class its taxonomy class (IOERR,
	// CORRUPT, NOTADB, BUSY, LOCKED, FULL, CANTOPEN, READONLY, TORN_EXTEND,
	// OTHER); Code the extended SQLite result code when known.
	Err   string `json:"err,omitempty"`
	Class string `json:"class,omitempty"`
	Code  int    `json:"code,omitempty"`
	Mode  string `json:"mode,omitempty"`
	// Data carries the event's own facts (the rows and transitions of a
	// commit, a spawned worker's pid, ...); nil when it has none.
	Data *Data `json:"data,omitempty"`
}

// Error classes (Event.Class) the oracle treats specially.
const (
	ClassIOERR      = "IOERR"
	ClassCorrupt    = "CORRUPT"
	ClassNotADB     = "NOTADB"
	ClassTornExtend = "TORN_EXTEND"
)

// Facts returns e.Data, or the zero Data when e carries none, so a reader
// can ask for one fact without a nil check.
func (e Event) Facts() Data {
	if e.Data == nil {
		return Data{}
	}
	return *e.Data
}

// Acknowledged returns the acknowledged commits among events (the
// TypeCommit events with a commit counter, Seq > 0) in commit order: by
// Seq, then T, then Proc, and in the events' own order among equals. One
// Seq may stand in several (a forked history): nothing here keeps one
// commit per Seq.
func Acknowledged(events []Event) []Event {
	var out []Event
	for _, e := range events {
		if e.Type == TypeCommit && e.Seq > 0 {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b Event) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.T, b.T), cmp.Compare(a.Proc, b.Proc))
	})
	return out
}
