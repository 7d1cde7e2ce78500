package notify

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/store/storetest"
)

// replicas returns two Postgres notifiers on one database, as two replicas hold, and the
// namespace of a fresh schema; both are closed when the test ends.
func replicas(t testing.TB, opts PostgresOptions) (a, b *Postgres, namespace string) {
	t.Helper()
	dbURL := storetest.PostgresURL(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	namespace = u.Query().Get("search_path")
	return newPostgres(t, dbURL, opts), newPostgres(t, dbURL, opts), namespace
}

func newPostgres(t testing.TB, dbURL string, opts PostgresOptions) *Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	p, err := NewPostgres(ctx, dbURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// eventually fails unless cond holds within the bounded wait; it checks every few milliseconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *Postgres) backendPID() uint32 {
	p.hub.mu.Lock()
	defer p.hub.mu.Unlock()
	return p.pid
}

func (p *Postgres) listensOn(topic string) bool {
	p.hub.mu.Lock()
	defer p.hub.mu.Unlock()
	return p.listening[channelName(topic)]
}

// terminate ends the backend of p's listening connection, as a database restart or a network
// failure would.
func terminate(t testing.TB, p *Postgres) {
	t.Helper()
	admin, err := sql.Open("pgx", os.Getenv("SLUICE_TEST_POSTGRES"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	pid := p.backendPID()
	if pid == 0 {
		t.Fatal("the notifier is not connected")
	}
	var ok bool
	if err := admin.QueryRow("SELECT pg_terminate_backend($1)", int32(pid)).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate backend %d: %v, %v", pid, ok, err)
	}
}

func TestPostgresReplicas(t *testing.T) {
	a, b, ns := replicas(t, PostgresOptions{})
	ctx := context.Background()
	na, nb := Scoped(a, ns), Scoped(b, ns)
	jobsA, stopJobsA := na.Listen("jobs")
	defer stopJobsA()
	jobsB, stopJobsB := nb.Listen("jobs")
	defer stopJobsB()
	endedA, stopEndedA := na.Listen("ended")
	defer stopEndedA()
	// Another account's schema on the same database.
	otherA, stopOtherA := Scoped(a, ns+"_account_2").Listen("jobs")
	defer stopOtherA()
	for _, ch := range []<-chan string{jobsA, jobsB, endedA, otherA} {
		expect(t, ch, Resync)
	}

	// Each replica hears the other, and itself.
	if err := nb.Notify(ctx, "jobs", "Build/AWS/CodeBuild/1"); err != nil {
		t.Fatal(err)
	}
	expect(t, jobsA, "Build/AWS/CodeBuild/1")
	expect(t, jobsB, "Build/AWS/CodeBuild/1")
	if err := na.Notify(ctx, "jobs", "Deploy/AWS/S3/1"); err != nil {
		t.Fatal(err)
	}
	expect(t, jobsB, "Deploy/AWS/S3/1")
	expect(t, jobsA, "Deploy/AWS/S3/1")

	// Not another topic's messages, nor another namespace's: notifications are delivered in
	// commit order, so what was sent first would come first.
	if err := nb.Notify(ctx, "ended", "e"); err != nil {
		t.Fatal(err)
	}
	if err := Scoped(b, ns+"_account_2").Notify(ctx, "jobs", "other account"); err != nil {
		t.Fatal(err)
	}
	if err := nb.Notify(ctx, "jobs", "after"); err != nil {
		t.Fatal(err)
	}
	expect(t, jobsA, "after")
	expect(t, jobsB, "after")
	expect(t, endedA, "e")
	expect(t, otherA, "other account")
	empty(t, jobsA)
	empty(t, endedA)
	empty(t, otherA)
}

// Topics that are no valid channel name as they are: too long, odd characters.
func TestPostgresOddTopics(t *testing.T) {
	a, b, ns := replicas(t, PostgresOptions{})
	ctx := context.Background()
	for _, topic := range []string{
		"log/" + strings.Repeat("0123456789abcdef", 4),
		`Mixed Case "quoted"; topic`,
		"#not-a-hash",
		"", // the empty topic
	} {
		ch, stop := Scoped(a, ns).Listen(topic)
		expect(t, ch, Resync)
		if err := Scoped(b, ns).Notify(ctx, topic, "grew"); err != nil {
			t.Fatalf("notify %q: %v", topic, err)
		}
		expect(t, ch, "grew")
		stop()
	}
	if err := Scoped(b, ns).Notify(ctx, "jobs", strings.Repeat("x", MaxPayload)); err != nil {
		t.Errorf("a payload of MaxPayload bytes: %v", err)
	}
	if err := Scoped(b, ns).Notify(ctx, "jobs", strings.Repeat("x", MaxPayload+1)); err == nil {
		t.Error("a payload over MaxPayload was sent")
	}
}

func TestPostgresStop(t *testing.T) {
	a, b, ns := replicas(t, PostgresOptions{})
	ctx := context.Background()
	na, nb := Scoped(a, ns), Scoped(b, ns)
	first, stopFirst := na.Listen("jobs")
	second, stopSecond := na.Listen("jobs")
	expect(t, first, Resync)
	expect(t, second, Resync) // at once: the topic was live already
	stopFirst()
	stopFirst()
	if err := nb.Notify(ctx, "jobs", "x"); err != nil {
		t.Fatal(err)
	}
	// Both would get it in the same delivery.
	expect(t, second, "x")
	empty(t, first)
	if !a.listensOn(ns + "/jobs") {
		t.Fatal("the topic's channel is not listened on while it has a listener")
	}
	stopSecond()
	eventually(t, "UNLISTEN once the last listener stopped", func() bool { return !a.listensOn(ns + "/jobs") })
	if err := nb.Notify(ctx, "jobs", "y"); err != nil {
		t.Fatal(err)
	}
	// Taken again: listened on again, and a Resync.
	again, stopAgain := na.Listen("jobs")
	defer stopAgain()
	expect(t, again, Resync)
	if err := nb.Notify(ctx, "jobs", "z"); err != nil {
		t.Fatal(err)
	}
	expect(t, again, "z")
	empty(t, second)
}

func TestPostgresOverflow(t *testing.T) {
	a, b, ns := replicas(t, PostgresOptions{Buffer: 3})
	ctx := context.Background()
	na, nb := Scoped(a, ns), Scoped(b, ns)
	slow, stopSlow := na.Listen("jobs")
	defer stopSlow()
	fast, stopFast := na.Listen("jobs")
	defer stopFast()
	expect(t, fast, Resync)
	// The slow listener reads nothing: the fast one, on the same notifier, still hears all.
	for i := range 20 {
		payload := string(rune('a' + i))
		if err := nb.Notify(ctx, "jobs", payload); err != nil {
			t.Fatal(err)
		}
		expect(t, fast, payload)
	}
	got := drain(slow)
	if len(got) == 0 || len(got) > 3 || !contains(got, Resync) {
		t.Fatalf("a listener whose buffer overflowed holds %q, want a Resync among at most 3", got)
	}
	if err := nb.Notify(ctx, "jobs", "later"); err != nil {
		t.Fatal(err)
	}
	expect(t, slow, "later")
}

func TestPostgresReconnect(t *testing.T) {
	a, b, ns := replicas(t, PostgresOptions{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	ctx := context.Background()
	na, nb := Scoped(a, ns), Scoped(b, ns)
	jobs, stopJobs := na.Listen("jobs")
	defer stopJobs()
	ended, stopEnded := na.Listen("ended")
	defer stopEnded()
	expect(t, jobs, Resync)
	expect(t, ended, Resync)
	for round := range 3 {
		before := a.backendPID()
		terminate(t, a)
		// Once listening again, every listener is told it may have missed messages...
		expect(t, jobs, Resync)
		expect(t, ended, Resync)
		if pid := a.backendPID(); pid == before || pid == 0 {
			t.Fatalf("round %d: backend %d, was %d: not a new connection", round, pid, before)
		}
		// ...and hears what follows.
		if err := nb.Notify(ctx, "jobs", "after"); err != nil {
			t.Fatal(err)
		}
		expect(t, jobs, "after")
		if err := nb.Notify(ctx, "ended", ""); err != nil {
			t.Fatal(err)
		}
		expect(t, ended, "")
	}
	// A topic first listened to while disconnected: Resync once listening.
	terminate(t, a)
	late, stopLate := na.Listen("late")
	defer stopLate()
	expect(t, late, Resync)
	if err := nb.Notify(ctx, "late", "1"); err != nil {
		t.Fatal(err)
	}
	expect(t, late, "1")
}

func TestPostgresPing(t *testing.T) {
	a, b, ns := replicas(t, PostgresOptions{PingInterval: 10 * time.Millisecond})
	jobs, stop := Scoped(a, ns).Listen("jobs")
	defer stop()
	expect(t, jobs, Resync)
	eventually(t, "pings of a silent connection", func() bool {
		a.hub.mu.Lock()
		defer a.hub.mu.Unlock()
		return a.pings >= 3
	})
	if err := Scoped(b, ns).Notify(context.Background(), "jobs", "x"); err != nil {
		t.Fatal(err)
	}
	expect(t, jobs, "x")
}

// notifyGoroutines counts the goroutines running in this package's Postgres notifier.
func notifyGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "notify.(*Postgres).run(")
}

func TestPostgresClose(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	// Those of the notifiers of earlier tests, closed, end at once (once out of their
	// deferred calls).
	eventually(t, "no listening loop left from earlier tests", func() bool { return notifyGoroutines() == 0 })
	p := newPostgres(t, dbURL, PostgresOptions{})
	ch, stop := p.Listen("jobs")
	defer stop()
	expect(t, ch, Resync)
	if n := notifyGoroutines(); n != 1 {
		t.Fatalf("%d listening loops running, want 1", n)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// Close returned once the loop ended.
	select {
	case <-p.done:
	default:
		t.Fatal("Close returned before the listening loop ended")
	}
	eventually(t, "no listening loop left after Close", func() bool { return notifyGoroutines() == 0 })
	if err := p.Notify(context.Background(), "jobs", "x"); !errors.Is(err, ErrClosed) {
		t.Errorf("Notify after Close: %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
	late, stopLate := p.Listen("jobs")
	defer stopLate()
	empty(t, late)
}

// Close returns at once even while the notifier waits to connect again.
func TestPostgresCloseWhileDisconnected(t *testing.T) {
	p := newPostgres(t, storetest.PostgresURL(t), PostgresOptions{MinBackoff: time.Hour})
	ch, stop := p.Listen("jobs")
	defer stop()
	expect(t, ch, Resync)
	terminate(t, p)
	eventually(t, "the connection's loss noticed", func() bool { return p.backendPID() == 0 })
	closed := make(chan struct{})
	go func() {
		p.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(wait):
		t.Fatal("Close blocks while the notifier waits to reconnect")
	}
}

// Listeners come and go while messages flow: no race, no deadlock.
func TestPostgresChurn(t *testing.T) {
	a, b, ns := replicas(t, PostgresOptions{})
	ctx := context.Background()
	na, nb := Scoped(a, ns), Scoped(b, ns)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			topic := []string{"jobs", "ended"}[i%2]
			for range 20 {
				ch, stop := na.Listen(topic)
				select {
				case <-ch: // Resync, or a message after it
				case <-time.After(wait):
					t.Error("a listener was never told it listens")
				}
				stop()
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			if err := nb.Notify(ctx, "jobs", "x"); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	// Still working.
	ch, stop := na.Listen("jobs")
	defer stop()
	expect(t, ch, Resync)
	if err := nb.Notify(ctx, "jobs", "last"); err != nil {
		t.Fatal(err)
	}
	for recv(t, ch) != "last" {
	}
}

// BenchmarkPostgresRoundTrip measures the latency of a message from one replica to another.
func BenchmarkPostgresRoundTrip(b *testing.B) {
	x, y, ns := replicas(b, PostgresOptions{})
	ctx := context.Background()
	ch, stop := Scoped(y, ns).Listen("jobs")
	defer stop()
	expect(b, ch, Resync)
	nx := Scoped(x, ns)
	for b.Loop() {
		if err := nx.Notify(ctx, "jobs", "Build/AWS/CodeBuild/1"); err != nil {
			b.Fatal(err)
		}
		recv(b, ch)
	}
}

func BenchmarkInProcess(b *testing.B) {
	n := NewInProcess(0)
	ctx := context.Background()
	ch, stop := n.Listen("jobs")
	defer stop()
	expect(b, ch, Resync)
	for b.Loop() {
		if err := n.Notify(ctx, "jobs", "Build/AWS/CodeBuild/1"); err != nil {
			b.Fatal(err)
		}
		<-ch
	}
}
