package prop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sqlchaos/sqlchaos/history"
	"github.com/sqlchaos/sqlchaos/internal/ledger"
	"github.com/sqlchaos/sqlchaos/internal/reexec"
	"github.com/sqlchaos/sqlchaos/kanbancore"
	"github.com/sqlchaos/sqlchaos/kanbancore/model"
)

// Multi-process workload runs without faults, for the model agreement
// property: every role is its own OS process (this binary re-executed),
// runs its steps on one long-lived connection, and writes a JSONL history
// of calls, returns and commits; every write transaction bumps a commit
// counter inside the transaction (ledger.Observer, as in the scenario
// roles), so the commits of all processes form one total order.

const roleKanban = "prop-kanban-role"

func init() { reexec.Register(roleKanban, kanbanRoleMain) }

// kanbanSpec is what one workload role process needs (its reexec spec).
type kanbanSpec struct {
	DB, Driver, Profile, Proc, Hist string
	Steps                           []Step
	Start                           int64 // unix nanos: all roles start together
}

// Claimer is the claim lock a workload role uses.
func Claimer(role int) string { return fmt.Sprintf("role-%d", role) }

func kanbanRoleMain(spec kanbanSpec) int {
	sw, err := kanbancore.ProfileByName(spec.Profile)
	if err != nil {
		fmt.Fprintln(os.Stderr, roleKanban+":", err)
		return 2
	}
	h, err := history.Create(filepath.Join(spec.Hist, spec.Proc+".jsonl"), spec.Proc)
	if err != nil {
		fmt.Fprintln(os.Stderr, roleKanban+":", err)
		return 2
	}
	defer h.Close()
	h.Write(history.Event{Type: history.TypeStart})
	ctx := context.Background()
	c, err := kanbancore.Open(ctx, spec.DB, kanbancore.Options{Driver: kanbancore.Driver(spec.Driver), Switches: sw, Observer: &ledger.Observer{H: h, NoModes: true}})
	if err != nil {
		h.Write(history.Event{Type: history.TypeExit, Err: err.Error()})
		fmt.Fprintln(os.Stderr, roleKanban+":", err)
		return 1
	}
	defer c.Close()
	time.Sleep(time.Until(time.Unix(0, spec.Start)))
	for _, st := range spec.Steps {
		id := h.NextID()
		h.Write(history.Event{Type: history.TypeCall, ID: id, Op: st.Op, Task: TaskID(st.Task), Data: &history.Data{Step: st.String()}})
		err := runStep(ctx, c, st)
		h.Write(ledger.ErrEvent(history.TypeReturn, id, st.Op, TaskID(st.Task), err))
	}
	h.Write(history.Event{Type: history.TypeExit})
	return 0
}

func runStep(ctx context.Context, c *kanbancore.Conn, st Step) error {
	id := TaskID(st.Task)
	claimer := Claimer(st.Role)
	var err error
	switch st.Op {
	case OpCreate:
		o := kanbancore.CreateOptions{ID: id, Title: "task " + id}
		if st.WithParent {
			o.Parents = []string{TaskID(st.Parent)}
		}
		_, err = kanbancore.CreateTask(ctx, c, o)
	case OpLink:
		err = kanbancore.LinkTasks(ctx, c, TaskID(st.Parent), id)
	case OpClaim:
		_, err = kanbancore.ClaimTask(ctx, c, id, kanbancore.ClaimOptions{Claimer: claimer})
	case OpHeartbeat:
		_, err = kanbancore.HeartbeatClaim(ctx, c, id, kanbancore.HeartbeatOptions{Claimer: claimer})
	case OpComplete:
		_, err = kanbancore.CompleteTask(ctx, c, id, kanbancore.CompleteOptions{Result: "done"})
	case OpBlock:
		_, err = kanbancore.BlockTask(ctx, c, id, kanbancore.BlockOptions{Reason: "workload"})
	case OpUnblock:
		_, err = kanbancore.UnblockTask(ctx, c, id)
	case OpArchive:
		_, err = kanbancore.ArchiveTask(ctx, c, id)
	case OpDelete:
		_, err = kanbancore.DeleteTask(ctx, c, id)
	default:
		err = fmt.Errorf("unknown workload op %q", st.Op)
	}
	return err
}

// BoardState is a board's observable state: task statuses and links.
type BoardState struct {
	Status map[string]string
	Links  map[string]bool // "parent>child"
}

