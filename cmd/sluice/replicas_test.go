package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sluicehq/sluice/internal/store/storetest"
)

// TestReplicasSurviveSIGKILL runs three `sluice serve` replicas on one PostgreSQL schema and one
// S3-compatible service (moto), behind a round-robin load balancer the test runs, and drives
// three pipelines through the balancer while a killer SIGKILLs a random replica again and again
// and starts it once more on a fresh, empty --data directory (nothing on a replica's disk may
// matter):
//
//   - "pushed": a hosted git repository (CodeCommit source, pushed through the balancer) → a
//     local CodeBuild build → an S3 deploy, one object per execution, to a versioned bucket;
//   - "started": the same on another branch, started by StartPipelineExecution;
//   - "uploaded": an S3 source in moto that the replicas poll → a custom action that two
//     `sluice worker` processes serve through the balancer → a Manual approval the test gives.
//
// The balancer sends each request to the next replica its health checks (/_sluice/health every
// 100 ms) find up, and on to the next one when a connection cannot even be made; a request whose
// replica dies under it is answered 502, and the client retries it (the SDK clients, the
// workers' included, retry up to 10 times; git pushes are pushed again until git succeeds).
//
// Builds and worker commands report to an endpoint of the test as their last command, the
// build with its CODEBUILD_SRC_DIR, which tells which incarnation of which replica ran it; each
// replica reaches moto through a proxy of its own, which tells which incarnation wrote each
// deployed object. In the end every execution has succeeded; every push, upload and start that
// was acknowledged started exactly one execution, and nothing else started one; each action ran
// once; each build, custom action and deploy completed exactly once — a run whose replica was
// killed after it did its work but before its result was recorded is handed out again, so a
// completion by an incarnation killed between the completion and the action's end is allowed
// in addition, and nothing else; the replicas, asked directly, agree on the executions; and
// every build log is served by every replica.
//
// SLUICE_REPLICA_KILLS (default 5) and SLUICE_REPLICA_EXECUTIONS (default 20) make it a longer
// soak; SLUICE_REPLICA_SEED repeats a run's random choices (which replica is killed, the pauses).
func TestReplicasSurviveSIGKILL(t *testing.T) {
	bin := buildBinary(t)
	database := storetest.PostgresURL(t)
	for _, tool := range []string{"git", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	moto := startMoto(t)
	kills := replicaEnvInt(t, "SLUICE_REPLICA_KILLS", 5)
	executions := replicaEnvInt(t, "SLUICE_REPLICA_EXECUTIONS", 20)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SLUICE_REPLICA_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SLUICE_REPLICA_SEED=%q is not a number", v)
		}
		seed = n
	}
	t.Logf("seed %d (SLUICE_REPLICA_SEED), %d kills, %d executions", seed, kills, executions)
	began := time.Now()

	e := newReplicaEnv(t, bin, database, moto, seed)
	e.setUp()
	e.load(kills, executions)
	e.drain(3 * time.Minute)
	e.check()
	if t.Failed() {
		t.Logf("failed after %v: %s", time.Since(began).Round(time.Second), e.summary())
		return
	}
	t.Logf("passed in %v: %s; all succeeded, every acknowledged push, upload and start started one execution, each build, deploy and custom action completed once, every replica agrees and serves every build log",
		time.Since(began).Round(time.Second), e.summary())
}

// replicaEnvInt reads a whole number of at least 1 from the environment.
func replicaEnvInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q is not a whole number from 1", name, v)
	}
	return n
}

const (
	replicaCount    = 3
	replicaRepo     = "app"
	replicaProvider = "ReplicaTest"
	// The pipelines, as described at TestReplicasSurviveSIGKILL.
	pipePushed   = "pushed"
	pipeStarted  = "started"
	pipeUploaded = "uploaded"
	// replicaMarker starts the line each build prints with its execution's id, which its log must
	// hold wherever it is read from.
	replicaMarker = "replica-marker"
)

// replicaEnv is the test's world: the replicas, the balancer in front of them, moto, the
// endpoint builds and workers report to, and what the test did and saw.
type replicaEnv struct {
	t        *testing.T
	ctx      context.Context
	bin      string
	database string
	moto     string
	base     string // holds every incarnation's --data directory
	rnd      *rand.Rand
	rndMu    sync.Mutex

	isolation string
	slots     []*replicaSlot
	lb        *replicaLB
	cp        *cp.Client // through the balancer
	s3        *s3.Client // moto, directly
	doneURL   string
	repo      *gitRepo

	mu           sync.Mutex
	incarnations []*incarnation
	done         []doneRecord
	siteWrites   []siteWrite
	kills        []string // "replica N at T", for the summary
	pushed       []string // commits whose push git reported done: acknowledged
	uploaded     []string // versions of app.zip written to moto
	started      []string // executions StartPipelineExecution answered with
	firstUpload  string   // the execution of "uploaded" that StartPipelineExecution started
	approved     int
	pushRetries  int
	reruns       int // completions excused: their incarnation was killed before the result was recorded
	interrupted  int // builds a kill interrupted, which ran again
}

// incarnation is one run of a replica's process, on a --data directory of its own.
type incarnation struct {
	n       int
	slot    int
	dir     string
	started time.Time
	killed  time.Time // zero while it runs, or if it was never killed
}

func (i *incarnation) String() string {
	s := fmt.Sprintf("incarnation %d (replica %d, started %s", i.n, i.slot, i.started.Format("15:04:05.000"))
	if !i.killed.IsZero() {
		s += ", killed " + i.killed.Format("15:04:05.000")
	}
	return s + ")"
}

// doneRecord is a report to the test's endpoint: a build's or a worker command's last command.
type doneRecord struct {
	kind  string // "build" or "custom"
	exec  string // the pipeline execution
	id    string // the build's CODEBUILD_BUILD_ID or the job's id
	dir   string // the build's CODEBUILD_SRC_DIR: which incarnation ran it
	inc   *incarnation
	at    time.Time
	extra string // the worker's number, for a custom action
}

// siteWrite is an object an S3 deploy wrote to the site bucket, as the S3 endpoint in front of
// moto of the replica that wrote it saw it answered.
type siteWrite struct {
	key string
	inc *incarnation
	at  time.Time
}

