# Generates the oracle fixtures in this directory; the output is committed.
# Usage: python3 gen_fixtures.py testdata/oracle   (from the repository root)
import json, os, sys
ROOT = sys.argv[1]
S = 1_000_000_000
def t(sec): return int(sec * S)

def fixture(checker, kind, hist, trace=None, sql=None, patch=None, expect=None, meta=None):
    d = os.path.join(ROOT, checker, kind)
    os.makedirs(os.path.join(d, "histories"), exist_ok=True)
    m = {"scenario": "fixture-" + checker, "profile": "legacy", "driver": "modernc", "seed": 1}
    m.update(meta or {})
    open(os.path.join(d, "meta.json"), "w").write(json.dumps(m, indent=2) + "\n")
    for proc, evs in hist.items():
        with open(os.path.join(d, "histories", proc + ".jsonl"), "w") as f:
            for e in evs:
                f.write(json.dumps(e, ensure_ascii=False) + "\n")
    if trace is not None:
        with open(os.path.join(d, "trace.jsonl"), "w") as f:
            for i, r in enumerate(trace):
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    if sql is not None:
        open(os.path.join(d, "db.sql"), "w").write(sql.strip() + "\n")
    if patch is not None:
        open(os.path.join(d, "db.patch"), "w").write(patch.strip() + "\n")
    if expect is not None:
        open(os.path.join(d, "expect.json"), "w").write(json.dumps(expect, indent=2, ensure_ascii=False) + "\n")

def ev(proc, pid, typ, sec, **kw):
    e = {"t": t(sec), "proc": proc, "pid": pid, "type": typ}
    if "klass" in kw: kw["class"] = kw.pop("klass")
    e.update(kw)
    return e
def commit(proc, pid, sec, seq, op, **data):
    e = ev(proc, pid, "commit", sec, seq=seq, op=op)
    if data: e["data"] = data
    return e
def tr(seq, sec, kind, **kw):
    r = {"seq": seq, "t": t(sec), "kind": kind}
    r.update(kw)
    return r
def ledger(*seqs, hist=None, procs=None):
    # hist: the fixture's histories ({proc: events}); procs: {seq: proc}
    # overriding whom a seq's row names (default: the proc whose commit
    # acknowledged it). A row whose proc acknowledged its seq gets that
    # commit's op and a t 1 ms before it (the ledger row is written inside
    # the transaction); other seqs name "p" (an unacknowledged commit). The
    # oracle matches commits to rows by seq, proc, op and t.
    acks = {}
    for proc, evs in (hist or {}).items():
        for e in evs:
            if e.get("type") == "commit":
                acks.setdefault(e["seq"], {})[proc] = e
    def row(s):
        p = (procs or {}).get(s) or next(iter(acks.get(s, {})), "p")
        e = acks.get(s, {}).get(p)
        op, ts = (e["op"], e["t"] - t(0.001)) if e else ("op", t(s))
        return "INSERT INTO chaos_ledger VALUES(%d,'%s','%s',%d);" % (s, p, op, ts)
    return "\n".join(row(s) for s in seqs) + \
        "\nUPDATE chaos_counter SET n = %d;" % (max(seqs) if seqs else 0)
WAL = "PRAGMA journal_mode=WAL;"
mount = tr(1, 0.9, "mount", seed=1)
towal = tr(2, 1.0, "header", pid=100, path="kanban.db", old_mode="1/1", new_mode="2/2")

# 1 journal-mode
fixture("journal-mode", "good",
    {"setup": [ev("setup", 100, "mode", 1.01, mode="wal")],
     "cli-5": [ev("cli-5", 205, "mode", 3.0, mode="wal"), ev("cli-5", 205, "return", 3.1, id=1, op="create_task")]},
    trace=[mount, towal], sql=WAL)
fixture("journal-mode", "bad",
    {"setup": [ev("setup", 100, "mode", 1.01, mode="wal")],
     "cli-5": [ev("cli-5", 205, "error", 2.99, op="connect", err="disk I/O error", klass="IOERR") ,
               ev("cli-5", 205, "mode", 3.0001, mode="delete"),
               ev("cli-5", 205, "return", 3.1, id=1, op="create_task")]},
    trace=[mount, towal, tr(7, 3.0, "header", pid=205, path="kanban.db", old_mode="2/2", new_mode="1/1")],
    sql=WAL, patch="# bytes 18-19: file format write/read version 1/1 = rollback journal\n18 0101",
    expect={"verdict": "fail", "summary": "silent WAL downgrade", "evidence": [
        {"seq": 7, "pid": 205, "text": "flipped 2/2→1/1"},
        {"proc": "cli-5", "text": "journal_mode=delete"},
        {"text": "final header bytes 18-19 = 1/1"}]})
