package plan

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// issueExamples are the four lines issue 2 requires to parse.
const issueExamples = `eio   op=write path=*-wal nth=1 count=1
torn  op=write path=*.db minlen=4096 keep=512 then=ok count=3
short op=read path=*.db off=0..100 keep=0 count=1
errno op=open path=*.db errno=EIO count=1
`

func TestParseIssueExamples(t *testing.T) {
	p, err := Parse(issueExamples)
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{Kind: KindEIO, Ops: []Op{OpWrite}, Path: "*-wal", Nth: 1, Count: 1, Errno: syscall.EIO},
		{Kind: KindTorn, Ops: []Op{OpWrite}, Path: "*.db", MinLen: 4096, Keep: 512, ThenOK: true, Count: 3},
		{Kind: KindShort, Ops: []Op{OpRead}, Path: "*.db", OffLo: 0, OffHi: 100, HasOff: true, Keep: 0, Count: 1},
		{Kind: KindErrno, Ops: []Op{OpOpen}, Path: "*.db", Errno: syscall.EIO, Count: 1},
	}
	if !reflect.DeepEqual(p.Rules, want) {
		t.Fatalf("got\n%#v\nwant\n%#v", p.Rules, want)
	}
	// The examples are already canonical, up to spacing.
	var canon []string
	for _, l := range strings.Split(strings.TrimSpace(issueExamples), "\n") {
		canon = append(canon, strings.Join(strings.Fields(l), " "))
	}
	if got, want := p.String(), strings.Join(canon, "\n")+"\n"; got != want {
		t.Fatalf("canonical form:\n%s\nwant:\n%s", got, want)
	}
}

