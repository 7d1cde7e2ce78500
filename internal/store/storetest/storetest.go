// Package storetest is the test suite every store.Store implementation must pass.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

// NewLocation prepares an empty database for one test and returns a function that opens a store
// on it; calling that function again opens the same data, whether the stores it opened before are
// closed or not: two open at once are two replicas sharing the database.
type NewLocation func(t *testing.T) (open func() store.Store)

// Run runs the suite.
func Run(t *testing.T, newLocation NewLocation) {
	tests := map[string]func(*testing.T, func() store.Store){
		"PipelineLifecycle":          testPipelineLifecycle,
		"PipelineVersions":           testPipelineVersions,
		"ConcurrentUpdatesLoseNone":  testConcurrentUpdates,
		"ListPipelinesPages":         testListPipelinesPages,
		"PipelineQuota":              testPipelineQuota,
		"CreateWithFirstStep":        testCreateWithFirstStep,
		"ConcurrentCreatesKeepQuota": testConcurrentCreatesKeepQuota,
		"ConcurrentWritesFailAlone":  testConcurrentWritesFailAlone,
		"ReadsSeeAcknowledgedWrites": testReadsSeeAcknowledgedWrites,
		"ActionTypes":                testActionTypes,
		"Webhooks":                   testWebhooks,
		"Tags":                       testTags,
		"Secret":                     testSecret,
		"Claim":                      testClaim,
		"SourceTags":                 testSourceTags,
		"SurvivesReopen":             testSurvivesReopen,
		"Ready":                      testReady,
	}
	for name, test := range runtimeTests() {
		tests[name] = test
	}
	for name, test := range replicaTests() {
		tests[name] = test
	}
	for name, test := range tests {
		t.Run(name, func(t *testing.T) {
			open := newLocation(t)
			test(t, open)
		})
	}
}

var ctx = context.Background()

func openStore(t *testing.T, open func() store.Store) store.Store {
	t.Helper()
	s := open()
	t.Cleanup(func() { s.Close() })
	return s
}

func pipeline(name string, version int) store.Pipeline {
	now := time.UnixMilli(1700000000000).UTC()
	return store.Pipeline{
		Name: name, Version: version, Generation: "gen-" + name, PipelineType: "V2", ExecutionMode: "QUEUED",
		Declaration: fmt.Appendf(nil, `{"name":%q,"version":%d}`, name, version),
		Created:     now, Updated: now.Add(time.Duration(version) * time.Second),
	}
}

func arn(name string) string { return "arn:aws:codepipeline:us-east-1:000000000000:" + name }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

func testPipelineLifecycle(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	p := pipeline("alpha", 1)
	polling := time.UnixMilli(1700000000500).UTC()
	p.PollingDisabledAt = &polling
	must(t, s.CreatePipeline(ctx, p, arn("alpha"), []store.Tag{{Key: "team", Value: "a"}}, 0, nil))
	wantErr(t, s.CreatePipeline(ctx, pipeline("alpha", 1), arn("alpha"), nil, 0, nil), store.ErrExists)

	got, err := s.GetPipeline(ctx, "alpha", 0)
	must(t, err)
	if got.Name != "alpha" || got.Version != 1 || got.Generation != "gen-alpha" || string(got.Declaration) != string(p.Declaration) ||
		!got.Created.Equal(p.Created) || !got.Updated.Equal(p.Updated) || got.PollingDisabledAt == nil || !got.PollingDisabledAt.Equal(polling) ||
		got.PipelineType != "V2" || got.ExecutionMode != "QUEUED" {
		t.Fatalf("GetPipeline = %+v, want %+v", got, p)
	}
	_, err = s.GetPipeline(ctx, "beta", 0)
	wantErr(t, err, store.ErrNotFound)

	must(t, s.DeletePipeline(ctx, "alpha", arn("alpha")))
	_, err = s.GetPipeline(ctx, "alpha", 0)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetPipeline(ctx, "alpha", 1)
	wantErr(t, err, store.ErrNotFound)
	must(t, s.DeletePipeline(ctx, "alpha", arn("alpha")))
	tags, err := s.ListTags(ctx, arn("alpha"), store.Page{})
	must(t, err)
	if len(tags) != 0 {
		t.Fatalf("tags outlived their pipeline: %v", tags)
	}

	must(t, s.CreatePipeline(ctx, pipeline("alpha", 1), arn("alpha"), nil, 0, nil))
	if got, err := s.GetPipeline(ctx, "alpha", 0); err != nil || got.Version != 1 {
		t.Fatalf("re-created pipeline: %+v, %v", got, err)
	}
}