# A connection whose probe failed (the newest policy reports "unknown" and
# touches nothing) has not downgraded: the header stays 2/2.
fixture("journal-mode", "unknown-good",
    {"setup": [ev("setup", 100, "mode", 1.01, mode="wal")],
     "cli-5": [ev("cli-5", 205, "mode", 3.0, mode="unknown"), ev("cli-5", 205, "return", 3.1, id=1, op="create_task")]},
    trace=[mount, towal, tr(7, 2.99, "op", pid=205, op="open", path="kanban.db-wal", result="EIO", rule=1, fault="eio")],
    sql=WAL)

# 2 durability
DUR_GOOD = {"cli-1": [commit("cli-1", 201, 1.0, 1, "create_task")],
     "cli-2": [commit("cli-2", 202, 2.0, 2, "create_task")],
     "cli-3": [commit("cli-3", 203, 3.0, 3, "create_task")]}
fixture("durability", "good", DUR_GOOD,
    sql=ledger(1, 2, 3, 4, hist=DUR_GOOD) + "\n" + WAL)
DUR_BAD = {"cli-1": [commit("cli-1", 201, 1.0, 1, "create_task"), commit("cli-1", 201, 4.0, 4, "create_task")],
     "cli-2": [commit("cli-2", 202, 2.0, 2, "create_task")],
     "cli-3": [commit("cli-3", 203, 3.0, 3, "complete_task")]}
fixture("durability", "bad", DUR_BAD,
    sql=ledger(1, 2, 4, hist=DUR_BAD) + "\n" + WAL,
    expect={"verdict": "fail", "summary": "1 of 4 acknowledged commits lost", "evidence": [
        {"seq": 3, "proc": "cli-3", "text": "complete_task"}]})
# A forked history (a -wal unlinked under a live writer): writer-1 keeps
# counting in its deleted WAL (seqs 3, 4) while cli-3 and cli-4, opening the
# board afterwards, continue from the main file (seqs 3, 4 again). Every seq
# is in the final ledger, but rows 3 and 4 name cli-3 and cli-4: the
# writer's two commits are lost. A seq-only comparison passes this.
DUR_FORK = {"cli-1": [commit("cli-1", 201, 1.0, 1, "create_task")],
     "cli-2": [commit("cli-2", 202, 2.0, 2, "create_task")],
     "writer-1": [commit("writer-1", 301, 3.0, 3, "create_task"), commit("writer-1", 301, 4.0, 4, "complete_task")],
     "cli-3": [commit("cli-3", 203, 3.5, 3, "create_task")],
     "cli-4": [commit("cli-4", 204, 4.5, 4, "create_task")]}
fixture("durability", "forked-bad", DUR_FORK,
    sql=ledger(1, 2, 3, 4, hist=DUR_FORK, procs={3: "cli-3", 4: "cli-4"}) + "\n" + WAL,
    expect={"verdict": "fail", "summary": "2 of 6 acknowledged commits lost; forked history: 2 seqs acknowledged more than once", "evidence": [
        {"seq": 3, "proc": "writer-1", "text": "lost: the final ledger's row 3 is cli-3's create_task"},
        {"seq": 4, "proc": "writer-1", "text": "complete_task by writer-1"},
        {"seq": 4, "text": "forked history: seq 4 acknowledged 2 times: writer-1 (pid 301"}]})
# The ledger row of an acknowledged seq names another process, with no
# second acknowledgement (the other branch's process logged nothing): lost.
fixture("durability", "other-proc-bad", DUR_GOOD,
    sql=ledger(1, 2, 3, 4, hist=DUR_GOOD, procs={3: "cli-9"}) + "\n" + WAL,
    expect={"verdict": "fail", "summary": "1 of 3 acknowledged commits lost", "evidence": [
        {"seq": 3, "proc": "cli-3", "text": "row 3 is cli-9's op"}]})

# One process on both branches (measured: the gateway acknowledged seq 81 as
# set_worker_pid on the deleted WAL, then as claim_task on the new one): the
# ledger's row 3 is gateway-1's detect_crashed_workers, so its claim_task
# under seq 3 is lost although the row names its process.
DUR_SELF = {"cli-1": [commit("cli-1", 201, 1.0, 1, "create_task")],
     "cli-2": [commit("cli-2", 202, 2.0, 2, "create_task")],
     "gateway-1": [commit("gateway-1", 100, 3.0, 3, "claim_task"), commit("gateway-1", 100, 3.5, 3, "detect_crashed_workers")]}
fixture("durability", "same-proc-fork-bad", DUR_SELF,
    sql=ledger(1, 2, hist=DUR_GOOD) + "\nINSERT INTO chaos_ledger VALUES(3,'gateway-1','detect_crashed_workers',%d);" % t(3.4) + "\n" + WAL,
    expect={"verdict": "fail", "summary": "1 of 4 acknowledged commits lost; forked history: 1 seq acknowledged more than once", "evidence": [
        {"seq": 3, "proc": "gateway-1", "text": "seq 3 (claim_task by gateway-1) at +2s is lost: the final ledger's row 3 is gateway-1's detect_crashed_workers"},
        {"seq": 3, "text": "forked history: seq 3 acknowledged 2 times"}]})

