// Package faultfs is sqlchaos's fault-injecting FUSE filesystem: a loopback
// over a backing directory that consults a fault plan (package plan) on every
// operation, applies what the plan decides (errno, torn write, lost write,
// short read, bit flip, delay, failing open/create), and writes an op trace
// (package trace).
//
// # Process model
//
// The server always runs in its own process, never in one that runs SQLite
// (they deadlock). Start re-executes the current binary in role ServerRole
// (every main and TestMain calls reexec.Init first) and waits for its
// "mounted <dir>" line; `chaosrun mount` runs the same server, Serve, in the
// foreground. Stop unmounts and reaps it, escalating to lazy unmount, fusectl
// abort and SIGKILL when it does not answer; Unmount and CleanStale clear
// mounts left by a dead or hung server without ever touching the mount point.
//
// # What the kernel must not hide
//
// Files are opened without kernel passthrough (the open handle does not
// expose go-fuse's PassthroughFd, so every READ and WRITE reaches the
// server), and every file except a "-shm" one is opened with FOPEN_DIRECT_IO,
// so each SQLite pread/pwrite is exactly one FUSE op with SQLite's own offset
// and length and reads are never served from the page cache. "-shm" files
// stay page-cached because SQLite mmaps them (their dirty pages come back as
// writes by pid 0). POSIX locks stay in the kernel (EnableLocks off): they
// are correct across processes on one host, and go-fuse's forwarding to OFD
// locks breaks SQLite. Entry and attribute cache timeouts are 0 by default,
// so edits of the backing directory are seen at once.
//
// # The trace
//
// The first record is kind "mount" (Seed, Path = mount point, To = backing
// dir), then a "plan" record with the canonical plan; every later plan load
// or clear adds another. Each op is one "op" record (all ops by default, only
// the faulted ones with Config.TraceFaultsOnly) carrying the caller's process
// id (the request header's thread id mapped to its thread group), op, path
// relative to the mount (op "readdir" is the opening of a directory, also
// for fsync of it), offset, length, result ("ok" or an errno name), the
// bytes really persisted or returned (N), and the rule and fault when one
// fired. Lookups that fail with ENOENT are traced only when a rule fired.
// Unlink, rename and truncate of a "-wal" or "-shm" file list in Holders the
// other processes that still had it open. A write at offset 0 of a database
// file (not -wal/-shm/-journal) whose data starts with the SQLite magic and
// that changes header bytes 18-19 of an existing file adds a "header" record
// with OldMode/NewMode such as "2/2" (WAL) and "1/1" (rollback).
//
// # Control
//
// While mounted, a unix socket takes one JSON request per line (see Client):
// load or clear a plan, read counters, write a mark, switch rules or all
// injection on and off, flush the trace, stop.
package faultfs
