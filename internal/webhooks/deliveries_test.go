package webhooks_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/sluicehq/sluice/internal/sdktest"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store/storetest"
	"github.com/sluicehq/sluice/internal/webhooks"
)

const (
	account = "123456789012"
	region  = "us-east-1"
	secret  = "hook-s3cret-do-not-log"
)

var ctx = context.Background()

// logBuffer collects the server's log for a test to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a whole Sluice server on loopback, an aws-sdk-go-v2 client for it, and its log.
type env struct {
	url    string
	client *cp.Client
	log    *logBuffer
}

// eachStore runs test against a server on the embedded SQLite store, then on PostgreSQL.
func eachStore(t *testing.T, test func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { test(t, start(t, "")) })
	t.Run("postgres", func(t *testing.T) { test(t, start(t, storetest.PostgresURL(t))) })
}

func start(t *testing.T, database string) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	logs := &logBuffer{}
	srv, err := server.New(ctx, server.Config{DataDir: t.TempDir(), DataShared: true, Database: database, AccountID: account, Region: region,
		PublicURL: base, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	serveCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(serveCtx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	client := cp.New(cp.Options{Region: region, BaseEndpoint: aws.String(base),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""), Retryer: sdktest.ConnectionRetries()})
	return &env{url: base, client: client, log: logs}
}

// createPipeline creates a pipeline whose source is a GitHub (version 1) action named Source on
// branch, which webhooks can target.
func (e *env) createPipeline(t *testing.T, name, branch string) {
	t.Helper()
	_, err := e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: declaration(name, branch)})
	if err != nil {
		t.Fatal(err)
	}
}

func declaration(name, branch string) *types.PipelineDeclaration {
	id := func(category types.ActionCategory, owner types.ActionOwner, provider string) *types.ActionTypeId {
		return &types.ActionTypeId{Category: category, Owner: owner, Provider: aws.String(provider), Version: aws.String("1")}
	}
	return &types.PipelineDeclaration{
		Name:          aws.String(name),
		RoleArn:       aws.String("arn:aws:iam::" + account + ":role/cp"),
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")},
		Stages: []types.StageDeclaration{
			{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{
				Name:         aws.String("Source"),
				ActionTypeId: id(types.ActionCategorySource, types.ActionOwnerThirdParty, "GitHub"),
				Configuration: map[string]string{"Owner": "acme", "Repo": name, "Branch": branch, "OAuthToken": "oauth-token",
					"PollForSourceChanges": "false"},
				OutputArtifacts: []types.OutputArtifact{{Name: aws.String("code")}},
			}}},
			{Name: aws.String("Approve"), Actions: []types.ActionDeclaration{{
				Name: aws.String("ok"), ActionTypeId: id(types.ActionCategoryApproval, types.ActionOwnerAws, "Manual")}}},
		},
	}
}

// hook is a webhook definition on a pipeline's Source action.
type hook struct {
	name, pipeline  string
	auth            types.WebhookAuthenticationType
	secret, ipRange string
	filters         []types.WebhookFilterRule
}

// put defines the webhook and returns its URL.
func (e *env) put(t *testing.T, h hook) string {
	t.Helper()
	conf := &types.WebhookAuthConfiguration{}
	if h.secret != "" {
		conf.SecretToken = aws.String(h.secret)
	}
	if h.ipRange != "" {
		conf.AllowedIPRange = aws.String(h.ipRange)
	}
	if h.filters == nil {
		h.filters = []types.WebhookFilterRule{}
	}
	out, err := e.client.PutWebhook(ctx, &cp.PutWebhookInput{Webhook: &types.WebhookDefinition{
		Name: aws.String(h.name), TargetPipeline: aws.String(h.pipeline), TargetAction: aws.String("Source"),
		Filters: h.filters, Authentication: h.auth, AuthenticationConfiguration: conf}})
	if err != nil {
		t.Fatal(err)
	}
	// The URL is built on the public URL, which is this server's address.
	if !strings.HasPrefix(*out.Webhook.Url, e.url+webhooks.Path+"?t=") {
		t.Fatalf("webhook URL %s", *out.Webhook.Url)
	}
	return *out.Webhook.Url
}

