package model

import (
	"errors"
	"testing"
)

func TestModelBasics(t *testing.T) {
	b := New()
	if err := b.Create("a", nil, false, false, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Create("b", []string{"a"}, false, false, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Create("x", []string{"nope"}, false, false, 0); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown parent: %v", err)
	}
	if got := b.Task("b").Status; got != "todo" {
		t.Fatalf("child %s", got)
	}
	if err := b.Link("b", "a"); !errors.Is(err, ErrCycle) {
		t.Fatalf("cycle: %v", err)
	}
	if b.Claim("b", "w") {
		t.Fatal("claimed a todo child")
	}
	if !b.Claim("a", "w") || !b.Task("a").OpenRun || b.Claim("a", "w") {
		t.Fatal("claim")
	}
	if !b.Heartbeat("a", "w") || b.Heartbeat("a", "v") {
		t.Fatal("heartbeat")
	}
	if !b.Complete("a") || b.Task("b").Status != "ready" || b.Task("a").OpenRun || b.Task("a").Runs != 1 {
		t.Fatalf("complete: %+v %+v", b.Task("a"), b.Task("b"))
	}
	if !b.Block("b", "auth") || b.Task("b").Status != "blocked" {
		t.Fatal("block")
	}
	if b.Recompute(0) != 0 {
		t.Fatal("sticky block undone")
	}
	if !b.Unblock("b") || !b.Block("b", "auth") || b.Task("b").Status != "triage" {
		t.Fatalf("recurrence: %+v", b.Task("b"))
	}
	if !b.Delete("a") || len(b.Links()) != 0 {
		t.Fatal("delete")
	}
}
