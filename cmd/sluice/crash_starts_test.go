package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluicehq/sluice/internal/connections"
	"github.com/sluicehq/sluice/internal/store/storetest"
	"github.com/sluicehq/sluice/internal/webhooks"
)

// This file kills the server with SIGKILL right after it acknowledged a source change — a git
// push to a hosted repository, an object version written through the built-in S3 endpoint, a
// delivery to a PutWebhook URL, a pull request event delivered to a connection's webhook
// endpoint — and checks that after a restart the change starts exactly one execution, with
// polling off so that only the recorded change can start it.
//
// The kill comes from a proxy between the client and the server: once the server has sent its
// whole answer, and before the client sees it, the proxy kills the server, then hands the answer
// on. The server has then acknowledged the change and had at most the microseconds of the kill to
// act on it; the test reads the store while the server is down to count the changes that were
// still waiting to be handled, which is what makes a round a test of the recovery.

// killProxy forwards requests to a test server and kills it once it has answered the request it
// is armed for.
type killProxy struct {
	t         *testing.T
	srv       *testServer
	addr      string
	transport *http.Transport

	mu    sync.Mutex
	armed string // "METHOD /path" of the request whose answer kills the server; "" for none
	delay time.Duration
	kills int
	// lags are the times from the end of the armed answers to their kill signals, less the delays.
	lags []time.Duration
}

func newKillProxy(t *testing.T, srv *testServer) *killProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &killProxy{t: t, srv: srv, addr: ln.Addr().String(), transport: &http.Transport{DisableKeepAlives: true}}
	hs := &http.Server{Handler: p}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return p
}

// arm makes the next successful answer to method path kill the server, delay after the server
// sent it.
func (p *killProxy) arm(method, path string, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed, p.delay = method+" "+path, delay
}

// fired reports whether the armed request killed the server since it was armed, and disarms.
func (p *killProxy) fired(before int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = ""
	return p.kills > before
}

func (p *killProxy) killCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kills
}

func (p *killProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+p.srv.addr+r.URL.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	out.Header.Del("Connection")
	out.Host, out.ContentLength, out.TransferEncoding = r.Host, r.ContentLength, r.TransferEncoding
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	answered := time.Now()
	p.mu.Lock()
	kill := p.armed == r.Method+" "+r.URL.Path && resp.StatusCode == http.StatusOK
	if kill {
		p.armed = ""
		if p.delay > 0 {
			time.Sleep(p.delay)
		}
		p.srv.mu.Lock()
		if p.srv.cmd != nil {
			p.srv.cmd.Process.Signal(syscall.SIGKILL)
		}
		p.srv.mu.Unlock()
		p.lags = append(p.lags, time.Since(answered)-p.delay)
		p.kills++
	}
	p.mu.Unlock()
	if kill {
		p.srv.stop(syscall.SIGKILL) // reaps it
	}
	for k, vs := range resp.Header {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection":
			continue
		}
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

// describeLags sums up how long after the answers the kills came.
func (p *killProxy) describeLags() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lags) == 0 {
		return "no kill"
	}
	sorted := slices.Clone(p.lags)
	slices.Sort(sorted)
	return fmt.Sprintf("median %v, at most %v", sorted[len(sorted)/2], sorted[len(sorted)-1])
}

// storeArgs reads where the server keeps its store from its arguments.
func storeArgs(args []string) (dataDir, database string) {
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--data":
			dataDir = args[i+1]
		case "--database":
			database = args[i+1]
		}
	}
	return dataDir, database
}

