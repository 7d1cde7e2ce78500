package connections_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/internal/connections"
	"github.com/sluicehq/sluice/internal/sources"
)

const (
	head = "0123456789abcdef0123456789abcdef01234567"
	base = "89abcdef0123456789abcdef0123456789abcdef"
	zero = "0000000000000000000000000000000000000000"
)

var installation = []byte("installation-secret-never-logged")

// fakeSecrets counts the reads of the installation secret.
type fakeSecrets struct {
	mu    sync.Mutex
	reads int
	err   error
}

func (s *fakeSecrets) Secret(_ context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if name != connections.SecretName {
		return nil, errors.New("unexpected secret " + name)
	}
	if s.err != nil {
		return nil, s.err
	}
	return installation, nil
}

// fakeRecorder keeps the recorded events.
type fakeRecorder struct {
	mu     sync.Mutex
	events []sources.Event
	err    error
}

func (r *fakeRecorder) Record(_ context.Context, e sources.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.events = append(r.events, e)
	return nil
}

func (r *fakeRecorder) take() []sources.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

type env struct {
	url     string
	secrets *fakeSecrets
	rec     *fakeRecorder
	log     *bytes.Buffer
}

func newEnv(t *testing.T, maxBody int64) *env {
	t.Helper()
	e := &env{secrets: &fakeSecrets{}, rec: &fakeRecorder{}, log: &bytes.Buffer{}}
	h := connections.New(connections.Config{Secrets: e.secrets, Recorder: e.rec, PublicURL: "https://sluice.example/", MaxBodyBytes: maxBody,
		Logger: slog.New(slog.NewTextHandler(e.log, nil))})
	mux := http.NewServeMux()
	mux.HandleFunc(connections.WebhookPattern, h.ServeWebhook)
	mux.HandleFunc(connections.SecretPattern, h.ServeSecret)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

func hmacHex(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// post delivers body to connection id's endpoint with headers, answering the status and message.
func (e *env) post(t *testing.T, id, contentType string, body []byte, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+connections.WebhookPath(id), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct{ Message string }
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &answer); err != nil {
		t.Fatalf("answer %d is not JSON {message}: %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, answer.Message
}

// github delivers a JSON payload signed as GitHub signs it.
func (e *env) github(t *testing.T, id, event string, payload any) (int, string) {
	t.Helper()
	body, _ := json.Marshal(payload)
	secret := connections.DeriveSecret(installation, id)
	return e.post(t, id, "application/json", body, map[string]string{
		"X-GitHub-Event": event, "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": "sha256=" + hmacHex(secret, body)})
}

func pushPayload(ref, before, after string) map[string]any {
	return map[string]any{"ref": ref, "before": before, "after": after, "repository": map[string]any{"full_name": "acme/app"},
		"commits": []any{map[string]any{"id": after, "added": []string{"app/new.go"}, "modified": []string{"README.md"}, "removed": []string{}}}}
}

func prPayload(action string) map[string]any {
	return map[string]any{"action": action, "number": 7, "repository": map[string]any{"full_name": "acme/app"},
		"pull_request": map[string]any{"number": 7,
			"base": map[string]any{"ref": "main", "sha": base, "repo": map[string]any{"full_name": "acme/app"}},
			"head": map[string]any{"ref": "feature/x", "sha": head, "repo": map[string]any{"full_name": "acme/app"}}}}
}

func TestPushEvents(t *testing.T) {
	e := newEnv(t, 0)
	status, msg := e.github(t, "c-1", "push", pushPayload("refs/heads/main", base, head))
	if status != http.StatusOK || !strings.Contains(msg, "Accepted") {
		t.Fatalf("push: %d %q", status, msg)
	}
	want := sources.Event{Git: &sources.GitEvent{Connection: "c-1", Repository: "acme/app", Delivery: "d-1",
		Push: &sources.GitPush{Branch: "main", Before: base, After: head, Files: []string{"app/new.go", "README.md"}, FilesListed: true}}}
	if got := e.rec.take(); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("recorded %s, want %s", describe(got), describe([]sources.Event{want}))
	}

	// A new branch (before is the null commit), a tag, and a payload that lists fewer commits
	// than Gitea's total_commits: the files it lists are not all.
	e.github(t, "c-1", "push", pushPayload("refs/heads/feature", zero, head))
	e.github(t, "c-1", "push", pushPayload("refs/tags/v1.0", zero, head))
	partial := pushPayload("refs/heads/main", base, head)
	partial["total_commits"] = 9
	e.github(t, "c-1", "push", partial)
	got := e.take(t, 3)
	if p := got[0].Git.Push; p.Branch != "feature" || p.Before != "" || p.After != head {
		t.Errorf("new branch: %+v", p)
	}
	if p := got[1].Git.Push; p.Tag != "v1.0" || p.Branch != "" || p.After != head {
		t.Errorf("tag: %+v", p)
	}
	if p := got[2].Git.Push; p.FilesListed || p.Files != nil {
		t.Errorf("a payload listing 1 of 9 commits: %+v", p)
	}

	// Deletions and other refs are ignored, and recorded as nothing.
	deleted := pushPayload("refs/heads/gone", head, zero)
	deleted["deleted"] = true
	for _, p := range []map[string]any{deleted, pushPayload("refs/notes/commits", base, head)} {
		if status, msg := e.github(t, "c-1", "push", p); status != http.StatusOK || !strings.HasPrefix(msg, "Ignored") {
			t.Errorf("%v: %d %q", p["ref"], status, msg)
		}
	}
	// Payloads that cannot be read are refused.
	noRepo := pushPayload("refs/heads/main", base, head)
	delete(noRepo, "repository")
	for name, p := range map[string]any{"no repository": noRepo, "after not a commit": pushPayload("refs/heads/main", base, "HEAD"), "not an object": []int{1}} {
		if status, _ := e.github(t, "c-1", "push", p); status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, status)
		}
	}
	if got := e.rec.take(); len(got) != 0 {
		t.Fatalf("recorded %s", describe(got))
	}
}

