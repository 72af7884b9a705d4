package prop

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/gen"

	"github.com/sqlchaos/sqlchaos/kanbancore"
)

// The kanban operations a workload step can perform.
const (
	OpCreate    = "create"
	OpLink      = "link"
	OpClaim     = "claim"
	OpHeartbeat = "heartbeat"
	OpComplete  = "complete"
	OpBlock     = "block"
	OpUnblock   = "unblock"
	OpArchive   = "archive"
	OpDelete    = "delete"
)

// WorkloadOps lists every workload operation.
var WorkloadOps = []string{OpCreate, OpLink, OpClaim, OpHeartbeat, OpComplete, OpBlock, OpUnblock, OpArchive, OpDelete}

// opWeights bias workloads towards creating and moving tasks.
var opWeights = map[string]int{OpCreate: 5, OpLink: 2, OpClaim: 4, OpHeartbeat: 2, OpComplete: 3, OpBlock: 2,
	OpUnblock: 2, OpArchive: 1, OpDelete: 1}

// Step is one operation of a workload, run by one role process. Tasks are
// named by index into a small fixed namespace (TaskID), so steps of
// different roles meet on the same tasks.
type Step struct {
	Role   int    `json:"role"`
	Op     string `json:"op"`
	Task   int    `json:"task"`
	Parent int    `json:"parent,omitempty"` // link: the parent; create: a parent when >= 0 and != Task
	// WithParent makes a create step name Parent as its parent.
	WithParent bool `json:"with_parent,omitempty"`
}

// String prints a step as "r1:link t2>t4".
func (s Step) String() string {
	switch {
	case s.Op == OpLink:
		return fmt.Sprintf("r%d:%s %s>%s", s.Role, s.Op, TaskID(s.Parent), TaskID(s.Task))
	case s.Op == OpCreate && s.WithParent:
		return fmt.Sprintf("r%d:%s %s<%s", s.Role, s.Op, TaskID(s.Task), TaskID(s.Parent))
	}
	return fmt.Sprintf("r%d:%s %s", s.Role, s.Op, TaskID(s.Task))
}

// TaskID is the id of task index i.
func TaskID(i int) string { return fmt.Sprintf("t%02d", i) }

// Workload is a set of operation sequences, one per role process, that run
// concurrently against one board.
type Workload struct {
	Roles int    `json:"roles"`
	Tasks int    `json:"tasks"` // size of the task namespace
	Steps []Step `json:"steps"` // in generation order; each role runs its own in order
	// Partitioned: role r only touches tasks i with i % Roles == r, so
	// the operations on one dependency component run in one process.
	Partitioned bool `json:"partitioned,omitempty"`
}

// String prints the workload compactly.
func (w Workload) String() string {
	parts := make([]string, len(w.Steps))
	for i, s := range w.Steps {
		parts[i] = s.String()
	}
	return fmt.Sprintf("roles=%d tasks=%d [%s]", w.Roles, w.Tasks, strings.Join(parts, " "))
}

// ByRole returns each role's steps in order.
func (w Workload) ByRole() [][]Step {
	out := make([][]Step, w.Roles)
	for _, s := range w.Steps {
		if s.Role >= 0 && s.Role < w.Roles {
			out[s.Role] = append(out[s.Role], s)
		}
	}
	return out
}

// WorkloadSpace bounds GenWorkload.
type WorkloadSpace struct {
	MinRoles, MaxRoles int
	Tasks              int // task namespace size
	MinSteps, MaxSteps int
	Partitioned        bool // see Workload.Partitioned
}

// DefaultWorkloadSpace is 2–4 roles, 6 tasks, 8–40 steps.
func DefaultWorkloadSpace() WorkloadSpace {
	return WorkloadSpace{MinRoles: 2, MaxRoles: 4, Tasks: 6, MinSteps: 8, MaxSteps: 40}
}

// GenWorkload generates workloads. Its shrinker drops steps (gopter's slice
// shrinker), then merges roles.
func GenWorkload(s WorkloadSpace) gopter.Gen {
	return func(gp *gopter.GenParameters) *gopter.GenResult {
		rng := gp.Rng
		roles := s.MinRoles + rng.Intn(s.MaxRoles-s.MinRoles+1)
		n := s.MinSteps + rng.Intn(s.MaxSteps-s.MinSteps+1)
		w := Workload{Roles: roles, Tasks: s.Tasks, Steps: make([]Step, n), Partitioned: s.Partitioned}
		task := func(role int) int {
			if !s.Partitioned {
				return rng.Intn(s.Tasks)
			}
			per := (s.Tasks - role + roles - 1) / roles // indices role, role+roles, … below Tasks
			return role + roles*rng.Intn(max(1, per))
		}
		for i := range w.Steps {
			st := Step{Role: rng.Intn(roles), Op: pick(rng, opWeights)}
			st.Task = task(st.Role)
			switch st.Op {
			case OpLink:
				st.Parent = task(st.Role)
			case OpCreate:
				if rng.Intn(3) == 0 {
					st.Parent, st.WithParent = task(st.Role), true
				}
			}
			w.Steps[i] = st
		}
		res := gopter.NewGenResult(w, ShrinkWorkload)
		res.ResultType = reflect.TypeOf(Workload{})
		return res
	}
}

