package crashes

import (
	"reflect"
	"testing"
)

// TestClaimedBy: a fsync claims the pending writes that completed before
// it started; a write completing at or after its start stays pending.
func TestClaimedBy(t *testing.T) {
	ops := []Op{{T: 10}, {T: 20}, {T: 30}, {T: 40}}
	for _, c := range []struct {
		name          string
		pending       []int
		t             int64
		claimed, keep []int
	}{
		{"none pending", nil, 25, nil, nil},
		{"all before", []int{0, 1}, 25, []int{0, 1}, nil},
		{"split", []int{0, 1, 2, 3}, 30, []int{0, 1}, []int{2, 3}},
		{"completes at the start", []int{2}, 30, nil, []int{2}},
		{"all after", []int{2, 3}, 5, nil, []int{2, 3}},
	} {
		claimed, keep := claimedBy(ops, c.pending, c.t)
		if !reflect.DeepEqual(claimed, c.claimed) || !reflect.DeepEqual(keep, c.keep) {
			t.Errorf("%s: claimedBy(%v, t=%d) = %v, %v; want %v, %v", c.name, c.pending, c.t, claimed, keep, c.claimed, c.keep)
		}
	}
}