func webhookARN(name string) string {
	return "arn:aws:codepipeline:" + region + ":" + account + ":webhook:" + name
}

// answer is the endpoint's answer to a delivery.
type answer struct {
	status  int
	message string
}

// deliver POSTs body to a webhook URL with headers.
func deliver(t *testing.T, url string, body []byte, headers map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct{ Message string }
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("answer %d %q is not JSON: %v", resp.StatusCode, raw, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("answer's Content-Type %q", ct)
	}
	return answer{resp.StatusCode, a.Message}
}

func signature(newHash func() hash.Hash, key string, body []byte) string {
	mac := hmac.New(newHash, []byte(key))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// signed are GitHub's headers for a push delivery signed with key: both signatures, as GitHub
// sends them.
func signed(key string, body []byte) map[string]string {
	return map[string]string{
		"X-Hub-Signature-256": "sha256=" + signature(sha256.New, key, body),
		"X-Hub-Signature":     "sha1=" + signature(sha1.New, key, body),
		"X-GitHub-Event":      "push",
		"X-GitHub-Delivery":   "72d3162e-cc78-11e3-81ab-4c9367dc0958",
	}
}

func push(ref string) []byte {
	return fmt.Appendf(nil, `{"ref":%q,"before":"0000","after":"1111","repository":{"full_name":"acme/app","id":35129377},"commits":[{"id":"1111","distinct":true}]}`, ref)
}

// executions lists a pipeline's executions, newest first.
func (e *env) executions(t *testing.T, pipeline string) []types.PipelineExecutionSummary {
	t.Helper()
	out, err := e.client.ListPipelineExecutions(ctx, &cp.ListPipelineExecutionsInput{PipelineName: aws.String(pipeline)})
	if err != nil {
		t.Fatal(err)
	}
	return out.PipelineExecutionSummaries
}

// waitForExecutions waits until a pipeline has n executions, and checks that each was started by
// the webhook; then, a little later, that there are still n. Deliveries are handled in the order
// they were recorded, so once the last accepted one has started its execution, a refused one
// recorded before it would have started one too.
func (e *env) waitForExecutions(t *testing.T, pipeline, webhook string, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var got []types.PipelineExecutionSummary
	for {
		got = e.executions(t, pipeline)
		if len(got) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	got = e.executions(t, pipeline)
	if len(got) != n {
		t.Fatalf("%d executions of %s, want %d\nlog:\n%s", len(got), pipeline, n, e.log)
	}
	for _, x := range got {
		if x.Trigger == nil || x.Trigger.TriggerType != types.TriggerTypeWebhook || aws.ToString(x.Trigger.TriggerDetail) != webhookARN(webhook) {
			t.Fatalf("execution %s trigger %+v, want Webhook %s", aws.ToString(x.PipelineExecutionId), x.Trigger, webhookARN(webhook))
		}
	}
}

// listed is a webhook as ListWebhooks shows it.
func (e *env) listed(t *testing.T, name string) types.ListWebhookItem {
	t.Helper()
	out, err := e.client.ListWebhooks(ctx, &cp.ListWebhooksInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range out.Webhooks {
		if *w.Definition.Name == name {
			return w
		}
	}
	t.Fatalf("ListWebhooks has no %s", name)
	return types.ListWebhookItem{}
}

func wantAnswer(t *testing.T, got answer, status int, fragment string) {
	t.Helper()
	if got.status != status || !strings.Contains(got.message, fragment) {
		t.Fatalf("answer %d %q, want %d with %q", got.status, got.message, status, fragment)
	}
}

// branchFilter is the filter AWS's documentation shows: a push to the source action's branch.
var branchFilter = []types.WebhookFilterRule{{JsonPath: aws.String("$.ref"), MatchEquals: aws.String("refs/heads/{Branch}")}}

func TestGitHubHMAC(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.createPipeline(t, "app", "main")
		hookURL := e.put(t, hook{name: "app-push", pipeline: "app", auth: types.WebhookAuthenticationTypeGithubHmac, secret: secret, filters: branchFilter})
		if w := e.listed(t, "app-push"); w.LastTriggered != nil {
			t.Fatalf("a new webhook has lastTriggered %v", w.LastTriggered)
		}
		body := push("refs/heads/main")

		// Refused: no signature, a wrong one, one made with another secret, a right SHA-1 next
		// to a wrong SHA-256, a signature of another body.
		wantAnswer(t, deliver(t, hookURL, body, nil), http.StatusUnauthorized, "signature")
		wantAnswer(t, deliver(t, hookURL, body, map[string]string{"X-Hub-Signature-256": "sha256=" + strings.Repeat("0", 64)}), http.StatusUnauthorized, "signature")
		wantAnswer(t, deliver(t, hookURL, body, map[string]string{"X-Hub-Signature-256": "sha256=not-hex"}), http.StatusUnauthorized, "signature")
		wantAnswer(t, deliver(t, hookURL, body, signed("another secret", body)), http.StatusUnauthorized, "signature")
		mixed := signed(secret, body)
		mixed["X-Hub-Signature-256"] = "sha256=" + signature(sha256.New, "another secret", body)
		wantAnswer(t, deliver(t, hookURL, body, mixed), http.StatusUnauthorized, "signature")
		wantAnswer(t, deliver(t, hookURL, push("refs/heads/main "), signed(secret, body)), http.StatusUnauthorized, "signature")
		if w := e.listed(t, "app-push"); w.LastTriggered != nil {
			t.Fatalf("refused deliveries set lastTriggered %v", w.LastTriggered)
		}

		// Accepted: GitHub's two signatures; then SHA-1 alone, as older senders sign.
		before := time.Now().Add(-time.Second)
		wantAnswer(t, deliver(t, hookURL, body, signed(secret, body)), http.StatusOK, "starts pipeline app")
		e.waitForExecutions(t, "app", "app-push", 1)
		w := e.listed(t, "app-push")
		if w.LastTriggered == nil || w.LastTriggered.Before(before) || w.LastTriggered.After(time.Now().Add(time.Second)) {
			t.Fatalf("lastTriggered %v after a delivery at %v", w.LastTriggered, before)
		}
		sha1Only := map[string]string{"X-Hub-Signature": "sha1=" + signature(sha1.New, secret, body)}
		wantAnswer(t, deliver(t, hookURL, body, sha1Only), http.StatusOK, "starts pipeline app")
		e.waitForExecutions(t, "app", "app-push", 2)
		wantAnswer(t, deliver(t, hookURL, body, map[string]string{"X-Hub-Signature": "sha1=" + signature(sha1.New, "nope", body)}), http.StatusUnauthorized, "signature")

		// The log says why, at info level, and shows neither the secret nor the body.
		log := e.log.String()
		for _, want := range []string{"level=INFO msg=\"webhook delivery refused\"", "reason=\"no X-Hub-Signature-256 or X-Hub-Signature header\"",
			"webhook=app-push", "status=401", "msg=\"webhook delivery accepted\"", "delivery=72d3162e-cc78-11e3-81ab-4c9367dc0958"} {
			if !strings.Contains(log, want) {
				t.Errorf("the log lacks %q:\n%s", want, log)
			}
		}
		for _, secretOrBody := range []string{secret, "35129377"} {
			if strings.Contains(log, secretOrBody) {
				t.Errorf("the log shows %q:\n%s", secretOrBody, log)
			}
		}
	})
}

// TestEachDeliveryIsItsOwnEvent: the same delivery twice starts two executions, one each.
func TestEachDeliveryIsItsOwnEvent(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.createPipeline(t, "twice", "main")
		hookURL := e.put(t, hook{name: "twice-push", pipeline: "twice", auth: types.WebhookAuthenticationTypeGithubHmac, secret: secret, filters: branchFilter})
		body := push("refs/heads/main")
		headers := signed(secret, body)
		wantAnswer(t, deliver(t, hookURL, body, headers), http.StatusOK, "")
		e.waitForExecutions(t, "twice", "twice-push", 1)
		wantAnswer(t, deliver(t, hookURL, body, headers), http.StatusOK, "")
		e.waitForExecutions(t, "twice", "twice-push", 2)
		ids := map[string]bool{}
		for _, x := range e.executions(t, "twice") {
			ids[*x.PipelineExecutionId] = true
		}
		if len(ids) != 2 {
			t.Fatalf("executions %v", ids)
		}
	})
}