func TestParseValid(t *testing.T) {
	for _, tc := range []struct {
		src   string
		want  Rule
		canon string
	}{
		{"eio", Rule{Kind: KindEIO, Errno: syscall.EIO}, "eio"},
		{"  eio\t# trailing comment", Rule{Kind: KindEIO, Errno: syscall.EIO}, "eio"},
		{"errno errno=enospc op=write|fsync", Rule{Kind: KindErrno, Ops: []Op{OpWrite, OpFsync}, Errno: syscall.ENOSPC},
			"errno op=write|fsync errno=ENOSPC"},
		{"errno op=fsync|write errno=EWOULDBLOCK", Rule{Kind: KindErrno, Ops: []Op{OpWrite, OpFsync}, Errno: syscall.EAGAIN},
			"errno op=write|fsync errno=EAGAIN"},
		{"errno op=any errno=EDQUOT", Rule{Kind: KindErrno, Errno: syscall.EDQUOT}, "errno errno=EDQUOT"},
		{"torn keep=4K", Rule{Kind: KindTorn, Ops: []Op{OpWrite}, Keep: 4096, ThenOK: true}, "torn op=write keep=4096 then=ok"},
		{"torn keep=1KiB then=eio", Rule{Kind: KindTorn, Ops: []Op{OpWrite}, Keep: 1024, Errno: syscall.EIO}, "torn op=write keep=1024 then=EIO"},
		{"lost path=*-journal p=0.25", Rule{Kind: KindLost, Ops: []Op{OpWrite}, Path: "*-journal", P: 0.25}, "lost op=write path=*-journal p=0.25"},
		{"lost p=1", Rule{Kind: KindLost, Ops: []Op{OpWrite}}, "lost op=write"},
		{"lost op=fsync path=*-wal", Rule{Kind: KindLost, Ops: []Op{OpFsync}, Path: "*-wal"}, "lost op=fsync path=*-wal"},
		{"lost op=fsync|write", Rule{Kind: KindLost, Ops: []Op{OpWrite, OpFsync}}, "lost op=write|fsync"},
		{"short", Rule{Kind: KindShort, Ops: []Op{OpRead}}, "short op=read keep=0"},
		{"short off=24", Rule{Kind: KindShort, Ops: []Op{OpRead}, OffLo: 24, OffHi: 24, HasOff: true}, "short op=read off=24 keep=0"},
		{"short off=1K..2K", Rule{Kind: KindShort, Ops: []Op{OpRead}, OffLo: 1024, OffHi: 2048, HasOff: true}, "short op=read off=1024..2048 keep=0"},
		{"flip", Rule{Kind: KindFlip, Ops: []Op{OpRead, OpWrite}}, "flip op=read|write"},
		{"flip op=read bit=7", Rule{Kind: KindFlip, Ops: []Op{OpRead}, Bit: 7, HasBit: true}, "flip op=read bit=7"},
		{"delay delay=1500ms jitter=5ms op=fsync", Rule{Kind: KindDelay, Ops: []Op{OpFsync}, Delay: 1500 * time.Millisecond, Jitter: 5 * time.Millisecond},
			"delay op=fsync delay=1.5s jitter=5ms"},
		{"eio state=off count=0 after=0 pid=42 every=3 nth=2 minlen=0", Rule{Kind: KindEIO, Errno: syscall.EIO, Off: true, Pid: 42, Every: 3, Nth: 2},
			"eio pid=42 nth=2 every=3 state=off"},
		{"eio path=test.db", Rule{Kind: KindEIO, Errno: syscall.EIO, Path: "test.db"}, "eio path=test.db"},
		{"eio path=[a-c]*.db", Rule{Kind: KindEIO, Errno: syscall.EIO, Path: "[a-c]*.db"}, "eio path=[a-c]*.db"},
		// after=N counts matches; after=DURATION is time since the plan was loaded.
		{"eio after=3", Rule{Kind: KindEIO, Errno: syscall.EIO, After: 3}, "eio after=3"},
		{"eio op=write after=1500ms", Rule{Kind: KindEIO, Errno: syscall.EIO, Ops: []Op{OpWrite}, AfterDur: 1500 * time.Millisecond},
			"eio op=write after=1.5s"},
		{"eio after=2m", Rule{Kind: KindEIO, Errno: syscall.EIO, AfterDur: 2 * time.Minute}, "eio after=2m0s"},
		// powercut: keep=none and count=1 are its defaults; keep is always printed.
		{"powercut", Rule{Kind: KindPowercut, Cut: CutNone, Count: 1}, "powercut keep=none"},
		{"powercut op=fsync path=*-wal nth=40", Rule{Kind: KindPowercut, Ops: []Op{OpFsync}, Path: "*-wal", Nth: 40, Cut: CutNone, Count: 1},
			"powercut op=fsync path=*-wal nth=40 keep=none"},
		{"powercut after=2s", Rule{Kind: KindPowercut, AfterDur: 2 * time.Second, Cut: CutNone, Count: 1}, "powercut after=2s keep=none"},
		{"powercut keep=all count=1", Rule{Kind: KindPowercut, Cut: CutAll, Count: 1}, "powercut keep=all"},
		{"powercut keep=random count=0", Rule{Kind: KindPowercut, Cut: CutRandom}, "powercut keep=random count=0"},
		{"powercut keep=sectors", Rule{Kind: KindPowercut, Cut: CutSectors, Sector: 512, Count: 1}, "powercut keep=sectors sector=512"},
		{"powercut sector=4K keep=sectors count=2", Rule{Kind: KindPowercut, Cut: CutSectors, Sector: 4096, Count: 2},
			"powercut keep=sectors sector=4096 count=2"},
		// torn from the tail, or a seeded subset of sectors.
		{"torn keep=512 from=tail", Rule{Kind: KindTorn, Ops: []Op{OpWrite}, Keep: 512, Tail: true, ThenOK: true},
			"torn op=write keep=512 from=tail then=ok"},
		{"torn keep=512 from=head", Rule{Kind: KindTorn, Ops: []Op{OpWrite}, Keep: 512, ThenOK: true}, "torn op=write keep=512 then=ok"},
		{"torn sectors=random", Rule{Kind: KindTorn, Ops: []Op{OpWrite}, RandomSectors: true, Sector: 512, ThenOK: true},
			"torn op=write sectors=random sector=512 then=ok"},
		{"torn sectors=random sector=4096 then=EIO", Rule{Kind: KindTorn, Ops: []Op{OpWrite}, RandomSectors: true, Sector: 4096, Errno: syscall.EIO},
			"torn op=write sectors=random sector=4096 then=EIO"},
		// fsync errors that drop the unsynced writes.
		{"eio op=fsync path=*-wal drop=unsynced", Rule{Kind: KindEIO, Errno: syscall.EIO, Ops: []Op{OpFsync}, Path: "*-wal", DropUnsynced: true},
			"eio op=fsync path=*-wal drop=unsynced"},
		{"errno op=fsync errno=EIO drop=unsynced count=1", Rule{Kind: KindErrno, Errno: syscall.EIO, Ops: []Op{OpFsync}, DropUnsynced: true, Count: 1},
			"errno op=fsync errno=EIO drop=unsynced count=1"},
	} {
		p, err := Parse(tc.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.src, err)
			continue
		}
		if len(p.Rules) != 1 || !reflect.DeepEqual(p.Rules[0], tc.want) {
			t.Errorf("Parse(%q) = %#v, want %#v", tc.src, p.Rules, tc.want)
			continue
		}
		if got := p.Rules[0].String(); got != tc.canon {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.src, got, tc.canon)
		}
		checkRoundTrip(t, tc.src)
	}
}

