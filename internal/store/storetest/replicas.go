package storetest

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

// replicaTests open two stores on one location at once, as replicas sharing a database do. They
// read through one store only what no store caches: the SQLite store caches pipelines' latest
// versions, for a file that only one process writes.
func replicaTests() map[string]func(*testing.T, func() store.Store) {
	return map[string]func(*testing.T, func() store.Store){
		"LeasesAcrossReplicas":        testLeasesAcrossReplicas,
		"LeasesExpire":                testLeasesExpire,
		"ConcurrentAcquiresElectOne":  testConcurrentAcquiresElectOne,
		"ReplicasStepOnePipeline":     testReplicasStepOnePipeline,
		"ReplicasDispatchEachJobOnce": testReplicasDispatchEachJobOnce,
	}
}

// openReplicas opens two stores on one location, both open at once.
func openReplicas(t *testing.T, open func() store.Store) (a, b store.Store) {
	t.Helper()
	return openStore(t, open), openStore(t, open)
}

// acquire asks s for a lease and reports whether holder holds it, retrying while the database
// is too busy to tell (ErrConflict).
func acquire(t *testing.T, s store.Store, name, holder string, ttl time.Duration) bool {
	t.Helper()
	for {
		held, err := s.AcquireLease(ctx, name, holder, ttl)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			t.Error(err)
		}
		return held
	}
}

func testLeasesAcrossReplicas(t *testing.T, open func() store.Store) {
	a, b := openReplicas(t, open)
	const term = time.Minute
	if !acquire(t, a, "sweeper", "replica-a", term) {
		t.Fatal("A could not take a free lease")
	}
	if acquire(t, b, "sweeper", "replica-b", term) {
		t.Fatal("B took the lease A holds")
	}
	if !acquire(t, a, "sweeper", "replica-a", term) {
		t.Fatal("A could not renew the lease it holds")
	}
	// The holder is its id, whichever connection asks.
	if !acquire(t, b, "sweeper", "replica-a", term) {
		t.Fatal("A's id could not renew its lease through B's store")
	}
	// Leases of other names are other leases.
	if !acquire(t, b, "poller", "replica-b", term) {
		t.Fatal("B could not take another lease while A holds one")
	}
	if acquire(t, a, "poller", "replica-a", term) {
		t.Fatal("A took the lease B holds")
	}

	// Only the holder frees a lease.
	must(t, b.ReleaseLease(ctx, "sweeper", "replica-b"))
	if acquire(t, b, "sweeper", "replica-b", term) {
		t.Fatal("a release by another than the holder freed the lease")
	}
	must(t, a.ReleaseLease(ctx, "sweeper", "replica-a"))
	if !acquire(t, b, "sweeper", "replica-b", term) {
		t.Fatal("B could not take the lease A released")
	}
	if acquire(t, a, "sweeper", "replica-a", term) {
		t.Fatal("A took back the lease it released, which B holds now")
	}
	must(t, a.ReleaseLease(ctx, "sweeper", "replica-a"))
	must(t, a.ReleaseLease(ctx, "never-taken", "replica-a"))
	if acquire(t, a, "sweeper", "replica-a", term) {
		t.Fatal("A's second release freed B's lease")
	}

	for _, bad := range []struct {
		name, holder string
		ttl          time.Duration
	}{{"sweeper", "replica-a", 0}, {"sweeper", "replica-a", -time.Second}, {"sweeper", "", term}, {"", "replica-a", term}} {
		if held, err := a.AcquireLease(ctx, bad.name, bad.holder, bad.ttl); err == nil || held {
			t.Errorf("AcquireLease(%q, %q, %v) = %v, %v; want an error", bad.name, bad.holder, bad.ttl, held, err)
		}
	}
}

