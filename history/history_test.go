package history

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sqlchaos/sqlchaos/internal/reexec"
)

const writerRole = "history-test-writer"

func TestMain(m *testing.M) {
	reexec.Register(writerRole, func(args []string) int {
		w, err := Create(args[0], "killed")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		// About 3 KB per line: 1 MiB (when the test kills the writer) is
		// well over the 100 events it asks for. (NUL padding would be
		// escaped to 18 KB a line and leave fewer than 100.)
		big := &Data{Stdout: strings.Repeat("x", 3000)}
		for i := int64(1); ; i++ {
			if err := w.Write(Event{Type: TypeCommit, Seq: i, Data: big}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	})
	reexec.Init()
	os.Exit(m.Run())
}

func TestWriteStampsAndReadBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	w, err := Create(path, "cli-1")
	if err != nil {
		t.Fatal(err)
	}
	before := Now()
	if err := w.Write(Event{Type: TypeCall, ID: w.NextID(), Op: "create_task"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(Event{Type: TypeSpawn, Pid: 4242, Proc: "dispatcher-x", Task: "t1"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(Event{Type: TypeExit}); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	evs, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2", len(evs))
	}
	e := evs[0]
	if e.Proc != "cli-1" || e.Pid != os.Getpid() || e.T < before || e.T > Now() || e.ID != 1 || e.Op != "create_task" {
		t.Errorf("first event not stamped as expected: %+v", e)
	}
	if evs[1].Pid != 4242 || evs[1].Proc != "dispatcher-x" {
		t.Errorf("explicit Pid/Proc overwritten: %+v", evs[1])
	}
}

func TestConcurrentWritesStayWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.jsonl")
	w, err := Create(path, "p")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	const G, N = 8, 200
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < N; i++ {
				if err := w.Write(Event{Type: TypeCommit, Seq: int64(g*N + i + 1), Err: string(make([]byte, 100*g))}); err != nil {
					t.Error(err)
				}
			}
		}(g)
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	evs, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for _, e := range evs {
		seen[e.Seq] = true
	}
	if len(evs) != G*N || len(seen) != G*N {
		t.Fatalf("got %d events (%d distinct seqs), want %d", len(evs), len(seen), G*N)
	}
}

func TestTruncatedLastLineDropped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.jsonl")
	data := `{"t":5,"proc":"a","pid":1,"type":"call"}` + "\n" + `{"t":6,"proc":"a","pid":1,"ty`
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	evs, err := ReadFile(path)
	if err != nil || len(evs) != 1 || evs[0].T != 5 {
		t.Fatalf("ReadFile = %+v, %v; want the one complete event", evs, err)
	}
	// A malformed line in the middle is corruption, not a kill.
	bad := `{"t":5}` + "\n" + `garbage` + "\n" + `{"t":7}` + "\n"
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(path); err == nil {
		t.Fatal("malformed middle line accepted")
	}
}

func TestReadDirMergesByT(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, ts ...int64) {
		w, err := Create(filepath.Join(dir, name), name)
		if err != nil {
			t.Fatal(err)
		}
		for _, ts := range ts {
			if err := w.Write(Event{T: ts, Type: TypeCall}); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
	}
	write("b.jsonl", 2, 5, 9)
	write("a.jsonl", 1, 5, 7)
	if err := os.WriteFile(filepath.Join(dir, "ignored.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	evs, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%d%s", e.T, e.Proc[:1]))
	}
	want := "[1a 2b 5a 5b 7a 9b]"
	if fmt.Sprint(got) != want {
		t.Fatalf("merge order %v, want %s", got, want)
	}
}

// TestSIGKILLLeavesWholeLines kills a writer process mid-stream and checks
// that the file still reads back as whole events with consecutive seqs.
func TestSIGKILLLeavesWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.jsonl")
	cmd, err := reexec.Command(writerRole, []string{path})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err := os.Stat(path); err == nil && st.Size() > 1<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writer produced less than 1 MiB in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	evs, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) < 100 {
		t.Fatalf("only %d events", len(evs))
	}
	for i, e := range evs {
		if e.Seq != int64(i+1) || e.Proc != "killed" {
			t.Fatalf("event %d: seq %d proc %q; lines lost or interleaved", i, e.Seq, e.Proc)
		}
	}
}
