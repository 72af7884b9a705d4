package bench

// NeverFirePlan is the fuse20 target's plan: 20 rules that target the
// benchmark's own files and ops (so the engine evaluates them on every op)
// but whose conditions never hold: lengths and offsets beyond anything a
// 1-row loop writes, nth counts it never reaches, or the pid of init.
// Run reads the rule counters afterwards and voids the numbers if any fired.
const NeverFirePlan = `# 20 rules that match the benchmark's files but never fire
eio   op=write path=*.db-wal minlen=1073741824
eio   op=write path=*.db minlen=1073741824
eio   op=read path=*.db off=1099511627776..1099511627777
eio   op=write path=*.db-shm minlen=1073741824
torn  op=write path=*.db-wal minlen=1073741824 keep=512 then=ok
torn  op=write path=*.db minlen=1073741824 keep=512 then=ok
short op=read path=*.db off=1099511627776..1099511627777 keep=0
short op=read path=*.db-wal off=1099511627776..1099511627777 keep=0
lost  op=write path=*.db-journal minlen=1073741824
flip  op=read path=*.db-wal off=1099511627776..1099511627777
errno op=write path=*.db-wal errno=ENOSPC nth=1000000000
errno op=write path=*.db-journal errno=ENOSPC nth=1000000000
errno op=fsync path=*.db-wal errno=EIO nth=1000000000
errno op=fsync path=*.db errno=EIO nth=1000000000
errno op=truncate path=*.db-wal errno=EIO nth=1000000000
errno op=open path=*.db errno=EIO pid=1
errno op=create path=*.db-journal errno=EIO pid=1
errno op=unlink path=*.db-journal errno=EIO pid=1
delay op=write path=*.db delay=1s pid=1
eio   op=write path=nosuch-*
`
