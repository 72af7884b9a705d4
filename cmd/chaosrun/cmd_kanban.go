package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sqlchaos/sqlchaos/kanbancore"
)

func init() {
	register(command{
		name:    "kanban",
		summary: "operate a kanban board by hand (init, create, list, show, claim, complete, dispatch-once, tick)",
		run: func(args []string) int {
			return runKanban(context.Background(), args, os.Stdout, os.Stderr)
		},
	})
}

const kanbanUsage = `Usage: chaosrun kanban --board DIR [global flags] COMMAND [flags] [ARGS]

Operates the kanban board kept under the root directory DIR: the default
board is DIR/kanban.db, a named board (--name SLUG) is
DIR/kanban/boards/SLUG/kanban.db. $SQLCHAOS_KANBAN_HOME is the default for
--board; $SQLCHAOS_KANBAN_DB, when set, pins the database file (as the
dispatcher sets it for workers). Every operation is one short-lived process
with its own connection, which is what the scenarios' "CLI process" runs.

Global flags (before or after COMMAND):
  --board DIR        board root directory
  --name SLUG        board slug (default "default")
  --profile NAME     switch profile: legacy, pr32857, merged33482, hardened (default hardened)
  --set NAME=VALUE   override one switch (repeatable), e.g. --set page_count_check=raw-read
  --driver NAME      modernc (default) or mattn
  --json             print JSON instead of plain lines

Commands:
  init                                   create the board and its schema
  create --title T [--assignee A] [--parent ID]... [--body B] [--priority N]
         [--triage] [--blocked] [--idempotency-key K] [--max-runtime D]
         [--max-retries N] [--workspace-kind K] [--workspace-path P] [--id ID]
  list [--status S] [--assignee A] [--all]
  show ID                                task, links, runs and events
  claim ID [--ttl D] [--claimer HOST:PID]
  heartbeat ID [--ttl D] [--claimer HOST:PID] [--worker] [--note N] [--run N]
  complete ID [--result R] [--summary S] [--run N]
  block ID [--reason R] [--kind K] [--run N]
  unblock ID
  promote ID                             todo/blocked -> ready (refused while a parent is unfinished)
  request-review ID                      running/ready -> review
  link PARENT CHILD
  dispatch-once [--worker-cmd CMD] [--max-spawn N] [--max-in-progress N]
         [--max-in-progress-per-profile N] [--default-assignee A]
         [--failure-limit N] [--stale-timeout D] [--ttl D] [--dry-run]
         [--no-respawn-guard] [--no-review-dispatch]
  tick [--worker-cmd CMD] [--ticks N] [--interval D]   gateway ticks over every board

--worker-cmd runs through sh -c in the task's workspace with
SQLCHAOS_KANBAN_DB, SQLCHAOS_KANBAN_BOARD and SQLCHAOS_KANBAN_TASK set;
{task}, {db}, {board}, {workspace} and {assignee} are substituted.

Exit status: 0 done, 1 the operation was refused (lost race, wrong status) or
failed, 2 bad usage.

Examples:
  chaosrun kanban --board /tmp/b init
  chaosrun kanban --board /tmp/b create --title "write docs" --assignee alice
  chaosrun kanban --board /tmp/b create --title child --parent t_1a2b3c4d
  chaosrun kanban --board /tmp/b list --all
  chaosrun kanban --board /tmp/b claim t_1a2b3c4d --claimer worker-1:1
  chaosrun kanban --board /tmp/b complete t_1a2b3c4d --result ok
  chaosrun kanban --board /tmp/b --profile legacy --set crash_grace=0s dispatch-once \
      --worker-cmd 'chaosrun kanban complete {task} --result done'
  chaosrun kanban --board /tmp/b --json tick --ticks 3 --interval 1s
`

type kanbanGlobals struct {
	board, name, profile, driver string
	sets                         multiFlag
	json                         bool
}