# 3 resurrection
res_hist = {
    "cli-1": [commit("cli-1", 201, 1.0, 1, "create_task", inserted=[{"table": "tasks", "key": "t1"}], transitions=[{"task": "t1", "from": "", "to": "ready"}])],
    "cli-2": [commit("cli-2", 202, 1.5, 2, "create_task", inserted=[{"table": "tasks", "key": "t2"}], transitions=[{"task": "t2", "from": "", "to": "ready"}])],
    "dispatcher-1": [commit("dispatcher-1", 100, 2.0, 3, "claim_task", transitions=[{"task": "t1", "from": "ready", "to": "running"}])],
    "cli-4": [commit("cli-4", 204, 3.0, 4, "delete_task", deleted=[{"table": "tasks", "key": "t2"}])],
}
fixture("resurrection", "good", res_hist,
    sql="INSERT INTO tasks VALUES('t1','one','running');\n" + ledger(1, 2, 3, 4, hist=res_hist) + "\n" + WAL)
fixture("resurrection", "bad", res_hist,
    sql="INSERT INTO tasks VALUES('t1','one','ready');\nINSERT INTO tasks VALUES('t2','two','ready');\nINSERT INTO tasks VALUES('t9','ghost','done');\n" + ledger(1, 2, 3, 4, hist=res_hist) + "\n" + WAL,
    expect={"verdict": "fail", "evidence": [
        {"seq": 4, "proc": "cli-4", "text": "deleted by acknowledged commit seq 4"},
        {"seq": 3, "proc": "dispatcher-1", "text": "last acknowledged transition"},
        {"text": "tasks row t9 exists but no acknowledged commit inserted it"}]})

# 3b resurrection with kanbancore's key shapes: cascades Deleted(table,
# "task:<id>") = every row of table with task_id=<id>; task_links keys
# "parent>child" (composite primary key).
CHILD = """CREATE TABLE task_events(id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, kind TEXT);
CREATE TABLE task_comments(id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, body TEXT);
CREATE TABLE task_links(parent_id TEXT NOT NULL, child_id TEXT NOT NULL, PRIMARY KEY(parent_id, child_id));
"""
def rows(table, key): return {"table": table, "key": key}
cas_hist = {
    "cli-1": [commit("cli-1", 201, 1.0, 1, "create_task", inserted=[rows("tasks", "t1"), rows("task_events", "1")], transitions=[{"task": "t1", "from": "", "to": "ready"}])],
    "cli-2": [commit("cli-2", 202, 1.5, 2, "create_task", inserted=[rows("tasks", "t2"), rows("task_events", "2")], transitions=[{"task": "t2", "from": "", "to": "ready"}])],
    "worker-1": [commit("worker-1", 301, 2.0, 3, "heartbeat_worker", inserted=[rows("task_events", "3")], updated=[rows("tasks", "t1")])],
    "cli-4": [commit("cli-4", 204, 2.5, 4, "link_tasks", inserted=[rows("task_links", "t1>t2"), rows("task_events", "4")])],
    "cli-5": [commit("cli-5", 205, 3.0, 5, "delete_task",
        deleted=[rows("task_links", "t1>t2"), rows("task_events", "task:t1"), rows("tasks", "t1")], transitions=[{"task": "t1", "from": "ready", "to": ""}])],
    "cli-6": [commit("cli-6", 206, 3.5, 6, "add_comment", inserted=[rows("task_comments", "1"), rows("task_events", "5")])],
}
cas_sql = CHILD + "INSERT INTO tasks VALUES('t2','two','ready');\nINSERT INTO task_comments VALUES(1,'t2','hi');\n"
fixture("resurrection", "cascade-good", cas_hist,
    sql=cas_sql + "INSERT INTO task_events VALUES(2,'t2','created'),(4,'t2','linked'),(5,'t2','commented');\n" + ledger(1, 2, 3, 4, 5, 6, hist=cas_hist) + "\n" + WAL,
    expect={"verdict": "pass", "summary": "2 of them removed by later cascades"})
fixture("resurrection", "cascade-bad", cas_hist,
    sql=cas_sql + "INSERT INTO task_events VALUES(1,'t1','created'),(4,'t2','linked'),(5,'t2','commented');\n" +
        "INSERT INTO task_links VALUES('t1','t2');\n" + ledger(1, 2, 3, 4, 5, 6, hist=cas_hist) + "\n" + WAL,
    expect={"verdict": "fail", "summary": "1 back after a cascade", "evidence": [
        {"seq": 5, "proc": "cli-5", "text": "task_events row 1 of task t1, deleted by acknowledged commit seq 5 (delete_task, cascade), is present"},
        {"seq": 2, "proc": "cli-2", "text": "task_events row 2 written by acknowledged commit seq 2 (create_task) is missing at the end (its commit names t2; no later cascade"},
        {"seq": 5, "proc": "cli-5", "text": "task_links row t1>t2 deleted by acknowledged commit seq 5"}]})