func TestParseBlankAndComments(t *testing.T) {
	p, err := Parse("\n# header\n   \n\t# indented comment\n\neio # x\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rules) != 1 || p.String() != "eio\n" {
		t.Fatalf("got %q", p.String())
	}
	p, err = Parse("")
	if err != nil || len(p.Rules) != 0 || p.String() != "" {
		t.Fatalf("empty plan: %v %#v", err, p)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"tron op=write", `plan:1:1: unknown fault kind "tron" (expected one of: errno, eio, torn, lost, short, flip, delay, powercut)`},
		{"eio\nerrno nht=1", `plan:2:7: unknown key "nht" (expected one of: op, path, off, minlen, pid, nth, after, every, p, errno, drop, keep, from, sectors, sector, then, bit, delay, jitter, count, state)`},
		{"eio\neio\neio op=write nth=x", `plan:3:14: bad value for nth: "x" (expected a positive integer)`},
		{"eio nth=0", `plan:1:5: bad value for nth: "0" (expected a positive integer)`},
		{"eio nth=-1", `plan:1:5: bad value for nth: "-1" (expected a positive integer)`},
		{"eio nth=+1", `plan:1:5: bad value for nth: "+1" (expected a positive integer)`},
		{"eio after=x", `plan:1:5: bad value for after: "x" (expected a non-negative integer (matches to skip) or a positive Go duration such as 2s (time since the plan was loaded))`},
		{"eio after=0s", `plan:1:5: bad value for after: "0s" (expected a non-negative integer (matches to skip) or a positive Go duration such as 2s (time since the plan was loaded))`},
		{"eio after=-2s", `plan:1:5: bad value for after: "-2s" (expected a non-negative integer (matches to skip) or a positive Go duration such as 2s (time since the plan was loaded))`},
		{"powercut keep=some", `plan:1:10: bad value for keep: "some" (expected none, all, random or sectors)`},
		{"powercut keep=512", `plan:1:10: bad value for keep: "512" (expected none, all, random or sectors)`},
		{"powercut sector=512", `plan:1:10: sector= needs keep=sectors (expected e.g. powercut keep=sectors sector=4096)`},
		{"powercut keep=sectors sector=1000", `plan:1:23: bad value for sector: "1000" (expected a power of two from 512 to 1M bytes, such as 512 or 4K)`},
		{"powercut keep=sectors sector=256", `plan:1:23: bad value for sector: "256" (expected a power of two from 512 to 1M bytes, such as 512 or 4K)`},
		{"powercut then=ok", `plan:1:10: key "then" is not allowed with powercut (it is for: torn)`},
		{"powercut drop=unsynced", `plan:1:10: key "drop" is not allowed with powercut (it is for: errno, eio)`},
		{"torn keep=5 from=middle", `plan:1:13: bad value for from: "middle" (expected head (keep the first keep= bytes) or tail (keep the last))`},
		{"torn sectors=all", `plan:1:6: bad value for sectors: "all" (expected random (a seeded subset of the write's sectors is kept))`},
		{"torn sectors=random keep=512", `plan:1:21: keep= cannot be combined with sectors=random (the kept sectors are drawn)`},
		{"torn sectors=random from=tail", `plan:1:21: from= cannot be combined with sectors=random (the kept sectors are drawn)`},
		{"torn keep=512 sector=512", `plan:1:15: sector= needs sectors=random (expected e.g. torn sectors=random sector=512)`},
		{"torn from=tail", `plan:1:1: torn rule needs keep=N or sectors=random (expected the number of bytes of the write to persist)`},
		{"short from=tail", `plan:1:7: key "from" is not allowed with short (it is for: torn)`},
		{"eio drop=unsynced", `plan:1:5: drop=unsynced needs op=fsync (it reverts the unsynced writes of the file whose fsync fails)`},
		{"eio op=fsync|write drop=unsynced", `plan:1:20: drop=unsynced needs op=fsync (it reverts the unsynced writes of the file whose fsync fails)`},
		{"eio op=fsync drop=all", `plan:1:14: bad value for drop: "all" (expected unsynced)`},
		{"eio every=0", `plan:1:5: bad value for every: "0" (expected a positive integer)`},
		{"eio count=-2", `plan:1:5: bad value for count: "-2" (expected a non-negative integer)`},
		{"eio count=99999999999", `plan:1:5: bad value for count: "99999999999" (expected a non-negative integer)`},
		{"op=write eio", `plan:1:1: expected a fault kind before "op=write" (one of: errno, eio, torn, lost, short, flip, delay, powercut)`},
		{"eio op", `plan:1:5: expected key=value, got "op"`},
		{"eio =x", `plan:1:5: expected key=value, got "=x"`},
		{"eio op=wrte", `plan:1:5: unknown op "wrte" (expected one of: any, open, create, read, write, fsync, flush, release, unlink, rename, setattr, truncate, fallocate, getattr, lookup, mkdir, readdir)`},
		{"eio op=read|", `plan:1:5: unknown op "" (expected one of: any, open, create, read, write, fsync, flush, release, unlink, rename, setattr, truncate, fallocate, getattr, lookup, mkdir, readdir)`},
		{"eio op=read|read", `plan:1:5: op "read" listed twice in "read|read"`},
		{"eio op=any|read", `plan:1:5: bad value for op: "any|read" (expected any alone, or ops joined by |)`},
		{"eio path=", `plan:1:5: bad value for path: "" (expected a glob over the base name as in path.Match, such as *.db or *-wal, without /)`},
		{"eio path=db/*.db", `plan:1:5: bad value for path: "db/*.db" (expected a glob over the base name as in path.Match, such as *.db or *-wal, without /)`},
		{"eio path=[x", `plan:1:5: bad value for path: "[x" (expected a glob over the base name as in path.Match, such as *.db or *-wal, without /)`},
		{"eio off=100..0", `plan:1:5: bad value for off: "100..0" (expected N or LO..HI with LO <= HI, sizes in bytes)`},
		{"eio off=..5", `plan:1:5: bad value for off: "..5" (expected N or LO..HI with LO <= HI, sizes in bytes)`},
		{"eio off=-1", `plan:1:5: bad value for off: "-1" (expected N or LO..HI with LO <= HI, sizes in bytes)`},
		{"eio minlen=4X", `plan:1:5: bad value for minlen: "4X" (expected a non-negative size in bytes, optionally with suffix K, KiB, M, MiB, G or GiB)`},
		{"eio minlen=99999999999G", `plan:1:5: bad value for minlen: "99999999999G" (expected a non-negative size in bytes, optionally with suffix K, KiB, M, MiB, G or GiB)`},
		{"eio p=0", `plan:1:5: bad value for p: "0" (expected a probability p with 0 < p <= 1)`},
		{"eio p=1.5", `plan:1:5: bad value for p: "1.5" (expected a probability p with 0 < p <= 1)`},
		{"eio p=NaN", `plan:1:5: bad value for p: "NaN" (expected a probability p with 0 < p <= 1)`},
		{"eio pid=0", `plan:1:5: bad value for pid: "0" (expected a process id, a positive integer)`},
		{"eio state=maybe", `plan:1:5: bad value for state: "maybe" (expected on or off)`},
		{"eio nth=1 nth=2", `plan:1:11: duplicate key "nth" (each key may appear once per rule)`},
		{"eio errno=EIO", `plan:1:5: key "errno" is not allowed with eio (it is for: errno)`},
		{"eio keep=1", `plan:1:5: key "keep" is not allowed with eio (it is for: torn, short, powercut)`},
		{"lost keep=1", `plan:1:6: key "keep" is not allowed with lost (it is for: torn, short, powercut)`},
		{"short then=ok", `plan:1:7: key "then" is not allowed with short (it is for: torn)`},
		{"errno delay=1s", `plan:1:7: key "delay" is not allowed with errno (it is for: delay)`},
		{"eio bit=1", `plan:1:5: key "bit" is not allowed with eio (it is for: flip)`},
		{"errno op=write", `plan:1:1: errno rule needs errno=NAME (expected e.g. errno=ENOSPC)`},
		{"errno errno=EFOO", `plan:1:7: unknown errno "EFOO" (expected a name such as EIO, ENOSPC, EDQUOT, EROFS, EAGAIN; see plan.ErrnoNames)`},
		{"  torn op=write", `plan:1:3: torn rule needs keep=N or sectors=random (expected the number of bytes of the write to persist)`},
		{"torn keep=1 then=maybe", `plan:1:13: bad value for then: "maybe" (expected ok or an errno name such as EIO)`},
		{"torn op=read keep=1", `plan:1:6: op read is not allowed with torn (expected op=write)`},
		{"lost op=read", `plan:1:6: op read is not allowed with lost (expected op=write|fsync)`},
		{"short op=write|read", `plan:1:7: op write is not allowed with short (expected op=read)`},
		{"flip op=open", `plan:1:6: op open is not allowed with flip (expected op=read|write)`},
		{"delay op=fsync", `plan:1:1: delay rule needs delay=DURATION (expected e.g. delay=10ms)`},
		{"delay delay=0s", `plan:1:7: bad value for delay: "0s" (expected a positive Go duration such as 10ms or 1.5s)`},
		{"delay delay=10", `plan:1:7: bad value for delay: "10" (expected a positive Go duration such as 10ms or 1.5s)`},
		{"delay delay=1s jitter=-1s", `plan:1:16: bad value for jitter: "-1s" (expected a non-negative Go duration such as 5ms)`},
		{"flip bit=-1", `plan:1:6: bad value for bit: "-1" (expected a bit index, a non-negative integer)`},
	} {
		_, err := Parse(tc.src)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q): got %v, want a *ParseError", tc.src, err)
			continue
		}
		if got := pe.Error(); got != tc.want {
			t.Errorf("Parse(%q):\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}

func TestParseErrorList(t *testing.T) {
	_, err := Parse("eio\ntron\neio\neio nth=x\n")
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("got %v (%T), want an ErrorList of 2", err, err)
	}
	want := "plan:2:1: unknown fault kind \"tron\" (expected one of: errno, eio, torn, lost, short, flip, delay, powercut)\n" +
		"plan:4:5: bad value for nth: \"x\" (expected a positive integer)"
	if err.Error() != want {
		t.Fatalf("got\n%s\nwant\n%s", err, want)
	}
	var first *ParseError
	if !errors.As(err, &first) || first.Line != 2 || first.Col != 1 {
		t.Fatalf("errors.As first = %+v", first)
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "bad.plan")
	if err := os.WriteFile(name, []byte("# c\neio nth=x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ParseFile(name)
	want := name + `:2:5: bad value for nth: "x" (expected a positive integer)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if _, err := ParseFile(filepath.Join(dir, "missing.plan")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestErrnoTable(t *testing.T) {
	for _, name := range []string{"EIO", "ENOSPC", "EDQUOT", "EROFS", "EAGAIN", "EACCES", "EPERM", "ENOENT",
		"EBUSY", "EINTR", "ENXIO", "EREMOTEIO", "EFBIG", "ETIMEDOUT"} {
		e, ok := ParseErrno(strings.ToLower(name))
		if !ok {
			t.Errorf("ParseErrno(%q) not found", strings.ToLower(name))
			continue
		}
		if got := ErrnoName(e); got != name {
			t.Errorf("ErrnoName(%d) = %q, want %q", e, got, name)
		}
	}
	// Aliases are accepted but print under their canonical name.
	for alias, canon := range map[string]string{"EWOULDBLOCK": "EAGAIN", "ENOTSUP": "EOPNOTSUPP", "EDEADLOCK": "EDEADLK"} {
		e, ok := ParseErrno(alias)
		if !ok || ErrnoName(e) != canon {
			t.Errorf("alias %s: %v %q, want %s", alias, ok, ErrnoName(e), canon)
		}
	}
	if ErrnoName(syscall.Errno(9999)) != "" {
		t.Errorf("unknown errno has a name")
	}
}

// checkRoundTrip asserts that a parsable src survives printing and
// re-parsing, and that printing is idempotent.
func checkRoundTrip(t *testing.T, src string) {
	t.Helper()
	p1, err := Parse(src)
	if err != nil {
		return
	}
	s1 := p1.String()
	p2, err := Parse(s1)
	if err != nil {
		t.Fatalf("canonical form of %q does not parse: %v\n%s", src, err, s1)
	}
	if !reflect.DeepEqual(p1, p2) {
		t.Fatalf("round trip of %q differs:\n%#v\n%#v", src, p1, p2)
	}
	if s2 := p2.String(); s2 != s1 {
		t.Fatalf("String not idempotent for %q:\n%s\n%s", src, s1, s2)
	}
}

func TestRoundTripTable(t *testing.T) {
	for _, src := range []string{
		issueExamples,
		"",
		"# only a comment\n",
		"flip op=write path=*-wal off=32..4K minlen=1K pid=7 nth=3 after=2 every=5 p=0.125 count=9 state=off",
		"delay delay=1m jitter=1ns",
		"torn keep=0 then=ENOSPC op=write\nlost\nshort keep=1M\nerrno errno=eRoFs op=open|create|rename",
		"eio p=0.1\neio p=1e-3\neio p=0x1p-4",
		"powercut op=fsync path=*-wal nth=40\npowercut after=2s keep=random\npowercut after=90s op=write keep=sectors sector=4K count=0",
		"torn keep=1 from=tail then=EDQUOT\ntorn sectors=random sector=1M\neio op=fsync drop=unsynced after=1h",
		"flip op=read path=kanban.db off=0..15 pid={pid:gateway-1} bit=0\ntorn off={dbsize}..1G keep=512\neio off={dbpages}..{dbsize}\neio off={dbsize}..{dbsize}",
	} {
		checkRoundTrip(t, src)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(issueExamples)
	f.Add("flip op=write path=*-wal off=32..4K minlen=1K pid=7 nth=3 after=2 every=5 p=0.125 count=9 state=off")
	f.Add("delay delay=1m jitter=1ns # c\ntorn keep=0 then=ENOSPC")
	f.Add("eio p=0x1p-4 path=[a-z]*")
	f.Add("powercut op=fsync path=*-wal nth=40 keep=sectors sector=4K\npowercut after=2s count=0")
	f.Add("torn sectors=random sector=512 then=EIO\ntorn keep=8 from=tail\neio op=fsync drop=unsynced after=1ms")
	f.Add("short pid={pid:writer-1} keep=0\ntorn off={dbsize}..1G keep=1\neio off=0..{dbpages} pid={pid:a.b_c-1}")
	if files, _ := filepath.Glob("../../testdata/plans/*.plan"); len(files) > 0 {
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(string(b))
			}
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		checkRoundTrip(t, src)
	})
}

// TestDocExamples parses every example line of the Grammar section of
// doc.go, so the documentation never shows a rule Parse rejects.
func TestDocExamples(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(src), "Examples:\n")
	block, _, _ := strings.Cut(rest, "\n//\n// # Kinds")
	n := 0
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimPrefix(strings.TrimPrefix(line, "//"), "\t")
		if strings.TrimSpace(line) == "" {
			continue
		}
		n++
		if _, err := Parse(line); err != nil {
			t.Errorf("doc example %q: %v", line, err)
		}
	}
	if n < 12 {
		t.Fatalf("found %d example lines in doc.go, want at least 12", n)
	}
}