func (g *kanbanGlobals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.board, "board", g.board, "board root directory")
	fs.StringVar(&g.name, "name", g.name, "board slug")
	fs.StringVar(&g.profile, "profile", g.profile, "switch profile")
	fs.StringVar(&g.driver, "driver", g.driver, "modernc or mattn")
	fs.Var(&g.sets, "set", "NAME=VALUE switch override (repeatable)")
	fs.BoolVar(&g.json, "json", g.json, "JSON output")
}

type kanbanCLI struct {
	ctx            context.Context
	g              kanbanGlobals
	stdout, stderr io.Writer
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

var errRefused = errors.New("refused")

func runKanban(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	k := &kanbanCLI{ctx: ctx, stdout: stdout, stderr: stderr, g: kanbanGlobals{profile: "hardened", driver: "modernc"}}
	fs := flag.NewFlagSet("chaosrun kanban", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	k.g.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, kanbanUsage)
			return 0
		}
		fmt.Fprintf(stderr, "chaosrun kanban: %v\n\n%s", err, kanbanUsage)
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, kanbanUsage)
		return 2
	}
	sub, rest := fs.Arg(0), fs.Args()[1:]
	if sub == "help" {
		fmt.Fprint(stdout, kanbanUsage)
		return 0
	}
	err := k.dispatch(sub, rest)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, kanbanUsage)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "chaosrun kanban %s: %v\n\nRun 'chaosrun kanban --help' for usage.\n", sub, err)
		return 2
	case errors.Is(err, errRefused):
		return 1
	default:
		fmt.Fprintf(stderr, "chaosrun kanban %s: %v\n", sub, err)
		return 1
	}
}

// flags returns a FlagSet for a subcommand that also accepts the globals.
func (k *kanbanCLI) flags(sub string) *flag.FlagSet {
	fs := flag.NewFlagSet("chaosrun kanban "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	k.g.register(fs)
	return fs
}

// parse parses a subcommand's flags, allowing them before or after the
// positional arguments, and checks the positional count.
func (k *kanbanCLI) parse(fs *flag.FlagSet, args []string, npos int) ([]string, error) {
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	if len(pos) != npos {
		return nil, usageError{fmt.Sprintf("want %d argument(s), got %d", npos, len(pos))}
	}
	return pos, nil
}

func (k *kanbanCLI) options() (kanbancore.Options, error) {
	sw, err := kanbancore.ProfileByName(k.g.profile)
	if err != nil {
		return kanbancore.Options{}, usageError{err.Error()}
	}
	if err := sw.ApplySets(k.g.sets); err != nil {
		return kanbancore.Options{}, usageError{err.Error()}
	}
	d := kanbancore.Driver(k.g.driver)
	if d != kanbancore.DriverModernc && d != kanbancore.DriverMattn {
		return kanbancore.Options{}, usageError{fmt.Sprintf("unknown driver %q (want modernc or mattn)", k.g.driver)}
	}
	return kanbancore.Options{Driver: d, Switches: sw, Logf: func(f string, a ...any) { fmt.Fprintf(k.stderr, "warning: "+f+"\n", a...) }}, nil
}

func (k *kanbanCLI) root() (string, error) {
	if k.g.board == "" && os.Getenv(kanbancore.EnvKanbanHome) == "" && os.Getenv(kanbancore.EnvKanbanDB) == "" {
		return "", usageError{"--board DIR is required (or set " + kanbancore.EnvKanbanHome + ")"}
	}
	return kanbancore.ResolveRoot(k.g.board), nil
}

func (k *kanbanCLI) open() (*kanbancore.Conn, string, error) {
	root, err := k.root()
	if err != nil {
		return nil, "", err
	}
	opts, err := k.options()
	if err != nil {
		return nil, "", err
	}
	path, err := kanbancore.ResolveBoardPath(root, k.g.name)
	if err != nil {
		return nil, "", usageError{err.Error()}
	}
	if slug := kanbancore.CurrentBoard(root, k.g.name); slug != kanbancore.DefaultBoard && os.Getenv(kanbancore.EnvKanbanDB) == "" {
		if _, err := kanbancore.CreateBoard(root, slug, slug); err != nil {
			return nil, "", err
		}
	}
	c, err := kanbancore.Open(k.ctx, path, opts)
	return c, path, err
}

// withBoard parses a subcommand's flags and npos positional arguments, opens
// the board and runs f with the connection, the database path and the
// positional arguments, closing the connection afterwards.
func (k *kanbanCLI) withBoard(fs *flag.FlagSet, args []string, npos int, f func(c *kanbancore.Conn, path string, pos []string) error) error {
	pos, err := k.parse(fs, args, npos)
	if err != nil {
		return err
	}
	return k.withConn(func(c *kanbancore.Conn, path string) error { return f(c, path, pos) })
}

// withConn opens the board and runs f with the connection and the database
// path, closing the connection afterwards.
func (k *kanbanCLI) withConn(f func(c *kanbancore.Conn, path string) error) error {
	c, path, err := k.open()
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c, path)
}