func (e *env) take(t *testing.T, n int) []sources.Event {
	t.Helper()
	got := e.rec.take()
	if len(got) != n {
		t.Fatalf("recorded %d events, want %d: %s", len(got), n, describe(got))
	}
	return got
}

func describe(events []sources.Event) string {
	raw, _ := json.Marshal(events)
	return string(raw)
}

func TestPullRequestEvents(t *testing.T) {
	e := newEnv(t, 0)
	for action, want := range map[string]string{"opened": "OPEN", "reopened": "OPEN", "synchronize": "UPDATED", "synchronized": "UPDATED", "closed": "CLOSED"} {
		if status, msg := e.github(t, "c-1", "pull_request", prPayload(action)); status != http.StatusOK {
			t.Fatalf("%s: %d %q", action, status, msg)
		}
		got := e.take(t, 1)[0].Git
		wantPR := &sources.GitPullRequest{Number: 7, Event: want, BaseBranch: "main", BaseCommit: base, HeadBranch: "feature/x", HeadCommit: head, HeadRepository: "acme/app"}
		if got.Connection != "c-1" || got.Repository != "acme/app" || got.Push != nil || !reflect.DeepEqual(got.PullRequest, wantPR) {
			t.Errorf("%s recorded %+v %+v", action, got, got.PullRequest)
		}
	}
	for _, action := range []string{"edited", "labeled", "assigned", "review_requested", "converted_to_draft"} {
		if status, msg := e.github(t, "c-1", "pull_request", prPayload(action)); status != http.StatusOK || !strings.HasPrefix(msg, "Ignored") {
			t.Errorf("%s: %d %q", action, status, msg)
		}
	}
	bad := prPayload("opened")
	bad["pull_request"].(map[string]any)["head"].(map[string]any)["sha"] = "feature"
	if status, _ := e.github(t, "c-1", "pull_request", bad); status != http.StatusBadRequest {
		t.Errorf("a head that is no commit: %d", status)
	}
	// ping answers 200; other events are ignored.
	if status, msg := e.github(t, "c-1", "ping", map[string]any{"zen": "Design for failure.", "hook_id": 1}); status != http.StatusOK || !strings.Contains(msg, "Pong") {
		t.Errorf("ping: %d %q", status, msg)
	}
	if status, msg := e.github(t, "c-1", "issues", map[string]any{"action": "opened"}); status != http.StatusOK || !strings.HasPrefix(msg, "Ignored") {
		t.Errorf("issues: %d %q", status, msg)
	}
	e.take(t, 0)
}

