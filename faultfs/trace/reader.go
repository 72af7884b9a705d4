package trace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTruncated reports a final line without its newline that does not parse:
// the tail of a trace whose writer was killed mid-write. Records before it
// are intact.
var ErrTruncated = errors.New("trace: truncated final record")

// Reader reads Records one at a time from a JSONL trace.
type Reader struct {
	br   *bufio.Reader
	line int
}

// NewReader returns a Reader over r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next record, or io.EOF after the last one. A line that is
// not valid JSON is an error naming its line number; a final unterminated
// line that does not parse is ErrTruncated. Blank lines are skipped.
func (r *Reader) Next() (Record, error) {
	for {
		line, err := r.br.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			return Record{}, err
		}
		r.line++
		complete := err == nil
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			if !complete {
				return Record{}, io.EOF
			}
			continue
		}
		var rec Record
		if jerr := json.Unmarshal(line, &rec); jerr != nil {
			if !complete {
				return Record{}, fmt.Errorf("line %d: %w", r.line, ErrTruncated)
			}
			return Record{}, fmt.Errorf("trace: line %d: %v", r.line, jerr)
		}
		return rec, nil
	}
}

// ReadAll reads every remaining record. On error it returns the records read
// so far with the error (so a truncated trace still yields its intact part).
func (r *Reader) ReadAll() ([]Record, error) {
	var out []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
}

// ReadFile reads a whole trace file. Like ReadAll, it returns the intact
// records together with any error (errors.Is(err, ErrTruncated) for a trace
// cut short by a killed writer).
func ReadFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := NewReader(f).ReadAll()
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return recs, err
}
