package faultfs

import (
	"bufio"
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
//
// Responses are {"ok":true,...} or {"ok":false,"error":"..."}.
type request struct {
	Cmd  string `json:"cmd"`
	Plan string `json:"plan,omitempty"`
	Mark string `json:"mark,omitempty"`
	Rule int    `json:"rule,omitempty"`
	On   bool   `json:"on,omitempty"`
}

type response struct {
	OK       bool               `json:"ok"`
	Error    string             `json:"error,omitempty"`
	Plan     string             `json:"plan,omitempty"`
	Seq      uint64             `json:"seq,omitempty"`
	Counters []plan.RuleCounter `json:"counters,omitempty"`
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
		if resp.OK && req.Cmd == "stop" {
			s.requestStop()
		}
	}
}

func (s *server) handle(req request) response {
	ok := response{OK: true}
	switch req.Cmd {
	case "load":
		p, err := plan.Parse(req.Plan)
		if err != nil {
			return response{Error: err.Error()}
		}
		s.loadPlan(p)
		ok.Plan = p.String()
	case "clear":
		s.loadPlan(&plan.Plan{})
	case "plan":
		ok.Plan = s.eng.Plan().String()
	case "counters":
		ok.Counters = s.eng.Counters()
	case "mark":
		s.traceRecord(trace.Record{Kind: trace.KindMark, Mark: req.Mark})
		if s.tr != nil {
			if err := s.tr.Flush(); err != nil {
				return response{Error: err.Error()}
			}
		}
	case "rule":
		if err := s.eng.SetRule(req.Rule, req.On); err != nil {
			return response{Error: err.Error()}
		}
	case "enable":
		s.eng.SetEnabled(req.On)
	case "flush":
		if s.tr != nil {
			if err := s.tr.Flush(); err != nil {
				return response{Error: err.Error()}
			}
		}
	case "stop":
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
	_, err := c.call(request{Cmd: "load", Plan: text})
	return err
}

// Plan returns the canonical text of the running plan.
func (c *Client) Plan() (string, error) {
	resp, err := c.call(request{Cmd: "plan"})
	return resp.Plan, err
}

// Clear loads the empty plan: nothing fires any more.
func (c *Client) Clear() error {
	_, err := c.call(request{Cmd: "clear"})
	return err
}

// Counters returns the running plan's per-rule counters.
func (c *Client) Counters() ([]plan.RuleCounter, error) {
	resp, err := c.call(request{Cmd: "counters"})
	return resp.Counters, err
}

// Mark writes a mark record with text s into the trace and flushes it, so
// the trace can be cut into phases.
func (c *Client) Mark(s string) error {
	_, err := c.call(request{Cmd: "mark", Mark: s})
	return err
}

// SetRule switches rule (1-based) on or off.
func (c *Client) SetRule(rule int, on bool) error {
	_, err := c.call(request{Cmd: "rule", Rule: rule, On: on})
	return err
}

// SetEnabled switches all fault injection on or off (the plan is kept).
func (c *Client) SetEnabled(on bool) error {
	_, err := c.call(request{Cmd: "enable", On: on})
	return err
}

// Flush writes the buffered trace to its file.
func (c *Client) Flush() error {
	_, err := c.call(request{Cmd: "flush"})
	return err
}

// Stop asks the server to unmount and exit. It returns once the server has
// acknowledged; Mount.Stop waits for the exit.
func (c *Client) Stop() error {
	_, err := c.call(request{Cmd: "stop"})
	return err
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
