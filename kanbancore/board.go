package kanbancore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Environment variables of the board (the original's HERMES_KANBAN_*).
const (
	EnvKanbanHome     = "SQLCHAOS_KANBAN_HOME"            // root directory
	EnvKanbanDB       = "SQLCHAOS_KANBAN_DB"              // pins the db path (beats an explicit board, as #30678 reports)
	EnvKanbanBoard    = "SQLCHAOS_KANBAN_BOARD"           // active board slug
	EnvKanbanTask     = "SQLCHAOS_KANBAN_TASK"            // set for workers
	EnvWorkspacesRoot = "SQLCHAOS_KANBAN_WORKSPACES_ROOT" // set for workers
)

// DefaultBoard is the slug of the board at <root>/kanban.db.
const DefaultBoard = "default"

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9\-_]{0,63}$`)

// NormalizeSlug lower-cases and validates a board slug
// (^[a-z0-9][a-z0-9\-_]{0,63}$).
func NormalizeSlug(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return DefaultBoard, nil
	}
	if !slugRE.MatchString(s) {
		return "", fmt.Errorf("%w: board slug %q (want ^[a-z0-9][a-z0-9-_]{0,63}$)", ErrInvalid, s)
	}
	return s, nil
}

// ResolveRoot returns the board root: explicit if set, else
// $SQLCHAOS_KANBAN_HOME, else ~/.sqlchaos.
func ResolveRoot(explicit string) string {
	if strings.TrimSpace(explicit) != "" {
		return explicit
	}
	if h := strings.TrimSpace(os.Getenv(EnvKanbanHome)); h != "" {
		return h
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".sqlchaos")
}

// BoardDir is the directory holding a board's files: root itself for the
// default board, <root>/kanban/boards/<slug> otherwise.
func BoardDir(root, slug string) (string, error) {
	slug, err := NormalizeSlug(slug)
	if err != nil {
		return "", err
	}
	if slug == DefaultBoard {
		return root, nil
	}
	return filepath.Join(root, "kanban", "boards", slug), nil
}

// BoardPath is a board's database file: <root>/kanban.db for the default
// board (kept there for back-compat), <root>/kanban/boards/<slug>/kanban.db
// otherwise.
func BoardPath(root, slug string) (string, error) {
	d, err := BoardDir(root, slug)
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "kanban.db"), nil
}

// ResolveBoardPath is the original's _board_path: $SQLCHAOS_KANBAN_DB pins
// the path and beats even an explicit board (the behaviour #30678 reports
// as a bug, kept faithfully); otherwise BoardPath(root, CurrentBoard(...)).
func ResolveBoardPath(root, board string) (string, error) {
	if p := strings.TrimSpace(os.Getenv(EnvKanbanDB)); p != "" {
		return p, nil
	}
	return BoardPath(root, CurrentBoard(root, board))
}

// WorkspacesRoot is where scratch workspaces of a board live.
func WorkspacesRoot(root, slug string) (string, error) {
	slug, err := NormalizeSlug(slug)
	if err != nil {
		return "", err
	}
	if slug == DefaultBoard {
		return filepath.Join(root, "kanban", "workspaces"), nil
	}
	d, _ := BoardDir(root, slug)
	return filepath.Join(d, "workspaces"), nil
}

// CurrentBoard picks the active board: explicit, then $SQLCHAOS_KANBAN_BOARD,
// then <root>/kanban/current (only if that board exists), then default.
func CurrentBoard(root, explicit string) string {
	for _, s := range []string{explicit, os.Getenv(EnvKanbanBoard)} {
		if slug, err := NormalizeSlug(s); err == nil && strings.TrimSpace(s) != "" {
			return slug
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "kanban", "current")); err == nil {
		if slug, err := NormalizeSlug(string(b)); err == nil && BoardExists(root, slug) {
			return slug
		}
	}
	return DefaultBoard
}

// BoardExists reports whether a board's directory (named boards) or file
// (default board) exists.
func BoardExists(root, slug string) bool {
	slug, err := NormalizeSlug(slug)
	if err != nil {
		return false
	}
	if slug == DefaultBoard {
		_, err := os.Stat(filepath.Join(root, "kanban.db"))
		return err == nil
	}
	d, _ := BoardDir(root, slug)
	st, err := os.Stat(d)
	return err == nil && st.IsDir()
}

// CreateBoard creates a named board's directory with board.json,
// workspaces/ and logs/ (the database itself is created by the first Open).
func CreateBoard(root, slug, displayName string) (string, error) {
	slug, err := NormalizeSlug(slug)
	if err != nil {
		return "", err
	}
	d, _ := BoardDir(root, slug)
	ws, _ := WorkspacesRoot(root, slug)
	for _, dir := range []string{d, ws, filepath.Join(d, "logs")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
	}
	if slug != DefaultBoard {
		meta := map[string]any{"slug": slug, "name": displayName, "created_at": time.Now().Unix()}
		b, _ := json.MarshalIndent(meta, "", "  ")
		if _, err := os.Stat(filepath.Join(d, "board.json")); os.IsNotExist(err) {
			if err := os.WriteFile(filepath.Join(d, "board.json"), append(b, '\n'), 0o644); err != nil {
				return "", err
			}
		}
	}
	return BoardPath(root, slug)
}

// ListBoards returns the boards under root: default when <root>/kanban.db
// exists, then every named board directory (archived ones excluded).
func ListBoards(root string) ([]string, error) {
	var out []string
	if BoardExists(root, DefaultBoard) {
		out = append(out, DefaultBoard)
	}
	ents, err := os.ReadDir(filepath.Join(root, "kanban", "boards"))
	if err != nil && !os.IsNotExist(err) {
		return out, err
	}
	var named []string
	for _, e := range ents {
		if e.IsDir() && slugRE.MatchString(e.Name()) && e.Name() != DefaultBoard {
			named = append(named, e.Name())
		}
	}
	sort.Strings(named)
	return append(out, named...), nil
}

// RemoveBoard archives a named board (renames its directory to
// boards/_archived/<slug>-<ts>) or deletes it. The default board cannot be
// removed.
func RemoveBoard(root, slug string, archive bool) error {
	slug, err := NormalizeSlug(slug)
	if err != nil {
		return err
	}
	if slug == DefaultBoard {
		return errors.New("kanbancore: the default board cannot be removed")
	}
	d, _ := BoardDir(root, slug)
	if !archive {
		return os.RemoveAll(d)
	}
	arch := filepath.Join(root, "kanban", "boards", "_archived")
	if err := os.MkdirAll(arch, 0o755); err != nil {
		return err
	}
	return os.Rename(d, filepath.Join(arch, fmt.Sprintf("%s-%d", slug, time.Now().Unix())))
}
