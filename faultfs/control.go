package faultfs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/sqlchaos/sqlchaos/faultfs/plan"
	"github.com/sqlchaos/sqlchaos/faultfs/trace"
)

// command is a control request's verb; the server and Client name them
// by these constants only.
type command string

const (
	cmdLoad     command = "load"
	cmdClear    command = "clear"
	cmdPlan     command = "plan"
	cmdCounters command = "counters"
	cmdMark     command = "mark"
	cmdRule     command = "rule"
	cmdEnable   command = "enable"
	cmdFlush    command = "flush"
	cmdTrack    command = "track"
	cmdPowerCut command = "powercut"
	cmdRecover  command = "recover"
	cmdState    command = "state"
	cmdStop     command = "stop"
)

// The control protocol: one JSON request per line on a unix socket, one JSON
// response per line back. Requests:
//
//	{"cmd":"load","plan":"eio op=write path=*-wal nth=1 count=1"}  replace the plan
//	{"cmd":"clear"}                                                 load the empty plan
//	{"cmd":"plan"}                                                  canonical text of the current plan
//	{"cmd":"counters"}                                              per-rule counters
//	{"cmd":"mark","mark":"phase 2"}                                 write a mark record and flush
//	{"cmd":"rule","rule":2,"on":false}                              switch one rule (1-based) off or on
//	{"cmd":"enable","on":false}                                     switch all fault injection off or on
//	{"cmd":"flush"}                                                 flush the trace
//	{"cmd":"stop"}                                                  unmount and exit
//	{"cmd":"track","on":true}                                       switch the unsynced-write model on (off forgets it)
//	{"cmd":"powercut","keep":"random"}                              cut the power now (keep: none, all, random, sectors; "sector":4096)
//	{"cmd":"recover"}                                               reset files after the cut, unfreeze ("recover" in the response)
//	{"cmd":"state"}                                                 model and cut state ("state" in the response)
//
// Responses are {"ok":true,...} or {"ok":false,"error":"..."}.
type request struct {
	Cmd    command `json:"cmd"`
	Plan   string  `json:"plan,omitempty"`
	Mark   string  `json:"mark,omitempty"`
	Rule   int     `json:"rule,omitempty"`
	On     bool    `json:"on,omitempty"`
	Keep   string  `json:"keep,omitempty"`
	Sector int64   `json:"sector,omitempty"`
}

type response struct {
	OK        bool               `json:"ok"`
	Error     string             `json:"error,omitempty"`
	Plan      string             `json:"plan,omitempty"`
	Seq       uint64             `json:"seq,omitempty"`
	Counters  []plan.RuleCounter `json:"counters,omitempty"`
	State     *State             `json:"state,omitempty"`
	Recovered *RecoverResult     `json:"recover,omitempty"`
}

const maxControlLine = 4 << 20

func listenControl(sock string) (net.Listener, error) {
	if st, err := os.Lstat(sock); err == nil && st.Mode()&os.ModeSocket != 0 {
		os.Remove(sock) // stale socket of a dead server
	}
	return net.Listen("unix", sock)
}

func (s *server) serveControl(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go s.serveConn(conn)
	}
}

func (s *server) serveConn(conn net.Conn) {
	defer conn.Close()
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), maxControlLine)
	enc := json.NewEncoder(conn)
	for sc.Scan() {
		var req request
		var resp response
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = "bad request: " + err.Error()
		} else {
			resp = s.handle(req)
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
		if resp.OK && req.Cmd == cmdStop {
			s.requestStop()
		}
	}
}