// out prints v as JSON with --json, else the plain lines.
func (k *kanbanCLI) out(v any, lines ...string) {
	if k.g.json {
		enc := json.NewEncoder(k.stdout)
		enc.Encode(v)
		return
	}
	for _, l := range lines {
		fmt.Fprintln(k.stdout, l)
	}
}

// kanbanCommands are the subcommands besides the one-task verbs.
var kanbanCommands = map[string]func(k *kanbanCLI, args []string) error{
	"init":          (*kanbanCLI).cmdInit,
	"create":        (*kanbanCLI).cmdCreate,
	"list":          (*kanbanCLI).cmdList,
	"show":          (*kanbanCLI).cmdShow,
	"claim":         (*kanbanCLI).cmdClaim,
	"link":          (*kanbanCLI).cmdLink,
	"dispatch-once": (*kanbanCLI).cmdDispatch,
	"tick":          (*kanbanCLI).cmdTick,
}

// dispatch runs the subcommand sub: a one-task verb (taskVerbs) or one of
// kanbanCommands.
func (k *kanbanCLI) dispatch(sub string, args []string) error {
	if v, ok := taskVerbs[sub]; ok {
		fs := k.flags(sub)
		op := v.bind(fs)
		return k.withBoard(fs, args, 1, func(c *kanbancore.Conn, _ string, pos []string) error {
			ok, err := op(k.ctx, c, pos[0])
			if err != nil {
				return err
			}
			return k.result(v.word, pos[0], ok)
		})
	}
	if cmd, ok := kanbanCommands[sub]; ok {
		return cmd(k, args)
	}
	return usageError{fmt.Sprintf("unknown command %q", sub)}
}

func (k *kanbanCLI) cmdInit(args []string) error {
	return k.withBoard(k.flags("init"), args, 0, func(c *kanbancore.Conn, path string, _ []string) error {
		mode, _ := c.JournalMode(k.ctx)
		k.out(map[string]string{"path": path, "journal_mode": mode}, fmt.Sprintf("initialised %s (journal_mode=%s)", path, mode))
		return nil
	})
}