unk_hist = dict(cas_hist)
unk_hist["cli-7"] = [commit("cli-7", 207, 4.0, 7, "delete_task",
    deleted=[rows("task_comments", "task:t2"), rows("task_events", "task:t2"), rows("tasks", "t2")], transitions=[{"task": "t2", "from": "ready", "to": ""}])]
fixture("resurrection", "cascade-unknown-owner", unk_hist,
    sql=CHILD + ledger(1, 2, 3, 4, 5, 6, 7, hist=unk_hist) + "\n" + WAL,
    expect={"verdict": "inconclusive", "summary": "2 rows could not be decided", "evidence": [
        {"seq": 6, "proc": "cli-6", "text": "task_events row 5 written by acknowledged commit seq 6 (add_comment) is missing at the end — later cascades deleted the task_events rows of t2, and its commit names no task"}]})

# 3c resurrection on a forked history: writer-1's seqs 3 and 4 went to a
# deleted WAL (lost; durability's to report), cli-3 and cli-4 acknowledged
# seqs 3 and 4 again on the branch the ledger keeps. Rows are predicted from
# the commits the ledger confirms (seq and proc); writer-1's later-in-time
# delete of t2 and claim of t1 do not count, and t5, which writer-1 inserted
# and whose page reached the main file, is no phantom.
fork_hist = {
    "cli-1": [commit("cli-1", 201, 1.0, 1, "create_task", inserted=[rows("tasks", "t1")], transitions=[{"task": "t1", "from": "", "to": "ready"}])],
    "cli-2": [commit("cli-2", 202, 1.5, 2, "create_task", inserted=[rows("tasks", "t2")], transitions=[{"task": "t2", "from": "", "to": "ready"}])],
    "cli-3": [commit("cli-3", 203, 3.0, 3, "create_task", inserted=[rows("tasks", "t3")], transitions=[{"task": "t3", "from": "", "to": "ready"}])],
    "cli-4": [commit("cli-4", 204, 4.0, 4, "block_task", transitions=[{"task": "t1", "from": "ready", "to": "blocked"}])],
    "writer-1": [commit("writer-1", 301, 3.6, 3, "delete_task", deleted=[rows("tasks", "t2")], inserted=[rows("tasks", "t5")], transitions=[{"task": "t2", "from": "ready", "to": ""}]),
                 commit("writer-1", 301, 4.6, 4, "claim_task", transitions=[{"task": "t1", "from": "ready", "to": "running"}])],
}
fork_ledger = ledger(1, 2, 3, 4, hist=fork_hist, procs={3: "cli-3", 4: "cli-4"})
fixture("resurrection", "forked-good", fork_hist,
    sql="INSERT INTO tasks VALUES('t1','one','blocked'),('t2','two','ready'),('t3','three','ready'),('t5','five','ready');\n" + fork_ledger + "\n" + WAL,
    expect={"verdict": "pass", "summary": "forked history: judged on the 4 acknowledged commits the ledger confirms, 2 others left to durability"})
fixture("resurrection", "forked-bad", fork_hist,
    sql="INSERT INTO tasks VALUES('t1','one','ready'),('t2','two','ready'),('t3','three','ready');\n" + fork_ledger + "\n" + WAL,
    expect={"verdict": "fail", "summary": "forked history", "evidence": [
        {"seq": 4, "proc": "cli-4", "text": "task t1 is \"ready\" at the end; its last acknowledged transition (seq 4, block_task) made it \"blocked\""}]})

# 4 structure
# 300 tasks, inserted in id order (one statement, so the fixtures stay small).
many = ("WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 299)\n"
        "INSERT INTO tasks SELECT printf('task-%04d', i), 'title ' || i, 'ready' FROM c;")
fixture("structure", "good", {"cli-1": [commit("cli-1", 201, 1.0, 1, "create_task")]},
    trace=[mount, towal], sql=many + "\n" + WAL)
fixture("structure", "bad",
    {"cli-3": [ev("cli-3", 300, "return", 2.5, id=1, op="create_task")]},
    trace=[mount, towal, tr(12, 2.0, "op", pid=300, op="write", path="kanban.db", off=8192, len=4096, n=512, result="ok", rule=1, fault="torn keep=512 then=ok")],
    sql=many + "\n" + WAL,
    patch="# page 9 is a leaf of tasks' primary-key index (171 cells): claim 100,\n# so 71 index entries vanish (\"row N missing from index\")\n32771 0064",
    expect={"verdict": "fail", "summary": "SILENT corruption", "evidence": [{"source": "db", "text": "integrity_check:"}]})

