// Package model is a pure in-memory model of the kanban board's status
// state machine: the same operations as kanbancore (create, link, unlink,
// claim, heartbeat, complete, block, unblock, archive, delete,
// recompute_ready, request_review, claim_review_task, promote_task, and a
// worker crash through the failure counter and circuit breaker) with the
// same rules, and no SQL, files or clocks. The
// model agreement test runs random operation sequences on the model and on
// SQLite and compares the observable state after every step.
package model

import (
	"errors"
	"fmt"
	"sort"
)

// Errors of the model; they correspond to kanbancore's.
var (
	ErrUnknown = errors.New("model: unknown task")
	ErrSelf    = errors.New("model: self link")
	ErrCycle   = errors.New("model: cycle")
	ErrInvalid = errors.New("model: invalid")
	ErrParents = errors.New("model: parents not done")
)

// DefaultFailureLimit matches kanbancore.DefaultFailureLimit.
const DefaultFailureLimit = 2

// BlockRecurrenceLimit matches kanbancore.BlockRecurrenceLimit.
const BlockRecurrenceLimit = 2

// Task is the model's view of one task.
type Task struct {
	ID         string
	Status     string
	Failures   int
	MaxRetries int
	BlockKind  string
	BlockRecur int
	Runs       int  // task_runs rows
	OpenRun    bool // current_run_id set / one open run
	Claimer    string
	Sticky     bool // newest blocked/unblocked event is "blocked"
	seq        int
}

// Link is parent → child.
type Link struct{ Parent, Child string }

// Board is the in-memory board.
type Board struct {
	tasks map[string]*Task
	links map[Link]bool
	seq   int
}

// New returns an empty board.
func New() *Board { return &Board{tasks: map[string]*Task{}, links: map[Link]bool{}} }

func satisfied(s string) bool { return s == "done" || s == "archived" }

func (b *Board) parents(id string) []string {
	var ps []string
	for l := range b.links {
		if l.Child == id {
			ps = append(ps, l.Parent)
		}
	}
	sort.Strings(ps)
	return ps
}

func (b *Board) unfinishedParents(id string) bool {
	for _, p := range b.parents(id) {
		if t := b.tasks[p]; t != nil && !satisfied(t.Status) {
			return true
		}
	}
	return false
}

// Create adds a task (triage, initial blocked, todo when a parent is not
// done — archived parents count as not done at create time — else ready).
func (b *Board) Create(id string, parents []string, triage, blocked bool, maxRetries int) error {
	if _, dup := b.tasks[id]; dup {
		return fmt.Errorf("%w: duplicate id %s", ErrInvalid, id)
	}
	status := "ready"
	for _, p := range parents {
		pt := b.tasks[p]
		if pt == nil {
			return ErrUnknown
		}
		if pt.Status != "done" {
			status = "todo"
		}
	}
	switch {
	case triage:
		status = "triage"
	case blocked:
		status = "blocked"
	}
	b.seq++
	b.tasks[id] = &Task{ID: id, Status: status, MaxRetries: maxRetries, Sticky: status == "blocked", seq: b.seq}
	for _, p := range parents {
		b.links[Link{p, id}] = true
	}
	return nil
}

// Link adds parent → child, demoting a ready child of an unfinished parent.
func (b *Board) Link(parent, child string) error {
	if parent == child {
		return ErrSelf
	}
	pt, ct := b.tasks[parent], b.tasks[child]
	if pt == nil || ct == nil {
		return ErrUnknown
	}
	seen := map[string]bool{child: true}
	stack := []string{child}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for l := range b.links {
			if l.Parent != n {
				continue
			}
			if l.Child == parent {
				return ErrCycle
			}
			if !seen[l.Child] {
				seen[l.Child] = true
				stack = append(stack, l.Child)
			}
		}
	}
	b.links[Link{parent, child}] = true
	if pt.Status != "done" && ct.Status == "ready" {
		ct.Status = "todo"
	}
	return nil
}

// Unlink removes a link and recomputes readiness.
func (b *Board) Unlink(parent, child string) bool {
	l := Link{parent, child}
	if !b.links[l] {
		return false
	}
	delete(b.links, l)
	b.Recompute(0)
	return true
}

// Recompute promotes todo/blocked tasks whose parents are all done or
// archived; blocked ones only when not sticky and below the failure limit.
func (b *Board) Recompute(limit int) int {
	if limit <= 0 {
		limit = DefaultFailureLimit
	}
	n := 0
	for _, t := range b.ordered() {
		if t.Status != "todo" && t.Status != "blocked" {
			continue
		}
		if b.unfinishedParents(t.ID) {
			continue
		}
		if t.Status == "blocked" {
			l := limit
			if t.MaxRetries > 0 {
				l = t.MaxRetries
			}
			if t.Failures >= l || t.Sticky {
				continue
			}
		}
		t.Status = "ready"
		n++
	}
	return n
}

func (b *Board) ordered() []*Task {
	ts := make([]*Task, 0, len(b.tasks))
	for _, t := range b.tasks {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].seq < ts[j].seq })
	return ts
}

// Claim moves a ready task with finished parents to running and opens a
// run; a ready task with an unfinished parent is demoted to todo.
func (b *Board) Claim(id, claimer string) bool {
	t := b.tasks[id]
	if t == nil {
		return false
	}
	if b.unfinishedParents(id) {
		if t.Status == "ready" {
			t.Status = "todo"
		}
		return false
	}
	if t.Status != "ready" {
		return false
	}
	t.Status, t.Claimer, t.OpenRun = "running", claimer, true
	t.Runs++
	return true
}

