INSERT INTO chaos_ledger VALUES(1,'writer-1','create_task',999000000);
INSERT INTO chaos_ledger VALUES(3,'writer-1','create_task',2999000000);
INSERT INTO chaos_ledger VALUES(5,'writer-2','create_task',5999000000);
UPDATE chaos_counter SET n = 5;
PRAGMA journal_mode=WAL;