func (k *kanbanCLI) cmdCreate(args []string) error {
	fs := k.flags("create")
	var o kanbancore.CreateOptions
	var parents multiFlag
	var blocked bool
	fs.StringVar(&o.ID, "id", "", "explicit task id")
	fs.StringVar(&o.Title, "title", "", "title (required)")
	fs.StringVar(&o.Body, "body", "", "body")
	fs.StringVar(&o.Assignee, "assignee", "", "assignee profile")
	fs.StringVar(&o.CreatedBy, "created-by", "cli", "creator")
	fs.Var(&parents, "parent", "parent task id (repeatable)")
	fs.Int64Var(&o.Priority, "priority", 0, "priority (higher first)")
	fs.BoolVar(&o.Triage, "triage", false, "create in triage")
	fs.BoolVar(&blocked, "blocked", false, "create blocked")
	fs.StringVar(&o.IdempotencyKey, "idempotency-key", "", "idempotency key")
	fs.DurationVar(&o.MaxRuntime, "max-runtime", 0, "max runtime")
	fs.Int64Var(&o.MaxRetries, "max-retries", 0, "per-task failure limit")
	fs.StringVar(&o.WorkspaceKind, "workspace-kind", "", "scratch, worktree or dir")
	fs.StringVar(&o.WorkspacePath, "workspace-path", "", "workspace path")
	fs.StringVar(&o.Tenant, "tenant", "", "tenant")
	if _, err := k.parse(fs, args, 0); err != nil {
		return err
	}
	if strings.TrimSpace(o.Title) == "" {
		return usageError{"--title is required"}
	}
	o.Parents = parents
	if blocked {
		o.InitialStatus = kanbancore.StatusBlocked
	}
	return k.withConn(func(c *kanbancore.Conn, _ string) error {
		id, err := kanbancore.CreateTask(k.ctx, c, o)
		if err != nil {
			return err
		}
		t, err := kanbancore.GetTask(k.ctx, c, id)
		if err != nil || t == nil {
			return fmt.Errorf("created %s but cannot read it back: %v", id, err)
		}
		k.out(t, fmt.Sprintf("%s %s", id, t.Status))
		return nil
	})
}

