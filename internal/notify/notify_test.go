package notify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// wait bounds every wait for a message that should come.
const wait = 10 * time.Second

// recv returns the next message on ch, failing the test if none comes in time.
func recv(t testing.TB, ch <-chan string) string {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(wait):
		t.Fatal("no message came")
		return ""
	}
}

// expect fails unless the next message on ch is want.
func expect(t testing.TB, ch <-chan string, want string) {
	t.Helper()
	if got := recv(t, ch); got != want {
		t.Fatalf("got message %q, want %q", got, want)
	}
}

// empty fails if ch holds a message.
func empty(t testing.TB, ch <-chan string) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("unexpected message %q", m)
	default:
	}
}

// drain returns what ch holds.
func drain(ch <-chan string) []string {
	var out []string
	for {
		select {
		case m := <-ch:
			out = append(out, m)
		default:
			return out
		}
	}
}

func TestInProcessFanOut(t *testing.T) {
	n := NewInProcess(0)
	ctx := context.Background()
	a, stopA := n.Listen("jobs")
	b, stopB := n.Listen("jobs")
	other, stopOther := n.Listen("ended")
	defer stopOther()
	for _, ch := range []<-chan string{a, b, other} {
		expect(t, ch, Resync)
	}
	if err := n.Notify(ctx, "jobs", "Build/AWS/CodeBuild/1"); err != nil {
		t.Fatal(err)
	}
	expect(t, a, "Build/AWS/CodeBuild/1")
	expect(t, b, "Build/AWS/CodeBuild/1")
	empty(t, other)

	stopA()
	stopA() // twice is fine
	if err := n.Notify(ctx, "jobs", "x"); err != nil {
		t.Fatal(err)
	}
	expect(t, b, "x")
	empty(t, a)
	stopB()
	if err := n.Notify(ctx, "jobs", "y"); err != nil {
		t.Fatal(err)
	}
	empty(t, b)

	if err := n.Notify(ctx, "jobs", strings.Repeat("x", MaxPayload+1)); err == nil {
		t.Error("a payload over MaxPayload was sent")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(ctx, "ended", ""); !errors.Is(err, ErrClosed) {
		t.Errorf("Notify after Close: %v, want ErrClosed", err)
	}
	empty(t, other)
	late, stopLate := n.Listen("ended")
	defer stopLate()
	empty(t, late)
}

func TestInProcessOverflow(t *testing.T) {
	n := NewInProcess(3)
	ctx := context.Background()
	slow, stopSlow := n.Listen("jobs")
	defer stopSlow()
	fast, stopFast := n.Listen("jobs")
	defer stopFast()
	expect(t, fast, Resync)
	for i := range 10 {
		payload := string(rune('a' + i))
		if err := n.Notify(ctx, "jobs", payload); err != nil {
			t.Fatal(err)
		}
		expect(t, fast, payload)
	}
	got := drain(slow)
	if len(got) == 0 || len(got) > 3 || !contains(got, Resync) {
		t.Fatalf("a listener whose buffer overflowed holds %q, want a Resync among at most 3", got)
	}
	// It hears what follows.
	if err := n.Notify(ctx, "jobs", "z"); err != nil {
		t.Fatal(err)
	}
	expect(t, slow, "z")
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestScoped(t *testing.T) {
	n := NewInProcess(0)
	ctx := context.Background()
	// "a/b" + "c" and "a" + "b/c" are different topics.
	ab := Scoped(n, "a/b")
	a := Scoped(n, "a")
	abc, stop1 := ab.Listen("c")
	defer stop1()
	a_bc, stop2 := a.Listen("b/c")
	defer stop2()
	plain, stop3 := n.Listen("c")
	defer stop3()
	for _, ch := range []<-chan string{abc, a_bc, plain} {
		expect(t, ch, Resync)
	}
	if err := ab.Notify(ctx, "c", "1"); err != nil {
		t.Fatal(err)
	}
	expect(t, abc, "1")
	empty(t, a_bc)
	empty(t, plain)
	if err := a.Notify(ctx, "b/c", "2"); err != nil {
		t.Fatal(err)
	}
	expect(t, a_bc, "2")
	empty(t, abc)
	empty(t, plain)
}

func TestChannelName(t *testing.T) {
	long := strings.Repeat("s", 60) + "/jobs"
	long2 := strings.Repeat("s", 61) + "/jobs"
	for _, c := range []struct {
		topic string
		same  bool
	}{
		{"sluice_test_1234abcd/jobs", true},
		{`A "quoted" Topic; DROP`, true},
		{strings.Repeat("x", 63), true},
		{strings.Repeat("x", 64), false},
		{long, false},
		{"", false},
		{"#hash-like", false},
		{"nul\x00inside", false},
		{"bad utf-8 \xff", false},
	} {
		got := channelName(c.topic)
		if (got == c.topic) != c.same {
			t.Errorf("channelName(%q) = %q", c.topic, got)
		}
		if len(got) > maxChannel || got == "" {
			t.Errorf("channelName(%q) = %q: %d bytes", c.topic, got, len(got))
		}
	}
	if channelName(long) == channelName(long2) {
		t.Error("two long topics have one channel")
	}
	if got := channelName(long); !strings.HasPrefix(got, "#") || !strings.HasSuffix(got, "/jobs") {
		t.Errorf("channelName(%q) = %q: want a hash, then the topic's end", long, got)
	}
}
