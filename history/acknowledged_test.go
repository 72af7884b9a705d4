package history

import (
	"reflect"
	"testing"
)

func TestAcknowledged(t *testing.T) {
	c := func(seq, t int64, proc string) Event { return Event{Type: TypeCommit, Seq: seq, T: t, Proc: proc} }
	for _, tc := range []struct {
		name   string
		events []Event
		want   []Event
	}{
		{"none", []Event{{Type: TypeCall, Op: "create"}, {Type: TypeReturn, Op: "create"}}, nil},
		{"commits without a counter are left out", []Event{c(0, 5, "a"), {Type: TypeReturn, Seq: 3}, c(1, 6, "a")}, []Event{c(1, 6, "a")}},
		{"by seq first", []Event{c(3, 1, "a"), c(1, 9, "b"), c(2, 5, "a")}, []Event{c(1, 9, "b"), c(2, 5, "a"), c(3, 1, "a")}},
		{"a forked seq: by T, then proc", []Event{c(7, 20, "b"), c(7, 10, "c"), c(7, 20, "a")}, []Event{c(7, 10, "c"), c(7, 20, "a"), c(7, 20, "b")}},
		{"equals keep their order", []Event{{Type: TypeCommit, Seq: 4, T: 1, Proc: "a", Op: "x"}, {Type: TypeCommit, Seq: 4, T: 1, Proc: "a", Op: "y"}},
			[]Event{{Type: TypeCommit, Seq: 4, T: 1, Proc: "a", Op: "x"}, {Type: TypeCommit, Seq: 4, T: 1, Proc: "a", Op: "y"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Acknowledged(tc.events); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Acknowledged = %+v, want %+v", got, tc.want)
			}
		})
	}
}
