package scenarios

import (
	"time"
)

// Role process names: the reexec roles the runner (and the dispatcher, for
// workers) start as separate OS processes of the same binary.
const (
	RoleDispatcher = "scn-dispatcher" // gateway loop: one connect per tick, dispatch_once, spawns workers
	RoleWorker     = "scn-worker"     // heartbeats a claimed task, then completes, blocks or crashes
	RoleLauncher   = "scn-launcher"   // starts a worker and exits: the spawn pid dies while the worker lives
	RoleWatcher    = "scn-watcher"    // long-lived connection polling the board (notifier / dashboard)
	RoleCLI        = "scn-cli"        // short-lived: one operation on a fresh first connection, then exit
	RoleWriter     = "scn-writer"     // long-lived connection writing in a loop (heartbeat-like load)
)

// RoleSpec is everything a role process needs: the spec it is started with
// (reexec.Command; the child decodes it strictly). The dispatcher derives
// its workers' specs from its own.
type RoleSpec struct {
	Role     string   `json:"role"` // one of the Role* names
	Proc     string   `json:"proc"` // history instance name, unique per run ("cli-7")
	DB       string   `json:"db"`   // board file, through the mount
	Profile  string   `json:"profile"`
	Driver   string   `json:"driver"`
	Switches []string `json:"switches,omitempty"` // k=v overrides on the profile
	Seed     int64    `json:"seed"`
	Clock    string   `json:"clock"`    // Clock.String
	HistDir  string   `json:"hist_dir"` // where <proc>.jsonl goes
	WorkDir  string   `json:"work_dir"` // scratch space (workspaces)

	// Interval is the role's period in board time: the gateway tick, a
	// watcher's poll, a worker's or writer's heartbeat.
	Interval time.Duration `json:"interval,omitempty"`
	// Count bounds the loop: heartbeats of a worker, writes of a writer
	// (0 = until stopped).
	Count int `json:"count,omitempty"`
	// Op is the CLI's board operation (one of the Op* constants).
	Op BoardOp `json:"op,omitempty"`
	// Watch is a watcher's kind (WatchNotifier or WatchDashboard).
	Watch string `json:"watch,omitempty"`
	// Task is the task a worker or a CLI op acts on ("" = the CLI picks one
	// with its seeded generator).
	Task string `json:"task,omitempty"`
	// Args holds op-specific values (title, body size, outcome).
	Args map[string]string `json:"args,omitempty"`

	// Worker is the template a dispatcher uses for the workers it spawns.
	Worker *WorkerTemplate `json:"worker,omitempty"`
	// Launcher makes the dispatcher spawn workers through a launcher process
	// whose pid (the one recorded as worker_pid) exits after LaunchDelay
	// (board time) while the worker it started keeps running.
	Launcher    bool          `json:"launcher,omitempty"`
	LaunchDelay time.Duration `json:"launch_delay,omitempty"`
	// MaxSpawn caps spawns per tick (0 = kanbancore's default).
	MaxSpawn int `json:"max_spawn,omitempty"`
}

// WorkerTemplate is how a dispatcher's workers behave.
type WorkerTemplate struct {
	Heartbeats       int           `json:"heartbeats"`        // heartbeats before finishing
	HeartbeatsJitter int           `json:"heartbeats_jitter"` // plus a seeded 0..HeartbeatsJitter more
	Interval         time.Duration `json:"interval"`          // board time between heartbeats
	StartDelay       time.Duration `json:"start_delay"`       // board time before the first connect (slow start)
	FailP            float64       `json:"fail_p,omitempty"`  // seeded probability of crashing (exit 1) instead of completing
	BlockP           float64       `json:"block_p,omitempty"` // seeded probability of blocking instead of completing
	ExitLinger       time.Duration `json:"exit_linger,omitempty"`
}

// clock is the shared board clock the role process was started with.
func (s RoleSpec) clock() (Clock, error) {
	return ParseClock(s.Clock)
}

// BoardOp is a board operation a CLI process or a writer runs (boardOp):
// scripts name them by these constants, and a role refuses any other.
type BoardOp string

// The board operations.
const (
	OpCreate     BoardOp = "create"
	OpList       BoardOp = "list"
	OpComplete   BoardOp = "complete"
	OpBlock      BoardOp = "block"
	OpArchive    BoardOp = "archive"
	OpDelete     BoardOp = "delete"
	OpHeartbeat  BoardOp = "heartbeat"
	OpCheckpoint BoardOp = "checkpoint"
	OpRecompute  BoardOp = "recompute"
)

// The watcher kinds (RoleSpec.Watch): what a watcher's one connection
// polls.
const (
	WatchNotifier  = "notifier"  // new task events, every 5 s (the default)
	WatchDashboard = "dashboard" // the board and its counts by status, every 10 s
)
