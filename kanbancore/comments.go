package kanbancore

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Comment is one row of task_comments.
type Comment struct {
	ID        int64  `json:"id"`
	TaskID    string `json:"task_id"`
	Author    string `json:"author"`
	Body      string `json:"body"`
	CreatedAt int64  `json:"created_at"`
}

// ErrEmptyComment is returned by AddComment for a blank body.
var ErrEmptyComment = errors.New("kanbancore: comment body is empty")

// AddComment appends a comment to a task and emits a `commented` event.
func AddComment(ctx context.Context, c *Conn, taskID, author, body string) (int64, error) {
	if strings.TrimSpace(body) == "" {
		return 0, ErrEmptyComment
	}
	if strings.TrimSpace(author) == "" {
		author = "user"
	}
	var id int64
	err := c.WriteTxn(ctx, "add_comment", func(tx *Tx) error {
		if ok, err := taskExists(ctx, tx.Conn, taskID); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("%w: %s", ErrUnknownTask, taskID)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO task_comments(task_id, author, body, created_at) VALUES(?,?,?,?)`,
			taskID, author, body, tx.Now().Unix())
		if err != nil {
			return err
		}
		id, _ = res.LastInsertId()
		tx.InsertedFor("task_comments", fmt.Sprint(id), taskID)
		return addEvent(ctx, tx, taskID, 0, EventCommented, map[string]any{"author": author, "len": len(body)})
	})
	return id, err
}

// ListComments returns a task's comments in the order they were added.
func ListComments(ctx context.Context, c *Conn, taskID string) ([]Comment, error) {
	return queryAll(ctx, c, func(s rowScanner) (Comment, error) {
		var cm Comment
		err := s.Scan(&cm.ID, &cm.TaskID, &cm.Author, &cm.Body, &cm.CreatedAt)
		return cm, err
	}, `SELECT id, task_id, author, body, created_at FROM task_comments WHERE task_id=? ORDER BY created_at, id`, taskID)
}
