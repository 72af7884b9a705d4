WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 299)
INSERT INTO tasks SELECT printf('task-%04d', i), 'title ' || i, 'ready' FROM c;
PRAGMA journal_mode=WAL;