func taskLine(t kanbancore.Task) string {
	a := t.Assignee
	if a == "" {
		a = "-"
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s", t.ID, t.Status, a, t.Title)
}

func (k *kanbanCLI) cmdList(args []string) error {
	fs := k.flags("list")
	var o kanbancore.ListOptions
	fs.StringVar(&o.Status, "status", "", "only this status")
	fs.StringVar(&o.Assignee, "assignee", "", "only this assignee")
	fs.BoolVar(&o.IncludeArchived, "all", false, "include archived tasks")
	fs.StringVar(&o.OrderBy, "order-by", "", "priority (default), created or id")
	return k.withBoard(fs, args, 0, func(c *kanbancore.Conn, _ string, _ []string) error {
		ts, err := kanbancore.ListTasks(k.ctx, c, o)
		if err != nil {
			return err
		}
		lines := make([]string, len(ts))
		for i, t := range ts {
			lines[i] = taskLine(t)
		}
		if ts == nil {
			ts = []kanbancore.Task{}
		}
		k.out(ts, lines...)
		return nil
	})
}

func (k *kanbanCLI) cmdShow(args []string) error {
	return k.withBoard(k.flags("show"), args, 1, func(c *kanbancore.Conn, _ string, pos []string) error {
		t, err := kanbancore.GetTask(k.ctx, c, pos[0])
		if err != nil {
			return err
		}
		if t == nil {
			return fmt.Errorf("no task %s", pos[0])
		}
		parents, _ := kanbancore.Parents(k.ctx, c, t.ID)
		children, _ := kanbancore.Children(k.ctx, c, t.ID)
		runs, err := kanbancore.ListRuns(k.ctx, c, t.ID)
		if err != nil {
			return err
		}
		evs, err := kanbancore.ListEvents(k.ctx, c, t.ID)
		if err != nil {
			return err
		}
		lines := []string{taskLine(*t),
			fmt.Sprintf("claim_lock=%s claim_expires=%d worker_pid=%d current_run_id=%d failures=%d",
				t.ClaimLock, t.ClaimExpires, t.WorkerPID, t.CurrentRunID, t.ConsecutiveFailures),
			fmt.Sprintf("parents=%v children=%v", parents, children)}
		for _, r := range runs {
			lines = append(lines, fmt.Sprintf("run %d %s outcome=%s started=%d ended=%d", r.ID, r.Status, r.Outcome, r.StartedAt, r.EndedAt))
		}
		for _, e := range evs {
			p, _ := json.Marshal(e.Payload)
			lines = append(lines, fmt.Sprintf("event %d %s %s", e.ID, e.Kind, p))
		}
		k.out(map[string]any{"task": t, "parents": parents, "children": children, "runs": runs, "events": evs}, lines...)
		return nil
	})
}

func (k *kanbanCLI) cmdClaim(args []string) error {
	fs := k.flags("claim")
	var o kanbancore.ClaimOptions
	fs.DurationVar(&o.TTL, "ttl", 0, "claim TTL (default: the claim_ttl switch)")
	fs.StringVar(&o.Claimer, "claimer", "", "claim lock (default <host>:<pid>)")
	return k.withBoard(fs, args, 1, func(c *kanbancore.Conn, _ string, pos []string) error {
		t, err := kanbancore.ClaimTask(k.ctx, c, pos[0], o)
		if err != nil {
			return err
		}
		if t == nil {
			k.out(map[string]any{"claimed": false, "id": pos[0]}, "not claimed "+pos[0])
			return errRefused
		}
		k.out(map[string]any{"claimed": true, "task": t},
			fmt.Sprintf("claimed %s lock=%s expires=%d run=%d", t.ID, t.ClaimLock, t.ClaimExpires, t.CurrentRunID))
		return nil
	})
}

func (k *kanbanCLI) result(op, id string, ok bool) error {
	word := map[bool]string{true: op, false: "not " + op}[ok]
	k.out(map[string]any{"id": id, "ok": ok, "op": op}, word+" "+id)
	if !ok {
		return errRefused
	}
	return nil
}

// taskOp is an operation on one task: ok is false when it was refused
// (lost race, wrong status).
type taskOp func(ctx context.Context, c *kanbancore.Conn, id string) (ok bool, err error)

// taskVerb is a subcommand that runs one taskOp on the task its argument
// names: word is its result line's verb, bind registers its flags and
// returns the operation bound to their parsed values.
type taskVerb struct {
	word string
	bind func(fs *flag.FlagSet) taskOp
}

// taskVerbs are the one-task subcommands.
var taskVerbs = map[string]taskVerb{
	"heartbeat": {"heartbeat", bindHeartbeat},
	"complete": {"completed", withOptions(kanbancore.CompleteTask, func(fs *flag.FlagSet, o *kanbancore.CompleteOptions) {
		fs.StringVar(&o.Result, "result", "", "result text")
		fs.StringVar(&o.Summary, "summary", "", "summary")
		fs.Int64Var(&o.ExpectedRunID, "run", 0, "expected run id")
	})},
	"unblock": {"unblocked", noFlags(kanbancore.UnblockTask)},
	"block": {"blocked", withOptions(kanbancore.BlockTask, func(fs *flag.FlagSet, o *kanbancore.BlockOptions) {
		fs.StringVar(&o.Reason, "reason", "", "reason")
		fs.StringVar(&o.Kind, "kind", "", "block kind (dependency → todo; the same kind twice → triage)")
		fs.Int64Var(&o.ExpectedRunID, "run", 0, "expected run id")
	})},
	"promote": {"promoted", noFlags(func(ctx context.Context, c *kanbancore.Conn, id string) (bool, error) {
		return kanbancore.PromoteTask(ctx, c, id, kanbancore.PromoteOptions{Actor: "cli"})
	})},
	"request-review": {"review requested", noFlags(func(ctx context.Context, c *kanbancore.Conn, id string) (bool, error) {
		return kanbancore.RequestReview(ctx, c, id, kanbancore.RequestReviewOptions{})
	})},
}

// withOptions binds op to an options struct O whose fields register
// fills from flags.
func withOptions[O any](op func(context.Context, *kanbancore.Conn, string, O) (bool, error), register func(*flag.FlagSet, *O)) func(*flag.FlagSet) taskOp {
	return func(fs *flag.FlagSet) taskOp {
		var o O
		register(fs, &o)
		return func(ctx context.Context, c *kanbancore.Conn, id string) (bool, error) { return op(ctx, c, id, o) }
	}
}

// noFlags binds an operation without flags of its own.
func noFlags(op taskOp) func(*flag.FlagSet) taskOp {
	return func(*flag.FlagSet) taskOp { return op }
}

// bindHeartbeat binds a claim extension, or with --worker a worker
// heartbeat.
func bindHeartbeat(fs *flag.FlagSet) taskOp {
	var o kanbancore.HeartbeatOptions
	var worker bool
	var note string
	var run int64
	fs.DurationVar(&o.TTL, "ttl", 0, "new claim TTL")
	fs.StringVar(&o.Claimer, "claimer", "", "claim lock to match")
	fs.BoolVar(&worker, "worker", false, "worker heartbeat (last_heartbeat_at) instead of a claim extension")
	fs.StringVar(&note, "note", "", "worker heartbeat note")
	fs.Int64Var(&run, "run", 0, "expected run id")
	return func(ctx context.Context, c *kanbancore.Conn, id string) (bool, error) {
		if worker {
			return kanbancore.HeartbeatWorker(ctx, c, id, note, run)
		}
		return kanbancore.HeartbeatClaim(ctx, c, id, o)
	}
}

func (k *kanbanCLI) cmdLink(args []string) error {
	return k.withBoard(k.flags("link"), args, 2, func(c *kanbancore.Conn, _ string, pos []string) error {
		if err := kanbancore.LinkTasks(k.ctx, c, pos[0], pos[1]); err != nil {
			return err
		}
		k.out(map[string]string{"parent": pos[0], "child": pos[1]}, "linked "+pos[0]+" -> "+pos[1])
		return nil
	})
}

type dispatchFlags struct {
	workerCmd string
	o         kanbancore.DispatchOptions
}

func (d *dispatchFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.workerCmd, "worker-cmd", "", "worker command, run with sh -c")
	fs.IntVar(&d.o.MaxSpawn, "max-spawn", 0, "cap on running tasks (0 = none)")
	fs.IntVar(&d.o.MaxInProgress, "max-in-progress", 0, "skip spawning at this many running (0 = unlimited)")
	fs.IntVar(&d.o.FailureLimit, "failure-limit", 0, "breaker limit (default 2)")
	fs.DurationVar(&d.o.StaleTimeout, "stale-timeout", 0, "detect_stale_running timeout (0 = off)")
	fs.DurationVar(&d.o.TTL, "ttl", 0, "claim TTL")
	fs.BoolVar(&d.o.DryRun, "dry-run", false, "claim nothing, report what would spawn")
	fs.StringVar(&d.o.DefaultAssignee, "default-assignee", "", "assignee for unassigned ready tasks")
	fs.IntVar(&d.o.MaxInProgressPerProfile, "max-in-progress-per-profile", 0, "cap on running tasks per assignee (0 = unlimited)")
	fs.BoolVar(&d.o.NoRespawnGuard, "no-respawn-guard", false, "skip check_respawn_guard")
	fs.BoolVar(&d.o.NoReviewDispatch, "no-review-dispatch", false, "leave the review column to humans")
}

