package kanbancore

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWriteTxnRollbackFidelity: a statement fails after SQLite already
// rolled the transaction back (INSERT OR ROLLBACK on a UNIQUE violation).
// legacy's unguarded ROLLBACK then fails and its "cannot rollback" replaces
// the cause; guarded and hardened surface the UNIQUE violation. In every
// mode both errors stay reachable and the connection can BEGIN again.
func TestWriteTxnRollbackFidelity(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		for _, mode := range []string{"legacy", "guarded", "hardened"} {
			t.Run(mode, func(t *testing.T) {
				ctx := context.Background()
				obs := &recObserver{}
				c := openT(t, d, filepath.Join(t.TempDir(), "kanban.db"), Hardened(), obs, "write_txn="+mode)
				mustExec(t, c, "CREATE TABLE cl_u(id INTEGER PRIMARY KEY, k TEXT UNIQUE)", "INSERT INTO cl_u(k) VALUES ('dup')")
				err := c.WriteTxn(ctx, "dup_insert", func(tx *Tx) error {
					_, err := tx.ExecContext(ctx, "INSERT OR ROLLBACK INTO cl_u(k) VALUES ('dup')")
					return err
				})
				if err == nil {
					t.Fatal("WriteTxn succeeded, want an error")
				}
				msg := err.Error()
				code, _ := SQLiteCode(err)
				if mode == "legacy" {
					if !strings.Contains(msg, "cannot rollback") || strings.Contains(msg, "UNIQUE") {
						t.Fatalf("legacy surfaced %q, want the rollback's \"cannot rollback\" replacing the cause", msg)
					}
					var rb *RollbackError
					if !errors.As(err, &rb) || !strings.Contains(rb.Cause.Error(), "UNIQUE") {
						t.Fatalf("legacy: cause not reachable via errors.As: %#v", err)
					}
				} else {
					if !strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "cannot rollback") {
						t.Fatalf("%s surfaced %q, want the UNIQUE violation", mode, msg)
					}
					if code != 2067 {
						t.Fatalf("%s: SQLiteCode = %d, want 2067 (SQLITE_CONSTRAINT_UNIQUE)", mode, code)
					}
				}
				if len(obs.failed) != 1 || obs.failed[0] != err {
					t.Fatalf("Observer.Failed got %v, want exactly the surfaced error", obs.failed)
				}
				if err := c.WriteTxn(ctx, "next", func(tx *Tx) error {
					_, err := tx.ExecContext(ctx, "INSERT INTO cl_u(k) VALUES ('other')")
					return err
				}); err != nil {
					t.Fatalf("connection unusable after the failed txn: %v", err)
				}
			})
		}
	})
}

// TestWriteTxnBusyRetry: another connection holds the write lock for 300 ms
// and busy_timeout is 0. legacy and guarded surface SQLITE_BUSY from BEGIN
// IMMEDIATE at once; hardened retries the boundary and commits.
func TestWriteTxnBusyRetry(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		for _, mode := range []string{"legacy", "guarded", "hardened"} {
			t.Run(mode, func(t *testing.T) {
				ctx := context.Background()
				path := filepath.Join(t.TempDir(), "kanban.db")
				c := openT(t, d, path, Hardened(), nil, "write_txn="+mode, "busy_timeout=0s")
				mustExec(t, c, "CREATE TABLE cl_b(x)")
				holder := openT(t, d, path, Hardened(), nil, "busy_timeout=0s")
				mustExec(t, holder, "BEGIN IMMEDIATE", "INSERT INTO cl_b VALUES (0)")
				released := make(chan struct{})
				go func() {
					time.Sleep(300 * time.Millisecond)
					holder.ExecContext(ctx, "COMMIT")
					close(released)
				}()
				err := c.WriteTxn(ctx, "put", func(tx *Tx) error {
					_, err := tx.ExecContext(ctx, "INSERT INTO cl_b VALUES (1)")
					return err
				})
				<-released
				if mode == "hardened" {
					if err != nil {
						t.Fatalf("hardened: %v, want success after busy retries", err)
					}
					return
				}
				if Classify(err) != ClassBusy {
					t.Fatalf("%s: got %v (class %v), want BUSY", mode, err, Classify(err))
				}
			})
		}
	})
}
