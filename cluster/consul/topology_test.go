package consul

import (
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
)

func ids(ms []*cluster.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Id)
	}
	return out
}

func members(names ...string) []*cluster.Member {
	var out []*cluster.Member
	for _, n := range names {
		out = append(out, &cluster.Member{Id: n, Host: "127.0.0.1", Port: 1})
	}
	return out
}

// An agent that restarted with its state lost reports nobody until the members
// have registered again: within the grace that follows an interrupted watch, a
// member that vanished is kept, so that its peers do not block it for good.
func TestTopologyKeepsVanishedMembersThroughTheGraceOnly(t *testing.T) {
	t0 := time.Now()
	top := topology{grace: 3 * time.Second}
	got, changed := top.observe(members("b", "a"), t0)
	if !changed || !slices.Equal(ids(got), []string{"a", "b"}) {
		t.Fatalf("first observation = %v (changed %v), want [a b] applied", ids(got), changed)
	}
	if _, changed := top.observe(members("a", "b"), t0); changed {
		t.Fatal("the same members in another order counted as a change")
	}

	// Without an interruption a member that vanishes leaves at once.
	if got, changed := top.observe(members("a"), t0); !changed || !slices.Equal(ids(got), []string{"a"}) {
		t.Fatalf("b vanished without interruption: %v (changed %v), want [a]", ids(got), changed)
	}
	top.observe(members("a", "b"), t0)

	top.interrupted()
	now := time.Now()
	if got, changed := top.observe(nil, now); changed || !slices.Equal(ids(got), []string{"a", "b"}) {
		t.Fatalf("within the grace: %v (changed %v), want [a b] kept", ids(got), changed)
	}
	if got, changed := top.observe(members("a", "c"), now); !changed || !slices.Equal(ids(got), []string{"a", "b", "c"}) {
		t.Fatalf("a join within the grace: %v (changed %v), want [a b c]", ids(got), changed)
	}
	if left := top.graceLeft(now); left <= 0 || left > 3*time.Second {
		t.Fatalf("grace left = %s", left)
	}
	after := now.Add(4 * time.Second)
	if got, changed := top.observe(members("a", "c"), after); !changed || !slices.Equal(ids(got), []string{"a", "c"}) {
		t.Fatalf("after the grace: %v (changed %v), want b dropped", ids(got), changed)
	}
}

// Before anything was applied there is nothing to keep.
func TestTopologyInterruptedBeforeTheFirstListHasNoGrace(t *testing.T) {
	top := topology{grace: time.Minute}
	top.interrupted()
	if left := top.graceLeft(time.Now()); left > 0 {
		t.Fatalf("grace of %s before any list was applied", left)
	}
}
