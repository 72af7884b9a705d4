package faultfs

import (
	"bytes"
	"os"
	"strconv"
	"sync"
)

// pidCache maps the task (thread) ids that FUSE request headers carry to
// process ids (thread-group ids), so that the trace, the holders and pid=
// rules speak of processes: a Go or cgo program writes from many threads.
type pidCache struct {
	mu sync.Mutex
	m  map[uint32]uint32
}

// maxPidCache bounds the cache; it is cleared when full (tids get reused
// only after pid_max allocations, far beyond one run).
const maxPidCache = 1 << 16

// tgid returns the process id of task tid, or tid itself when the task is
// gone (its /proc entry vanished) or tid is 0.
func (c *pidCache) tgid(tid uint32) uint32 {
	if tid == 0 {
		return 0
	}
	c.mu.Lock()
	pid, ok := c.m[tid]
	c.mu.Unlock()
	if ok {
		return pid
	}
	pid = readTgid(tid)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxPidCache {
		c.m = map[uint32]uint32{}
	}
	c.m[tid] = pid
	c.mu.Unlock()
	return pid
}

func readTgid(tid uint32) uint32 {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/status")
	if err != nil {
		return tid
	}
	i := bytes.Index(b, []byte("\nTgid:"))
	if i < 0 {
		return tid
	}
	rest := b[i+len("\nTgid:"):]
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(rest)), 10, 32)
	if err != nil {
		return tid
	}
	return uint32(v)
}
