package faultfs

import (
	"reflect"
	"testing"
)

func TestKeptRanges(t *testing.T) {
	for _, tc := range []struct {
		name           string
		off, n, sector int64
		kept           []bool
		want           [][2]int64
	}{
		{"none kept", 0, 1024, 512, []bool{false, false}, nil},
		{"all kept, aligned", 0, 1024, 512, []bool{true, true}, [][2]int64{{0, 1024}}},
		{"one run in the middle", 0, 2048, 512, []bool{false, true, true, false}, [][2]int64{{512, 1536}}},
		{"two runs", 0, 2048, 512, []bool{true, false, false, true}, [][2]int64{{0, 512}, {1536, 2048}}},
		{"unaligned write clipped at both ends", 100, 1000, 512, []bool{true, false, true}, [][2]int64{{100, 512}, {1024, 1100}}},
		{"unaligned, middle only", 4196, 1024, 512, []bool{false, true, false}, [][2]int64{{4608, 5120}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := keptRanges(tc.off, tc.n, tc.sector, tc.kept); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("keptRanges(%d, %d, %d, %v) = %v, want %v", tc.off, tc.n, tc.sector, tc.kept, got, tc.want)
			}
		})
	}
}
