package crashes

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func TestStateIDRoundTrip(t *testing.T) {
	cases := []State{
		{},
		{Point: 1234},
		{Point: 1234, Alts: []Alt{{Seq: 567}}},
		{Point: 0, Alts: []Alt{{Seq: 5}, {Seq: 601, Keep: []bool{true, true, true, true, false, false, false, false}}}},
		{Point: 9, Alts: []Alt{{Seq: 3, Keep: []bool{false, true, false}}}},
		{Point: 0, Undo: 812},
	}
	want := []string{"end", "1234", "1234/d567", "end/d5/t601:0f", "9/t3:2", "end/u812"}
	for i, s := range cases {
		id := s.ID()
		if id != want[i] {
			t.Errorf("ID(%+v) = %q, want %q", s, id, want[i])
		}
		back, err := ParseID(id)
		if err != nil {
			t.Fatalf("ParseID(%q): %v", id, err)
		}
		if back.Point != s.Point || len(back.Alts) != len(s.Alts) || back.Undo != s.Undo {
			t.Fatalf("ParseID(%q) = %+v", id, back)
		}
		for k, a := range s.Alts {
			b := back.Alts[k]
			if a.Seq != b.Seq || a.Lost() != b.Lost() {
				t.Fatalf("ParseID(%q) alt %d = %+v, want %+v", id, k, b, a)
			}
			for p := range max(len(a.Keep), len(b.Keep)) {
				ak := p < len(a.Keep) && a.Keep[p]
				bk := p < len(b.Keep) && b.Keep[p]
				if ak != bk {
					t.Fatalf("ParseID(%q) alt %d piece %d: %v, want %v", id, k, p, bk, ak)
				}
			}
		}
	}
}

func TestParseIDErrors(t *testing.T) {
	for _, id := range []string{"", "x", "0", "12/x5", "12/d", "12/dx", "12/t5", "12/t5:", "12/t5:zz", "12/d7/d5", "12/d5/d5", "12/u0", "12/u5/u6", "12/d5/u7"} {
		if _, err := ParseID(id); err == nil {
			t.Errorf("ParseID(%q) = nil error", id)
		}
	}
}

func TestPieces(t *testing.T) {
	cases := []struct {
		off    int64
		n      int
		sector int64
		want   []int
	}{
		{0, 4096, 512, []int{0, 512, 1024, 1536, 2048, 2560, 3072, 3584, 4096}},
		{32, 24, 512, []int{0, 24}}, // a WAL frame header: one piece
		{56, 4096, 512, []int{0, 456, 968, 1480, 1992, 2504, 3016, 3528, 4040, 4096}}, // a WAL page: 9 pieces
		{512, 512, 512, []int{0, 512}},
		{4096, 4096, 4096, []int{0, 4096}},
		{100, 0, 512, []int{0, 0}},
	}
	for _, c := range cases {
		if got := pieces(c.off, c.n, c.sector); !reflect.DeepEqual(got, c.want) {
			t.Errorf("pieces(%d,%d,%d) = %v, want %v", c.off, c.n, c.sector, got, c.want)
		}
	}
}

func TestTornMasks(t *testing.T) {
	for n := 0; n <= 12; n++ {
		ms := tornMasks(n)
		if len(ms) != tornCount(n) {
			t.Fatalf("n=%d: %d masks, tornCount says %d", n, len(ms), tornCount(n))
		}
		seen := map[string]bool{}
		for _, m := range ms {
			k, all, none := maskHex(m), true, true
			for _, b := range m {
				all, none = all && b, none && !b
			}
			if all || none || len(m) != n || seen[k] {
				t.Fatalf("n=%d: bad or duplicate mask %v", n, m)
			}
			seen[k] = true
		}
	}
	// n=3: prefixes 100 110, suffixes 001 011, and 101 (the middle lost).
	got := map[string]bool{}
	for _, m := range tornMasks(3) {
		var b strings.Builder
		for _, k := range m {
			b.WriteByte("01"[map[bool]int{false: 0, true: 1}[k]])
		}
		got[b.String()] = true
	}
	want := map[string]bool{"100": true, "110": true, "001": true, "011": true, "101": true}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tornMasks(3) = %v", got)
	}
}

func TestMaskHexRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		n := 1 + r.IntN(300)
		keep := make([]bool, n)
		for k := range keep {
			keep[k] = r.IntN(2) == 0
		}
		back, err := parseMaskHex(maskHex(keep))
		if err != nil {
			t.Fatal(err)
		}
		for k := range back {
			if (k < n && back[k] != keep[k]) || (k >= n && back[k]) {
				t.Fatalf("mask %v -> %q -> %v", keep, maskHex(keep), back)
			}
		}
	}
}

func TestParseClasses(t *testing.T) {
	cs, err := ParseClasses("torn,lost")
	if err != nil || !reflect.DeepEqual(cs, []Class{ClassLost, ClassTorn}) {
		t.Fatalf("ParseClasses = %v, %v", cs, err)
	}
	if cs, err := ParseClasses("all"); err != nil || len(cs) != len(Classes) {
		t.Fatalf("all = %v, %v", cs, err)
	}
	if _, err := ParseClasses("lost,bogus"); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("bogus class: %v", err)
	}
}