# 5 page-count
pc_trace = [mount,
    tr(2, 1.0, "op", pid=100, op="create", path="kanban.db", result="ok"),
    tr(3, 1.1, "op", pid=100, op="write", path="kanban.db", off=0, len=4096, n=4096, result="ok"),
    tr(4, 1.2, "op", pid=100, op="write", path="kanban.db", off=4096, len=4096, n=4096, result="ok"),
    tr(5, 2.0, "op", pid=300, op="write", path="kanban.db", off=8192, len=4096, n=512, result="ok", rule=1, fault="torn keep=512 then=ok"),
    tr(6, 2.1, "op", pid=300, op="write", path="kanban.db", off=0, len=4096, n=4096, result="ok")]
fixture("page-count", "good",
    {"cli-3": [ev("cli-3", 300, "error", 2.01, op="create_task", klass="TORN_EXTEND", err="database file is 8704 bytes, header says 3 pages")]},
    trace=pc_trace, sql="", meta={"switches": {"PageCountCheck": "raw-read"}})
fixture("page-count", "bad",
    {"cli-3": [ev("cli-3", 300, "return", 2.01, id=1, op="create_task")],
     "cli-4": [ev("cli-4", 301, "error", 1.5, op="create_task", klass="TORN_EXTEND", err="page count mismatch")]},
    trace=pc_trace, sql="", meta={"switches": {"PageCountCheck": "raw-read"}},
    patch="# in-header page count (bytes 28-31) = 64\n28 00000040",
    expect={"verdict": "fail", "evidence": [
        {"seq": 5, "pid": 300, "text": "torn extend"},
        {"proc": "cli-4", "text": "false alarm"},
        {"text": "header counts 64 pages"}]})

# page-count: holes vs short files, skip-in-wal, false alarms on a healthy db.
pc_base = [mount,
    tr(2, 1.0, "op", pid=100, op="create", path="kanban.db", result="ok"),
    tr(3, 1.1, "op", pid=100, op="write", path="kanban.db", off=0, len=4096, n=4096, result="ok"),
    tr(4, 1.2, "op", pid=100, op="write", path="kanban.db", off=4096, len=4096, n=4096, result="ok")]
pc_torn = tr(5, 2.0, "op", pid=300, op="write", path="kanban.db", off=8192, len=4096, n=512, result="ok", rule=1, fault="torn keep=512 then=ok")
pc_commit = lambda sec: {"cli-3": [commit("cli-3", 300, sec, 1, "create_task")]}
# A WAL checkpoint: the torn page past the old end, then ftruncate(nPage*pageSize)
# (faultfs records the new size in Off) before the commit returns: a hole.
fixture("page-count", "checkpoint-hole-good", pc_commit(2.2),
    trace=pc_base + [pc_torn, tr(6, 2.1, "op", pid=300, op="truncate", path="kanban.db", off=12288, result="ok")],
    sql="", meta={"switches": {"page_count_check": "raw-read"}},
    expect={"verdict": "pass", "summary": "0 torn extends", "evidence": [{"seq": 5, "text": "hole, not a torn extend"}]})
# The size is restored only after the writer's commit: the check ran on a short file.
fixture("page-count", "restored-too-late-bad", pc_commit(2.05),
    trace=pc_base + [pc_torn, tr(6, 2.1, "op", pid=300, op="write", path="kanban.db", off=12288, len=4096, n=4096, result="ok")],
    sql="", meta={"switches": {"page_count_check": "raw-read"}},
    expect={"verdict": "fail", "summary": "1 unreported", "evidence": [{"seq": 5, "pid": 300, "text": "meant to reach 12288, left short"}]})
fixture("page-count", "skip-in-wal-good", dict(pc_commit(2.2), setup=[ev("setup", 100, "mode", 1.05, mode="wal")]),
    trace=pc_base + [pc_torn], sql="", meta={"switches": {"page_count_check": "skip-in-wal"}},
    expect={"verdict": "pass", "summary": "1 not asked in WAL mode", "evidence": [{"seq": 5, "text": "skips the check in WAL mode"}]})
fixture("page-count", "skip-in-wal-delete-bad", dict(pc_commit(2.2), setup=[ev("setup", 100, "mode", 1.05, mode="delete")]),
    trace=pc_base + [pc_torn], sql="", meta={"switches": {"page_count_check": "skip-in-wal"}},
    expect={"verdict": "fail", "summary": "1 unreported", "evidence": [{"seq": 5, "pid": 300, "text": "torn extend"}]})
