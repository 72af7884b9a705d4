-- The board schema the oracle fixtures share: a cut-down kanban tasks table
-- plus the commit counter and ledger every write transaction touches.
PRAGMA page_size=4096;
CREATE TABLE tasks(id TEXT PRIMARY KEY, title TEXT, status TEXT NOT NULL);
CREATE TABLE chaos_counter(n INTEGER NOT NULL);
INSERT INTO chaos_counter VALUES(0);
CREATE TABLE chaos_ledger(seq INTEGER PRIMARY KEY, proc TEXT NOT NULL, op TEXT NOT NULL, t INTEGER NOT NULL);