func testLeasesExpire(t *testing.T, open func() store.Store) {
	a, b := openReplicas(t, open)
	const ttl = 200 * time.Millisecond
	// A short lease renewed for longer outlives its first term: checked once the other expired.
	if !acquire(t, a, "renewed", "replica-a", ttl) || !acquire(t, a, "renewed", "replica-a", time.Minute) {
		t.Fatal("A could not take and renew a lease")
	}

	start := time.Now()
	if !acquire(t, a, "sweeper", "replica-a", ttl) {
		t.Fatal("A could not take a free lease")
	}
	if acquire(t, b, "sweeper", "replica-b", time.Minute) {
		t.Fatal("B took a lease A holds")
	}
	for !acquire(t, b, "sweeper", "replica-b", time.Minute) {
		if time.Since(start) > ttl+10*time.Second {
			t.Fatalf("B could not take A's lease %v after A took it for %v", time.Since(start), ttl)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Expiry is reckoned in whole milliseconds of the database's clock.
	if took := time.Since(start); took < ttl-10*time.Millisecond {
		t.Fatalf("B took A's lease %v after A took it for %v", took, ttl)
	}
	if acquire(t, a, "sweeper", "replica-a", ttl) {
		t.Fatal("A renewed a lease that expired and B took")
	}
	must(t, a.ReleaseLease(ctx, "sweeper", "replica-a"))
	if acquire(t, b, "sweeper", "replica-c", time.Minute) {
		t.Fatal("A's release of its expired lease freed B's")
	}
	if acquire(t, b, "renewed", "replica-b", time.Minute) {
		t.Fatal("a lease renewed for a minute expired with its first term")
	}
}

// testConcurrentAcquiresElectOne has holders on both stores race for leases, free or expired:
// each time, exactly one gets it.
func testConcurrentAcquiresElectOne(t *testing.T, open func() store.Store) {
	a, b := openReplicas(t, open)
	const rounds, holders = 10, 8
	for round := range rounds {
		name := fmt.Sprintf("lease-%d", round)
		if round%2 == 1 {
			// A lease whose holder went away.
			if !acquire(t, a, name, "replica-gone", time.Millisecond) {
				t.Fatalf("round %d: could not take a free lease", round)
			}
			time.Sleep(3 * time.Millisecond)
		}
		start := make(chan struct{})
		var won atomic.Int32
		winner := make([]bool, holders)
		var wg sync.WaitGroup
		for i := range holders {
			s := []store.Store{a, b}[i%2]
			wg.Go(func() {
				<-start
				if acquire(t, s, name, fmt.Sprintf("replica-%d", i), time.Minute) {
					won.Add(1)
					winner[i] = true
				}
			})
		}
		close(start)
		wg.Wait()
		if n := won.Load(); n != 1 {
			t.Fatalf("round %d: %d of %d holders got the lease, want 1", round, n, holders)
		}
		for i, w := range winner {
			if held := acquire(t, []store.Store{b, a}[i%2], name, fmt.Sprintf("replica-%d", i), time.Minute); held != w {
				t.Fatalf("round %d: replica-%d asking again got the lease %v, want %v", round, i, held, w)
			}
		}
	}
}

// testReplicasStepOnePipeline has both stores step one pipeline at once: steps never interleave,
// so each finds the state and token the one before left, and none is lost.
func testReplicasStepOnePipeline(t *testing.T, open func() store.Store) {
	a, b := openReplicas(t, open)
	const workers, steps = 3, 10 // on each store
	var wg sync.WaitGroup
	var conflicts atomic.Int32
	for i := range 2 * workers {
		s := []store.Store{a, b}[i%2]
		wg.Go(func() {
			for range steps {
				for {
					err := s.Step(ctx, "counter", func(cur store.Current) (store.Change, error) {
						state, err := cur.Load()
						if err != nil {
							return store.Change{}, err
						}
						n := 0
						if state.Pipeline != nil {
							if n, err = strconv.Atoi(string(state.Pipeline)); err != nil {
								return store.Change{}, err
							}
						}
						want := "" // the token before the first step
						if n > 0 {
							want = strconv.Itoa(n)
						}
						if cur.Token != want {
							return store.Change{}, fmt.Errorf("a step found token %q with state %d: steps interleaved", cur.Token, n)
						}
						next := strconv.Itoa(n + 1)
						return store.Change{Token: next, State: []byte(next), Events: []store.Event{{
							ExecutionID: "e", Kind: "Counted", Doc: []byte(`{"n":` + next + `}`), At: time.UnixMilli(1700000000000).UTC(),
						}}}, nil
					})
					if errors.Is(err, store.ErrConflict) {
						// The step stored nothing: it is taken again from the state as it is now.
						conflicts.Add(1)
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	const total = 2 * workers * steps
	for _, s := range []store.Store{a, b} {
		state, err := s.State(ctx, "counter")
		must(t, err)
		if string(state.Pipeline) != strconv.Itoa(total) {
			t.Fatalf("counter %s after %d steps (%d conflicts retried): an update was lost", state.Pipeline, total, conflicts.Load())
		}
		events, err := s.ListEvents(ctx, "counter", 0, 0)
		must(t, err)
		if len(events) != total {
			t.Fatalf("%d events after %d steps", len(events), total)
		}
		for i, e := range events {
			if want := fmt.Sprintf(`{"n":%d}`, i+1); string(e.Doc) != want {
				t.Fatalf("event %d is %s, want %s: events are not in the order of their steps", i, e.Doc, want)
			}
		}
	}
}

// testReplicasDispatchEachJobOnce has workers poll both stores for the same queue at once: every
// job is handed out exactly once, and the store keeps the nonce it was handed out with.
func testReplicasDispatchEachJobOnce(t *testing.T, open func() store.Store) {
	a, b := openReplicas(t, open)
	const typeKey, jobs, pollers = "Build/Custom/Make/1", 40, 4 // pollers on each store
	var queued []store.Job
	for i := range jobs {
		queued = append(queued, job(fmt.Sprintf("j%02d", i), typeKey, "", int64(i)))
	}
	must(t, a.Step(ctx, "p", func(store.Current) (store.Change, error) { return store.Change{State: []byte(`{}`), Jobs: queued}, nil }))

	var nonces atomic.Int64
	var mu sync.Mutex
	handedOut := map[string]string{} // job id: nonce
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 * pollers {
		s := []store.Store{a, b}[i%2]
		wg.Go(func() {
			<-start
			for {
				got, err := s.DispatchJobs(ctx, typeKey, "", 3, func() string { return fmt.Sprintf("n%d", nonces.Add(1)) })
				if errors.Is(err, store.ErrConflict) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, j := range got {
					if prev, ok := handedOut[j.ID]; ok {
						t.Errorf("job %s handed out twice, with nonces %s and %s", j.ID, prev, j.Nonce)
					}
					handedOut[j.ID] = j.Nonce
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if len(handedOut) != jobs {
		t.Fatalf("%d of %d jobs handed out", len(handedOut), jobs)
	}
	for id, nonce := range handedOut {
		j, err := b.GetJob(ctx, id)
		must(t, err)
		if j.Status != "Dispatched" || j.Nonce != nonce || j.Dispatches != 1 {
			t.Fatalf("job %s handed out with nonce %s is stored as %s, nonce %s, %d dispatches", id, nonce, j.Status, j.Nonce, j.Dispatches)
		}
	}
}
