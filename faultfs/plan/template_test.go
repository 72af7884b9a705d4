package plan

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// templates are plans with placeholders, each in its canonical form.
var templates = []string{
	"flip op=read path=kanban.db off=0..15 minlen=4096 pid={pid:gateway-1} bit=0 count=1",
	"errno op=open path=kanban.db pid={pid:gateway-1} errno=EIO",
	"torn op=write path=kanban.db off={dbsize}..1099511627776 minlen=4096 keep=512 then=ok count=1",
	"short op=read path=kanban.db-wal pid={pid:writer-1} p=0.1 keep=0 count=16",
	"eio off={dbpages}",
	"eio off=0..{dbsize}",
	"eio off={dbpages}..{dbsize} pid={pid:a_b.c-9}",
}

func TestTemplatesParseAndPrint(t *testing.T) {
	for _, src := range templates {
		p, err := Parse(src)
		if err != nil {
			t.Errorf("Parse(%q): %v", src, err)
			continue
		}
		if !p.Templated() || !p.Rules[0].Templated() {
			t.Errorf("Parse(%q) is not a template", src)
		}
		if errors.Is(p.CheckBound(), ErrUnbound) != true {
			t.Errorf("CheckBound(%q) = %v, want ErrUnbound", src, p.CheckBound())
		}
		if got := strings.TrimSuffix(p.String(), "\n"); got != src {
			t.Errorf("Parse(%q).String() = %q", src, got)
		}
		checkRoundTrip(t, src)
	}
	p, err := Parse("eio pid={pid:w} off={dbsize}..{dbpages}")
	if err != nil {
		t.Fatal(err)
	}
	r := p.Rules[0]
	if r.PidVar != PidOf("w") || r.Pid != 0 || r.OffLoVar != (Var{Kind: VarDBSize}) ||
		r.OffHiVar != (Var{Kind: VarDBPages}) || !r.HasOff || r.OffLo != 0 || r.OffHi != 0 {
		t.Errorf("rule fields: %+v", r)
	}
	if q, _ := Parse("eio pid=7 off=1..2"); q.Templated() || q.CheckBound() != nil {
		t.Errorf("a concrete plan reads as a template")
	}
	if q, _ := Parse("powercut after=1s pid={pid:w}"); q.Rules[0].Timed() {
		t.Errorf("a powercut with pid={pid:...} is timed")
	}
}

func TestTemplateParseErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"eio pid={dbsize}", `plan:1:5: bad value for pid: "{dbsize}" (expected a process id, or the placeholder {pid:NAME} of a process NAME)`},
		{"eio pid={pid:}", `plan:1:5: bad value for pid: "{pid:}" (expected a process id, or the placeholder {pid:NAME} of a process NAME)`},
		{"eio pid={pid:a/b}", `plan:1:5: bad value for pid: "{pid:a/b}" (expected a process id, or the placeholder {pid:NAME} of a process NAME)`},
		{"eio pid={pid:w", `plan:1:5: bad value for pid: "{pid:w" (expected a process id, or the placeholder {pid:NAME} of a process NAME)`},
		{"eio off={pid:w}", `plan:1:5: bad value for off: "{pid:w}" (expected N or LO..HI with LO <= HI, sizes in bytes or the placeholder {dbsize} or {dbpages})`},
		{"eio off={dbsize}..", `plan:1:5: bad value for off: "{dbsize}.." (expected N or LO..HI with LO <= HI, sizes in bytes or the placeholder {dbsize} or {dbpages})`},
		{"eio off={dbsise}", `plan:1:5: bad value for off: "{dbsise}" (expected N or LO..HI with LO <= HI, sizes in bytes or the placeholder {dbsize} or {dbpages})`},
		{"eio nth={dbpages}", `plan:1:5: bad value for nth: "{dbpages}" (expected a positive integer)`},
	} {
		_, err := Parse(tc.src)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q):\n got %v\nwant %s", tc.src, err, tc.want)
		}
	}
}

// resolver knows the processes "writer-1" (pid 4242) and "big" (pid 2^31)
// and a database of 3 pages.
func resolver(v Var) (int64, error) {
	switch {
	case v == PidOf("writer-1"):
		return 4242, nil
	case v == PidOf("big"):
		return 1 << 31, nil
	case v.Kind == VarDBSize:
		return 3 * 4096, nil
	case v.Kind == VarDBPages:
		return 3, nil
	}
	return 0, fmt.Errorf("no process %q", v.Proc)
}

