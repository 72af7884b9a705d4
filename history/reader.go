package history

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// ReadFile reads one history file. A last line without its newline that
// is not whole JSON (the process was killed mid-write) is dropped; any
// other malformed line, including one whose data holds an unknown key or
// a value of another shape (see Data), is an error naming its line number.
func ReadFile(path string) ([]Event, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return parse(path, data)
}

func parse(name string, data []byte) ([]Event, error) {
	var out []Event
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		line := data
		complete := false
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data, complete = data[:i], data[i+1:], true
		} else {
			data = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			var syntax *json.SyntaxError
			if !complete && errors.As(err, &syntax) {
				break // truncated last line: the writer was killed mid-line
			}
			return out, fmt.Errorf("history: %s:%d: %w", name, lineNo, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// ReadDir reads every *.jsonl file in dir and merges their events in T
// order. Events with equal T keep their file order (files sorted by name).
func ReadDir(dir string) ([]Event, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	sort.Strings(paths)
	var all []Event
	for _, p := range paths {
		evs, err := ReadFile(p)
		if err != nil {
			return nil, err
		}
		all = append(all, evs...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].T < all[j].T })
	return all, nil
}