# No create/truncate/EOF of the file in the trace (made before the mount):
# an unrestored faulted extend is only possibly short.
fixture("page-count", "unknown-size-inconclusive", pc_commit(2.2),
    trace=[mount, tr(3, 1.1, "op", pid=100, op="read", path="kanban.db", off=0, len=4096, n=4096, result="ok"), pc_torn],
    sql="", meta={"switches": {"page_count_check": "raw-read"}},
    expect={"verdict": "inconclusive", "summary": "1 unrestored faulted extend of unknown prior size", "evidence": [{"seq": 5, "text": "possible torn extend"}]})
# Same, but the saved file is shorter than the write's intended end and
# nothing after it could shrink the file: the write was an extend, left short.
fixture("page-count", "saved-size-bad", pc_commit(2.2),
    trace=[mount, tr(3, 1.1, "op", pid=100, op="read", path="kanban.db", off=0, len=4096, n=4096, result="ok"),
           tr(5, 2.0, "op", pid=300, op="write", path="kanban.db", off=65536, len=4096, n=512, result="ok", rule=1, fault="torn keep=512 then=ok")],
    sql="", meta={"switches": {"page_count_check": "off"}},
    expect={"verdict": "fail", "summary": "1 unreported", "evidence": [{"seq": 5, "pid": 300, "text": "meant to reach 69632, left short (the saved file is"}]})
fixture("page-count", "false-alarm-bad",
    {"cli-3": [ev("cli-3", 300, "error", 2.0, op="complete_task", klass="TORN_EXTEND", err="database file is 8192 bytes, header says 3 pages")]},
    trace=pc_base + [tr(6, 1.9, "op", pid=300, op="write", path="kanban.db", off=8192, len=4096, n=512, result="ok", rule=1, fault="torn keep=512 then=ok"),
                     tr(7, 1.95, "op", pid=300, op="truncate", path="kanban.db", off=12288, result="ok")],
    sql="", meta={"switches": {"page_count_check": "raw-read"}},
    expect={"verdict": "fail", "summary": "raised on a healthy database", "evidence": [{"proc": "cli-3", "text": "false alarm"}, {"seq": 6, "text": "hole"}]})

# page-count with the sizes faultfs records (size: the main db file's size
# after open, create, write, truncate). The database predates the mount (no
# create): the first sized record, an open, gives its starting size.
def sz(r, n): r = dict(r); r["size"] = n; return r
pc_open = tr(3, 1.1, "op", pid=300, op="open", path="kanban.db", result="ok", size=8192)
pc_torn_sized = sz(pc_torn, 8704)
fixture("page-count", "sized-bad", pc_commit(2.2),
    trace=[mount, pc_open, pc_torn_sized], sql="", meta={"switches": {"page_count_check": "off"}},
    expect={"verdict": "fail", "summary": "1 unreported", "evidence": [
        {"seq": 5, "pid": 300, "text": "the file was 8192 bytes, was meant to reach 12288 and is 8704 after it (sizes faultfs recorded), left short"}]})
fixture("page-count", "sized-reported-good",
    {"cli-3": [ev("cli-3", 300, "error", 2.01, op="create_task", klass="TORN_EXTEND", err="database file is 8704 bytes, header says 3 pages")]},
    trace=[mount, pc_open, pc_torn_sized], sql="", meta={"switches": {"page_count_check": "raw-read"}},
    expect={"verdict": "pass", "summary": "1 torn extend (1 reported, 0 unreported", "evidence": [{"seq": 5, "text": "(sizes faultfs recorded), left short"}]})
# A torn write inside the file (the open says 16384 bytes): no extend at all.
# Without sizes this trace is undecidable (the prior size is unknown).
fixture("page-count", "sized-inside-good", pc_commit(2.2),
    trace=[mount, sz(pc_open, 16384), sz(pc_torn, 16384)], sql="", meta={"switches": {"page_count_check": "off"}},
    expect={"verdict": "pass", "summary": "0 torn extends"})
# The writer's next op of the file brings it to the intended end before its
# commit (a sized truncate): a hole, not a torn extend.
fixture("page-count", "sized-restored-good", pc_commit(2.2),
    trace=[mount, pc_open, pc_torn_sized, tr(6, 2.1, "op", pid=300, op="truncate", path="kanban.db", off=12288, result="ok", size=12288)],
    sql="", meta={"switches": {"page_count_check": "off"}},
    expect={"verdict": "pass", "summary": "1 hole", "evidence": [{"seq": 5, "text": "hole, not a torn extend"}]})

# 6 sidecars
fixture("sidecars", "good", {"gateway-1": [ev("gateway-1", 100, "start", 1.0)]},
    trace=[mount,
        tr(10, 2.0, "op", pid=100, op="truncate", path="kanban.db-wal", len=0, result="ok", holders=[101]),
        tr(11, 3.0, "op", pid=100, op="unlink", path="kanban.db-shm", result="ok"),
        tr(12, 3.1, "op", pid=100, op="unlink", path="kanban.db-wal", result="ok")])
