INSERT INTO tasks VALUES('t1','one','ready');
INSERT INTO chaos_ledger VALUES(1,'cli-1','create_task',1199000000);
INSERT INTO chaos_ledger VALUES(2,'cli-2','comment',2199000000);
UPDATE chaos_counter SET n = 2;
PRAGMA journal_mode=WAL;
