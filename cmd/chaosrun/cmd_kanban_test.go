package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func kanbanRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	rc := runKanban(context.Background(), args, &out, &errb)
	return rc, out.String(), errb.String()
}

func TestKanbanCLICreateClaimComplete(t *testing.T) {
	for _, drv := range []string{"modernc", "mattn"} {
		t.Run(drv, func(t *testing.T) {
			dir := t.TempDir()
			g := []string{"--board", dir, "--driver", drv}
			if rc, out, errs := kanbanRun(t, append(g, "init")...); rc != 0 || !strings.Contains(out, "initialised") {
				t.Fatalf("init rc=%d out=%q err=%q", rc, out, errs)
			}
			rc, out, errs := kanbanRun(t, append(g, "--json", "create", "--title", "p", "--assignee", "Alice")...)
			if rc != 0 {
				t.Fatalf("create rc=%d %s", rc, errs)
			}
			var task struct{ ID, Status, Assignee string }
			if err := json.Unmarshal([]byte(out), &task); err != nil || task.Status != "ready" || task.Assignee != "alice" {
				t.Fatalf("create json %q: %v", out, err)
			}
			rc, out, _ = kanbanRun(t, append(g, "create", "--title", "c", "--parent", task.ID)...)
			child := strings.Fields(out)[0]
			if rc != 0 || !strings.HasSuffix(strings.TrimSpace(out), "todo") {
				t.Fatalf("child create %q", out)
			}
			if rc, out, _ := kanbanRun(t, append(g, "claim", child)...); rc != 1 || !strings.HasPrefix(out, "not claimed") {
				t.Fatalf("claim of a todo child rc=%d %q", rc, out)
			}
			if rc, out, errs := kanbanRun(t, append(g, "claim", task.ID, "--claimer", "w:1")...); rc != 0 || !strings.Contains(out, "lock=w:1") {
				t.Fatalf("claim rc=%d %q %q", rc, out, errs)
			}
			if rc, _, _ := kanbanRun(t, append(g, "heartbeat", task.ID, "--claimer", "w:2")...); rc != 1 {
				t.Fatalf("foreign heartbeat rc=%d", rc)
			}
			if rc, _, errs := kanbanRun(t, append(g, "complete", task.ID, "--result", "ok")...); rc != 0 {
				t.Fatalf("complete rc=%d %s", rc, errs)
			}
			rc, out, _ = kanbanRun(t, append(g, "list", "--all")...)
			if rc != 0 || !strings.Contains(out, task.ID+"\tdone") || !strings.Contains(out, child+"\tready") {
				t.Fatalf("list %q", out)
			}
			rc, out, _ = kanbanRun(t, append(g, "--json", "dispatch-once", "--dry-run")...)
			if rc != 0 || !strings.Contains(out, `"skipped_unassigned":["`+child+`"]`) {
				t.Fatalf("dispatch dry run %q", out)
			}
		})
	}
}

func TestKanbanCLIUsage(t *testing.T) {
	if rc, out, _ := kanbanRun(t, "--help"); rc != 0 || !strings.Contains(out, "Examples:") {
		t.Fatalf("help rc=%d", rc)
	}
	if rc, _, _ := kanbanRun(t); rc != 2 {
		t.Fatalf("no args rc=%d", rc)
	}
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--board", dir, "bogus"},
		{"--board", dir, "create"},
		{"--board", dir, "--profile", "nope", "list"},
		{"--board", dir, "--set", "no_such_switch=1", "list"},
		{"--board", dir, "--driver", "x", "list"},
		{"--board", dir, "claim"},
		{"--board", dir, "dispatch-once"},
	} {
		if rc, _, errs := kanbanRun(t, args...); rc != 2 {
			t.Errorf("%v: rc=%d (%s)", args, rc, errs)
		}
	}
	// --set with a valid switch is accepted.
	if rc, _, errs := kanbanRun(t, "--board", dir, "--profile", "legacy", "--set", "corrupt_latch=quarantine", "init"); rc != 0 {
		t.Fatalf("legacy init rc=%d %s", rc, errs)
	}
}

func TestKanbanCLIPromoteReviewGuard(t *testing.T) {
	dir := t.TempDir()
	g := []string{"--board", dir}
	if rc, _, errs := kanbanRun(t, append(g, "init")...); rc != 0 {
		t.Fatalf("init: %s", errs)
	}
	_, out, _ := kanbanRun(t, append(g, "create", "--title", "p", "--assignee", "alice")...)
	p := strings.Fields(out)[0]
	_, out, _ = kanbanRun(t, append(g, "create", "--title", "c", "--assignee", "alice", "--parent", p)...)
	c := strings.Fields(out)[0]
	if rc, out, errs := kanbanRun(t, append(g, "promote", c)...); rc == 0 || !strings.Contains(out+errs, "parents not done") {
		t.Fatalf("promote with an unfinished parent rc=%d %q %q", rc, out, errs)
	}
	if rc, out, _ := kanbanRun(t, append(g, "request-review", p)...); rc != 0 || !strings.HasPrefix(out, "review requested") {
		t.Fatalf("request-review rc=%d %q", rc, out)
	}
	rc, out, errs := kanbanRun(t, append(g, "dispatch-once", "--dry-run")...)
	if rc != 0 || !strings.Contains(out, "would spawn "+p) {
		t.Fatalf("dry-run dispatch of the review task rc=%d %q %q", rc, out, errs)
	}
	rc, out, _ = kanbanRun(t, append(g, "dispatch-once", "--dry-run", "--no-review-dispatch")...)
	if rc != 0 || strings.Contains(out, "would spawn "+p) {
		t.Fatalf("--no-review-dispatch rc=%d %q", rc, out)
	}
}