func testPipelineVersions(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	must(t, s.CreatePipeline(ctx, pipeline("p", 1), arn("p"), nil, 0, nil))
	must(t, s.UpdatePipeline(ctx, pipeline("p", 2)))
	must(t, s.UpdatePipeline(ctx, pipeline("p", 3)))
	wantErr(t, s.UpdatePipeline(ctx, pipeline("p", 3)), store.ErrConflict)
	wantErr(t, s.UpdatePipeline(ctx, pipeline("nope", 2)), store.ErrNotFound)

	for v := 1; v <= 3; v++ {
		got, err := s.GetPipeline(ctx, "p", v)
		must(t, err)
		if got.Version != v || got.Generation != "gen-p" || string(got.Declaration) != string(pipeline("p", v).Declaration) {
			t.Fatalf("version %d: %+v", v, got)
		}
	}
	latest, err := s.GetPipeline(ctx, "p", 0)
	must(t, err)
	if latest.Version != 3 {
		t.Fatalf("latest version %d, want 3", latest.Version)
	}
	_, err = s.GetPipeline(ctx, "p", 4)
	wantErr(t, err, store.ErrVersionNotFound)
}

// testConcurrentUpdates has writers race read-modify-write cycles; every acknowledged update must
// become a version of its own.
func testConcurrentUpdates(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	must(t, s.CreatePipeline(ctx, pipeline("p", 1), arn("p"), nil, 0, nil))
	const writers, updatesEach = 6, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for range updatesEach {
				for {
					cur, err := s.GetPipeline(ctx, "p", 0)
					if err != nil {
						errs <- err
						return
					}
					err = s.UpdatePipeline(ctx, pipeline("p", cur.Version+1))
					if errors.Is(err, store.ErrConflict) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	latest, err := s.GetPipeline(ctx, "p", 0)
	must(t, err)
	if want := 1 + writers*updatesEach; latest.Version != want {
		t.Fatalf("latest version %d, want %d", latest.Version, want)
	}
	for v := 1; v <= latest.Version; v++ {
		if _, err := s.GetPipeline(ctx, "p", v); err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
	}
}

func testListPipelinesPages(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	names := []string{"B", "a", "a-1", "a.2", "b", "c_3"}
	for _, n := range names {
		must(t, s.CreatePipeline(ctx, pipeline(n, 1), arn(n), nil, 0, nil))
	}
	var got []string
	after := ""
	for {
		page, err := s.ListPipelines(ctx, store.Page{After: after, Limit: 4})
		must(t, err)
		for _, p := range page {
			if p.Declaration != nil || p.Version != 1 || p.Generation != "gen-"+p.Name || p.PipelineType != "V2" {
				t.Fatalf("summary %+v", p)
			}
			got = append(got, p.Name)
		}
		if len(page) < 4 {
			break
		}
		after = page[len(page)-1].Name
	}
	want := []string{"B", "a", "a-1", "a.2", "b", "c_3"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("listed %v, want %v (byte order)", got, want)
	}
}

// testCreateWithFirstStep: a pipeline and the first step of its executions are stored together,
// or neither is.
func testCreateWithFirstStep(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	boom := errors.New("boom")
	failing := func(store.Current) (store.Change, error) { return store.Change{}, boom }
	wantErr(t, s.CreatePipeline(ctx, pipeline("failed", 1), arn("failed"), []store.Tag{{Key: "k", Value: "v"}}, 0, failing), boom)
	_, err := s.GetPipeline(ctx, "failed", 0)
	wantErr(t, err, store.ErrNotFound)
	if tags, _ := s.ListTags(ctx, arn("failed"), store.Page{}); len(tags) != 0 {
		t.Fatalf("a failed create left tags %v", tags)
	}

	first := func(cur store.Current) (store.Change, error) {
		if st, err := cur.Load(); err != nil || st.Pipeline != nil {
			return store.Change{}, fmt.Errorf("a new pipeline's first step found state %v, %v", st, err)
		}
		return store.Change{Token: "t1", State: []byte(`{"first":true}`), ExecutionStates: map[string][]byte{"e1": []byte(`{"e":1}`)}, Active: true}, nil
	}
	must(t, s.CreatePipeline(ctx, pipeline("started", 1), arn("started"), nil, 0, first))
	st, err := s.State(ctx, "started")
	must(t, err)
	if string(st.Pipeline) != `{"first":true}` || string(st.Executions["e1"]) != `{"e":1}` {
		t.Fatalf("state after create %s %v", st.Pipeline, st.Executions)
	}
}

func testPipelineQuota(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	must(t, s.CreatePipeline(ctx, pipeline("one", 1), arn("one"), nil, 2, nil))
	must(t, s.CreatePipeline(ctx, pipeline("two", 1), arn("two"), nil, 2, nil))
	wantErr(t, s.CreatePipeline(ctx, pipeline("three", 1), arn("three"), nil, 2, nil), store.ErrLimitExceeded)
}

func testConcurrentCreatesKeepQuota(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	const quota, tries = 5, 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := range tries {
		wg.Go(func() {
			err := s.CreatePipeline(ctx, pipeline(fmt.Sprintf("p%02d", i), 1), arn(fmt.Sprintf("p%02d", i)), nil, quota, nil)
			if err == nil {
				mu.Lock()
				created++
				mu.Unlock()
			} else if !errors.Is(err, store.ErrLimitExceeded) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if created != quota {
		t.Fatalf("%d pipelines created under a quota of %d", created, quota)
	}
}

// testConcurrentWritesFailAlone races two creates of each name: whichever fails must leave the
// winner's pipeline and tags whole, though the two may share a batched commit.
func testConcurrentWritesFailAlone(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	const names = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := map[string]string{}
	for i := range names * 2 {
		wg.Go(func() {
			name, attempt := fmt.Sprintf("p%02d", i/2), fmt.Sprint(i%2)
			p := pipeline(name, 1)
			p.Declaration = fmt.Appendf(nil, `{"name":%q,"attempt":%s}`, name, attempt)
			err := s.CreatePipeline(ctx, p, arn(name), []store.Tag{{Key: "attempt", Value: attempt}}, 0, nil)
			if err != nil {
				if !errors.Is(err, store.ErrExists) {
					t.Error(err)
				}
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := winners[name]; ok {
				t.Errorf("%s created twice, by attempts %s and %s", name, prev, attempt)
			}
			winners[name] = attempt
		})
	}
	// Tagging past the limit writes the tags before counting them: all must be undone.
	const tagged = "arn:aws:codepipeline:us-east-1:000000000000:tagged"
	for i := range names {
		wg.Go(func() {
			if err := s.TagResource(ctx, tagged, []store.Tag{{Key: fmt.Sprintf("k%02d", i), Value: "v"}}, 50); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			var many []store.Tag
			for j := range 60 {
				many = append(many, store.Tag{Key: fmt.Sprintf("many-%02d-%02d", i, j), Value: "v"})
			}
			if err := s.TagResource(ctx, tagged, many, 50); !errors.Is(err, store.ErrTooManyTags) {
				t.Errorf("tagging past the limit: %v", err)
			}
		})
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.CreatePipeline(cancelled, pipeline("never", 1), arn("never"), nil, 0, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("create with a cancelled context: %v", err)
	}
	wg.Wait()
	if len(winners) != names {
		t.Fatalf("%d of %d names created", len(winners), names)
	}
	for name, attempt := range winners {
		p, err := s.GetPipeline(ctx, name, 0)
		must(t, err)
		tags, err := s.ListTags(ctx, arn(name), store.Page{})
		must(t, err)
		if want := fmt.Sprintf(`{"name":%q,"attempt":%s}`, name, attempt); string(p.Declaration) != want || len(tags) != 1 || tags[0].Value != attempt {
			t.Errorf("%s: declaration %s, tags %v; want the winner's, attempt %s", name, p.Declaration, tags, attempt)
		}
	}
	wantErr(t, func() error { _, err := s.GetPipeline(ctx, "never", 0); return err }(), store.ErrNotFound)
	tags, err := s.ListTags(ctx, tagged, store.Page{Limit: 1000})
	must(t, err)
	if len(tags) != names {
		t.Fatalf("%d tags on the resource, want the %d that fit", len(tags), names)
	}
}

// testReadsSeeAcknowledgedWrites updates and deletes a pipeline while others read it: once a
// write is acknowledged, no read may show what was there before, whatever a store caches.
func testReadsSeeAcknowledgedWrites(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	must(t, s.CreatePipeline(ctx, pipeline("p", 1), arn("p"), nil, 0, nil))
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.GetPipeline(ctx, "p", 0); err != nil && !errors.Is(err, store.ErrNotFound) {
					t.Error(err)
					return
				}
			}
		})
	}
	for v := 2; v <= 30; v++ {
		must(t, s.UpdatePipeline(ctx, pipeline("p", v)))
		if got, err := s.GetPipeline(ctx, "p", 0); err != nil || got.Version != v {
			t.Fatalf("after version %d was written, the latest read is %d (%v)", v, got.Version, err)
		}
	}
	must(t, s.DeletePipeline(ctx, "p", arn("p")))
	_, err := s.GetPipeline(ctx, "p", 0)
	wantErr(t, err, store.ErrNotFound)
	must(t, s.CreatePipeline(ctx, pipeline("p", 1), arn("p"), nil, 0, nil))
	if got, err := s.GetPipeline(ctx, "p", 0); err != nil || got.Version != 1 {
		t.Fatalf("re-created pipeline reads as version %d (%v)", got.Version, err)
	}
	close(stop)
	readers.Wait()
}

func testActionTypes(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	at := func(id, owner string) store.ActionType {
		return store.ActionType{ID: id, Owner: owner, Declaration: []byte(`{"id":"` + id + `"}`), Created: time.UnixMilli(1700000000000).UTC()}
	}
	const a, b = "Build/Custom/Make/1", "Deploy/Custom/Ship/1"
	must(t, s.CreateActionType(ctx, at(a, "Custom"), "arn:a", []store.Tag{{Key: "k", Value: "v"}}, 2))
	must(t, s.CreateActionType(ctx, at(b, "Custom"), "arn:b", nil, 2))
	wantErr(t, s.CreateActionType(ctx, at(a, "Custom"), "arn:a", nil, 0), store.ErrExists)
	wantErr(t, s.CreateActionType(ctx, at("Test/Custom/T/1", "Custom"), "arn:t", nil, 2), store.ErrLimitExceeded)

	got, err := s.GetActionType(ctx, a)
	must(t, err)
	if got.ID != a || string(got.Declaration) != `{"id":"`+a+`"}` {
		t.Fatalf("GetActionType = %+v", got)
	}
	updated := at(a, "Custom")
	updated.Declaration = []byte(`{"id":"new"}`)
	must(t, s.UpdateActionType(ctx, updated))
	if got, _ := s.GetActionType(ctx, a); string(got.Declaration) != `{"id":"new"}` {
		t.Fatalf("update not stored: %s", got.Declaration)
	}

	must(t, s.DeleteActionType(ctx, a, "arn:a"))
	_, err = s.GetActionType(ctx, a)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.UpdateActionType(ctx, updated), store.ErrNotFound)
	// The tombstone refuses another declaration under the identity.
	wantErr(t, s.CreateActionType(ctx, at(a, "Custom"), "arn:a", nil, 0), store.ErrExists)
	if tags, _ := s.ListTags(ctx, "arn:a", store.Page{}); len(tags) != 0 {
		t.Fatalf("tags outlived the action type: %v", tags)
	}
	// The tombstone does not count against the quota.
	must(t, s.CreateActionType(ctx, at("Test/Custom/T/1", "Custom"), "arn:t", nil, 2))
	// The declaration it had restores it, with the tags given then, within the quota.
	wantErr(t, s.CreateActionType(ctx, updated, "arn:a", nil, 2), store.ErrLimitExceeded)
	must(t, s.CreateActionType(ctx, updated, "arn:a", []store.Tag{{Key: "back", Value: "1"}}, 0))
	if got, err := s.GetActionType(ctx, a); err != nil || string(got.Declaration) != `{"id":"new"}` {
		t.Fatalf("restored action type = %+v, %v", got, err)
	}
	if tags, _ := s.ListTags(ctx, "arn:a", store.Page{}); len(tags) != 1 || tags[0].Key != "back" {
		t.Fatalf("restored action type's tags = %v", tags)
	}
	wantErr(t, s.CreateActionType(ctx, updated, "arn:a", nil, 0), store.ErrExists)
	must(t, s.DeleteActionType(ctx, a, "arn:a"))

	must(t, s.CreateActionType(ctx, at("Build/ThirdParty/X/1", "ThirdParty"), "arn:x", nil, 0))
	list, err := s.ListActionTypes(ctx, "Custom", store.Page{})
	must(t, err)
	if len(list) != 2 || list[0].ID != b || list[1].ID != "Test/Custom/T/1" {
		t.Fatalf("custom list %+v", list)
	}
	all, err := s.ListActionTypes(ctx, "", store.Page{Limit: 2})
	must(t, err)
	rest, err := s.ListActionTypes(ctx, "", store.Page{After: all[1].ID, Limit: 2})
	must(t, err)
	if len(all) != 2 || len(rest) != 1 {
		t.Fatalf("pages %d + %d, want 2 + 1", len(all), len(rest))
	}
}

func testWebhooks(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	hook := func(name, def string) store.Webhook {
		return store.Webhook{Name: name, Definition: []byte(def), URL: "http://h/" + name}
	}
	must(t, s.PutWebhook(ctx, hook("h1", `{"v":1}`), "arn:h1", []store.Tag{{Key: "a", Value: "1"}}, 2, 50))
	must(t, s.PutWebhook(ctx, hook("h1", `{"v":2}`), "arn:h1", []store.Tag{{Key: "b", Value: "2"}}, 2, 50))
	must(t, s.PutWebhook(ctx, hook("h2", `{}`), "arn:h2", nil, 2, 50))
	wantErr(t, s.PutWebhook(ctx, hook("h3", `{}`), "arn:h3", nil, 2, 50), store.ErrLimitExceeded)
	// Replacing one at the quota is fine.
	must(t, s.PutWebhook(ctx, hook("h2", `{"v":3}`), "arn:h2", nil, 2, 50))

	got, err := s.GetWebhook(ctx, "h1")
	must(t, err)
	if string(got.Definition) != `{"v":2}` || got.URL != "http://h/h1" || got.Registered {
		t.Fatalf("GetWebhook = %+v", got)
	}
	if tags, _ := s.ListTags(ctx, "arn:h1", store.Page{}); len(tags) != 2 {
		t.Fatalf("tags %v, want both puts' tags", tags)
	}
	must(t, s.SetWebhookRegistered(ctx, "h1", true))
	if got, _ := s.GetWebhook(ctx, "h1"); !got.Registered {
		t.Fatal("registration not stored")
	}
	wantErr(t, s.SetWebhookRegistered(ctx, "nope", true), store.ErrNotFound)
	if got, _ := s.GetWebhook(ctx, "h1"); got.LastTriggered != nil {
		t.Fatalf("a webhook never triggered has LastTriggered %v", got.LastTriggered)
	}
	at := time.Date(2026, 3, 4, 5, 6, 7, 8_000_000, time.UTC)
	must(t, s.SetWebhookTriggered(ctx, "h1", at))
	if got, _ := s.GetWebhook(ctx, "h1"); got.LastTriggered == nil || !got.LastTriggered.Equal(at) {
		t.Fatalf("LastTriggered %v, want %v", got.LastTriggered, at)
	}
	wantErr(t, s.SetWebhookTriggered(ctx, "nope", at), store.ErrNotFound)
	// Replacing the definition keeps its state: registration and last delivery.
	must(t, s.PutWebhook(ctx, hook("h1", `{"v":4}`), "arn:h1", nil, 2, 50))
	if got, _ := s.GetWebhook(ctx, "h1"); !got.Registered || got.LastTriggered == nil || !got.LastTriggered.Equal(at) || string(got.Definition) != `{"v":4}` {
		t.Fatalf("after a replace: %+v", got)
	}
	must(t, s.SetWebhookRegistered(ctx, "h1", false))
	if got, _ := s.GetWebhook(ctx, "h1"); got.Registered {
		t.Fatal("deregistration not stored")
	}
	must(t, s.SetWebhookRegistered(ctx, "h1", true))

	list, err := s.ListWebhooks(ctx, store.Page{Limit: 1})
	must(t, err)
	if len(list) != 1 || list[0].Name != "h1" {
		t.Fatalf("first page %+v", list)
	}
	must(t, s.DeleteWebhook(ctx, "h1", "arn:h1"))
	_, err = s.GetWebhook(ctx, "h1")
	wantErr(t, err, store.ErrNotFound)
	if tags, _ := s.ListTags(ctx, "arn:h1", store.Page{}); len(tags) != 0 {
		t.Fatalf("tags outlived the webhook: %v", tags)
	}
}

func testTags(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	r := arn("p")
	must(t, s.TagResource(ctx, r, []store.Tag{{Key: "b", Value: "1"}, {Key: "a", Value: "2"}}, 3))
	must(t, s.TagResource(ctx, r, []store.Tag{{Key: "b", Value: "3"}}, 3))
	tags, err := s.ListTags(ctx, r, store.Page{})
	must(t, err)
	if fmt.Sprint(tags) != "[{a 2} {b 3}]" {
		t.Fatalf("tags %v", tags)
	}
	wantErr(t, s.TagResource(ctx, r, []store.Tag{{Key: "c", Value: ""}, {Key: "d", Value: ""}}, 3), store.ErrTooManyTags)
	if tags, _ := s.ListTags(ctx, r, store.Page{}); len(tags) != 2 {
		t.Fatalf("a refused TagResource left %v", tags)
	}
	must(t, s.UntagResource(ctx, r, []string{"a", "missing"}))
	page, err := s.ListTags(ctx, r, store.Page{Limit: 1})
	must(t, err)
	if fmt.Sprint(page) != "[{b 3}]" {
		t.Fatalf("after untag %v", page)
	}
}

func testSecret(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	a, err := s.Secret(ctx, "tokens")
	must(t, err)
	b, err := s.Secret(ctx, "tokens")
	must(t, err)
	c, err := s.Secret(ctx, "other")
	must(t, err)
	if len(a) != 32 || string(a) != string(b) || string(a) == string(c) {
		t.Fatalf("secrets %x %x %x", a, b, c)
	}
}

func testClaim(t *testing.T, open func() store.Store) {
	s := open()
	must(t, s.Claim(ctx, "111111111111"))
	must(t, s.Claim(ctx, "111111111111"))
	must(t, s.Close())
	s = openStore(t, open)
	if err := s.Claim(ctx, "222222222222"); !errors.Is(err, store.ErrOtherAccount) || !strings.Contains(err.Error(), "111111111111") {
		t.Fatalf("claim by another account after reopening: %v, want ErrOtherAccount naming the owner", err)
	}
	must(t, s.Claim(ctx, "111111111111"))
}

func testSourceTags(t *testing.T, open func() store.Store) {
	s := open()
	if _, known, err := s.SourceTags(ctx, "p/Source"); err != nil || known {
		t.Fatalf("tags of a source that saw none: known %v, %v", known, err)
	}
	must(t, s.SetSourceTags(ctx, "p/Source", []byte(`{"v1":"abc"}`)))
	must(t, s.SetSourceTags(ctx, "p/Source", []byte(`{"v1":"abc","v2":"def"}`)))
	must(t, s.SetSourceTags(ctx, "q/Source", []byte(`{}`)))
	must(t, s.Close())
	s = openStore(t, open)
	if doc, known, err := s.SourceTags(ctx, "p/Source"); err != nil || !known || string(doc) != `{"v1":"abc","v2":"def"}` {
		t.Fatalf("tags kept, after reopening: %s, known %v, %v", doc, known, err)
	}
}

func testSurvivesReopen(t *testing.T, open func() store.Store) {
	s := open()
	must(t, s.CreatePipeline(ctx, pipeline("kept", 1), arn("kept"), []store.Tag{{Key: "k", Value: "v"}}, 0, nil))
	must(t, s.UpdatePipeline(ctx, pipeline("kept", 2)))
	secret, err := s.Secret(ctx, "tokens")
	must(t, err)
	must(t, s.Close())

	s = openStore(t, open)
	for v := 1; v <= 2; v++ {
		if _, err := s.GetPipeline(ctx, "kept", v); err != nil {
			t.Fatalf("version %d after reopen: %v", v, err)
		}
	}
	if tags, _ := s.ListTags(ctx, arn("kept"), store.Page{}); len(tags) != 1 {
		t.Fatalf("tags after reopen: %v", tags)
	}
	if again, _ := s.Secret(ctx, "tokens"); string(again) != string(secret) {
		t.Fatal("the secret changed across a reopen")
	}
}

func testReady(t *testing.T, open func() store.Store) {
	s := open()
	secret, err := s.Secret(ctx, "tokens")
	must(t, err)
	for range 3 {
		must(t, s.Ready(ctx))
	}
	if again, _ := s.Secret(ctx, "tokens"); string(again) != string(secret) {
		t.Fatal("Ready changed a secret")
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Ready(done); err == nil {
		t.Error("Ready succeeded with its context done")
	}
	must(t, s.Close())
	if err := s.Ready(ctx); err == nil {
		t.Error("a closed store is ready")
	}
}