func TestBind(t *testing.T) {
	for _, tc := range []struct{ src, want, err string }{
		{src: "short path=kanban.db-wal pid={pid:writer-1} keep=0 count=16", want: "short op=read path=kanban.db-wal pid=4242 keep=0 count=16"},
		{src: "torn off={dbsize}..1T keep=1", err: "bad value"}, // parse error, not a bind error
		{src: "torn off={dbsize}..99999999 keep=1\neio off={dbpages}", want: "torn op=write off=12288..99999999 keep=1 then=ok\neio off=3"},
		{src: "eio off=0..{dbpages} pid=9", want: "eio off=0..3 pid=9"},
		{src: "eio\neio pid={pid:nobody}", err: `plan: rule 2: {pid:nobody}: no process "nobody"`},
		{src: "eio pid={pid:big}", err: "plan: rule 1: {pid:big}: 2147483648 is not a process id"},
		{src: "eio off={dbsize}..100", err: "plan: rule 1: off={dbsize}..100 is empty once bound: 12288 > 100"},
		{src: "eio off=5..{dbpages}", err: "plan: rule 1: off=5..{dbpages} is empty once bound: 5 > 3"},
		{src: "eio count=1\n", want: "eio count=1"},
	} {
		p, err := Parse(tc.src)
		if err != nil {
			if tc.err == "" || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q): %v", tc.src, err)
			}
			continue
		}
		b, err := p.Bind(resolver)
		switch {
		case tc.err != "":
			if err == nil || err.Error() != tc.err {
				t.Errorf("Bind(%q) = %v, want error %q", tc.src, err, tc.err)
			}
			continue
		case err != nil:
			t.Errorf("Bind(%q): %v", tc.src, err)
			continue
		}
		if got := strings.TrimSuffix(b.String(), "\n"); got != tc.want || b.Templated() || b.CheckBound() != nil {
			t.Errorf("Bind(%q) = %q (templated %v), want %q", tc.src, got, b.Templated(), tc.want)
		}
		if p.String() != mustParse(t, tc.src).String() {
			t.Errorf("Bind(%q) changed the template to %q", tc.src, p.String())
		}
	}
	if _, err := mustParse(t, "eio pid={pid:w}").Bind(nil); err == nil {
		t.Errorf("Bind(nil) of a template succeeded")
	}
}

// TestEngineRefusesTemplates: an unbound template never runs, and never
// reads as pid 0 or offset 0; the engine keeps the plan it had.
func TestEngineRefusesTemplates(t *testing.T) {
	e := NewEngine(mustParse(t, "eio op=write count=1"), 1)
	for _, src := range templates {
		err := e.Load(mustParse(t, src))
		if !errors.Is(err, ErrUnbound) || !strings.Contains(err.Error(), "rule 1 (") {
			t.Errorf("Load(%q) = %v, want an ErrUnbound error naming the rule", src, err)
		}
	}
	if got := e.Plan().String(); got != "eio op=write count=1\n" {
		t.Errorf("after refused loads the plan is %q", got)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Errorf("NewEngine of a template did not panic")
			}
		}()
		NewEngine(mustParse(t, "eio pid={pid:w}"), 1)
	}()
	bound, err := mustParse(t, "eio pid={pid:writer-1} off={dbpages}..{dbsize}").Bind(resolver)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Load(bound); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ev   Call
		want bool
	}{
		{Call{Op: OpWrite, Path: "kanban.db", Off: 4096, Len: 10, Pid: 4242}, true},
		{Call{Op: OpWrite, Path: "kanban.db", Off: 4096, Len: 10, Pid: 1}, false},
		{Call{Op: OpWrite, Path: "kanban.db", Off: 0, Len: 3, Pid: 4242}, false},
	} {
		if _, got := e.Decide(tc.ev); got != tc.want {
			t.Errorf("Decide(%+v) = %v, want %v", tc.ev, got, tc.want)
		}
	}
}

func TestParseVar(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want Var
		ok   bool
	}{
		{"{pid:writer-1}", PidOf("writer-1"), true},
		{"{dbsize}", Var{Kind: VarDBSize}, true},
		{"{dbpages}", Var{Kind: VarDBPages}, true},
		{"dbsize}", Var{}, false},
		{"{dbsize", Var{}, false},
		{"{}", Var{}, false},
		{"{pid:}", PidOf(""), false},
		{"{pid:a b}", PidOf("a b"), false},
	} {
		got, ok := parseVar(tc.s)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("parseVar(%q) = %+v, %v; want %+v, %v", tc.s, got, ok, tc.want, tc.ok)
		}
	}
}