func (s *server) handle(req request) response {
	ok := response{OK: true}
	switch req.Cmd {
	case cmdLoad:
		p, err := plan.Parse(req.Plan)
		if err == nil {
			err = s.loadPlan(p) // refuses a template: its placeholders have no values here
		}
		if err != nil {
			return response{Error: err.Error()}
		}
		ok.Plan = p.String()
	case cmdClear:
		if err := s.loadPlan(&plan.Plan{}); err != nil {
			return response{Error: err.Error()}
		}
	case cmdPlan:
		ok.Plan = s.eng.Plan().String()
	case cmdCounters:
		ok.Counters = s.eng.Counters()
	case cmdMark:
		s.traceRecord(trace.Record{Kind: trace.KindMark, Mark: req.Mark})
		if s.tr != nil {
			if err := s.tr.Flush(); err != nil {
				return response{Error: err.Error()}
			}
		}
	case cmdRule:
		if err := s.eng.SetRule(req.Rule, req.On); err != nil {
			return response{Error: err.Error()}
		}
	case cmdEnable:
		s.eng.SetEnabled(req.On)
	case cmdFlush:
		if s.tr != nil {
			if err := s.tr.Flush(); err != nil {
				return response{Error: err.Error()}
			}
		}
	case cmdTrack:
		if !req.On {
			if s.cut.frozen.Load() {
				return response{Error: "frozen by a power cut: recover first"}
			}
			s.track.disable()
		} else {
			s.track.enable()
		}
	case cmdPowerCut:
		keep, sector, err := parseCutOptions(req.Keep, req.Sector)
		if err != nil {
			return response{Error: err.Error()}
		}
		if !s.powerCut(CutInfo{Trigger: "control", Keep: string(keep), Sector: sector}) {
			return response{Error: "the mount is already frozen by a power cut"}
		}
		st := s.state()
		ok.State = &st
	case cmdRecover:
		res, err := s.recoverCut()
		if err != nil {
			return response{Error: err.Error()}
		}
		ok.Recovered = &res
	case cmdState:
		st := s.state()
		ok.State = &st
	case cmdStop:
	default:
		return response{Error: fmt.Sprintf("unknown command %q", req.Cmd)}
	}
	return ok
}

// Client talks to a running server's control socket. Its methods are safe
// for concurrent use; each is one request and one response.
type Client struct {
	mu   sync.Mutex
	conn net.Conn
	sc   *bufio.Scanner
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
}

// Dial connects to the control socket at sock.
func Dial(sock string) (*Client, error) {
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("faultfs: control %s: %w", sock, err)
	}
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), maxControlLine)
	return &Client{conn: conn, sc: sc, Timeout: 10 * time.Second}, nil
}

func (c *Client) call(req request) (response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return response{}, errors.New("faultfs: control client closed")
	}
	b, err := json.Marshal(req)
	if err != nil {
		return response{}, err
	}
	c.conn.SetDeadline(time.Now().Add(c.Timeout))
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return response{}, fmt.Errorf("faultfs: control %s: %w", req.Cmd, err)
	}
	if !c.sc.Scan() {
		err := c.sc.Err()
		if err == nil {
			err = errors.New("connection closed")
		}
		return response{}, fmt.Errorf("faultfs: control %s: %w", req.Cmd, err)
	}
	var resp response
	if err := json.Unmarshal(c.sc.Bytes(), &resp); err != nil {
		return response{}, fmt.Errorf("faultfs: control %s: bad response: %w", req.Cmd, err)
	}
	if !resp.OK {
		return resp, fmt.Errorf("faultfs: control %s: %s", req.Cmd, resp.Error)
	}
	return resp, nil
}

// LoadPlan replaces the running plan with the plan text (parse errors are
// returned and leave the running plan unchanged). Counters restart.
func (c *Client) LoadPlan(text string) error {
	_, err := c.call(request{Cmd: cmdLoad, Plan: text})
	return err
}

// Plan returns the canonical text of the running plan.
func (c *Client) Plan() (string, error) {
	resp, err := c.call(request{Cmd: cmdPlan})
	return resp.Plan, err
}

// Clear loads the empty plan: nothing fires any more.
func (c *Client) Clear() error {
	_, err := c.call(request{Cmd: cmdClear})
	return err
}

// Counters returns the running plan's per-rule counters.
func (c *Client) Counters() ([]plan.RuleCounter, error) {
	resp, err := c.call(request{Cmd: cmdCounters})
	return resp.Counters, err
}

// Mark writes a mark record with text s into the trace and flushes it, so
// the trace can be cut into phases.
func (c *Client) Mark(s string) error {
	_, err := c.call(request{Cmd: cmdMark, Mark: s})
	return err
}

