package plan

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strings"
)

// VarKind is what a template placeholder stands for.
type VarKind string

// The placeholder kinds.
const (
	VarPid     VarKind = "pid"     // {pid:NAME}: the pid of the process NAME (a pid= value)
	VarDBSize  VarKind = "dbsize"  // {dbsize}: the database file's size in bytes (an off= bound)
	VarDBPages VarKind = "dbpages" // {dbpages}: the database file's size in pages (an off= bound)
)

// Var is a template placeholder: a value that is known only when the plan
// runs, written {pid:NAME}, {dbsize} or {dbpages}. The zero Var is no
// placeholder. Plan.Bind replaces every placeholder by its value.
type Var struct {
	Kind VarKind
	Proc string // the process a VarPid names
}

// PidOf is the placeholder {pid:proc}.
func PidOf(proc string) Var { return Var{Kind: VarPid, Proc: proc} }

// String returns the placeholder as a plan writes it, "" for the zero Var.
func (v Var) String() string {
	switch {
	case v.Kind == "":
		return ""
	case v.Kind == VarPid:
		return "{pid:" + v.Proc + "}"
	}
	return "{" + string(v.Kind) + "}"
}

// isVar reports whether a value is written as a placeholder.
func isVar(s string) bool { return strings.HasPrefix(s, "{") }

// parseVar parses "{pid:NAME}", "{dbsize}" or "{dbpages}". A process name
// is letters, digits, '_', '.' and '-'.
func parseVar(s string) (Var, bool) {
	in, ok := strings.CutPrefix(s, "{")
	if !ok {
		return Var{}, false
	}
	if in, ok = strings.CutSuffix(in, "}"); !ok {
		return Var{}, false
	}
	if name, isPid := strings.CutPrefix(in, "pid:"); isPid {
		return PidOf(name), name != "" && strings.Trim(name, procChars) == ""
	}
	switch k := VarKind(in); k {
	case VarDBSize, VarDBPages:
		return Var{Kind: k}, true
	}
	return Var{}, false
}

const procChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"

// vars returns the rule's placeholders, in canonical key order.
func (r *Rule) vars() []Var {
	var out []Var
	for _, v := range []Var{r.OffLoVar, r.OffHiVar, r.PidVar} {
		if v != (Var{}) {
			out = append(out, v)
		}
	}
	return out
}

// Templated reports whether the rule holds a placeholder.
func (r *Rule) Templated() bool { return len(r.vars()) > 0 }

// Templated reports whether the plan is a template: some rule holds a
// placeholder that Bind must fill in before the plan can run.
func (p *Plan) Templated() bool {
	if p == nil {
		return false
	}
	for i := range p.Rules {
		if p.Rules[i].Templated() {
			return true
		}
	}
	return false
}

// ErrUnbound is wrapped by the error a template gives where a concrete plan
// is needed (CheckBound, Engine.Load).
var ErrUnbound = errors.New("placeholder not bound")

// CheckBound returns nil when the plan holds no placeholder, and otherwise
// an error (wrapping ErrUnbound) that names the first rule holding one.
func (p *Plan) CheckBound() error {
	if p == nil {
		return nil
	}
	for i := range p.Rules {
		if vs := p.Rules[i].vars(); len(vs) > 0 {
			return fmt.Errorf("plan: rule %d (%s): %w: %s has no value until Plan.Bind gives it one",
				i+1, p.Rules[i].String(), ErrUnbound, vs[0])
		}
	}
	return nil
}

// Resolver gives a placeholder its value: a process's pid, the database's
// size in bytes or in pages. It returns an error for a name it does not
// know (a process that is not running, say).
type Resolver func(Var) (int64, error)

// Bind returns a concrete copy of the plan: every placeholder replaced by
// the value resolve gives it. It fails when resolve fails, when a pid is
// not a positive process id, or when a bound off= range is empty (LO > HI).
// A plan without placeholders comes back as an equal copy.
func (p *Plan) Bind(resolve Resolver) (*Plan, error) {
	out := p.clone()
	for i := range out.Rules {
		if err := out.Rules[i].bind(resolve); err != nil {
			return nil, fmt.Errorf("plan: rule %d: %w", i+1, err)
		}
	}
	return out, nil
}

// bind replaces the rule's placeholders by their values.
func (r *Rule) bind(resolve Resolver) error {
	if r.PidVar != (Var{}) {
		n, err := resolveVar(resolve, r.PidVar)
		if err != nil {
			return err
		}
		if n <= 0 || n > math.MaxInt32 {
			return fmt.Errorf("%s: %d is not a process id", r.PidVar, n)
		}
		r.Pid, r.PidVar = int(n), Var{}
	}
	lo, hi := r.OffLoVar.String(), r.OffHiVar.String()
	for _, b := range []struct {
		v *Var
		n *int64
	}{{&r.OffLoVar, &r.OffLo}, {&r.OffHiVar, &r.OffHi}} {
		if *b.v == (Var{}) {
			continue
		}
		n, err := resolveVar(resolve, *b.v)
		if err != nil {
			return err
		}
		if n < 0 {
			return fmt.Errorf("%s: %d is not an offset", *b.v, n)
		}
		*b.n, *b.v = n, Var{}
	}
	if r.HasOff && r.OffLo > r.OffHi {
		return fmt.Errorf("off=%s..%s is empty once bound: %d > %d", cmp.Or(lo, itoa(r.OffLo)), cmp.Or(hi, itoa(r.OffHi)), r.OffLo, r.OffHi)
	}
	return nil
}

// resolveVar asks resolve for v's value, naming v in the error.
func resolveVar(resolve Resolver, v Var) (int64, error) {
	if resolve == nil {
		return 0, fmt.Errorf("%s: no resolver", v)
	}
	n, err := resolve(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", v, err)
	}
	return n, nil
}
