INSERT INTO chaos_ledger VALUES(1,'writer-1','create_task',999000000);
INSERT INTO chaos_ledger VALUES(2,'writer-1','create_task',1999000000);
INSERT INTO chaos_ledger VALUES(3,'writer-2','create_task',5999000000);
UPDATE chaos_counter SET n = 3;
PRAGMA journal_mode=WAL;
