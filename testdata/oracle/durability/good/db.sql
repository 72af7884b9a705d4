INSERT INTO chaos_ledger VALUES(1,'cli-1','create_task',999000000);
INSERT INTO chaos_ledger VALUES(2,'cli-2','create_task',1999000000);
INSERT INTO chaos_ledger VALUES(3,'cli-3','create_task',2999000000);
INSERT INTO chaos_ledger VALUES(4,'p','op',4000000000);
UPDATE chaos_counter SET n = 4;
PRAGMA journal_mode=WAL;