func (s BoardState) String() string {
	var ids []string
	for id := range s.Status {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "%s=%s ", id, s.Status[id])
	}
	var ls []string
	for l := range s.Links {
		ls = append(ls, l)
	}
	sort.Strings(ls)
	b.WriteString("links[" + strings.Join(ls, " ") + "]")
	return b.String()
}

// Equal compares two states.
func (s BoardState) Equal(o BoardState) bool {
	if len(s.Status) != len(o.Status) || len(s.Links) != len(o.Links) {
		return false
	}
	for k, v := range s.Status {
		if o.Status[k] != v {
			return false
		}
	}
	for k := range s.Links {
		if !o.Links[k] {
			return false
		}
	}
	return true
}

// WorkloadRun is a finished multi-process workload.
type WorkloadRun struct {
	Events []history.Event
	Final  BoardState
	// Counter and LedgerRows are the commit counter and the ledger's row
	// count in the final database.
	Counter, LedgerRows int64
	Wall                time.Duration
}

// RunWorkload runs w against a fresh board in dir, each role in its own
// process, and reads the final state with a fresh connection.
func RunWorkload(ctx context.Context, dir, driver, profile string, w Workload, stderr io.Writer) (*WorkloadRun, error) {
	start := time.Now()
	if stderr == nil {
		stderr = io.Discard
	}
	db := filepath.Join(dir, "kanban.db")
	hist := filepath.Join(dir, "histories")
	if err := os.MkdirAll(hist, 0o755); err != nil {
		return nil, err
	}
	sw, err := kanbancore.ProfileByName(profile)
	if err != nil {
		return nil, err
	}
	opts := kanbancore.Options{Driver: kanbancore.Driver(driver), Switches: sw}
	c, err := kanbancore.Open(ctx, db, opts)
	if err != nil {
		return nil, err
	}
	if err := ledger.Create(ctx, c); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.Close(); err != nil {
		return nil, err
	}
	at := time.Now().Add(300 * time.Millisecond).UnixNano()
	var cmds []*exec.Cmd
	for r, steps := range w.ByRole() {
		spec := kanbanSpec{DB: db, Driver: driver, Profile: profile, Proc: fmt.Sprintf("role-%d", r), Hist: hist, Steps: steps, Start: at}
		cmd, err := reexec.Command(roleKanban, spec)
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = stderr, stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			killAll(cmds)
			return nil, err
		}
		cmds = append(cmds, cmd)
	}
	done := make(chan error, len(cmds))
	for _, cmd := range cmds {
		go func(cmd *exec.Cmd) { done <- cmd.Wait() }(cmd)
	}
	var errs []error
	timeout := time.After(90 * time.Second)
	for range cmds {
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, err)
			}
		case <-timeout:
			killAll(cmds)
			return nil, errors.New("workload roles did not finish in 90 s (killed)")
		case <-ctx.Done():
			killAll(cmds)
			return nil, ctx.Err()
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("role process failed: %w", errors.Join(errs...))
	}
	run := &WorkloadRun{}
	if run.Events, err = history.ReadDir(hist); err != nil {
		return nil, err
	}
	if run.Final, run.Counter, run.LedgerRows, err = readBoard(ctx, db, driver); err != nil {
		return nil, err
	}
	run.Wall = time.Since(start)
	return run, nil
}

func killAll(cmds []*exec.Cmd) {
	for _, c := range cmds {
		if c.Process != nil {
			c.Process.Kill() // by pid
		}
	}
	for _, c := range cmds {
		c.Wait()
	}
}

func readBoard(ctx context.Context, db, driver string) (BoardState, int64, int64, error) {
	st := BoardState{Status: map[string]string{}, Links: map[string]bool{}}
	c, err := kanbancore.Open(ctx, db, kanbancore.Options{Driver: kanbancore.Driver(driver), Switches: kanbancore.Hardened()})
	if err != nil {
		return st, 0, 0, err
	}
	defer c.Close()
	ts, err := kanbancore.ListTasks(ctx, c, kanbancore.ListOptions{IncludeArchived: true})
	if err != nil {
		return st, 0, 0, err
	}
	for _, t := range ts {
		st.Status[t.ID] = t.Status
	}
	ls, err := kanbancore.ListLinks(ctx, c)
	if err != nil {
		return st, 0, 0, err
	}
	for _, l := range ls {
		st.Links[l.Parent+">"+l.Child] = true
	}
	var n, rows int64
	if err := c.QueryRowContext(ctx, `SELECT n FROM chaos_counter WHERE id=1`).Scan(&n); err != nil {
		return st, 0, 0, err
	}
	if err := c.QueryRowContext(ctx, `SELECT count(*) FROM chaos_ledger`).Scan(&rows); err != nil {
		return st, 0, 0, err
	}
	return st, n, rows, nil
}