func TestIPAuthentication(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.createPipeline(t, "lan", "main")
		e.createPipeline(t, "far", "main")
		allowed := e.put(t, hook{name: "lan-hook", pipeline: "lan", auth: types.WebhookAuthenticationTypeIp, ipRange: "127.0.0.0/8"})
		refused := e.put(t, hook{name: "far-hook", pipeline: "far", auth: types.WebhookAuthenticationTypeIp, ipRange: "10.0.0.0/8"})
		body := push("refs/heads/main")

		// The TCP peer counts, not what a header claims.
		for _, h := range []map[string]string{nil, {"X-Forwarded-For": "10.1.2.3"}, {"X-Real-IP": "10.1.2.3", "Forwarded": "for=10.1.2.3"}} {
			wantAnswer(t, deliver(t, refused, body, h), http.StatusForbidden, "allowed IP range")
		}
		if !strings.Contains(e.log.String(), "reason=\"client address 127.0.0.1 is not in AllowedIPRange 10.0.0.0/8\"") {
			t.Errorf("the log does not say why:\n%s", e.log)
		}
		wantAnswer(t, deliver(t, allowed, body, nil), http.StatusOK, "starts pipeline lan")
		e.waitForExecutions(t, "lan", "lan-hook", 1)
		if n := len(e.executions(t, "far")); n != 0 {
			t.Fatalf("refused deliveries started %d executions", n)
		}
		if e.listed(t, "far-hook").LastTriggered != nil {
			t.Fatal("a refused delivery set lastTriggered")
		}
	})
}