// ShrinkWorkload yields shorter workloads (steps removed in chunks, then
// one by one) and then workloads with fewer roles: the roles left without
// steps dropped (the others renumbered in order), and the last role's
// steps moved to role 0. Partitioned workloads keep their roles (a task's
// role is fixed by its index).
func ShrinkWorkload(v interface{}) gopter.Shrink {
	w := v.(Workload)
	steps := gen.SliceShrinker(gopter.NoShrinker)(w.Steps).Map(func(ss []Step) Workload {
		return Workload{Roles: w.Roles, Tasks: w.Tasks, Steps: ss, Partitioned: w.Partitioned}
	})
	var fewer []interface{}
	if used := usedRoles(w); len(used) < w.Roles && !w.Partitioned {
		// Roles without steps dropped, the others renumbered in order.
		x := Workload{Roles: max(1, len(used)), Tasks: w.Tasks, Steps: append([]Step(nil), w.Steps...)}
		for i := range x.Steps {
			x.Steps[i].Role = used[x.Steps[i].Role]
		}
		fewer = append(fewer, x)
	}
	if w.Roles > 1 && !w.Partitioned {
		x := Workload{Roles: w.Roles - 1, Tasks: w.Tasks, Steps: append([]Step(nil), w.Steps...)}
		for i := range x.Steps {
			if x.Steps[i].Role == w.Roles-1 {
				x.Steps[i].Role = 0
			}
		}
		fewer = append(fewer, x)
	}
	return gopter.ConcatShrinks(steps, sliceShrink(fewer))
}

// usedRoles maps each role that has steps to its number among them, in
// role order.
func usedRoles(w Workload) map[int]int {
	has := make([]bool, w.Roles)
	for _, s := range w.Steps {
		if s.Role >= 0 && s.Role < w.Roles {
			has[s.Role] = true
		}
	}
	out := map[int]int{}
	for r, ok := range has {
		if ok {
			out[r] = len(out)
		}
	}
	return out
}

func sliceShrink(vs []interface{}) gopter.Shrink {
	i := 0
	return func() (interface{}, bool) {
		if i >= len(vs) {
			return nil, false
		}
		i++
		return vs[i-1], true
	}
}

// GenProfile generates a kanbancore profile name.
func GenProfile() gopter.Gen {
	names := kanbancore.ProfileNames()
	vs := make([]interface{}, len(names))
	for i, n := range names {
		vs[i] = n
	}
	return gen.OneConstOf(vs...)
}

// GenDriver generates a driver name.
func GenDriver() gopter.Gen {
	return gen.OneConstOf(string(kanbancore.DriverModernc), string(kanbancore.DriverMattn))
}

// SwitchSet is a list of "name=value" switch assignments on top of a
// profile, in the form --set takes them.
type SwitchSet []string

// switchChoices lists, for every enumerated and boolean switch, the values a
// switch set may assign.
func switchChoices() map[string][]string {
	out := map[string][]string{}
	for _, s := range kanbancore.Hardened().List() {
		switch s.Kind {
		case "enum":
			out[s.Name] = append([]string(nil), s.Values...)
		case "bool":
			out[s.Name] = []string{"true", "false"}
		}
	}
	return out
}

// GenSwitchSet generates 0..max switch assignments over the enumerated and
// boolean switches (each switch at most once, in display order). Its
// shrinker drops assignments.
func GenSwitchSet(max int) gopter.Gen {
	choices := switchChoices()
	var names []string
	for n := range choices {
		names = append(names, n)
	}
	sort.Strings(names)
	return func(gp *gopter.GenParameters) *gopter.GenResult {
		k := gp.Rng.Intn(max + 1)
		perm := gp.Rng.Perm(len(names))[:k]
		sort.Ints(perm)
		set := SwitchSet{}
		for _, i := range perm {
			vals := choices[names[i]]
			set = append(set, names[i]+"="+vals[gp.Rng.Intn(len(vals))])
		}
		res := gopter.NewGenResult(set, ShrinkSwitchSet)
		res.ResultType = reflect.TypeOf(SwitchSet{})
		return res
	}
}

// ShrinkSwitchSet drops assignments (down to none).
func ShrinkSwitchSet(v interface{}) gopter.Shrink {
	set := v.(SwitchSet)
	var out []interface{}
	if len(set) > 1 {
		out = append(out, SwitchSet{})
	}
	for i := range set {
		x := append(append(SwitchSet{}, set[:i]...), set[i+1:]...)
		out = append(out, x)
	}
	return sliceShrink(out)
}