func TestSignatures(t *testing.T) {
	e := newEnv(t, 0)
	body, _ := json.Marshal(prPayload("opened"))
	secret := connections.DeriveSecret(installation, "c-1")
	good := hmacHex(secret, body)
	other := hmacHex(connections.DeriveSecret(installation, "c-2"), body)
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"GitHub", map[string]string{"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": "sha256=" + good}, 200},
		{"Gitea", map[string]string{"X-Gitea-Event": "pull_request", "X-Gitea-Signature": good}, 200},
		{"Forgejo, all its headers", map[string]string{"X-Forgejo-Event": "pull_request", "X-Gitea-Event": "pull_request", "X-Forgejo-Signature": good,
			"X-Gitea-Signature": good, "X-Gogs-Signature": good, "X-Hub-Signature-256": "sha256=" + good, "X-Hub-Signature": "sha1=00"}, 200},
		{"Gogs", map[string]string{"X-Gogs-Event": "pull_request", "X-Gogs-Signature": good}, 200},
		{"no signature", map[string]string{"X-GitHub-Event": "pull_request"}, 401},
		{"SHA-1 only", map[string]string{"X-GitHub-Event": "pull_request", "X-Hub-Signature": "sha1=" + good[:40]}, 401},
		{"another connection's secret", map[string]string{"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": "sha256=" + other}, 401},
		{"no prefix", map[string]string{"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": good}, 401},
		{"not hex", map[string]string{"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": "sha256=zz"}, 401},
		{"one bad among good", map[string]string{"X-Gitea-Event": "pull_request", "X-Gitea-Signature": good, "X-Forgejo-Signature": other}, 401},
		{"Gitea without a secret", map[string]string{"X-Gitea-Event": "pull_request", "X-Gitea-Signature": "", "X-Hub-Signature-256": "sha256="}, 401},
	} {
		status, msg := e.post(t, "c-1", "application/json", body, tc.headers)
		if status != tc.want {
			t.Errorf("%s: %d %q, want %d", tc.name, status, msg, tc.want)
		}
		n := len(e.rec.take())
		if (tc.want == 200) != (n == 1) {
			t.Errorf("%s recorded %d events", tc.name, n)
		}
	}
	// The form content type: GitHub signs the body, Gitea and Forgejo the payload field.
	form := []byte(url.Values{"payload": {string(body)}}.Encode())
	for name, headers := range map[string]map[string]string{
		"GitHub form": {"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": "sha256=" + hmacHex(secret, form)},
		"Gitea form":  {"X-Gitea-Event": "pull_request", "X-Gitea-Signature": good},
	} {
		if status, msg := e.post(t, "c-1", "application/x-www-form-urlencoded", form, headers); status != 200 {
			t.Errorf("%s: %d %q", name, status, msg)
		}
		e.take(t, 1)
	}
	if strings.Contains(e.log.String(), secret) || strings.Contains(e.log.String(), string(installation)) || strings.Contains(e.log.String(), "feature/x") {
		t.Errorf("the log shows a secret or the body:\n%s", e.log)
	}
	if e.secrets.reads != 1 {
		t.Errorf("the installation secret was read %d times, want once", e.secrets.reads)
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, 1024)
	resp, err := http.Get(e.url + connections.WebhookPath("c-1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET webhook: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if status, _ := e.github(t, "bad%20id", "ping", map[string]any{}); status != http.StatusNotFound {
		t.Errorf("a bad id: %d", status)
	}
	big := pushPayload("refs/heads/main", base, head)
	big["padding"] = strings.Repeat("x", 2048)
	if status, _ := e.github(t, "c-1", "push", big); status != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over the limit: %d", status)
	}
	body, _ := json.Marshal(prPayload("opened"))
	if status, _ := e.post(t, "c-1", "application/json", body, map[string]string{"X-Hub-Signature-256": "sha256=" + hmacHex(connections.DeriveSecret(installation, "c-1"), body)}); status != http.StatusBadRequest {
		t.Errorf("no event header: %d", status)
	}
	e.rec.err = errors.New("store down")
	if status, _ := e.github(t, "c-1", "pull_request", prPayload("opened")); status != http.StatusInternalServerError {
		t.Errorf("a failed record: %d", status)
	}
	e.rec.err = nil
	e.take(t, 0)

	f := newEnv(t, 0)
	f.secrets.err = errors.New("store down")
	if status, _ := f.github(t, "c-1", "pull_request", prPayload("opened")); status != http.StatusInternalServerError {
		t.Errorf("no installation secret: %d", status)
	}
	f.secrets.err = nil
	if status, _ := f.github(t, "c-1", "pull_request", prPayload("opened")); status != http.StatusOK {
		t.Errorf("once the secret can be read: %d", status)
	}
}

