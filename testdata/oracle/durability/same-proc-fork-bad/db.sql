INSERT INTO chaos_ledger VALUES(1,'cli-1','create_task',999000000);
INSERT INTO chaos_ledger VALUES(2,'cli-2','create_task',1999000000);
UPDATE chaos_counter SET n = 2;
INSERT INTO chaos_ledger VALUES(3,'gateway-1','detect_crashed_workers',3400000000);
PRAGMA journal_mode=WAL;
