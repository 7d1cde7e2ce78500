package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
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

	"github.com/sluicehq/sluice/internal/store/storetest"
)

// This file kills the server with SIGKILL right after it acknowledged a source change — a git
// push to a hosted repository, an object version written through the built-in S3 endpoint — and
// checks that after a restart the change starts exactly one execution, with polling off so that
// only the recorded change can start it.
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

// TestStartsSurviveSIGKILL kills the server right after it acknowledged a git push to a hosted
// repository or an S3 upload, again and again (SLUICE_FAULT_ROUNDS multiplies the rounds), and
// checks that every acknowledged change has exactly one execution, which succeeds. It also
// checks a push the server stored but died before acknowledging: retried, git finds the branch
// already moved and answers "Everything up-to-date", so the retry's acknowledgment must mean
// that the pushed commit runs too.
func TestStartsSurviveSIGKILL(t *testing.T) {
	bin := buildBinary(t)
	rounds := faultRounds(t)
	stores := []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"sqlite", func(t *testing.T) []string { return []string{"--data", t.TempDir()} }},
		{"postgres", func(t *testing.T) []string {
			return []string{"--data", t.TempDir(), "--database", storetest.PostgresURL(t)}
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

func testAcknowledgedStartsSurvive(t *testing.T, bin string, n int, args ...string) {
	e, repo := newCrashStartsEnv(t, bin, args...)
	proxy := newKillProxy(t, e.srv)
	viaProxy := startsS3Client("http://" + proxy.addr)

	// Most kills come at once; some a little later, to land while the change is being handled.
	delays := []time.Duration{0, 0, time.Millisecond, 0, 5 * time.Millisecond}
	var commits, versions []string
	unhandled := map[string]bool{} // changes whose record still waited to be handled at the kill
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
		unhandled[commit] = waiting(t, args, commit)
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
		unhandled[version] = waiting(t, args, version)
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
	caught := 0
	for _, u := range unhandled {
		if u {
			caught++
		}
	}
	t.Logf("%d pushes and %d uploads, each acknowledged and followed by SIGKILL (%s after the answer, or 1-5 ms more in 2 rounds of 5) and a restart, in %v: each has exactly one execution, which succeeded; %d of the %d changes were still waiting to be handled at the kill",
		len(commits), len(versions), proxy.describeLags(), killed.Round(time.Millisecond), caught, len(unhandled))
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
