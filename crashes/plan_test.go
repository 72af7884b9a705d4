package crashes

import (
	"reflect"
	"testing"
)

// TestShareBudget: the budget is shared max-min fairly; small demands get
// all they need, the rest split what is left; no budget means everything.
func TestShareBudget(t *testing.T) {
	for _, c := range []struct {
		name   string
		needs  []int
		budget int
		want   []int
	}{
		{"no budget: every state", []int{3, 0, 7}, 0, []int{3, 0, 7}},
		{"budget covers all", []int{3, 2}, 10, []int{3, 2}},
		{"small first, rest split", []int{100, 2, 100}, 20, []int{9, 2, 9}},
		{"larger needs share what is left", []int{1, 50, 12}, 12, []int{1, 6, 5}},
		{"ties keep their order", []int{10, 10, 10}, 10, []int{3, 3, 4}},
		{"nothing to share", nil, 5, []int{}},
	} {
		got := shareBudget(c.needs, c.budget)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: shareBudget(%v, %d) = %v, want %v", c.name, c.needs, c.budget, got, c.want)
		}
		sum := 0
		for _, q := range got {
			sum += q
		}
		if c.budget > 0 && sum > c.budget {
			t.Errorf("%s: quotas %v exceed the budget %d", c.name, got, c.budget)
		}
	}
}