func TestUnauthenticated(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.createPipeline(t, "open", "main")
		hookURL := e.put(t, hook{name: "open-hook", pipeline: "open", auth: types.WebhookAuthenticationTypeUnauthenticated})
		// No filters: any body passes, JSON or not.
		wantAnswer(t, deliver(t, hookURL, []byte("not json"), nil), http.StatusOK, "starts pipeline open")
		e.waitForExecutions(t, "open", "open-hook", 1)
	})
}

func TestFilters(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.createPipeline(t, "filtered", "main")
		hookURL := e.put(t, hook{name: "filtered-hook", pipeline: "filtered", auth: types.WebhookAuthenticationTypeGithubHmac, secret: secret,
			filters: []types.WebhookFilterRule{
				{JsonPath: aws.String("$.ref"), MatchEquals: aws.String("refs/heads/{Branch}")},
				{JsonPath: aws.String("$.repository.full_name"), MatchEquals: aws.String("{Owner}/app")},
				{JsonPath: aws.String("$.commits[*].distinct"), MatchEquals: aws.String("true")},
				{JsonPath: aws.String("$.repository.id")},
			}})
		send := func(body []byte) answer { return deliver(t, hookURL, body, signed(secret, body)) }

		// Ignored, with 200: another branch, another repository, no distinct commit, no
		// repository id, GitHub's ping, a body that is not JSON.
		ignored := "does not match the webhook's filters"
		wantAnswer(t, send(push("refs/heads/dev")), http.StatusOK, ignored)
		wantAnswer(t, send([]byte(`{"ref":"refs/heads/main","repository":{"full_name":"other/app","id":1},"commits":[{"distinct":true}]}`)), http.StatusOK, ignored)
		wantAnswer(t, send([]byte(`{"ref":"refs/heads/main","repository":{"full_name":"acme/app","id":1},"commits":[{"distinct":false}]}`)), http.StatusOK, ignored)
		wantAnswer(t, send([]byte(`{"ref":"refs/heads/main","repository":{"full_name":"acme/app"},"commits":[{"distinct":true}]}`)), http.StatusOK, ignored)
		wantAnswer(t, send([]byte(`{"zen":"Design for failure.","hook_id":1}`)), http.StatusOK, ignored)
		wantAnswer(t, send([]byte(`not json`)), http.StatusOK, ignored)
		log := e.log.String()
		for _, want := range []string{`msg="webhook delivery ignored"`, `filter 1: jsonPath $.ref selects no value equal to \"refs/heads/{Branch}\"`,
			`filter 2: jsonPath $.repository.full_name selects no value`, `filter 4: jsonPath $.repository.id selects nothing`, "the body is not a JSON document"} {
			if !strings.Contains(log, want) {
				t.Errorf("the log lacks %q:\n%s", want, log)
			}
		}

		// Matching: the branch of the action's configuration, every filter passing; also as
		// GitHub's form content type, whose payload field is the document.
		wantAnswer(t, send(push("refs/heads/main")), http.StatusOK, "starts pipeline filtered")
		e.waitForExecutions(t, "filtered", "filtered-hook", 1)
		form := []byte("payload=" + url.QueryEscape(string(push("refs/heads/main"))))
		headers := signed(secret, form)
		headers["Content-Type"] = "application/x-www-form-urlencoded"
		wantAnswer(t, deliver(t, hookURL, form, headers), http.StatusOK, "starts pipeline filtered")
		e.waitForExecutions(t, "filtered", "filtered-hook", 2)

		// Placeholders take the latest version of the pipeline: after the branch changes, pushes
		// to the old one are ignored and pushes to the new one start it.
		decl := declaration("filtered", "release")
		decl.Version = aws.Int32(1)
		if _, err := e.client.UpdatePipeline(ctx, &cp.UpdatePipelineInput{Pipeline: decl}); err != nil {
			t.Fatal(err)
		}
		wantAnswer(t, send(push("refs/heads/main")), http.StatusOK, ignored)
		wantAnswer(t, send(push("refs/heads/release")), http.StatusOK, "starts pipeline filtered")
		e.waitForExecutions(t, "filtered", "filtered-hook", 3)
	})
}