// legal lists, per write transaction, the status transitions it may make
// (from → to; "" is "no task"). A transaction not listed may make none.
var legal = map[string]map[string][]string{
	"create_task":     {"": {"ready", "todo", "triage", "blocked"}},
	"link_tasks":      {"ready": {"todo"}},
	"claim_task":      {"ready": {"running", "todo"}},
	"complete_task":   {"running": {"done"}, "ready": {"done"}, "blocked": {"done"}},
	"block_task":      {"running": {"blocked", "todo", "triage"}, "ready": {"blocked", "todo", "triage"}},
	"unblock_task":    {"blocked": {"ready", "todo"}, "scheduled": {"ready", "todo"}},
	"recompute_ready": {"todo": {"ready"}, "blocked": {"ready"}},
	"archive_task":    {"triage": {"archived"}, "todo": {"archived"}, "scheduled": {"archived"}, "ready": {"archived"}, "running": {"archived"}, "blocked": {"archived"}, "review": {"archived"}, "done": {"archived"}},
	"delete_task":     {"triage": {""}, "todo": {""}, "scheduled": {""}, "ready": {""}, "running": {""}, "blocked": {""}, "review": {""}, "done": {""}, "archived": {""}},
}

func isLegal(op, from, to string) bool {
	for _, t := range legal[op][from] {
		if t == to {
			return true
		}
	}
	return false
}

// commitRec is a commit event with what it changed.
type commitRec struct {
	history.Event
	history.Commit
}

func decodeCommit(e history.Event) commitRec {
	return commitRec{Event: e, Commit: e.Facts().Commit}
}

// ReplayLedger replays the committed transactions of a run in commit-counter
// order and returns every disagreement: a gap or duplicate in the counter,
// a transition whose "from" is not the replayed status (a lost update), a
// transition the transaction may not make, a link to a missing task, a
// ready task with an unfinished parent after any commit, and a final state
// that differs from the database's.
func ReplayLedger(run *WorkloadRun) (BoardState, []string) {
	var bad []string
	var commits []commitRec
	seen := map[int64]bool{}
	for _, e := range run.Events {
		if e.Type != history.TypeCommit {
			continue
		}
		if e.Seq <= 0 || seen[e.Seq] {
			bad = append(bad, fmt.Sprintf("commit with bad or duplicate seq %d (%s, %s)", e.Seq, e.Proc, e.Op))
			continue
		}
		seen[e.Seq] = true
		commits = append(commits, decodeCommit(e))
	}
	sort.Slice(commits, func(i, j int) bool { return commits[i].Seq < commits[j].Seq })
	for i, c := range commits {
		if c.Seq != int64(i+1) {
			bad = append(bad, fmt.Sprintf("commit counter has a gap: commit %d has seq %d", i+1, c.Seq))
			break
		}
	}
	if int64(len(commits)) != run.Counter || run.Counter != run.LedgerRows {
		bad = append(bad, fmt.Sprintf("%d commits acknowledged, counter %d, ledger rows %d", len(commits), run.Counter, run.LedgerRows))
	}
	st := BoardState{Status: map[string]string{}, Links: map[string]bool{}}
	for _, c := range commits {
		for _, d := range c.Deleted {
			if d.Table == "task_links" {
				if !st.Links[d.Key] {
					bad = append(bad, fmt.Sprintf("seq %d %s deletes missing link %s", c.Seq, c.Op, d.Key))
				}
				delete(st.Links, d.Key)
			}
		}
		for _, t := range c.Transitions {
			if cur := st.Status[t.Task]; cur != t.From {
				bad = append(bad, fmt.Sprintf("seq %d %s (%s): %s %s→%s but the replayed status is %q", c.Seq, c.Op, c.Proc, t.Task, t.From, t.To, cur))
			}
			if !isLegal(c.Op, t.From, t.To) {
				bad = append(bad, fmt.Sprintf("seq %d %s may not move %s %q→%q", c.Seq, c.Op, t.Task, t.From, t.To))
			}
			if t.To == "" {
				delete(st.Status, t.Task)
			} else {
				st.Status[t.Task] = t.To
			}
		}
		for _, in := range c.Inserted {
			if in.Table != "task_links" {
				continue
			}
			p, ch, _ := strings.Cut(in.Key, ">")
			if st.Status[p] == "" || st.Status[ch] == "" {
				bad = append(bad, fmt.Sprintf("seq %d %s links %s but a task is missing", c.Seq, c.Op, in.Key))
			}
			st.Links[in.Key] = true
		}
		for id, s := range st.Status {
			if s != "ready" {
				continue
			}
			for l := range st.Links {
				if p, ch, _ := strings.Cut(l, ">"); ch == id && st.Status[p] != "done" && st.Status[p] != "archived" {
					bad = append(bad, fmt.Sprintf("after seq %d %s: %s is ready but its parent %s is %q", c.Seq, c.Op, id, p, st.Status[p]))
				}
			}
		}
	}
	if !st.Equal(run.Final) {
		bad = append(bad, "replayed state differs from the database:\n  replay: "+st.String()+"\n  db:     "+run.Final.String())
	}
	return st, bad
}

