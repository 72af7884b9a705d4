package history

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Now returns CLOCK_MONOTONIC in nanoseconds: the clock every history event
// and every faultfs trace record is stamped with, comparable across the
// processes of one host.
func Now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("history: clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return ts.Nano()
}

// Writer appends events to one process's history file, one JSON object per
// line. Each event is written with a single write(2) on an O_APPEND file, so
// a process killed at any moment leaves every line either complete or absent
// (the reader drops a truncated last line). It is safe for concurrent use.
type Writer struct {
	proc string
	pid  int
	ids  atomic.Int64

	mu struct {
		sync.Mutex
		f   *os.File
		buf []byte
	}
}

// Create creates (or appends to) the history file at path for the process
// instance proc, e.g. "worker-3".
func Create(path string, proc string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	w := &Writer{proc: proc, pid: os.Getpid()}
	w.mu.f = f
	return w, nil
}

// Proc returns the process instance name events are stamped with.
func (w *Writer) Proc() string { return w.proc }

// NextID returns a fresh call id (1, 2, ...) for pairing a TypeCall with its
// TypeReturn.
func (w *Writer) NextID() int64 { return w.ids.Add(1) }

// Write appends e. It stamps T with Now, Proc with the writer's process name
// and Pid with the current pid, each only where e leaves it zero (so a
// harness can record facts about another pid, or replay a fixed time).
// The line reaches the kernel before Write returns.
func (w *Writer) Write(e Event) error {
	if e.T == 0 {
		e.T = Now()
	}
	if e.Proc == "" {
		e.Proc = w.proc
	}
	if e.Pid == 0 {
		e.Pid = w.pid
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("history: encode %s event: %w", e.Type, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.f == nil {
		return fmt.Errorf("history: write after Close")
	}
	w.mu.buf = append(append(w.mu.buf[:0], line...), '\n')
	if _, err := w.mu.f.Write(w.mu.buf); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

// Close fsyncs and closes the file. Closing twice is a no-op.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	f := w.mu.f
	if f == nil {
		return nil
	}
	w.mu.f = nil
	serr := f.Sync()
	cerr := f.Close()
	if serr != nil {
		return fmt.Errorf("history: fsync: %w", serr)
	}
	if cerr != nil {
		return fmt.Errorf("history: %w", cerr)
	}
	return nil
}