func newReplicaEnv(t *testing.T, bin, database, moto string, seed uint64) *replicaEnv {
	e := &replicaEnv{t: t, ctx: context.Background(), bin: bin, database: database, moto: moto, base: t.TempDir(),
		rnd: rand.New(rand.NewPCG(seed, seed^0x5eed)), isolation: replicaIsolation(t)}
	e.s3 = s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(moto), UsePathStyle: true, Retryer: replicaRetryer(),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), DisableLogOutputChecksumValidationSkipped: true})

	// The endpoint builds and worker commands report to.
	done := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rec := doneRecord{kind: r.Form.Get("kind"), exec: r.Form.Get("exec"), id: r.Form.Get("id"), dir: r.Form.Get("dir"), extra: r.Form.Get("extra"), at: time.Now()}
		e.mu.Lock()
		for _, inc := range e.incarnations {
			if rec.dir != "" && strings.HasPrefix(rec.dir, inc.dir+string(filepath.Separator)) {
				rec.inc = inc
			}
		}
		e.done = append(e.done, rec)
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(done.Close)
	e.doneURL = done.URL + "/done"

	// The balancer listens first: the replicas hand out its URL as theirs.
	e.lb = newReplicaLB(t)
	e.cp = cp.New(cp.Options{Region: "us-east-1", BaseEndpoint: aws.String(e.lb.url), Retryer: replicaRetryer(),
		HTTPClient:  awshttp.NewBuildableClient().WithTimeout(30 * time.Second),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")})
	for i := range replicaCount {
		e.slots = append(e.slots, e.newSlot(i))
	}
	e.lb.balance(t, e.slots)
	t.Cleanup(func() {
		for _, s := range e.slots {
			s.stop()
		}
		if t.Failed() {
			for _, s := range e.slots {
				log, _ := os.ReadFile(s.logPath)
				t.Logf("replica %d log:\n%s", s.i, log)
			}
		}
	})
	return e
}

// replicaIsolation is how the replicas run builds: in bubblewrap's sandbox, the default, if it
// can make one here.
func replicaIsolation(t *testing.T) string {
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Logf("bwrap is not installed: builds run with --build-isolation none")
		return "none"
	}
	if out, err := exec.Command("bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--die-with-parent", "true").CombinedOutput(); err != nil {
		t.Logf("bwrap cannot make a sandbox here (%v: %s): builds run with --build-isolation none", err, bytes.TrimSpace(out))
		return "none"
	}
	return "sandbox"
}

// replicaRetryer retries what a real client retries — broken connections, 5xx answers (a 502
// of the balancer when a replica died under a request), throttling — often enough to ride out a
// kill, without the retry quota that would give up under a burst of them.
func replicaRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 10
		o.MaxBackoff = time.Second
		o.RateLimiter = ratelimit.None
	})
}

func (e *replicaEnv) intn(n int) int {
	e.rndMu.Lock()
	defer e.rndMu.Unlock()
	return e.rnd.IntN(n)
}

// jitter is a random duration in [lo, hi).
func (e *replicaEnv) jitter(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(e.intn(int(hi-lo)))
}

// A replica slot: one replica's address, its log, and its process as it is killed and started
// again, each time as a new incarnation on a fresh --data directory.
type replicaSlot struct {
	e       *replicaEnv
	i       int
	addr    string
	s3URL   string // its own way to moto, which tells the test which incarnation wrote what
	logPath string
	direct  *cp.Client
	healthy atomic.Bool

	mu  sync.Mutex
	cmd *exec.Cmd
	inc *incarnation
}

func (e *replicaEnv) newSlot(i int) *replicaSlot {
	s := &replicaSlot{e: e, i: i, addr: freeAddr(e.t), logPath: filepath.Join(e.base, fmt.Sprintf("replica-%d.log", i))}
	s.direct = cp.New(cp.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + s.addr), Retryer: replicaRetryer(),
		HTTPClient:  awshttp.NewBuildableClient().WithTimeout(30 * time.Second),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")})
	// The replica's S3 endpoint is a proxy to moto that notes the deploys' writes to the site
	// bucket, and which incarnation made them: the one running when the request arrived.
	motoURL, err := url.Parse(e.moto)
	if err != nil {
		e.t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(motoURL)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inc := s.current()
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		proxy.ServeHTTP(rec, r)
		// An object is written by a PUT, or by the POST that completes a multipart upload.
		written := (r.Method == http.MethodPut && !r.URL.Query().Has("partNumber")) || (r.Method == http.MethodPost && r.URL.Query().Has("uploadId"))
		if written && strings.HasPrefix(r.URL.Path, "/site/") && rec.status/100 == 2 {
			e.mu.Lock()
			e.siteWrites = append(e.siteWrites, siteWrite{key: strings.TrimPrefix(r.URL.Path, "/site/"), inc: inc, at: time.Now()})
			e.mu.Unlock()
		}
	}))
	e.t.Cleanup(srv.Close)
	s.s3URL = srv.URL
	return s
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *replicaSlot) current() *incarnation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inc
}

// start runs a new incarnation of the replica on a fresh --data directory and waits until it
// is healthy.
func (s *replicaSlot) start() error {
	e := s.e
	dir, err := os.MkdirTemp(e.base, fmt.Sprintf("replica-%d-", s.i))
	if err != nil {
		return err
	}
	e.mu.Lock()
	inc := &incarnation{n: len(e.incarnations) + 1, slot: s.i, dir: dir, started: time.Now()}
	e.incarnations = append(e.incarnations, inc)
	e.mu.Unlock()
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "===== %s, --data %s\n", inc, dir)
	cmd := exec.Command(e.bin, "serve", "--listen", s.addr, "--public-url", e.lb.url, "--data", dir,
		"--database", e.database, "--artifacts-s3-endpoint", s.s3URL, "--git-s3-bucket", "git",
		"--start-on-create=false", "--source-poll-interval", "1s", "--sweep-interval", "1s", "--job-ack-timeout", "10s",
		"--build-isolation", e.isolation)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), awsEnv...)
	s.mu.Lock()
	s.inc = inc
	err = cmd.Start()
	if err == nil {
		s.cmd = cmd
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := client.Get("http://" + s.addr + "/_sluice/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica %d (%s) did not become healthy in 60s", s.i, inc)
		}
		s.mu.Lock()
		exited := cmd.ProcessState != nil
		s.mu.Unlock()
		if exited {
			return fmt.Errorf("replica %d (%s) exited while starting", s.i, inc)
		}
	}
}

// busy tells whether the replica runs a built-in action: a run has a directory of its own under
// the work directory of the process (--data/work/server-*/).
func (s *replicaSlot) busy() bool {
	inc := s.current()
	if inc == nil {
		return false
	}
	runs, _ := filepath.Glob(filepath.Join(inc.dir, "work", "*", "*"))
	return len(runs) > 0
}