func TestSecretEndpoint(t *testing.T) {
	e := newEnv(t, 0)
	get := func(id string) (int, connections.SecretAnswer) {
		resp, err := http.Get(e.url + "/_sluice/connections/" + id + "/secret")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a connections.SecretAnswer
		_ = json.NewDecoder(resp.Body).Decode(&a)
		return resp.StatusCode, a
	}
	status, a := get("c-1")
	if status != 200 || a.Secret != connections.DeriveSecret(installation, "c-1") || a.ConnectionID != "c-1" ||
		a.WebhookURL != "https://sluice.example/_sluice/connections/c-1/webhook" || a.ContentType != "application/json" ||
		!reflect.DeepEqual(a.Events, []string{"push", "pull_request"}) {
		t.Fatalf("secret of c-1: %d %+v", status, a)
	}
	if _, b := get("c-2"); b.Secret == a.Secret || len(b.Secret) != 64 {
		t.Errorf("c-2's secret %q, c-1's %q", b.Secret, a.Secret)
	}
	if _, again := get("c-1"); again.Secret != a.Secret {
		t.Errorf("c-1's secret changed: %q, then %q", a.Secret, again.Secret)
	}
	if status, _ := get("..."); status != http.StatusOK {
		t.Errorf("id '...': %d", status)
	}
	if status, _ := get("a%20b"); status != http.StatusNotFound {
		t.Errorf("a bad id: %d", status)
	}
	resp, err := http.Post(e.url+"/_sluice/connections/c-1/secret", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST secret: %d", resp.StatusCode)
	}
}

func TestDeriveSecret(t *testing.T) {
	a := connections.DeriveSecret([]byte("one"), "c")
	if a != connections.DeriveSecret([]byte("one"), "c") || a == connections.DeriveSecret([]byte("two"), "c") || a == connections.DeriveSecret([]byte("one"), "d") {
		t.Fatal("the derived secret is not a function of the installation secret and the id")
	}
	if got := sources.ConnectionID("arn:aws:codestar-connections:us-east-1:123456789012:connection/0123-abcd"); got != "0123-abcd" {
		t.Errorf("codestar-connections ARN: %q", got)
	}
	if got := sources.ConnectionID("arn:aws:codeconnections:eu-west-1:123456789012:connection/xyz"); got != "xyz" {
		t.Errorf("codeconnections ARN: %q", got)
	}
	for _, arn := range []string{"", "xyz", "arn:aws:codeconnections:eu-west-1:123456789012:host/xyz", "arn:aws:codeconnections:eu-west-1:1:connection/a/b"} {
		if got := sources.ConnectionID(arn); got != "" {
			t.Errorf("%q names connection %q", arn, got)
		}
	}
}
