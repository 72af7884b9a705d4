INSERT INTO tasks VALUES('t1','one','running');
INSERT INTO chaos_ledger VALUES(1,'cli-1','create_task',999000000);
INSERT INTO chaos_ledger VALUES(2,'cli-2','create_task',1499000000);
INSERT INTO chaos_ledger VALUES(3,'dispatcher-1','claim_task',1999000000);
INSERT INTO chaos_ledger VALUES(4,'cli-4','delete_task',2999000000);
UPDATE chaos_counter SET n = 4;
PRAGMA journal_mode=WAL;