// SetRule switches rule (1-based) on or off.
func (c *Client) SetRule(rule int, on bool) error {
	_, err := c.call(request{Cmd: cmdRule, Rule: rule, On: on})
	return err
}

// SetEnabled switches all fault injection on or off (the plan is kept).
func (c *Client) SetEnabled(on bool) error {
	_, err := c.call(request{Cmd: cmdEnable, On: on})
	return err
}

// Flush writes the buffered trace to its file.
func (c *Client) Flush() error {
	_, err := c.call(request{Cmd: cmdFlush})
	return err
}

// Stop asks the server to unmount and exit. It returns once the server has
// acknowledged; Mount.Stop waits for the exit.
func (c *Client) Stop() error {
	_, err := c.call(request{Cmd: cmdStop})
	return err
}

// Track switches the unsynced-write model on (on=true) or off. While on,
// the server keeps, for every file, the writes and truncates not yet
// covered by an fsync of it (with the bytes they overwrote), and the
// creates, unlinks, renames and mkdirs not yet covered by an fsync of their
// directory; what is on the backing when it is switched on counts as
// synced. Loading a plan with a powercut or drop=unsynced rule, and the
// server flag --track-unsynced, switch it on too. Off forgets everything
// (refused while frozen).
func (c *Client) Track(on bool) error {
	_, err := c.call(request{Cmd: cmdTrack, On: on})
	return err
}

// PowerCut cuts the power now: the server waits for the ops in flight, then
// freezes the mount (every later op waits until Recover, then fails with
// EIO, so nothing written after the cut reaches the files), and writes a
// "powercut" trace record. opt says what Recover keeps of the unsynced
// writes (the zero value: none). It fails if the mount is already frozen.
// Without the unsynced-write model on (Track), Recover resets nothing.
func (c *Client) PowerCut(opt PowerCutOptions) error {
	_, err := c.call(request{Cmd: cmdPowerCut, Keep: string(opt.Keep), Sector: opt.Sector})
	return err
}

// Recover ends a power cut (asked for by PowerCut, a powercut rule or its
// timer): it resets every file to its last-synced content plus the unsynced
// writes the cut's keep mode picks (seeded), undoes the unsynced directory
// ops it drops, traces each decision, and unfreezes the mount. Kill every
// process using the mount before calling it: an op still waiting then fails
// with EIO. It returns ErrNotCut's text as an error when nothing was cut.
func (c *Client) Recover() (RecoverResult, error) {
	resp, err := c.call(request{Cmd: cmdRecover})
	if resp.Recovered == nil {
		return RecoverResult{}, err
	}
	return *resp.Recovered, err
}

// State returns the unsynced-write model's and the power cut's state: a
// runner polls it (or calls WaitCut) to learn that a plan's cut has fired.
func (c *Client) State() (State, error) {
	resp, err := c.call(request{Cmd: cmdState})
	if resp.State == nil {
		return State{}, err
	}
	return *resp.State, err
}

// WaitCut polls State until the mount is frozen by a power cut and returns
// the cut; ctx bounds the wait.
func (c *Client) WaitCut(ctx context.Context) (CutInfo, error) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		st, err := c.State()
		if err != nil {
			return CutInfo{}, err
		}
		if st.Frozen && st.Cut != nil {
			return *st.Cut, nil
		}
		select {
		case <-ctx.Done():
			return CutInfo{}, fmt.Errorf("faultfs: waiting for a power cut: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// parseCutOptions checks a control request's keep mode and sector size.
func parseCutOptions(keep string, sector int64) (plan.CutKeep, int64, error) {
	if keep == "" {
		keep = string(plan.CutNone)
	}
	spec := "powercut keep=" + keep
	if sector != 0 && keep == string(plan.CutSectors) { // the sector size matters only for keep=sectors
		spec += fmt.Sprintf(" sector=%d", sector)
	}
	p, err := plan.Parse(spec)
	if err != nil {
		return "", 0, fmt.Errorf("powercut: %v", err)
	}
	r := p.Rules[0]
	return r.Cut, r.Sector, nil
}

// Close closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}
