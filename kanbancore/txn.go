package kanbancore

import (
	"context"
)

// boundaryRetries is how often the hardened write_txn retries a BEGIN
// IMMEDIATE or COMMIT that failed with "database is locked/busy".
const boundaryRetries = 5

// WriteTxn runs fn inside BEGIN IMMEDIATE … COMMIT in the form the WriteTxn
// switch names, and reports to the Observer: InTxn just before COMMIT (its
// sequence number lands in Commit.Seq), Committed once COMMIT succeeded,
// Failed for any error WriteTxn returns.
//
//   - "legacy": BEGIN IMMEDIATE; fn; on error an unguarded ROLLBACK whose own
//     error replaces fn's (a *RollbackError whose message is the rollback's,
//     e.g. "cannot rollback - no transaction is active", after SQLite already
//     rolled back); a failed COMMIT is returned as is and leaves the
//     transaction open, as the original's did.
//   - "guarded" (PR #32857 commit 3): the same, but a failing ROLLBACK is
//     swallowed, so the original error surfaces.
//   - "hardened" (KDB-b405): additionally BEGIN IMMEDIATE and COMMIT are
//     retried up to 5 times with seeded 20–150 ms jitter when the error says
//     "database is locked/busy" (fn itself is never replayed), and a COMMIT
//     that still fails is followed by a guarded ROLLBACK.
//
// After a successful COMMIT the page-count check (PageCountCheck switch)
// runs; its *TornExtendError is returned for a transaction that is already
// committed and durable (Observer.Committed has been called).
//
// Errors come back as *Error (class, SQLite code, op) wrapping the driver's
// error, so errors.Is/As reach the original.
func (c *Conn) WriteTxn(ctx context.Context, op string, fn func(tx *Tx) error) error {
	err := c.writeTxn(ctx, op, fn)
	if err != nil {
		err = wrapErr(op, err)
		if o := c.opts.Observer; o != nil {
			o.Failed(op, err)
		}
	}
	return err
}

func (c *Conn) writeTxn(ctx context.Context, op string, fn func(tx *Tx) error) error {
	mode := c.opts.Switches.WriteTxn
	hardened := mode == WriteTxnHardened || mode == ""
	if err := c.boundary(ctx, "BEGIN IMMEDIATE", hardened); err != nil {
		return err
	}
	tx := &Tx{Conn: c}
	tx.commit.Op = op
	err := fn(tx)
	if err == nil && c.opts.Observer != nil {
		tx.commit.Seq, err = c.opts.Observer.InTxn(ctx, c, op)
	}
	var headerPages int64
	if err == nil {
		headerPages = c.preCommitPageCount(ctx)
	}
	if err != nil {
		return c.rollback(ctx, mode, err)
	}
	if err := c.boundary(ctx, "COMMIT", hardened); err != nil {
		if hardened {
			c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") // guarded: its error is dropped
		}
		return err
	}
	if o := c.opts.Observer; o != nil {
		o.Committed(tx.commit)
	}
	return c.checkPageCount(ctx, headerPages)
}

// rollback issues the ROLLBACK after fn (or InTxn) failed with cause. Only
// the legacy mode lets the ROLLBACK's error replace the cause.
func (c *Conn) rollback(ctx context.Context, mode WriteTxnMode, cause error) error {
	_, rbErr := c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	if rbErr != nil && mode == WriteTxnLegacy {
		return &RollbackError{Rollback: wrapErr("ROLLBACK", rbErr), Cause: cause}
	}
	return cause
}

// boundary runs BEGIN IMMEDIATE or COMMIT, retrying "database is
// locked/busy" up to boundaryRetries times when retry is set.
func (c *Conn) boundary(ctx context.Context, stmt string, retry bool) error {
	for attempt := 0; ; attempt++ {
		_, err := c.ExecContext(ctx, stmt)
		if err == nil {
			return nil
		}
		if !retry || attempt >= boundaryRetries || !isBusyMessage(err) {
			return err
		}
		if !c.sleep(ctx, c.jitter()) {
			return err
		}
	}
}
