INSERT INTO tasks VALUES('t1','one','ready');
INSERT INTO chaos_ledger VALUES(1,'p','op',1000000000);
INSERT INTO chaos_ledger VALUES(2,'p','op',2000000000);
UPDATE chaos_counter SET n = 2;
PRAGMA journal_mode=WAL;