func TestRefusedRequests(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.createPipeline(t, "big", "main")
		hookURL := e.put(t, hook{name: "big-hook", pipeline: "big", auth: types.WebhookAuthenticationTypeUnauthenticated})

		// Unknown tokens, or none.
		u, err := url.Parse(hookURL)
		if err != nil {
			t.Fatal(err)
		}
		token := u.Query().Get("t")
		for _, other := range []string{
			e.url + webhooks.Path + "?t=" + strings.Repeat("0", len(token)) + "&v=1",
			e.url + webhooks.Path + "?t=" + token[:len(token)-1] + "&v=1",
			e.url + webhooks.Path + "?v=1",
			e.url + webhooks.Path,
		} {
			wantAnswer(t, deliver(t, other, []byte(`{}`), nil), http.StatusNotFound, "No webhook has this URL")
		}
		if strings.Contains(e.log.String(), token) {
			t.Errorf("the log shows a webhook's token:\n%s", e.log)
		}
		// Only POST.
		req, _ := http.NewRequest(http.MethodGet, hookURL, nil)
		wantAnswer(t, do(t, req), http.StatusMethodNotAllowed, "POST")

		// Bodies over 25 MiB: with a Content-Length (refused before the body is sent, when
		// the client waits for "100 Continue"), and streamed without one.
		over := bytes.Repeat([]byte("x"), webhooks.MaxBodyBytes+1)
		req, _ = http.NewRequest(http.MethodPost, hookURL, bytes.NewReader(over))
		req.Header.Set("Expect", "100-continue")
		client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 10 * time.Second}}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("a body over the limit with its length: %d", resp.StatusCode)
		}
		req, _ = http.NewRequest(http.MethodPost, hookURL, io.MultiReader(bytes.NewReader(over)))
		wantAnswer(t, do(t, req), http.StatusRequestEntityTooLarge, "larger than 26214400 bytes")

		// A body of exactly the limit is accepted.
		wantAnswer(t, deliver(t, hookURL, over[:webhooks.MaxBodyBytes], nil), http.StatusOK, "starts pipeline big")
		e.waitForExecutions(t, "big", "big-hook", 1)

		// A webhook whose pipeline is gone starts nothing, saying so.
		if _, err := e.client.DeletePipeline(ctx, &cp.DeletePipelineInput{Name: aws.String("big")}); err != nil {
			t.Fatal(err)
		}
		wantAnswer(t, deliver(t, hookURL, []byte(`{}`), nil), http.StatusNotFound, "target pipeline")
	})
}