fixture("sidecars", "bad", {"gateway-1": [ev("gateway-1", 100, "start", 1.0)]},
    trace=[mount,
        tr(41, 2.9, "op", pid=100, op="unlink", path="kanban.db-shm", result="ok", holders=[101]),
        tr(42, 3.0, "op", pid=100, op="unlink", path="kanban.db-wal", result="ok", holders=[101, 102])],
    expect={"verdict": "fail", "evidence": [{"seq": 42, "pid": 100, "text": "held it open"}, {"seq": 41}]})

fixture("sidecars", "shm-truncate-good", {"cli-1": [ev("cli-1", 100, "start", 1.0)]},
    trace=[mount,
        tr(20, 2.0, "op", pid=100, op="truncate", path="kanban.db-shm", off=3, result="ok", holders=[101, 102]),
        tr(21, 2.1, "op", pid=100, op="truncate", path="kanban.db-wal", result="ok", holders=[101])],
    expect={"verdict": "pass", "summary": "1 -shm truncations with other holders", "evidence": [
        {"seq": 20, "text": "-shm truncation to 3 bytes"}]})
fixture("sidecars", "rename-bad", {"cli-1": [ev("cli-1", 100, "start", 1.0)]},
    trace=[mount,
        tr(20, 2.0, "op", pid=100, op="truncate", path="kanban.db-shm", off=3, result="ok", holders=[101]),
        tr(30, 2.5, "op", pid=100, op="rename", path="tmp-wal", to="kanban.db-wal", result="ok", holders=[101])],
    expect={"verdict": "fail", "summary": "1 sidecar unlinked or renamed over", "evidence": [
        {"seq": 30, "pid": 100, "text": "rename tmp-wal by pid 100 while pids [101] held it open"}]})

# 7 error-fidelity
eio = tr(5, 2.0, "op", pid=200, op="write", path="kanban.db-wal", off=0, len=4120, result="EIO", rule=1, fault="eio")
fixture("error-fidelity", "good",
    {"cli-2": [ev("cli-2", 200, "return", 2.001, id=1, op="create_task", err="disk I/O error (778)", klass="IOERR", code=778)]},
    trace=[mount, eio])
fixture("error-fidelity", "bad",
    {"cli-2": [ev("cli-2", 200, "return", 2.001, id=1, op="create_task", err="cannot rollback - no transaction is active", klass="OTHER", code=1)]},
    trace=[mount, eio],
    expect={"verdict": "fail", "evidence": [{"proc": "cli-2", "text": "shadowing fault trace seq 5"}]})

# 8 workers
def spawn(proc, pid, sec, task, wpid): return ev(proc, pid, "spawn", sec, task=task, data={"pid": wpid})
fixture("workers", "good",
    {"dispatcher-1": [spawn("dispatcher-1", 100, 1.0, "t1", 501), spawn("dispatcher-1", 100, 3.0, "t1", 502)],
     "worker-501": [ev("worker-501", 501, "start", 1.01), ev("worker-501", 501, "exit", 2.0)],
     "worker-502": [ev("worker-502", 502, "start", 3.01), ev("worker-502", 502, "exit", 4.0)]})
storm = [spawn("dispatcher-1", 100, 5.0 + 0.1 * i, "t2", 601 + i) for i in range(7)] + \
        [ev("dispatcher-1", 100, "reap", 5.05 + 0.1 * i, data={"pid": 601 + i, "defunct": 1}) for i in range(7)]
fixture("workers", "bad",
    {"dispatcher-1": sorted([spawn("dispatcher-1", 100, 1.0, "t1", 501)] + storm, key=lambda e: e["t"]),
     "dispatcher-2": [spawn("dispatcher-2", 110, 1.5, "t1", 502)],
     "worker-501": [ev("worker-501", 501, "start", 1.01), ev("worker-501", 501, "exit", 3.0)],
     "worker-502": [ev("worker-502", 502, "start", 1.51), ev("worker-502", 502, "exit", 3.5)]},
    expect={"verdict": "fail", "evidence": [
        {"proc": "dispatcher-2", "text": "worker pid 502 spawned at +500ms while pid 501"},
        {"proc": "dispatcher-1", "text": "task t2: 7 spawns within 2s"}]})

# 9 zombies
def reaps(counts): return [ev("gateway-1", 100, "reap", 1.0 + i, data={"defunct": n}) for i, n in enumerate(counts)]
fixture("zombies", "good", {"gateway-1": reaps([0, 1, 0, 2, 1, 0])})
fixture("zombies", "bad", {"gateway-1": reaps([0, 2, 4, 6, 8, 10])},
    expect={"verdict": "fail", "summary": "peak 10", "evidence": [{"proc": "gateway-1", "text": "10 defunct children"}]})

