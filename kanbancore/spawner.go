package kanbancore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Spawner starts a worker process for a claimed task and returns its pid.
// The process must be a real OS child of the calling process: the reaper
// collects its exit status with waitpid(-1) and DetectCrashedWorkers
// classifies it.
type Spawner interface {
	Spawn(ctx context.Context, task Task, workspace string) (pid int, err error)
}

// SpawnerFunc adapts a function to Spawner.
type SpawnerFunc func(ctx context.Context, task Task, workspace string) (int, error)

// Spawn calls f.
func (f SpawnerFunc) Spawn(ctx context.Context, task Task, workspace string) (int, error) {
	return f(ctx, task, workspace)
}

// ExecSpawner runs Command as the worker, in the workspace directory, with
// SQLCHAOS_KANBAN_DB, SQLCHAOS_KANBAN_BOARD, SQLCHAOS_KANBAN_TASK and
// SQLCHAOS_KANBAN_WORKSPACES_ROOT in its environment (the original's
// HERMES_KANBAN_* variables). Placeholders {task}, {db}, {board},
// {workspace} and {assignee} in Command are substituted. The process is
// not waited for: the dispatcher's reaper collects it.
type ExecSpawner struct {
	Command        []string
	Env            []string // extra KEY=VALUE entries
	DB             string
	Board          string
	WorkspacesRoot string
	LogDir         string // if set, stdout+stderr go to <LogDir>/<task>.log
	// Prepare may adjust the command before it starts (e.g. reexec setup).
	Prepare func(cmd *exec.Cmd)
}

// Spawn starts the worker and returns its pid.
func (s *ExecSpawner) Spawn(ctx context.Context, task Task, workspace string) (int, error) {
	if len(s.Command) == 0 {
		return 0, errors.New("kanbancore: ExecSpawner has no command")
	}
	repl := strings.NewReplacer("{task}", task.ID, "{db}", s.DB, "{board}", s.Board,
		"{workspace}", workspace, "{assignee}", task.Assignee)
	argv := make([]string, len(s.Command))
	for i, a := range s.Command {
		argv[i] = repl.Replace(a)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	if workspace != "" {
		cmd.Dir = workspace
	}
	cmd.Env = append(os.Environ(),
		EnvKanbanDB+"="+s.DB,
		EnvKanbanBoard+"="+s.Board,
		EnvKanbanTask+"="+task.ID,
		EnvWorkspacesRoot+"="+s.WorkspacesRoot,
	)
	cmd.Env = append(cmd.Env, s.Env...)
	var logf *os.File
	if s.LogDir != "" {
		if err := os.MkdirAll(s.LogDir, 0o755); err != nil {
			return 0, err
		}
		f, err := os.OpenFile(filepath.Join(s.LogDir, task.ID+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return 0, err
		}
		logf = f
		cmd.Stdout, cmd.Stderr = f, f
	}
	if s.Prepare != nil {
		s.Prepare(cmd)
	}
	err := cmd.Start()
	if logf != nil {
		logf.Close()
	}
	if err != nil {
		return 0, fmt.Errorf("kanbancore: spawn %s: %w", task.ID, err)
	}
	pid := cmd.Process.Pid
	// Release drops Go's handle without waiting: the reaper's waitpid(-1)
	// collects the exit status, as in the original.
	_ = cmd.Process.Release()
	return pid, nil
}