func (d *dispatchFlags) spawner(root, board, db string) kanbancore.Spawner {
	if d.workerCmd == "" {
		return nil
	}
	ws, _ := kanbancore.WorkspacesRoot(root, board)
	return &kanbancore.ExecSpawner{Command: []string{"sh", "-c", d.workerCmd}, DB: db, Board: board, WorkspacesRoot: ws}
}

func dispatchLines(board string, r kanbancore.DispatchResult) []string {
	if r.SkippedLocked {
		return []string{board + "skipped: another dispatcher holds the dispatch lock"}
	}
	lines := []string{fmt.Sprintf("%sreaped=%d reclaimed=%d crashed=%d auto_blocked=%d rate_limited=%d timed_out=%d stale=%d promoted=%d spawned=%d spawn_failed=%d would_spawn=%d respawn_guarded=%d",
		board, len(r.Reaped), r.Reclaimed, len(r.Crashed), len(r.AutoBlocked), len(r.RateLimited), len(r.TimedOut), len(r.Stale),
		r.Promoted, len(r.Spawned), len(r.SpawnFailed), len(r.WouldSpawn), len(r.RespawnGuarded))}
	for _, s := range r.Spawned {
		lines = append(lines, fmt.Sprintf("%sspawned %s pid=%d workspace=%s", board, s.ID, s.PID, s.Workspace))
	}
	for _, id := range r.WouldSpawn {
		lines = append(lines, fmt.Sprintf("%swould spawn %s", board, id))
	}
	for _, g := range r.RespawnGuarded {
		lines = append(lines, fmt.Sprintf("%sguarded %s: %s", board, g.ID, g.Reason))
	}
	return lines
}