# 10 liveness
lv_trace = [mount, tr(3, 2.0, "op", pid=100, op="read", path="kanban.db", off=0, len=4096, result="EIO", rule=1, fault="eio"),
    tr(9, 5.0, "mark", mark="faults-cleared")]
latched = lambda secs: [ev("gateway-1", 100, "return", s, id=i + 1, op="dispatch_once", err="board is marked corrupt", klass="CORRUPT") for i, s in enumerate(secs)]
fixture("liveness", "good",
    {"gateway-1": latched([2.001, 3.0]) + [ev("gateway-1", 100, "return", 5.5, id=9, op="dispatch_once"), spawn("gateway-1", 100, 5.6, "t1", 501)]},
    trace=lv_trace, meta={"bounds": {"liveness": "2s"}})
fixture("liveness", "bad",
    {"gateway-1": latched([2.001, 3.0, 4.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0])},
    trace=lv_trace, meta={"bounds": {"liveness": "2s"}},
    expect={"verdict": "fail", "summary": "latched", "evidence": [{"seq": 9, "text": "mark faults-cleared"}, {"proc": "gateway-1", "text": "after clear: dispatch_once: CORRUPT"}]})

# liveness: what counts as the faults clearing, and who could dispatch.
empty_plan = tr(2, 0.95, "plan")  # the mount's initial (empty) plan load
rules_plan = tr(3, 1.9, "plan", plan="eio op=read path=kanban.db count=1\n")
skipped = lambda secs: [ev("gateway-1", 100, "return", s, id=i + 1, op="dispatch_once", data={"skipped": True}) for i, s in enumerate(secs)]
fixture("liveness", "initial-empty-plan", {"gateway-1": skipped([2.0, 4.0, 6.0, 8.0, 10.0, 12.0])},
    trace=[mount, empty_plan], meta={"bounds": {"liveness": "2s"}},
    expect={"verdict": "inconclusive", "summary": "no fault plan with rules was loaded"})
fixture("liveness", "no-dispatcher",
    {"cli-1": [ev("cli-1", 201, "return", s, id=i + 1, op="list") for i, s in enumerate([2.0, 6.0, 9.0, 12.0])],
     "gateway-1": [ev("gateway-1", 100, "start", 1.0, data={"role": "scn-dispatcher"}), ev("gateway-1", 100, "exit", 2.5)]},
    trace=[mount, empty_plan, rules_plan, tr(9, 5.0, "plan")], meta={"bounds": {"liveness": "2s"}},
    expect={"verdict": "inconclusive", "summary": "nothing attempted to dispatch", "evidence": [{"seq": 9, "text": "empty plan loaded over a plan with rules"}]})
fixture("liveness", "empty-plan-clear-bad",
    {"gateway-1": latched([2.001, 3.0, 4.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0])},
    trace=[mount, empty_plan, rules_plan, tr(9, 5.0, "plan")], meta={"bounds": {"liveness": "2s"}},
    expect={"verdict": "fail", "summary": "latched", "evidence": [{"seq": 9, "text": "empty plan loaded over a plan with rules"}]})

# 11 silent
sil_hist = {
    "cli-1": [commit("cli-1", 201, 1.2, 1, "create_task", inserted=[{"table": "tasks", "key": "t1"}], transitions=[{"task": "t1", "from": "", "to": "ready"}])],
    "cli-2": [ev("cli-2", 200, "return", 2.001, id=1, op="comment", err="disk I/O error (778)", klass="IOERR", code=778),
              commit("cli-2", 200, 2.2, 2, "comment")],
}
fixture("silent", "good", sil_hist,
    trace=[mount, towal, eio, tr(9, 3.0, "op", pid=0, op="write", path="kanban.db", off=4096, len=4096, n=100, result="ok", rule=2, fault="torn keep=100 then=ok")],
    sql="INSERT INTO tasks VALUES('t1','one','ready');\n" + ledger(1, 2, hist=sil_hist) + "\n" + WAL)
sil_bad = dict(sil_hist)
sil_bad["cli-3"] = [ev("cli-3", 300, "call", 2.39, id=1, op="create_task"), commit("cli-3", 300, 2.5, 3, "complete_task"), ev("cli-3", 300, "return", 2.51, id=1, op="complete_task")]
fixture("silent", "bad", sil_bad,
    trace=[mount, towal, eio, tr(9, 2.4, "op", pid=300, op="write", path="kanban.db-wal", off=4152, len=4096, n=1000, result="ok", rule=2, fault="torn keep=1000 then=ok")],
    sql="INSERT INTO tasks VALUES('t1','one','ready');\n" + ledger(1, 2, hist=sil_hist) + "\n" + WAL,
    expect={"verdict": "fail", "summary": "SILENT", "evidence": [{"seq": 9, "pid": 300, "text": "no error surfaced"}]})
