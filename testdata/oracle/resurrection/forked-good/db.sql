INSERT INTO tasks VALUES('t1','one','blocked'),('t2','two','ready'),('t3','three','ready'),('t5','five','ready');
INSERT INTO chaos_ledger VALUES(1,'cli-1','create_task',999000000);
INSERT INTO chaos_ledger VALUES(2,'cli-2','create_task',1499000000);
INSERT INTO chaos_ledger VALUES(3,'cli-3','create_task',2999000000);
INSERT INTO chaos_ledger VALUES(4,'cli-4','block_task',3999000000);
UPDATE chaos_counter SET n = 4;
PRAGMA journal_mode=WAL;