// Heartbeat succeeds for a running task held by claimer.
func (b *Board) Heartbeat(id, claimer string) bool {
	t := b.tasks[id]
	return t != nil && t.Status == "running" && t.Claimer == claimer
}

func (t *Task) endRun() {
	t.OpenRun, t.Claimer = false, ""
}

// Complete marks a running, ready or blocked task done (synthesising a run
// when none is open), clears its failure counter and recomputes readiness.
func (b *Board) Complete(id string) bool {
	t := b.tasks[id]
	if t == nil || (t.Status != "running" && t.Status != "ready" && t.Status != "blocked") {
		return false
	}
	if !t.OpenRun {
		t.Runs++
	}
	t.endRun()
	t.Status, t.BlockKind, t.BlockRecur, t.Failures = "done", "", 0, 0
	b.Recompute(0)
	return true
}

// Block moves a running or ready task to blocked (todo for kind
// "dependency", triage when the same kind recurs BlockRecurrenceLimit times).
func (b *Board) Block(id, kind string) bool {
	t := b.tasks[id]
	if t == nil || (t.Status != "running" && t.Status != "ready") {
		return false
	}
	recur := 0
	if kind != "" {
		recur = 1
		if t.BlockKind == kind {
			recur = t.BlockRecur + 1
		}
	}
	target := "blocked"
	switch {
	case kind == "dependency":
		target = "todo"
	case kind != "" && recur >= BlockRecurrenceLimit:
		target = "triage"
	}
	t.endRun()
	t.Status, t.BlockKind, t.BlockRecur, t.Sticky = target, kind, recur, true
	return true
}

// Unblock moves a blocked or scheduled task to ready (todo with unfinished
// parents) and resets its failure counter.
func (b *Board) Unblock(id string) bool {
	t := b.tasks[id]
	if t == nil || (t.Status != "blocked" && t.Status != "scheduled") {
		return false
	}
	t.Status = "ready"
	if b.unfinishedParents(id) {
		t.Status = "todo"
	}
	t.Failures, t.Sticky = 0, false
	t.endRun()
	return true
}

// Archive archives a task from any other status and recomputes readiness.
func (b *Board) Archive(id string) bool {
	t := b.tasks[id]
	if t == nil || t.Status == "archived" {
		return false
	}
	t.endRun()
	t.Status = "archived"
	b.Recompute(0)
	return true
}

// Delete removes a task and its links and recomputes readiness.
func (b *Board) Delete(id string) bool {
	if b.tasks[id] == nil {
		return false
	}
	delete(b.tasks, id)
	for l := range b.links {
		if l.Parent == id || l.Child == id {
			delete(b.links, l)
		}
	}
	b.Recompute(0)
	return true
}

// Task returns a copy of a task (nil when absent).
func (b *Board) Task(id string) *Task {
	t := b.tasks[id]
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// IDs returns the task ids in creation order.
func (b *Board) IDs() []string {
	var ids []string
	for _, t := range b.ordered() {
		ids = append(ids, t.ID)
	}
	return ids
}

// Links returns every link sorted by parent then child.
func (b *Board) Links() []Link {
	var ls []Link
	for l := range b.links {
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool {
		if ls[i].Parent != ls[j].Parent {
			return ls[i].Parent < ls[j].Parent
		}
		return ls[i].Child < ls[j].Child
	})
	return ls
}

// RequestReview moves a running or ready task to review, ending its run.
func (b *Board) RequestReview(id string) bool {
	t := b.tasks[id]
	if t == nil || (t.Status != "running" && t.Status != "ready") {
		return false
	}
	t.endRun()
	t.Status = "review"
	return true
}

// ClaimReview moves an unclaimed review task to running with a new run.
// Parents are not re-checked.
func (b *Board) ClaimReview(id, claimer string) bool {
	t := b.tasks[id]
	if t == nil || t.Status != "review" || t.Claimer != "" {
		return false
	}
	t.Status, t.Claimer, t.OpenRun = "running", claimer, true
	t.Runs++
	return true
}

// Promote is the operator's promote: todo or blocked → ready, refused
// (ErrParents) while a parent is unfinished. The failure counter and the
// sticky flag are left alone.
func (b *Board) Promote(id string) (bool, error) {
	t := b.tasks[id]
	if t == nil {
		return false, ErrUnknown
	}
	if t.Status != "todo" && t.Status != "blocked" {
		return false, nil
	}
	if b.unfinishedParents(id) {
		return false, ErrParents
	}
	t.Status = "ready"
	return true, nil
}

// Crash is a dead worker found by the crash sweep: a running task held by
// localClaimer (the only host-local claimer) goes back to ready with its
// run ended, then the failure counter goes up; at the limit (max_retries
// if set, else limit, else DefaultFailureLimit) the breaker blocks it
// (gave_up: not a "blocked" event, so the sticky flag is unchanged).
func (b *Board) Crash(id, localClaimer string, limit int) bool {
	t := b.tasks[id]
	if t == nil || t.Status != "running" || t.Claimer != localClaimer {
		return false
	}
	t.endRun()
	t.Status = "ready"
	t.Failures++
	l := limit
	if l <= 0 {
		l = DefaultFailureLimit
	}
	if t.MaxRetries > 0 {
		l = t.MaxRetries
	}
	if t.Failures >= l {
		t.Status = "blocked"
	}
	return true
}
