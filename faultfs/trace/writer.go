package trace

import (
	"errors"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// FlushInterval is how often a Writer flushes buffered records on its own.
const FlushInterval = 100 * time.Millisecond

// flushSize is the buffered size at which Write flushes immediately.
const flushSize = 64 << 10

// Now returns CLOCK_MONOTONIC in nanoseconds, the clock of Record.T. Other
// processes on the same host (workers writing histories) read the same clock,
// so their timestamps can be ordered against the trace.
func Now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("trace: clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return ts.Nano()
}

// Writer appends Records as JSON lines. It numbers them (Seq, from 1), stamps
// T when the caller left it zero, and buffers: the buffer reaches the
// underlying writer every FlushInterval, when it grows past 64 KiB, on Flush
// and on Close. Buffered data is only ever written in whole lines, so a
// process killed between flushes loses the tail of the trace but never leaves
// half a record behind. A Writer is safe for concurrent use.
type Writer struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer
	buf    []byte
	seq    uint64
	err    error // first write error; sticky
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// NewWriter returns a Writer over w. If w is an io.Closer, Close closes it.
func NewWriter(w io.Writer) *Writer {
	tw := &Writer{
		w:    w,
		buf:  make([]byte, 0, flushSize+4096),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if c, ok := w.(io.Closer); ok {
		tw.closer = c
	}
	go tw.flusher()
	return tw
}

// Create creates (truncating) the trace file at path and returns a Writer
// for it.
func Create(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return NewWriter(f), nil
}

func (w *Writer) flusher() {
	defer close(w.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.Flush()
		}
	}
}

// Write assigns r the next sequence number (and the current monotonic time if
// r.T is zero), buffers it and returns the sequence number. Errors of the
// underlying writer are sticky and reported by Write, Flush and Close.
func (w *Writer) Write(r Record) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, errors.New("trace: write after close")
	}
	w.seq++
	r.Seq = w.seq
	if r.T == 0 {
		r.T = Now()
	}
	w.buf = AppendJSON(w.buf, &r)
	w.buf = append(w.buf, '\n')
	if len(w.buf) >= flushSize {
		w.flushLocked()
	}
	return r.Seq, w.err
}

// Flush writes every buffered record to the underlying writer.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
	return w.err
}

func (w *Writer) flushLocked() {
	if len(w.buf) == 0 || w.err != nil {
		w.buf = w.buf[:0]
		return
	}
	_, w.err = w.w.Write(w.buf)
	w.buf = w.buf[:0]
}

// Close flushes, stops the flush timer and closes the underlying writer if it
// is an io.Closer. Close is idempotent.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return w.err
	}
	w.closed = true
	w.flushLocked()
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	if w.closer != nil {
		if err := w.closer.Close(); err != nil && w.err == nil {
			w.err = err
		}
	}
	return w.err
}

// AppendJSON appends the JSON encoding of r to b, byte for byte what
// encoding/json produces for a Record (same field order, same omitempty
// rules), without reflection or allocation.
func AppendJSON(b []byte, r *Record) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, r.T, 10)
	b = append(b, `,"kind":`...)
	b = appendString(b, r.Kind)
	if r.Pid != 0 {
		b = append(b, `,"pid":`...)
		b = strconv.AppendUint(b, uint64(r.Pid), 10)
	}
	b = appendStringField(b, `,"op":`, string(r.Op))
	b = appendStringField(b, `,"path":`, r.Path)
	b = appendStringField(b, `,"to":`, r.To)
	b = appendIntField(b, `,"off":`, r.Off)
	b = appendIntField(b, `,"len":`, r.Len)
	b = appendStringField(b, `,"result":`, r.Result)
	b = appendIntField(b, `,"n":`, r.N)
	b = appendIntField(b, `,"rule":`, int64(r.Rule))
	b = appendStringField(b, `,"fault":`, r.Fault)
	if len(r.Holders) > 0 {
		b = append(b, `,"holders":[`...)
		for i, h := range r.Holders {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(h), 10)
		}
		b = append(b, ']')
	}
	b = appendStringField(b, `,"old_mode":`, r.OldMode)
	b = appendStringField(b, `,"new_mode":`, r.NewMode)
	if r.Size != nil {
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, *r.Size, 10)
	}
	b = appendStringField(b, `,"mark":`, r.Mark)
	b = appendStringField(b, `,"plan":`, r.Plan)
	b = appendIntField(b, `,"seed":`, r.Seed)
	if r.Cap != nil {
		b = append(b, `,"cap":`...)
		b = strconv.AppendInt(b, *r.Cap, 10)
	}
	return append(b, '}')
}

func appendStringField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return appendString(append(b, key...), v)
}

func appendIntField(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), v, 10)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does
// (HTML-safe escaping, invalid UTF-8 replaced by U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