func (k *kanbanCLI) cmdDispatch(args []string) error {
	fs := k.flags("dispatch-once")
	var d dispatchFlags
	d.register(fs)
	if _, err := k.parse(fs, args, 0); err != nil {
		return err
	}
	if d.workerCmd == "" && !d.o.DryRun {
		return usageError{"--worker-cmd is required unless --dry-run"}
	}
	return k.withConn(func(c *kanbancore.Conn, path string) error {
		root, _ := k.root()
		board := kanbancore.CurrentBoard(root, k.g.name)
		d.o.Spawner = d.spawner(root, board, path)
		d.o.WorkspacesRoot, _ = kanbancore.WorkspacesRoot(root, board)
		r, err := kanbancore.DispatchOnce(k.ctx, c, d.o)
		if err != nil {
			return err
		}
		k.out(r, dispatchLines("", r)...)
		return nil
	})
}

func (k *kanbanCLI) cmdTick(args []string) error {
	fs := k.flags("tick")
	var d dispatchFlags
	d.register(fs)
	ticks := fs.Int("ticks", 1, "number of ticks (0 = until interrupted)")
	interval := fs.Duration("interval", 60*time.Second, "time between ticks")
	if _, err := k.parse(fs, args, 0); err != nil {
		return err
	}
	root, err := k.root()
	if err != nil {
		return err
	}
	opts, err := k.options()
	if err != nil {
		return err
	}
	g := &kanbancore.Gateway{Root: root, Opts: opts, Dispatch: d.o,
		Logf: func(f string, a ...any) { fmt.Fprintf(k.stderr, f+"\n", a...) }}
	if d.workerCmd != "" {
		g.SpawnerFor = func(board, db string) kanbancore.Spawner { return d.spawner(root, board, db) }
	}
	ctx, stop := signal.NotifyContext(k.ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	for i := 0; *ticks == 0 || i < *ticks; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(*interval):
			}
		}
		r := g.Tick(ctx)
		var lines []string
		if len(r.Reaped) > 0 {
			lines = append(lines, fmt.Sprintf("tick %d reaped %v", i+1, r.Reaped))
		}
		for _, b := range r.Boards {
			switch {
			case b.Skipped:
				_, until := g.LatchState(b.Board)
				lines = append(lines, fmt.Sprintf("tick %d %s: skipped (latched until %v)", i+1, b.Board, until))
			case b.Err != "":
				lines = append(lines, fmt.Sprintf("tick %d %s: error: %s (latched=%v)", i+1, b.Board, b.Err, b.Latched))
			case b.Result != nil:
				lines = append(lines, dispatchLines(fmt.Sprintf("tick %d %s: ", i+1, b.Board), *b.Result)...)
			}
		}
		k.out(r, lines...)
	}
	return nil
}