// kill SIGKILLs the replica and returns once it is dead.
func (s *replicaSlot) kill() *incarnation {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
	s.cmd = nil
	s.e.mu.Lock()
	s.inc.killed = time.Now()
	s.e.mu.Unlock()
	return s.inc
}

// stop ends the replica at the end of the test; that is no kill of the test's.
func (s *replicaSlot) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGKILL)
		s.cmd.Wait()
		s.cmd = nil
	}
}

// replicaLB is a round-robin load balancer over the replicas, as one in front of a deployment
// would be: it sends each request to the next replica its health checks found up, and to the
// next one again when the connection to one cannot even be made (nothing of the request reached
// it). A request whose replica dies under it fails with 502, and the client retries it.
type replicaLB struct {
	url       string
	slots     []*replicaSlot
	transport *http.Transport

	mu   sync.Mutex
	next int

	forwarded [replicaCount]atomic.Int64
	refused   atomic.Int64 // connections refused: sent on to the next replica
	failed    atomic.Int64 // answered 502: the replica died under the request
}

func newReplicaLB(t *testing.T) *replicaLB {
	lb := &replicaLB{transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "replica.invalid" // the transport picks the replica
			pr.Out.Host = pr.In.Host
		},
		Transport:     lb,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			lb.failed.Add(1)
			http.Error(w, "the replica failed: "+err.Error(), http.StatusBadGateway)
		},
	}
	srv := httptest.NewServer(proxy)
	lb.url = srv.URL
	t.Cleanup(func() {
		srv.Close()
		lb.transport.CloseIdleConnections()
	})
	return lb
}

// balance starts balancing over slots, checking their health until the test ends.
func (lb *replicaLB) balance(t *testing.T, slots []*replicaSlot) {
	lb.mu.Lock()
	lb.slots = slots
	lb.mu.Unlock()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { lb.checkHealth(stop, slots) })
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
}

// checkHealth asks every replica's /_sluice/health every 100 ms, as a balancer's health checks do.
func (lb *replicaLB) checkHealth(stop chan struct{}, slots []*replicaSlot) {
	client := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		for _, s := range slots {
			up := false
			if resp, err := client.Get("http://" + s.addr + "/_sluice/health"); err == nil {
				resp.Body.Close()
				up = resp.StatusCode == http.StatusOK
			}
			s.healthy.Store(up)
		}
	}
}