// TestRegistrationKeepsState: Register/DeregisterWebhookWithThirdParty and PutWebhook replacing a
// definition keep the webhook's URL and what ListWebhooks shows of its deliveries, and the URL
// keeps working.
func TestRegistrationKeepsState(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.createPipeline(t, "reg", "main")
		h := hook{name: "reg-hook", pipeline: "reg", auth: types.WebhookAuthenticationTypeGithubHmac, secret: secret, filters: branchFilter}
		hookURL := e.put(t, h)
		body := push("refs/heads/main")
		wantAnswer(t, deliver(t, hookURL, body, signed(secret, body)), http.StatusOK, "")
		e.waitForExecutions(t, "reg", "reg-hook", 1)
		first := e.listed(t, "reg-hook")
		if first.LastTriggered == nil {
			t.Fatal("no lastTriggered after a delivery")
		}
		if _, err := e.client.RegisterWebhookWithThirdParty(ctx, &cp.RegisterWebhookWithThirdPartyInput{WebhookName: aws.String("reg-hook")}); err != nil {
			t.Fatal(err)
		}
		check := func(when string) {
			t.Helper()
			w := e.listed(t, "reg-hook")
			if *w.Url != hookURL || w.LastTriggered == nil || !w.LastTriggered.Equal(*first.LastTriggered) || w.ErrorCode != nil || w.ErrorMessage != nil {
				t.Fatalf("%s: %+v", when, w)
			}
		}
		check("after RegisterWebhookWithThirdParty")
		if url2 := e.put(t, h); url2 != hookURL {
			t.Fatalf("PutWebhook replacing the definition changed the URL to %s", url2)
		}
		check("after PutWebhook")
		if _, err := e.client.DeregisterWebhookWithThirdParty(ctx, &cp.DeregisterWebhookWithThirdPartyInput{WebhookName: aws.String("reg-hook")}); err != nil {
			t.Fatal(err)
		}
		check("after DeregisterWebhookWithThirdParty")
		wantAnswer(t, deliver(t, hookURL, body, signed(secret, body)), http.StatusOK, "")
		e.waitForExecutions(t, "reg", "reg-hook", 2)
		if w := e.listed(t, "reg-hook"); !w.LastTriggered.After(*first.LastTriggered) {
			t.Fatalf("lastTriggered %v after a second delivery, first %v", w.LastTriggered, first.LastTriggered)
		}

		// A deleted webhook's URL is unknown.
		if _, err := e.client.DeleteWebhook(ctx, &cp.DeleteWebhookInput{Name: aws.String("reg-hook")}); err != nil {
			t.Fatal(err)
		}
		wantAnswer(t, deliver(t, hookURL, body, signed(secret, body)), http.StatusNotFound, "No webhook")
	})
}