// ModelFinal replays a partitioned workload's operations through the pure
// model (kanbancore/model) in the order of each operation's first commit
// and returns the model's final state. Operations that committed nothing
// (an error before the transaction, a rolled-back one) are skipped; in a
// partitioned workload the operations on one dependency component all run
// in one process, so this serial order is the one they took effect in.
func ModelFinal(run *WorkloadRun) (BoardState, error) {
	type opRec struct {
		step  Step
		first int64
	}
	// Per process: calls in order, each with the commits between its call
	// and its return.
	var ops []opRec
	open := map[string]*opRec{}
	for _, e := range sortByProcOrder(run.Events) {
		switch e.Type {
		case history.TypeCall:
			var st Step
			if s := e.Facts().Step; s != "" {
				var err error
				if st, err = parseStep(s); err != nil {
					return BoardState{}, err
				}
			}
			open[e.Proc] = &opRec{step: st}
		case history.TypeCommit:
			if o := open[e.Proc]; o != nil && o.first == 0 {
				o.first = e.Seq
			}
		case history.TypeReturn:
			if o := open[e.Proc]; o != nil && o.first > 0 {
				ops = append(ops, *o)
			}
			delete(open, e.Proc)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].first < ops[j].first })
	b := model.New()
	for _, o := range ops {
		st := o.step
		id := TaskID(st.Task)
		switch st.Op {
		case OpCreate:
			var ps []string
			if st.WithParent {
				ps = []string{TaskID(st.Parent)}
			}
			b.Create(id, ps, false, false, 0)
		case OpLink:
			b.Link(TaskID(st.Parent), id)
		case OpClaim:
			b.Claim(id, Claimer(st.Role))
		case OpHeartbeat:
			b.Heartbeat(id, Claimer(st.Role))
		case OpComplete:
			b.Complete(id)
		case OpBlock:
			b.Block(id, "")
		case OpUnblock:
			b.Unblock(id)
		case OpArchive:
			b.Archive(id)
		case OpDelete:
			b.Delete(id)
		}
	}
	out := BoardState{Status: map[string]string{}, Links: map[string]bool{}}
	for _, id := range b.IDs() {
		out.Status[id] = b.Task(id).Status
	}
	for _, l := range b.Links() {
		out.Links[l.Parent+">"+l.Child] = true
	}
	return out, nil
}

// sortByProcOrder returns the events grouped by process, each process's
// in the order it wrote them (history.ReadDir merges by T; T is per-process
// monotonic, so a stable sort by process keeps each one's order).
func sortByProcOrder(evs []history.Event) []history.Event {
	out := append([]history.Event(nil), evs...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Proc < out[j].Proc })
	return out
}

// parseStep reads Step.String back.
func parseStep(s string) (Step, error) {
	var st Step
	role, rest, ok := strings.Cut(s, ":")
	if !ok || !strings.HasPrefix(role, "r") {
		return st, fmt.Errorf("bad step %q", s)
	}
	fmt.Sscanf(role[1:], "%d", &st.Role)
	op, arg, _ := strings.Cut(rest, " ")
	st.Op = op
	num := func(t string) int {
		var n int
		fmt.Sscanf(strings.TrimPrefix(t, "t"), "%d", &n)
		return n
	}
	switch {
	case strings.Contains(arg, ">"):
		p, c, _ := strings.Cut(arg, ">")
		st.Parent, st.Task = num(p), num(c)
	case strings.Contains(arg, "<"):
		c, p, _ := strings.Cut(arg, "<")
		st.Task, st.Parent, st.WithParent = num(c), num(p), true
	default:
		st.Task = num(arg)
	}
	return st, nil
}