// pick returns the next healthy replica not tried yet, waiting a while for one if none is up.
func (lb *replicaLB) pick(ctx context.Context, tried map[int]bool) *replicaSlot {
	for deadline := time.Now().Add(10 * time.Second); ; {
		lb.mu.Lock()
		n := len(lb.slots)
		for k := range n {
			s := lb.slots[(lb.next+k)%n]
			if s.healthy.Load() && !tried[s.i] {
				lb.next = (lb.next + k + 1) % n
				lb.mu.Unlock()
				return s
			}
		}
		lb.mu.Unlock()
		if len(tried) > 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var errNoReplica = errors.New("no replica is up")

func (lb *replicaLB) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	tried := map[int]bool{}
	var lastErr error = errNoReplica
	for {
		s := lb.pick(req.Context(), tried)
		if s == nil {
			return nil, lastErr
		}
		tried[s.i] = true
		out := req.Clone(req.Context())
		out.URL.Host = s.addr
		out.TransferEncoding = nil
		if req.Body != nil {
			out.ContentLength = int64(len(body))
			out.Body = io.NopCloser(bytes.NewReader(body))
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		resp, err := lb.transport.RoundTrip(out)
		if err == nil {
			lb.forwarded[s.i].Add(1)
			return resp, nil
		}
		var opErr *net.OpError
		if !errors.As(err, &opErr) || opErr.Op != "dial" {
			return nil, err
		}
		lb.refused.Add(1)
		lastErr = err
	}
}

// setUp starts the replicas, makes moto's buckets, pushes the repository, creates the action
// type and the pipelines, starts the workers and the approver, and waits for the first
// execution of each pipeline.
func (e *replicaEnv) setUp() {
	t := e.t
	for _, bucket := range []string{"artifacts", "sources", "git", "site"} {
		if _, err := e.s3.CreateBucket(e.ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatalf("create bucket %s in moto: %v", bucket, err)
		}
	}
	for _, bucket := range []string{"sources", "site"} {
		if _, err := e.s3.PutBucketVersioning(e.ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
			VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
			t.Fatal(err)
		}
	}

	// The replicas start together on the empty schema.
	errs := make([]error, len(e.slots))
	var wg sync.WaitGroup
	for i, s := range e.slots {
		wg.Go(func() { errs[i] = s.start() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	waitUpTo(t, 10*time.Second, "the balancer to find every replica up", func() bool {
		for _, s := range e.slots {
			if !s.healthy.Load() {
				return false
			}
		}
		return true
	}, func() string { return "" })

	if _, err := e.cp.CreateCustomActionType(e.ctx, &cp.CreateCustomActionTypeInput{Category: types.ActionCategoryBuild, Provider: aws.String(replicaProvider),
		Version: aws.String("1"), InputArtifactDetails: &types.ArtifactDetails{MinimumCount: 1, MaximumCount: 1},
		OutputArtifactDetails: &types.ArtifactDetails{MinimumCount: 0, MaximumCount: 0}}); err != nil {
		t.Fatal(err)
	}
	for _, decl := range []*types.PipelineDeclaration{e.gitPipeline(pipePushed, "main"), e.gitPipeline(pipeStarted, "release"), e.uploadPipeline()} {
		if _, err := e.cp.CreatePipeline(e.ctx, &cp.CreatePipelineInput{Pipeline: decl}); err != nil {
			t.Fatalf("create pipeline %s: %v", *decl.Name, err)
		}
	}

	// The first push creates the repository and starts "pushed"; the one of release starts
	// "started".
	e.repo = newGitRepo(t)
	base := e.repo.commit("base", map[string]string{"page.txt": "base\n", "buildspec.yml": replicaBuildspec})
	for _, branch := range []string{"main", "release"} {
		if err := e.push(base, branch); err != nil {
			t.Fatal(err)
		}
	}
	e.mu.Lock()
	e.pushed = append(e.pushed, base)
	e.mu.Unlock()

	// "uploaded" polls app.zip, which needs a first execution to tell changes from.
	if _, err := e.s3.PutObject(e.ctx, &s3.PutObjectInput{Bucket: aws.String("sources"), Key: aws.String("app.zip"),
		Body: bytes.NewReader(zipOf(t, map[string]string{"page.txt": "upload base\n"}))}); err != nil {
		t.Fatal(err)
	}
	first, err := e.cp.StartPipelineExecution(e.ctx, &cp.StartPipelineExecutionInput{Name: aws.String(pipeUploaded), ClientRequestToken: aws.String("first-upload")})
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.firstUpload = *first.PipelineExecutionId
	e.mu.Unlock()

	// Two workers serve the custom action through the balancer; their AWS SDK retries as a
	// client of a deployment should.
	script := fmt.Sprintf(`test -f "$SLUICE_INPUT_DIR/page.txt"
curl -fsS -X POST -d kind=custom --data-urlencode "exec=$SLUICE_PIPELINE_EXECUTION_ID" --data-urlencode "id=$SLUICE_JOB_ID" --data-urlencode "extra=$WORKER" %s`, e.doneURL)
	for w := range 2 {
		e.startWorker(w, script)
	}
	stopApprover := e.approve()
	t.Cleanup(stopApprover)

	waitUpTo(t, 90*time.Second, "the first execution of each pipeline to succeed", func() bool {
		for _, p := range []string{pipePushed, pipeStarted, pipeUploaded} {
			list := e.executions(e.cp, p)
			if len(list) != 1 {
				return false
			}
			switch list[0].Status {
			case types.PipelineExecutionStatusSucceeded:
			case types.PipelineExecutionStatusInProgress:
				return false
			default:
				t.Fatalf("the first execution of %s ended %s:%s", p, list[0].Status, e.describe(p))
			}
		}
		return true
	}, func() string { return e.describe(pipePushed) + e.describe(pipeStarted) + e.describe(pipeUploaded) })
}

// replicaBuildspec is the build of "pushed" and "started": it prints the marker, makes an
// artifact, takes two seconds (for kills to land in), and reports to the test as its last
// command.
const replicaBuildspec = `version: 0.2
phases:
  build:
    commands:
      - echo "` + replicaMarker + ` $EXEC_ID"
      - mkdir -p out && cp page.txt out/page.txt && echo "$EXEC_ID" > out/execution.txt
      - sleep 2
      - curl -fsS -X POST -d kind=build --data-urlencode "exec=$EXEC_ID" --data-urlencode "id=$CODEBUILD_BUILD_ID" --data-urlencode "dir=$CODEBUILD_SRC_DIR" "$DONE_URL"
artifacts:
  base-directory: out
  files:
    - '**/*'
`

func (e *replicaEnv) gitPipeline(name, branch string) *types.PipelineDeclaration {
	env := fmt.Sprintf(`[{"name":"EXEC_ID","value":"#{codepipeline.PipelineExecutionId}","type":"PLAINTEXT"},{"name":"DONE_URL","value":%q,"type":"PLAINTEXT"}]`, e.doneURL)
	return &types.PipelineDeclaration{
		Name: aws.String(name), RoleArn: aws.String("arn:aws:iam::000000000000:role/cp"),
		PipelineType: types.PipelineTypeV2, ExecutionMode: types.ExecutionModeParallel,
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")},
		Stages: []types.StageDeclaration{
			{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{Name: aws.String("Source"),
				ActionTypeId:    &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerAws, Provider: aws.String("CodeCommit"), Version: aws.String("1")},
				Configuration:   map[string]string{"RepositoryName": replicaRepo, "BranchName": branch, "PollForSourceChanges": "false"},
				OutputArtifacts: []types.OutputArtifact{{Name: aws.String("Src")}}}}},
			{Name: aws.String("Build"), Actions: []types.ActionDeclaration{{Name: aws.String("Build"),
				ActionTypeId:    &types.ActionTypeId{Category: types.ActionCategoryBuild, Owner: types.ActionOwnerAws, Provider: aws.String("CodeBuild"), Version: aws.String("1")},
				Configuration:   map[string]string{"ProjectName": "replica", "EnvironmentVariables": env},
				InputArtifacts:  []types.InputArtifact{{Name: aws.String("Src")}},
				OutputArtifacts: []types.OutputArtifact{{Name: aws.String("Built")}}}}},
			{Name: aws.String("Deploy"), Actions: []types.ActionDeclaration{{Name: aws.String("Deploy"),
				ActionTypeId:   &types.ActionTypeId{Category: types.ActionCategoryDeploy, Owner: types.ActionOwnerAws, Provider: aws.String("S3"), Version: aws.String("1")},
				Configuration:  map[string]string{"BucketName": "site", "Extract": "false", "ObjectKey": name + "/#{codepipeline.PipelineExecutionId}.zip"},
				InputArtifacts: []types.InputArtifact{{Name: aws.String("Built")}}}}},
		},
	}
}

func (e *replicaEnv) uploadPipeline() *types.PipelineDeclaration {
	return &types.PipelineDeclaration{
		Name: aws.String(pipeUploaded), RoleArn: aws.String("arn:aws:iam::000000000000:role/cp"),
		PipelineType: types.PipelineTypeV2, ExecutionMode: types.ExecutionModeQueued,
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")},
		Stages: []types.StageDeclaration{
			{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{Name: aws.String("Source"),
				ActionTypeId:    &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerAws, Provider: aws.String("S3"), Version: aws.String("1")},
				Configuration:   map[string]string{"S3Bucket": "sources", "S3ObjectKey": "app.zip", "PollForSourceChanges": "true"},
				OutputArtifacts: []types.OutputArtifact{{Name: aws.String("Src")}}}}},
			{Name: aws.String("Work"), Actions: []types.ActionDeclaration{{Name: aws.String("Work"),
				ActionTypeId:   &types.ActionTypeId{Category: types.ActionCategoryBuild, Owner: types.ActionOwnerCustom, Provider: aws.String(replicaProvider), Version: aws.String("1")},
				InputArtifacts: []types.InputArtifact{{Name: aws.String("Src")}}}}},
			{Name: aws.String("Approve"), Actions: []types.ActionDeclaration{{Name: aws.String("Approve"),
				ActionTypeId: &types.ActionTypeId{Category: types.ActionCategoryApproval, Owner: types.ActionOwnerAws, Provider: aws.String("Manual"), Version: aws.String("1")}}}},
		},
	}
}

// push pushes commit to branch through the balancer, again until git says it is done: a push
// that failed (its replica died under it) is pushed again, as a user would.
func (e *replicaEnv) push(commit, branch string) error {
	var outs []string
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		cmd := exec.Command("git", "push", e.lb.url+"/v1/repos/"+replicaRepo, commit+":refs/heads/"+branch)
		cmd.Dir = e.repo.dir
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
		out, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		outs = append(outs, fmt.Sprintf("%v: %s", err, bytes.TrimSpace(out)))
		e.mu.Lock()
		e.pushRetries++
		e.mu.Unlock()
		if time.Now().After(deadline) {
			return fmt.Errorf("the push of %s to %s did not succeed in 90s:\n%s", commit, branch, strings.Join(outs, "\n"))
		}
	}
}

