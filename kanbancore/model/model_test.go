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

func TestCrashCountsFailuresAndTripsBreaker(t *testing.T) {
	b := New()
	if err := b.Create("a", nil, false, false, 0); err != nil {
		t.Fatal(err)
	}
	if b.Crash("a", "h:1", 0) {
		t.Fatal("crash of a ready task")
	}
	b.Claim("a", "other:2")
	if b.Crash("a", "h:1", 0) {
		t.Fatal("crash of a task held by another host")
	}
	b.Heartbeat("a", "other:2")
	b.Block("a", "")
	b.Unblock("a") // sticky cleared, counter reset
	for i := 1; i <= 2; i++ {
		if !b.Claim("a", "h:1") || !b.Crash("a", "h:1", 0) {
			t.Fatalf("round %d: claim/crash refused (%+v)", i, b.Task("a"))
		}
		if got := b.Task("a"); got.Failures != i || got.OpenRun {
			t.Fatalf("round %d: %+v", i, got)
		}
	}
	if got := b.Task("a"); got.Status != "blocked" {
		t.Fatalf("breaker did not trip at the default limit 2: %+v", got)
	}
	if n := b.Recompute(0); n != 0 {
		t.Fatal("recompute promoted a task at its failure limit")
	}
	if n := b.Recompute(3); n != 1 || b.Task("a").Failures != 2 {
		t.Fatalf("a higher dispatcher limit should promote and keep the counter: %+v", b.Task("a"))
	}
}

func TestReviewAndPromote(t *testing.T) {
	b := New()
	b.Create("p", nil, false, false, 0)
	b.Create("c", []string{"p"}, false, false, 0)
	if ok, err := b.Promote("c"); ok || err != ErrParents {
		t.Fatalf("promote with an unfinished parent: %v %v", ok, err)
	}
	if !b.RequestReview("p") || b.Task("p").Status != "review" {
		t.Fatal("ready → review refused")
	}
	if !b.ClaimReview("p", "h:1") || b.ClaimReview("p", "h:2") || b.Task("p").Runs != 1 {
		t.Fatalf("claim_review: %+v", b.Task("p"))
	}
	b.Complete("p")
	if got := b.Task("c").Status; got != "ready" {
		t.Fatalf("child after parent done: %s", got)
	}
}
