INSERT INTO tasks VALUES('t1','one','ready');
INSERT INTO tasks VALUES('t2','two','ready');
INSERT INTO tasks VALUES('t9','ghost','done');
INSERT INTO chaos_ledger VALUES(1,'p','op',1000000000);
INSERT INTO chaos_ledger VALUES(2,'p','op',2000000000);
INSERT INTO chaos_ledger VALUES(3,'p','op',3000000000);
INSERT INTO chaos_ledger VALUES(4,'p','op',4000000000);
UPDATE chaos_counter SET n = 4;
PRAGMA journal_mode=WAL;