// openStore opens the store of a server that is down: SQLite read-only (so that the server still
// finds its write-ahead log on restart), or its PostgreSQL schema.
func openStore(t *testing.T, args []string) *sql.DB {
	t.Helper()
	dataDir, database := storeArgs(args)
	var db *sql.DB
	var err error
	if database != "" {
		db, err = sql.Open("pgx", database)
	} else {
		db, err = sql.Open("sqlite", "file:"+filepath.Join(dataDir, "sluice.db")+"?mode=ro&_pragma=busy_timeout(10000)")
	}
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// waiting reports whether a recorded source event naming revision still waits to be handled,
// read from the store of the server while it is down.
func waiting(t *testing.T, args []string, revision string) bool {
	t.Helper()
	db := openStore(t, args)
	defer db.Close()
	rows, err := db.Query(`SELECT doc FROM source_events`)
	if err != nil {
		t.Fatalf("read the recorded source events: %v", err)
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			t.Fatal(err)
		}
		found = found || strings.Contains(doc, revision)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return found
}

// waitingSince reports whether a source event recorded at since or later, whose record names
// marker, still waits to be handled: for a webhook delivery, whose record names the webhook but no
// delivery, the time tells it from the records of earlier deliveries.
func waitingSince(t *testing.T, args []string, marker string, since time.Time) bool {
	t.Helper()
	db := openStore(t, args)
	defer db.Close()
	// Milliseconds, as the store keeps them.
	rows, err := db.Query(fmt.Sprintf(`SELECT doc FROM source_events WHERE created_ms >= %d`, since.UnixMilli()))
	if err != nil {
		t.Fatalf("read the recorded source events: %v", err)
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			t.Fatal(err)
		}
		found = found || strings.Contains(doc, marker)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return found
}

// pendingEvents counts the recorded source events not handled yet.
func pendingEvents(t *testing.T, args []string) int {
	t.Helper()
	db := openStore(t, args)
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM source_events`).Scan(&n); err != nil {
		t.Fatalf("read the recorded source events: %v", err)
	}
	return n
}

// TestStartsSurviveSIGKILL kills the server right after it acknowledged a git push to a hosted
// repository, an S3 upload, a PutWebhook delivery or a connection's pull request event, again and
// again (SLUICE_FAULT_ROUNDS multiplies the rounds), and checks that every acknowledged change has
// exactly one execution, which succeeds. It also checks a push the server stored but died before
// acknowledging: retried, git finds the branch already moved and answers "Everything
// up-to-date", so the retry's acknowledgment must mean that the pushed commit runs too.
func TestStartsSurviveSIGKILL(t *testing.T) {
	bin := buildBinary(t)
	rounds := faultRounds(t)
	stores := []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"sqlite", func(t *testing.T) []string { return []string{"--data", t.TempDir()} }},
		{"postgres", func(t *testing.T) []string {
			return []string{"--data", t.TempDir(), "--data-shared", "--database", storetest.PostgresURL(t)}
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			t.Run("acknowledged", func(t *testing.T) { testAcknowledgedStartsSurvive(t, bin, 5*rounds, st.args(t)...) })
			t.Run("push-stored-not-acknowledged", func(t *testing.T) { testPushStoredThenRetried(t, bin, st.args(t)...) })
		})
	}
}

// crashStartsPipelines creates, with polling off everywhere, a PARALLEL pipeline on pushes to
// app's main branch and one on uploads of sources/app.zip, each deploying its source to site.
func crashStartsPipelines(t *testing.T, client *cp.Client) {
	t.Helper()
	deploy := func(key string) types.StageDeclaration {
		return types.StageDeclaration{Name: aws.String("Deploy"), Actions: []types.ActionDeclaration{deployTo(key)}}
	}
	for _, p := range []struct {
		name, provider string
		config         map[string]string
	}{
		{"pushed", "CodeCommit", map[string]string{"RepositoryName": "app", "BranchName": "main", "PollForSourceChanges": "false"}},
		{"uploaded", "S3", map[string]string{"S3Bucket": "sources", "S3ObjectKey": "app.zip", "PollForSourceChanges": "false"}},
	} {
		crashCreatePipeline(t, client, &types.PipelineDeclaration{
			Name: aws.String(p.name), RoleArn: aws.String("arn:aws:iam::000000000000:role/cp"), PipelineType: types.PipelineTypeV2, ExecutionMode: types.ExecutionModeParallel,
			ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")},
			Stages: []types.StageDeclaration{{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{
				Name:            aws.String("Source"),
				ActionTypeId:    &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerAws, Provider: aws.String(p.provider), Version: aws.String("1")},
				Configuration:   p.config,
				OutputArtifacts: []types.OutputArtifact{{Name: aws.String("Src")}},
			}}}, deploy(p.name + ".zip")},
		})
	}
}

// newCrashStartsEnv starts a server with polling off, its source and site buckets, the two
// pipelines, and a hosted repository app whose first commit on main ran.
func newCrashStartsEnv(t *testing.T, bin string, args ...string) (*startsEnv, *gitRepo) {
	t.Helper()
	e := newStartsEnv(t, bin, append([]string{"--job-ack-timeout", "2s", "--sweep-interval", "200ms"}, args...)...)
	crashStartsPipelines(t, e.cp)
	repo := newGitRepo(t)
	base := repo.commit("base", map[string]string{"page.txt": "base\n"})
	repo.push("http://"+e.srv.addr+"/v1/repos/app", "main")
	e.run("pushed", base, types.PipelineExecutionStatusSucceeded)
	return e, repo
}

// tryPush pushes HEAD to branch, returning git's output and its error.
func (r *gitRepo) tryPush(url, branch string) (string, error) {
	cmd := exec.Command("git", "push", url, "HEAD:refs/heads/"+branch)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The webhook start paths watch acme/widgets, a repository the server hosts: a delivery to the
// PutWebhook URL of webhook widgets starts "hooked", whose GitHub (version 1) source fetches the
// head of main; a pull request opened into main, delivered to the connection's webhook endpoint,
// starts "reviewed", whose connection source runs the pull request's head commit.
const (
	crashHookName   = "widgets"
	crashHookSecret = "crash-hook-s3cret"
)

// crashHooks is what the webhook start paths need: the webhook, the connection's secret, and the
// heads of the pull requests, one a round, each pushed on its branch already.
type crashHooks struct {
	hookURI    string // the path and query of the webhook's URL
	hookARN    string
	connSecret string
	base       string   // main of acme/widgets, which "hooked" runs
	heads      []string // the head commit of pull request i+1, on branch pr-i
}

// newCrashHooks pushes acme/widgets' main and n pull request branches, waits until the pushes are
// handled (so that the push of main, which would start "hooked", cannot start it once it exists),
// and creates "hooked", its webhook and "reviewed".
func newCrashHooks(t *testing.T, e *startsEnv, n int, args []string) *crashHooks {
	t.Helper()
	repo := newGitRepo(t)
	h := &crashHooks{base: repo.commit("widgets", map[string]string{"page.txt": "widgets\n"})}
	push := []string{"push", "-q", "http://" + e.srv.addr + "/v1/repos/acme/widgets", "main:refs/heads/main"}
	for i := range n {
		branch := fmt.Sprintf("pr-%d", i)
		repo.git("checkout", "-q", "-b", branch, "main")
		h.heads = append(h.heads, repo.commit(fmt.Sprintf("pull request %d", i+1), map[string]string{"page.txt": fmt.Sprintf("pull request %d\n", i+1)}))
		push = append(push, branch+":refs/heads/"+branch)
	}
	repo.git(push...)
	waitFor(t, "the pushes to acme/widgets to be handled", func() bool { return pendingEvents(t, args) == 0 },
		func() string { return fmt.Sprintf("%d source events wait", pendingEvents(t, args)) })

	for _, p := range []struct {
		name     string
		owner    types.ActionOwner
		provider string
		config   map[string]string
		triggers []types.PipelineTriggerDeclaration
	}{
		{"hooked", types.ActionOwnerThirdParty, "GitHub",
			map[string]string{"Owner": "acme", "Repo": "widgets", "Branch": "main", "OAuthToken": "oauth-token", "PollForSourceChanges": "false"}, nil},
		{"reviewed", types.ActionOwnerAws, "CodeStarSourceConnection",
			map[string]string{"ConnectionArn": gitEventsConnection, "FullRepositoryId": "acme/widgets", "BranchName": "main"},
			[]types.PipelineTriggerDeclaration{prTrigger([]types.GitPullRequestEventType{types.GitPullRequestEventTypeOpen}, []string{"main"}, nil)}},
	} {
		crashCreatePipeline(t, e.cp, &types.PipelineDeclaration{
			Name: aws.String(p.name), RoleArn: aws.String("arn:aws:iam::000000000000:role/cp"), PipelineType: types.PipelineTypeV2, ExecutionMode: types.ExecutionModeParallel,
			ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")},
			Triggers:      p.triggers,
			Stages: []types.StageDeclaration{{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{
				Name:            aws.String("Source"),
				ActionTypeId:    &types.ActionTypeId{Category: types.ActionCategorySource, Owner: p.owner, Provider: aws.String(p.provider), Version: aws.String("1")},
				Configuration:   p.config,
				OutputArtifacts: []types.OutputArtifact{{Name: aws.String("Src")}},
			}}}, {Name: aws.String("Deploy"), Actions: []types.ActionDeclaration{deployTo(p.name + ".zip")}}},
		})
	}
	out, err := e.cp.PutWebhook(e.ctx, &cp.PutWebhookInput{Webhook: &types.WebhookDefinition{
		Name: aws.String(crashHookName), TargetPipeline: aws.String("hooked"), TargetAction: aws.String("Source"),
		Filters:        []types.WebhookFilterRule{{JsonPath: aws.String("$.ref"), MatchEquals: aws.String("refs/heads/{Branch}")}},
		Authentication: types.WebhookAuthenticationTypeGithubHmac, AuthenticationConfiguration: &types.WebhookAuthConfiguration{SecretToken: aws.String(crashHookSecret)}}})
	if err != nil {
		t.Fatalf("put webhook %s: %v", crashHookName, err)
	}
	u, err := url.Parse(aws.ToString(out.Webhook.Url))
	if err != nil || u.Path != webhooks.Path || u.Query().Get("t") == "" {
		t.Fatalf("webhook %s has URL %q, want one on %s with a token", crashHookName, aws.ToString(out.Webhook.Url), webhooks.Path)
	}
	h.hookURI, h.hookARN = u.RequestURI(), aws.ToString(out.Webhook.Arn)
	h.connSecret = connectionSecret(t, e.srv.addr, gitEventsConnectionID)
	return h
}

// deliverSigned posts payload to url as GitHub delivers an event: JSON, signed with secret in
// X-Hub-Signature-256, under a delivery id; it returns the answer's status and message.
func deliverSigned(t *testing.T, url, event, delivery, secret string, payload any) (int, string) {
	t.Helper()
	body, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/test")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("deliver %s %s: %v", event, delivery, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var answer struct{ Message string }
	if err := json.Unmarshal(raw, &answer); err != nil {
		return resp.StatusCode, string(raw)
	}
	return resp.StatusCode, answer.Message
}

// crashDeliveryID is the id, in GitHub's form, of a delivery of kind (1 a webhook's, 2 a pull
// request's) in round i.
func crashDeliveryID(kind, i int) string {
	return fmt.Sprintf("c4a5e0de-0000-4%03d-8000-%012d", kind, i+1)
}

func testAcknowledgedStartsSurvive(t *testing.T, bin string, n int, args ...string) {
	e, repo := newCrashStartsEnv(t, bin, args...)
	hooks := newCrashHooks(t, e, n, args)
	proxy := newKillProxy(t, e.srv)
	viaProxy := startsS3Client("http://" + proxy.addr)
	connectionURL := "http://" + proxy.addr + connections.WebhookPath(gitEventsConnectionID)

	// Most kills come at once; some a little later, to land while the change is being handled.
	delays := []time.Duration{0, 0, time.Millisecond, 0, 5 * time.Millisecond}
	var commits, versions []string
	deliveries := 0
	unhandled := map[string]bool{} // changes whose record still waited to be handled at the kill
	caughtBy := map[string]int{}   // how many of each kind of change
	note := func(kind, change string, waited bool) {
		unhandled[change] = waited
		if waited {
			caughtBy[kind]++
		}
	}
	started := time.Now()
	for i := range n {
		// A push, answered by the server, which dies before git has read the answer.
		commit := repo.commit(fmt.Sprintf("change %d", i), map[string]string{"page.txt": fmt.Sprintf("change %d\n", i)})
		kills := proxy.killCount()
		proxy.arm(http.MethodPost, "/v1/repos/app/git-receive-pack", delays[i%len(delays)])
		if out, err := repo.tryPush("http://"+proxy.addr+"/v1/repos/app", "main"); err != nil {
			t.Fatalf("push %d of commit %s was not acknowledged: %v\n%s", i+1, commit, err, out)
		}
		if !proxy.fired(kills) {
			t.Fatalf("push %d: the server was not killed after answering it", i+1)
		}
		commits = append(commits, commit)
		note("pushes", commit, waiting(t, args, commit))
		e.srv.start()

		// An upload, likewise.
		kills = proxy.killCount()
		proxy.arm(http.MethodPut, "/sources/app.zip", delays[(i+2)%len(delays)])
		out, err := viaProxy.PutObject(e.ctx, &s3.PutObjectInput{Bucket: aws.String("sources"), Key: aws.String("app.zip"),
			Body: bytes.NewReader(zipOf(t, map[string]string{"page.txt": fmt.Sprintf("upload %d\n", i)}))})
		if err != nil {
			t.Fatalf("upload %d was not acknowledged: %v", i+1, err)
		}
		if !proxy.fired(kills) {
			t.Fatalf("upload %d: the server was not killed after answering it", i+1)
		}
		version := aws.ToString(out.VersionId)
		if version == "" {
			t.Fatalf("upload %d into a versioned bucket was answered without a version id", i+1)
		}
		versions = append(versions, version)
		note("uploads", version, waiting(t, args, version))
		e.srv.start()

		// A delivery to the webhook's URL, likewise: a push to main, signed with its secret.
		kills = proxy.killCount()
		proxy.arm(http.MethodPost, webhooks.Path, delays[(i+1)%len(delays)])
		sent := time.Now()
		status, message := deliverSigned(t, "http://"+proxy.addr+hooks.hookURI, "push", crashDeliveryID(1, i), crashHookSecret,
			gitPushPayload("acme/widgets", "main", hooks.base, hooks.base, "page.txt"))
		if status != http.StatusOK || !strings.Contains(message, "starts pipeline hooked") {
			t.Fatalf("webhook delivery %d was not accepted: %d %q", i+1, status, message)
		}
		if !proxy.fired(kills) {
			t.Fatalf("webhook delivery %d: the server was not killed after answering it", i+1)
		}
		deliveries++
		note("webhook deliveries", fmt.Sprintf("webhook delivery %d", i+1), waitingSince(t, args, hooks.hookARN, sent))
		e.srv.start()

		// A pull request opened into main, delivered to the connection's webhook endpoint, likewise.
		kills = proxy.killCount()
		proxy.arm(http.MethodPost, connections.WebhookPath(gitEventsConnectionID), delays[(i+3)%len(delays)])
		status, message = deliverSigned(t, connectionURL, "pull_request", crashDeliveryID(2, i), hooks.connSecret,
			pullRequestPayload("acme/widgets", i+1, "opened", "main", hooks.base, fmt.Sprintf("pr-%d", i), hooks.heads[i]))
		if status != http.StatusOK || !strings.HasPrefix(message, "Accepted") {
			t.Fatalf("pull request %d's opened event was not accepted: %d %q", i+1, status, message)
		}
		if !proxy.fired(kills) {
			t.Fatalf("pull request %d's opened event: the server was not killed after answering it", i+1)
		}
		note("pull request events", hooks.heads[i], waiting(t, args, crashDeliveryID(2, i)))
		e.srv.start()
	}
	killed := time.Since(started)

	// Every acknowledged change has exactly one execution, and it succeeds.
	for _, c := range []struct {
		pipeline string
		changes  []string
	}{{"pushed", commits}, {"uploaded", versions}} {
		for i, change := range c.changes {
			x := e.run(c.pipeline, change, types.PipelineExecutionStatusSucceeded)
			if c.pipeline == "pushed" {
				if d := actionDetails(t, e.cp, c.pipeline, aws.ToString(x.PipelineExecutionId))["Source"]; d.Output == nil || d.Output.OutputVariables["CommitId"] != change {
					t.Errorf("the execution of push %d ran a source without commit %s: %+v", i+1, change, d.Output)
				}
			} else {
				e.checkSourceRan(c.pipeline, x, change)
			}
		}
		want := len(c.changes)
		if c.pipeline == "pushed" {
			want++ // the first commit's
		}
		if all := e.executions(c.pipeline); len(all) != want {
			t.Errorf("%s has %d executions, want %d: one for each acknowledged change:%s", c.pipeline, len(all), want, describeRuns(all))
		}
	}

	// Every acknowledged pull request event has exactly one execution, of the pull request's head,
	// started by the connection's webhook, and it succeeds.
	for i, head := range hooks.heads {
		x := e.run("reviewed", head, types.PipelineExecutionStatusSucceeded)
		detail := fmt.Sprintf("%s pull request #%d OPEN", gitEventsConnection, i+1)
		if x.Trigger == nil || x.Trigger.TriggerType != types.TriggerTypeWebhookV2 || aws.ToString(x.Trigger.TriggerDetail) != detail {
			t.Errorf("the execution of pull request %d was triggered by %+v, want %s %q", i+1, x.Trigger, types.TriggerTypeWebhookV2, detail)
		}
		if d := actionDetails(t, e.cp, "reviewed", aws.ToString(x.PipelineExecutionId))["Source"]; d.Output == nil || d.Output.OutputVariables["CommitId"] != head {
			t.Errorf("the execution of pull request %d ran a source without its head commit %s: %+v", i+1, head, d.Output)
		}
	}
	if all := e.executions("reviewed"); len(all) != len(hooks.heads) {
		t.Errorf("reviewed has %d executions, want %d: one for each acknowledged pull request event:%s", len(all), len(hooks.heads), describeRuns(all))
	}

	// Every acknowledged webhook delivery has exactly one execution, started by the webhook, which
	// ran main's head and succeeded. The deliveries name no revision: they are counted. Source
	// events are handled in the order they were recorded, so with the last pull request's
	// execution there, every delivery has started its own; a short wait covers a late one.
	var hooked []types.PipelineExecutionSummary
	ended := func() bool {
		hooked = e.executions("hooked")
		for _, x := range hooked {
			if !crashEnded(x.Status) {
				return false
			}
		}
		return len(hooked) >= deliveries
	}
	for deadline := time.Now().Add(10 * time.Second); !ended() && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if len(hooked) != deliveries {
		t.Errorf("hooked has %d executions, want %d: one for each acknowledged webhook delivery:%s", len(hooked), deliveries, describeRuns(hooked))
	}
	for _, x := range hooked {
		id := aws.ToString(x.PipelineExecutionId)
		if x.Trigger == nil || x.Trigger.TriggerType != types.TriggerTypeWebhook || aws.ToString(x.Trigger.TriggerDetail) != hooks.hookARN {
			t.Errorf("execution %s of hooked was triggered by %+v, want %s %s", id, x.Trigger, types.TriggerTypeWebhook, hooks.hookARN)
		}
		if x.Status != types.PipelineExecutionStatusSucceeded {
			t.Errorf("execution %s of hooked ended %s, want %s:%s", id, x.Status, types.PipelineExecutionStatusSucceeded, describeActions(t, e.cp, "hooked"))
		} else if d := actionDetails(t, e.cp, "hooked", id)["Source"]; d.Output == nil || d.Output.OutputVariables["CommitId"] != hooks.base {
			t.Errorf("execution %s of hooked ran a source without main's head %s: %+v", id, hooks.base, d.Output)
		}
	}

	caught := 0
	for _, u := range unhandled {
		if u {
			caught++
		}
	}
	t.Logf("%d pushes, %d uploads, %d webhook deliveries and %d pull request events, each acknowledged and followed by SIGKILL (%s after the answer, or 1-5 ms more in 2 rounds of 5) and a restart, in %v: each has exactly one execution, which succeeded; %d of the %d changes were still waiting to be handled at the kill (%d pushes, %d uploads, %d webhook deliveries, %d pull request events)",
		len(commits), len(versions), deliveries, len(hooks.heads), proxy.describeLags(), killed.Round(time.Millisecond), caught, len(unhandled),
		caughtBy["pushes"], caughtBy["uploads"], caughtBy["webhook deliveries"], caughtBy["pull request events"])
	if caught == 0 {
		t.Errorf("no change was still waiting to be handled when the server was killed: the kills came too late to test that recorded changes start their executions after a restart")
	}
}

// holdStoreWrites keeps the server's store from committing writes (a write transaction on
// SQLite; on PostgreSQL, a lock on the table of source events), until release is called.
func holdStoreWrites(t *testing.T, args []string) (release func()) {
	t.Helper()
	dataDir, database := storeArgs(args)
	var db *sql.DB
	var err error
	if database != "" {
		db, err = sql.Open("pgx", database)
	} else {
		db, err = sql.Open("sqlite", "file:"+filepath.Join(dataDir, "sluice.db")+"?_pragma=busy_timeout(10000)")
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if database != "" {
		_, err = conn.ExecContext(ctx, "BEGIN; LOCK TABLE source_events IN ACCESS EXCLUSIVE MODE")
	} else {
		_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	}
	if err != nil {
		t.Fatalf("hold the store's writes: %v", err)
	}
	return func() {
		conn.ExecContext(ctx, "ROLLBACK")
		conn.Close()
		db.Close()
	}
}

// testPushStoredThenRetried pushes while the server cannot record the push, kills the server once
// the branch has moved (git's receive-pack is done, the answer still held), restarts it, and
// pushes again as a client whose push failed does: git finds the branch at the commit already,
// answers "Everything up-to-date" and succeeds. That answer acknowledges the commit, so it must
// run.
func testPushStoredThenRetried(t *testing.T, bin string, args ...string) {
	e, repo := newCrashStartsEnv(t, bin, args...)
	url := "http://" + e.srv.addr + "/v1/repos/app"
	commit := repo.commit("stored, not recorded", map[string]string{"page.txt": "stored\n"})

	release := holdStoreWrites(t, args)
	pushed := make(chan string, 1)
	go func() {
		out, err := repo.tryPush(url, "main")
		pushed <- fmt.Sprintf("%v\n%s", err, out)
	}()
	waitFor(t, "the push to move the branch", func() bool {
		cmd := exec.Command("git", "ls-remote", url, "refs/heads/main")
		out, _ := cmd.Output()
		return strings.HasPrefix(string(out), commit)
	}, func() string { return "" })
	time.Sleep(300 * time.Millisecond) // the server now waits to record the push
	select {
	case out := <-pushed:
		t.Fatalf("the push was answered while the store could not record it: %s", out)
	default:
	}
	e.srv.stop(syscall.SIGKILL)
	release()
	t.Logf("first push, the server killed before answering: %s", <-pushed)
	e.srv.start()

	out, err := repo.tryPush(url, "main")
	if err != nil {
		t.Fatalf("the retried push failed: %v\n%s", err, out)
	}
	t.Logf("retried push: %s", strings.TrimSpace(out))
	deadline := time.Now().Add(15 * time.Second)
	for len(runsOf(e.executions("pushed"), commit)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("commit %s was stored by a push the server died before answering; the retried push was acknowledged (%q), but no execution started for the commit in 15s (polling is off):%s",
				commit, strings.TrimSpace(out), describeRuns(e.executions("pushed")))
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.run("pushed", commit, types.PipelineExecutionStatusSucceeded)
}