// startWorker runs `sluice worker` for the custom action type, polling through the balancer.
func (e *replicaEnv) startWorker(n int, script string) {
	t := e.t
	cmd := exec.Command(e.bin, "worker", "--endpoint", e.lb.url, "--s3-endpoint", e.moto, "--category", "Build",
		"--provider", replicaProvider, "--poll-interval", "200ms", "--", "sh", "-ec", script)
	cmd.Env = append(os.Environ(), append(awsEnv, "AWS_MAX_ATTEMPTS=10", "AWS_RETRY_MODE=standard", fmt.Sprintf("WORKER=%d", n))...)
	superviseWorker(t, cmd, filepath.Join(e.base, fmt.Sprintf("worker-%d.log", n)), fmt.Sprintf("worker %d", n))
}

// approve approves, through the balancer, each approval of "uploaded" that waits, until the
// returned function is called.
func (e *replicaEnv) approve() (stop func()) {
	ctx, cancel := context.WithCancel(e.ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
			state, err := e.cp.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String(pipeUploaded)})
			if err != nil {
				continue
			}
			for _, st := range state.StageStates {
				for _, a := range st.ActionStates {
					x := a.LatestExecution
					if x == nil || x.Token == nil || x.Status != types.ActionExecutionStatusInProgress {
						continue
					}
					_, err := e.cp.PutApprovalResult(ctx, &cp.PutApprovalResultInput{PipelineName: aws.String(pipeUploaded), StageName: st.StageName,
						ActionName: a.ActionName, Token: x.Token, Result: &types.ApprovalResult{Status: types.ApprovalStatusApproved, Summary: aws.String("replicas")}})
					if err == nil {
						e.mu.Lock()
						e.approved++
						e.mu.Unlock()
					}
				}
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

// listExecutions lists every execution of a pipeline.
func listExecutions(ctx context.Context, client *cp.Client, pipeline string) ([]types.PipelineExecutionSummary, error) {
	var all []types.PipelineExecutionSummary
	in := &cp.ListPipelineExecutionsInput{PipelineName: aws.String(pipeline), MaxResults: aws.Int32(100)}
	for {
		out, err := client.ListPipelineExecutions(ctx, in)
		if err != nil {
			return nil, err
		}
		all = append(all, out.PipelineExecutionSummaries...)
		if out.NextToken == nil {
			return all, nil
		}
		in.NextToken = out.NextToken
	}
}

func (e *replicaEnv) executions(client *cp.Client, pipeline string) []types.PipelineExecutionSummary {
	e.t.Helper()
	list, err := listExecutions(e.ctx, client, pipeline)
	if err != nil {
		e.t.Fatalf("list the executions of %s: %v", pipeline, err)
	}
	return list
}

// actionRuns lists the action executions of one pipeline execution.
func (e *replicaEnv) actionRuns(pipeline, execID string) ([]types.ActionExecutionDetail, error) {
	var all []types.ActionExecutionDetail
	in := &cp.ListActionExecutionsInput{PipelineName: aws.String(pipeline), MaxResults: aws.Int32(100),
		Filter: &types.ActionExecutionFilter{PipelineExecutionId: aws.String(execID)}}
	for {
		out, err := e.cp.ListActionExecutions(e.ctx, in)
		if err != nil {
			return nil, err
		}
		all = append(all, out.ActionExecutionDetails...)
		if out.NextToken == nil {
			return all, nil
		}
		in.NextToken = out.NextToken
	}
}

// revisionOf is the revision an execution's source ran, or was started for.
func revisionOf(x types.PipelineExecutionSummary) string {
	for _, r := range x.SourceRevisions {
		return aws.ToString(r.RevisionId)
	}
	return ""
}

func ended(s types.PipelineExecutionStatus) bool {
	return s != types.PipelineExecutionStatusInProgress && s != types.PipelineExecutionStatusStopping
}

// describe says what each execution of a pipeline did, for failure messages.
func (e *replicaEnv) describe(pipeline string) string {
	list, err := listExecutions(e.ctx, e.cp, pipeline)
	if err != nil {
		return fmt.Sprintf("\n%s: %v", pipeline, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s: %d executions", pipeline, len(list))
	for _, x := range list {
		trigger := ""
		if x.Trigger != nil {
			trigger = string(x.Trigger.TriggerType)
		}
		fmt.Fprintf(&b, "\n  %s %s trigger %s revision %s", aws.ToString(x.PipelineExecutionId), x.Status, trigger, revisionOf(x))
		if x.Status == types.PipelineExecutionStatusSucceeded {
			continue
		}
		runs, err := e.actionRuns(pipeline, aws.ToString(x.PipelineExecutionId))
		if err != nil {
			fmt.Fprintf(&b, "\n    %v", err)
		}
		for _, a := range runs {
			fmt.Fprintf(&b, "\n    %s %s %s", aws.ToString(a.ActionName), aws.ToString(a.ActionExecutionId), a.Status)
			if a.Output != nil && a.Output.ExecutionResult != nil {
				fmt.Fprintf(&b, " %s", aws.ToString(a.Output.ExecutionResult.ExternalExecutionSummary))
				if d := a.Output.ExecutionResult.ErrorDetails; d != nil {
					fmt.Fprintf(&b, " error %s", aws.ToString(d.Message))
				}
			}
		}
	}
	return b.String()
}

// load starts the executions — pushes to "pushed", uploads for "uploaded", starts of "started" —
// while the killer kills replicas, and returns once all were acknowledged and every kill done.
func (e *replicaEnv) load(kills, executions int) {
	t := e.t
	pushes := executions * 2 / 5
	uploads := executions * 3 / 10
	starts := executions - pushes - uploads
	// Everything that could fail the test from another goroutine is made here.
	var commits []string
	for i := range pushes {
		commits = append(commits, e.repo.commit(fmt.Sprintf("change %d", i), map[string]string{"page.txt": fmt.Sprintf("change %d\n", i)}))
	}
	var zips [][]byte
	for i := range uploads {
		zips = append(zips, zipOf(t, map[string]string{"page.txt": fmt.Sprintf("upload %d\n", i)}))
	}

	// The changes are spread over about the time the kills take, so that the kills find work
	// in flight: gaps of half to one and a half times their share of it.
	window := time.Duration(kills) * 5 * time.Second
	gap := func(n int) time.Duration {
		share := window / time.Duration(max(n, 1))
		return e.jitter(share/2, share*3/2)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for range kills {
			time.Sleep(e.jitter(2*time.Second, 5*time.Second))
			// Two kills in three go to a replica running a built-in action, if one is.
			candidates := e.slots
			if busy := slices.DeleteFunc(slices.Clone(e.slots), func(s *replicaSlot) bool { return !s.busy() }); len(busy) > 0 && e.intn(3) < 2 {
				candidates = busy
			}
			s := candidates[e.intn(len(candidates))]
			busy := s.busy()
			inc := s.kill()
			what := fmt.Sprintf("replica %d at %s", s.i, inc.killed.Format("15:04:05.000"))
			if busy {
				what += " (running an action)"
			}
			e.mu.Lock()
			e.kills = append(e.kills, what)
			e.mu.Unlock()
			time.Sleep(e.jitter(200*time.Millisecond, 2*time.Second))
			if err := s.start(); err != nil {
				t.Errorf("restart replica %d: %v", s.i, err)
				return
			}
		}
	})
	wg.Go(func() {
		for _, commit := range commits {
			if err := e.push(commit, "main"); err != nil {
				t.Error(err)
				return
			}
			e.mu.Lock()
			e.pushed = append(e.pushed, commit)
			e.mu.Unlock()
			time.Sleep(gap(pushes))
		}
	})
	wg.Go(func() {
		for i, body := range zips {
			out, err := e.s3.PutObject(e.ctx, &s3.PutObjectInput{Bucket: aws.String("sources"), Key: aws.String("app.zip"), Body: bytes.NewReader(body)})
			if err != nil {
				t.Errorf("upload %d to moto: %v", i, err)
				return
			}
			version := aws.ToString(out.VersionId)
			e.mu.Lock()
			e.uploaded = append(e.uploaded, version)
			e.mu.Unlock()
			// The replicas poll: the next version waits until this one started its execution,
			// else a poll might see only the later one, as on AWS.
			seen := false
			for deadline := time.Now().Add(60 * time.Second); !seen && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
				list, _ := listExecutions(e.ctx, e.cp, pipeUploaded)
				seen = slices.ContainsFunc(list, func(x types.PipelineExecutionSummary) bool { return revisionOf(x) == version })
			}
			if !seen {
				t.Errorf("upload %d (version %s) started no execution of %s within 60s", i, version, pipeUploaded)
			}
			time.Sleep(gap(uploads))
		}
	})
	wg.Go(func() {
		for i := range starts {
			token := fmt.Sprintf("replica-start-%d", i)
			var errs []string
			for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				out, err := e.cp.StartPipelineExecution(e.ctx, &cp.StartPipelineExecutionInput{Name: aws.String(pipeStarted), ClientRequestToken: aws.String(token)})
				if err == nil {
					e.mu.Lock()
					e.started = append(e.started, aws.ToString(out.PipelineExecutionId))
					e.mu.Unlock()
					break
				}
				errs = append(errs, err.Error())
				if time.Now().After(deadline) {
					t.Errorf("start %d of %s did not succeed in 60s: %s", i, pipeStarted, strings.Join(errs, "; "))
					return
				}
			}
			time.Sleep(gap(starts))
		}
	})
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// drain waits until every execution the test started or caused has ended.
func (e *replicaEnv) drain(timeout time.Duration) {
	var why string
	for deadline := time.Now().Add(timeout); ; time.Sleep(500 * time.Millisecond) {
		if why = e.pending(); why == "" {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	e.t.Fatalf("%v after the last kill, not every execution has ended: %s%s%s%s", timeout, why, e.describe(pipePushed), e.describe(pipeStarted), e.describe(pipeUploaded))
}

// pending says what has not ended yet, "" if everything has.
func (e *replicaEnv) pending() string {
	e.mu.Lock()
	pushed, uploaded, started := slices.Clone(e.pushed), slices.Clone(e.uploaded), append([]string{e.firstUpload}, e.started...)
	e.mu.Unlock()
	all := map[string][]types.PipelineExecutionSummary{}
	for _, p := range []string{pipePushed, pipeStarted, pipeUploaded} {
		list, err := listExecutions(e.ctx, e.cp, p)
		if err != nil {
			return fmt.Sprintf("list the executions of %s: %v", p, err)
		}
		all[p] = list
		for _, x := range list {
			if !ended(x.Status) {
				return fmt.Sprintf("execution %s of %s is %s", aws.ToString(x.PipelineExecutionId), p, x.Status)
			}
		}
	}
	has := func(p string, match func(types.PipelineExecutionSummary) bool) bool {
		return slices.ContainsFunc(all[p], match)
	}
	for _, commit := range pushed {
		if !has(pipePushed, func(x types.PipelineExecutionSummary) bool { return revisionOf(x) == commit }) {
			return fmt.Sprintf("no execution of %s for the acknowledged push of %s", pipePushed, commit)
		}
	}
	for _, version := range uploaded {
		if !has(pipeUploaded, func(x types.PipelineExecutionSummary) bool { return revisionOf(x) == version }) {
			return fmt.Sprintf("no execution of %s for upload %s", pipeUploaded, version)
		}
	}
	for _, id := range started {
		if !has(pipeStarted, func(x types.PipelineExecutionSummary) bool { return aws.ToString(x.PipelineExecutionId) == id }) &&
			!has(pipeUploaded, func(x types.PipelineExecutionSummary) bool { return aws.ToString(x.PipelineExecutionId) == id }) {
			return fmt.Sprintf("no execution %s, which StartPipelineExecution answered with", id)
		}
	}
	return ""
}

// completion is one time a run did its work: a build's or a worker's report, or a deploy's write.
type completion struct {
	inc *incarnation
	at  time.Time
	id  string
}

// once checks that a run completed exactly once: of its completions, all but one must come from
// an incarnation that was killed after it did the work and before the action's result was
// recorded (at completed), so that the run was handed out again. It returns how many were such.
func (e *replicaEnv) once(what string, runs []completion, completed time.Time) int {
	var excused, counted []completion
	for _, c := range runs {
		if c.inc != nil && !c.inc.killed.IsZero() && !c.inc.killed.Before(c.at) && !c.inc.killed.After(completed.Add(5*time.Millisecond)) {
			excused = append(excused, c)
		} else {
			counted = append(counted, c)
		}
	}
	for _, c := range excused {
		e.t.Logf("%s: a completion at %s by %v was not recorded before the kill, and the run was handed out again (%s)", what, c.at.Format("15:04:05.000"), c.inc, c.id)
	}
	if len(counted) != 1 {
		var b strings.Builder
		for _, c := range runs {
			fmt.Fprintf(&b, "\n  at %s by %v (%s)", c.at.Format("15:04:05.000"), c.inc, c.id)
		}
		e.t.Errorf("%s completed %d times (%d more by runs killed before their result was recorded), the action ending at %s; want once:%s",
			what, len(counted), len(excused), completed.Format("15:04:05.000"), b.String())
	}
	return len(excused)
}

// check checks, once everything has ended, what TestReplicasSurviveSIGKILL promises.
func (e *replicaEnv) check() {
	t := e.t
	e.mu.Lock()
	pushed, uploaded, started, firstUpload := slices.Clone(e.pushed), slices.Clone(e.uploaded), slices.Clone(e.started), e.firstUpload
	done, siteWrites := slices.Clone(e.done), slices.Clone(e.siteWrites)
	e.mu.Unlock()
	all := map[string][]types.PipelineExecutionSummary{}
	for _, p := range []string{pipePushed, pipeStarted, pipeUploaded} {
		all[p] = e.executions(e.cp, p)
		for _, x := range all[p] {
			if x.Status != types.PipelineExecutionStatusSucceeded {
				t.Errorf("execution %s of %s ended %s:%s", aws.ToString(x.PipelineExecutionId), p, x.Status, e.describe(p))
			}
		}
	}

	// Every acknowledged push, upload and start started exactly one execution, and nothing else
	// started any.
	count := func(p string, match func(types.PipelineExecutionSummary) bool) int {
		n := 0
		for _, x := range all[p] {
			if match(x) {
				n++
			}
		}
		return n
	}
	if len(all[pipePushed]) != len(pushed) {
		t.Errorf("%s has %d executions for %d acknowledged pushes:%s", pipePushed, len(all[pipePushed]), len(pushed), e.describe(pipePushed))
	}
	for _, commit := range pushed {
		if n := count(pipePushed, func(x types.PipelineExecutionSummary) bool {
			return revisionOf(x) == commit && x.Trigger != nil && x.Trigger.TriggerType == types.TriggerTypeCloudWatchEvent
		}); n != 1 {
			t.Errorf("the acknowledged push of %s started %d executions of %s, want 1:%s", commit, n, pipePushed, e.describe(pipePushed))
		}
	}
	if len(all[pipeUploaded]) != 1+len(uploaded) {
		t.Errorf("%s has %d executions for 1 start and %d uploads:%s", pipeUploaded, len(all[pipeUploaded]), len(uploaded), e.describe(pipeUploaded))
	}
	for _, version := range uploaded {
		if n := count(pipeUploaded, func(x types.PipelineExecutionSummary) bool { return revisionOf(x) == version }); n != 1 {
			t.Errorf("upload %s started %d executions of %s, want 1:%s", version, n, pipeUploaded, e.describe(pipeUploaded))
		}
	}
	if len(all[pipeStarted]) != 1+len(started) {
		t.Errorf("%s has %d executions for the push of its branch and %d starts:%s", pipeStarted, len(all[pipeStarted]), len(started), e.describe(pipeStarted))
	}
	seenStart := map[string]bool{}
	for _, id := range append(started, firstUpload) {
		if seenStart[id] {
			t.Errorf("two starts were answered with the same execution %s", id)
		}
		seenStart[id] = true
	}

	// Every replica, asked directly, agrees.
	for _, s := range e.slots {
		for _, p := range []string{pipePushed, pipeStarted, pipeUploaded} {
			want, got := executionSet(all[p]), executionSet(e.executions(s.direct, p))
			if !slices.Equal(want, got) {
				t.Errorf("replica %d lists the executions of %s as\n  %s\nthe balancer as\n  %s", s.i, p, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		}
	}

	// Each action ran once, and each build, deploy and custom action completed once.
	reports := map[string][]completion{}
	for _, d := range done {
		reports[d.kind+"/"+d.exec] = append(reports[d.kind+"/"+d.exec], completion{inc: d.inc, at: d.at, id: strings.TrimSpace(d.id + " " + d.extra)})
	}
	writes := map[string][]completion{}
	for _, w := range siteWrites {
		writes[w.key] = append(writes[w.key], completion{inc: w.inc, at: w.at, id: "wrote " + w.key})
	}
	versions := e.siteVersions()
	known := map[string]bool{}
	logReader := &http.Client{Timeout: 10 * time.Second}
	for _, p := range []string{pipePushed, pipeStarted, pipeUploaded} {
		for _, x := range all[p] {
			id := aws.ToString(x.PipelineExecutionId)
			runs, err := e.actionRuns(p, id)
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]types.ActionExecutionDetail{}
			bad := false
			for _, a := range runs {
				name := aws.ToString(a.ActionName)
				if _, twice := byName[name]; twice {
					t.Errorf("execution %s of %s ran action %s more than once:%s", id, p, name, e.describe(p))
					bad = true
				}
				if a.Status != types.ActionExecutionStatusSucceeded {
					t.Errorf("execution %s of %s: action %s is %s", id, p, name, a.Status)
					bad = true
				}
				byName[name] = a
			}
			names := []string{"Source", "Build", "Deploy"}
			if p == pipeUploaded {
				names = []string{"Source", "Work", "Approve"}
			}
			for _, name := range names {
				if _, ok := byName[name]; !ok {
					t.Errorf("execution %s of %s has no run of action %s", id, p, name)
					bad = true
				}
			}
			if bad {
				continue
			}
			if p == pipeUploaded {
				if n := len(reports["custom/"+id]); n != 1 {
					t.Errorf("the custom action of execution %s of %s completed %d times, want once (its workers are never killed): %+v", id, p, n, reports["custom/"+id])
				}
				continue
			}
			build, deploy := byName["Build"], byName["Deploy"]
			e.reruns += e.once(fmt.Sprintf("the build of execution %s of %s", id, p), reports["build/"+id], aws.ToTime(build.LastUpdateTime))
			key := p + "/" + id + ".zip"
			known[key] = true
			if versions[key] == 0 {
				t.Errorf("execution %s of %s deployed nothing to site/%s", id, p, key)
			} else if versions[key] != len(writes[key]) {
				t.Errorf("site/%s has %d versions, but the replicas wrote it %d times", key, versions[key], len(writes[key]))
			}
			e.reruns += e.once(fmt.Sprintf("the deploy of execution %s of %s", id, p), writes[key], aws.ToTime(deploy.LastUpdateTime))

			// The build's log, from every replica.
			if build.Output == nil || build.Output.ExecutionResult == nil || build.Output.ExecutionResult.ExternalExecutionUrl == nil {
				t.Errorf("the build of execution %s of %s has no log URL", id, p)
				continue
			}
			u, err := url.Parse(*build.Output.ExecutionResult.ExternalExecutionUrl)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range e.slots {
				resp, err := logReader.Get("http://" + s.addr + u.Path)
				if err != nil {
					t.Errorf("read the build log %s from replica %d: %v", u.Path, s.i, err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), replicaMarker+" "+id) {
					t.Errorf("replica %d answers %s for the build log %s of execution %s of %s, without %q:\n%s", s.i, resp.Status, u.Path, id, p, replicaMarker+" "+id, body)
				}
				if s.i == 0 {
					// A run handed out again continues the log of the one a kill interrupted.
					if n := strings.Count(string(body), "Running the build "); n > 1 {
						e.interrupted += n - 1
					}
				}
			}
		}
	}
	for key := range versions {
		if !known[key] {
			t.Errorf("site/%s belongs to no execution", key)
		}
	}
}

// executionSet is a pipeline's executions as "id status", in order.
func executionSet(list []types.PipelineExecutionSummary) []string {
	var out []string
	for _, x := range list {
		out = append(out, aws.ToString(x.PipelineExecutionId)+" "+string(x.Status))
	}
	sort.Strings(out)
	return out
}

// siteVersions counts the versions of each object in the site bucket.
func (e *replicaEnv) siteVersions() map[string]int {
	out := map[string]int{}
	in := &s3.ListObjectVersionsInput{Bucket: aws.String("site")}
	for {
		page, err := e.s3.ListObjectVersions(e.ctx, in)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, v := range page.Versions {
			out[aws.ToString(v.Key)]++
		}
		if !aws.ToBool(page.IsTruncated) {
			return out
		}
		in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
	}
}

func (e *replicaEnv) summary() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var forwarded []string
	for i := range e.lb.forwarded {
		forwarded = append(forwarded, strconv.FormatInt(e.lb.forwarded[i].Load(), 10))
	}
	return fmt.Sprintf("%d replicas (builds: %s), %d kills (%s), %d incarnations; %d executions of %s (pushes), %d of %s (starts), %d of %s (uploads, custom action, approval); "+
		"%d builds interrupted by a kill and run again, %d completions by runs killed after their work and before their result was recorded; "+
		"the balancer forwarded %s requests to the replicas, sent %d refused connections on to the next, answered 502 to %d (the client retried); %d pushes retried, %d approvals",
		len(e.slots), e.isolation, len(e.kills), strings.Join(e.kills, ", "), len(e.incarnations), len(e.pushed), pipePushed, len(e.started)+1, pipeStarted, len(e.uploaded)+1, pipeUploaded,
		e.interrupted, e.reruns, strings.Join(forwarded, "/"), e.lb.refused.Load(), e.lb.failed.Load(), e.pushRetries, e.approved)
}

// TestReplicasPushRetriedElsewhere pushes a commit to one replica while the push cannot be
// recorded, kills that replica once the branch has moved (the push is stored in PostgreSQL and
// the bucket, its answer held until it is recorded), and pushes again as the client whose push
// failed does: the balancer sends the retry to another replica, where git finds the branch at
// the commit already, answers "Everything up-to-date" and succeeds. That answer acknowledges the
// commit, so it must run, even though the next push moves the branch on before the killed
// replica comes back.
//
// A push into a shared repository stores its refs with the moves it made still pending, in one
// write, and records its events after: a replica that dies between the two leaves the moves
// pending, and the next push to the repository, or the retry that git answers "Everything
// up-to-date" (which only lists the refs), records them before it answers.
func TestReplicasPushRetriedElsewhere(t *testing.T) {
	bin := buildBinary(t)
	database := storetest.PostgresURL(t)
	for _, tool := range []string{"git", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	moto := startMoto(t)
	e := newReplicaEnv(t, bin, database, moto, 1)
	e.setUp()
	a := e.slots[0]
	stored := e.repo.commit("stored, not recorded", map[string]string{"page.txt": "stored\n"})

	release := holdStoreWrites(t, []string{"--database", database})
	answered := make(chan string, 1)
	go func() {
		cmd := exec.Command("git", "push", "http://"+a.addr+"/v1/repos/"+replicaRepo, stored+":refs/heads/main")
		cmd.Dir = e.repo.dir
		out, err := cmd.CombinedOutput()
		answered <- fmt.Sprintf("%v: %s", err, bytes.TrimSpace(out))
	}()
	other := "http://" + e.slots[1].addr + "/v1/repos/" + replicaRepo
	waitUpTo(t, 30*time.Second, "the push to move main", func() bool {
		out, _ := exec.Command("git", "ls-remote", other, "refs/heads/main").Output()
		return strings.HasPrefix(string(out), stored)
	}, func() string { return "" })
	time.Sleep(300 * time.Millisecond) // replica 0 now waits to record the push
	select {
	case out := <-answered:
		t.Fatalf("the push was answered while it could not be recorded: %s", out)
	default:
	}
	a.kill()
	release()
	t.Logf("the first push, its replica killed before answering: %s", <-answered)

	// The client pushes again, through the balancer, to a live replica.
	if err := e.push(stored, "main"); err != nil {
		t.Fatal(err)
	}
	t.Logf("the push again, through the balancer: acknowledged")
	// The next change.
	next := e.repo.commit("next", map[string]string{"page.txt": "next\n"})
	if err := e.push(next, "main"); err != nil {
		t.Fatal(err)
	}
	runOf := func(commit string) bool {
		list, _ := listExecutions(e.ctx, e.cp, pipePushed)
		return slices.ContainsFunc(list, func(x types.PipelineExecutionSummary) bool { return revisionOf(x) == commit })
	}
	waitUpTo(t, 30*time.Second, "an execution of the next push", func() bool { return runOf(next) }, func() string { return e.describe(pipePushed) })
	if err := a.start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); !runOf(stored); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("commit %s was stored by a push whose replica died before answering; the push again was acknowledged by another replica, but no execution ran the commit within 20s of the killed replica's return:%s",
				stored, e.describe(pipePushed))
		}
	}
}
