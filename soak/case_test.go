package soak

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func catalogCells(t *testing.T) []Cell {
	t.Helper()
	cells, err := Cells(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return cells
}

func collect(cells []Cell, seeds Seeds, sh Shard) []Case {
	var out []Case
	for c := range Cases(cells, seeds, sh) {
		out = append(out, c)
	}
	return out
}

// The union of N shards' cases is the unsharded case set, no case twice,
// for several N and seed ranges, over the whole default catalog.
func TestShardsPartitionTheUnshardedCases(t *testing.T) {
	cells := catalogCells(t)
	for _, rng := range []string{"1", "1..30", "100..157", "-5..5", "9223372036854775800..9223372036854775807"} {
		seeds, err := ParseSeeds(rng)
		if err != nil {
			t.Fatal(err)
		}
		all := collect(cells, seeds, Shard{0, 1})
		if want := int(seeds.Count()) * len(cells); len(all) != want {
			t.Fatalf("seeds %s: unsharded run has %d cases, want %d", rng, len(all), want)
		}
		for _, n := range []int{1, 2, 3, 4, 7, 8, 13, 56} {
			t.Run(fmt.Sprintf("%s/%d", rng, n), func(t *testing.T) {
				got := map[Case]int{}
				for i := 0; i < n; i++ {
					for _, c := range collect(cells, seeds, Shard{i, n}) {
						if prev, dup := got[c]; dup {
							t.Fatalf("%s in shard %d and shard %d", c, prev, i)
						}
						got[c] = i
					}
				}
				if len(got) != len(all) {
					t.Fatalf("shards ran %d cases, the unsharded run %d", len(got), len(all))
				}
				for _, c := range all {
					if _, ok := got[c]; !ok {
						t.Fatalf("%s is in the unsharded run but in no shard", c)
					}
				}
			})
		}
	}
}

// The hash spreads counts and cells: over 56 cells × 30 seeds, each of 3, 4,
// 7 or 8 shards gets within 15% of an equal share, and no shard is stuck
// with a fixed subset of cells (what round-robin gives when N divides 56).
func TestShardsBalance(t *testing.T) {
	cells := catalogCells(t)
	seeds := Seeds{First: 1, Last: 30}
	total := len(cells) * 30
	for _, n := range []int{3, 4, 7, 8} {
		for i := 0; i < n; i++ {
			cs := collect(cells, seeds, Shard{i, n})
			share := float64(total) / float64(n)
			if d := math.Abs(float64(len(cs)) - share); d > 0.15*share {
				t.Errorf("shard %d/%d has %d cases, an equal share is %.0f", i, n, len(cs), share)
			}
			distinct := map[Cell]bool{}
			for _, c := range cs {
				distinct[c.Cell] = true
			}
			if len(distinct) < len(cells)*3/4 {
				t.Errorf("shard %d/%d runs only %d of %d cells", i, n, len(distinct), len(cells))
			}
		}
	}
}

// Owner is part of the on-disk contract (shard.json names the partition
// function and merge compares shards cut by it): a change to it must be
// deliberate. These values were computed by the function as first written.
func TestOwnerIsStable(t *testing.T) {
	for _, c := range []struct {
		c    Case
		n    int
		want int
	}{
		{Case{Cell{"eio-wal-downgrade", "legacy", "modernc"}, 1}, 8, 5},
		{Case{Cell{"soak", "hardened", "mattn"}, 42}, 8, 1},
		{Case{Cell{"torn-extend", "merged33482", "modernc"}, -7}, 3, 1},
	} {
		if got := Owner(c.c, c.n); got != c.want {
			t.Errorf("Owner(%s, %d) = %d, was %d: the partition changed; shards cut before and after it do not merge", c.c, c.n, got, c.want)
		}
	}
}

func TestCasesRunOrderAndOpenRange(t *testing.T) {
	cells := []Cell{{"a", "legacy", "modernc"}, {"b", "legacy", "modernc"}}
	var got []Case
	for c := range Cases(cells, Seeds{First: 5, Open: true}, Shard{0, 1}) {
		got = append(got, c)
		if len(got) == 7 {
			break
		}
	}
	want := []string{"a-legacy-modernc-5", "b-legacy-modernc-5", "a-legacy-modernc-6", "b-legacy-modernc-6", "a-legacy-modernc-7", "b-legacy-modernc-7", "a-legacy-modernc-8"}
	for i, c := range got {
		if c.Name() != want[i] {
			t.Fatalf("case %d is %s, want %s (seed by seed, cells in order)", i, c.Name(), want[i])
		}
	}
}

func TestParseSeeds(t *testing.T) {
	for _, c := range []struct {
		in, want, err string
	}{
		{"1..30", "1..30", ""},
		{"7", "7..7", ""},
		{"20261201..", "20261201..", ""},
		{"-3..3", "-3..3", ""},
		{"30..1", "", "ends before it starts"},
		{"a..b", "", "want A..B"},
		{"1..x", "", "want A..B"},
		{"", "", "want A..B"},
	} {
		s, err := ParseSeeds(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseSeeds(%q) = %v, %v; want error with %q", c.in, s, err, c.err)
			}
			continue
		}
		if err != nil || s.String() != c.want {
			t.Errorf("ParseSeeds(%q) = %v, %v; want %s", c.in, s, err, c.want)
		}
	}
}

func TestParseShard(t *testing.T) {
	for _, c := range []struct {
		in, want, err string
	}{
		{"0/1", "0/1", ""},
		{"2/3", "2/3", ""},
		{"3/3", "", "out of range"},
		{"-1/3", "", "out of range"},
		{"1/0", "", "at least 1"},
		{"1", "", "want I/N"},
		{"a/b", "", "integers"},
	} {
		s, err := ParseShard(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseShard(%q) = %v, %v; want error with %q", c.in, s, err, c.err)
			}
			continue
		}
		if err != nil || s.String() != c.want {
			t.Errorf("ParseShard(%q) = %v, %v; want %s", c.in, s, err, c.want)
		}
	}
}

func TestCellsFilter(t *testing.T) {
	cells, err := Cells(Filter{Scenarios: []string{"rollback-shadow"}, Drivers: []string{"modernc"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cells) != 2 || cells[0].String() != "rollback-shadow/legacy/modernc" || cells[1].String() != "rollback-shadow/hardened/modernc" {
		t.Fatalf("cells %v", cells)
	}
	cells, err = Cells(Filter{Scenarios: []string{"rollback-shadow"}, Profiles: []string{"pr32857"}})
	if err != nil || len(cells) != 2 || cells[0].Profile != "pr32857" {
		t.Fatalf("--profiles replaces the scenario's profiles: %v %v", cells, err)
	}
	for _, f := range []Filter{{Scenarios: []string{"nope"}}, {Profiles: []string{"nope"}}, {Drivers: []string{"nope"}}} {
		if _, err := Cells(f); err == nil {
			t.Errorf("%+v: no error", f)
		}
	}
}
