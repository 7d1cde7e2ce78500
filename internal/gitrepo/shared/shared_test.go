package shared_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/githost"
	"github.com/sluicehq/sluice/internal/gitrepo"
	"github.com/sluicehq/sluice/internal/gitrepo/shared"
	"github.com/sluicehq/sluice/internal/store/storetest"
)

// The environment of a replica the tests run as a process of its own (this test binary), to
// kill it.
const (
	replicaEnv   = "SLUICE_SHARED_GIT_REPLICA"
	replicaDB    = "SLUICE_SHARED_GIT_DB"
	replicaS3    = "SLUICE_SHARED_GIT_S3"
	replicaBkt   = "SLUICE_SHARED_GIT_BUCKET"
	replicaCache = "SLUICE_SHARED_GIT_CACHE"
	// replicaHang, set, makes the replica's recording of pushes wait forever: it dies (is
	// killed) after storing a push and before reporting it.
	replicaHang = "SLUICE_SHARED_GIT_HANG"
)

func TestMain(m *testing.M) {
	if os.Getenv(replicaEnv) != "" {
		runReplica()
		return
	}
	code := m.Run()
	moto.stop()
	os.Exit(code)
}

// runReplica serves the shared repositories from a cache directory on a loopback port, which it
// prints, until it is killed.
func runReplica() {
	ctx := context.Background()
	st, err := shared.Open(ctx, shared.Config{DatabaseURL: os.Getenv(replicaDB), Client: s3Client(os.Getenv(replicaS3)), Bucket: os.Getenv(replicaBkt), Prefix: "git/"})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	dir := os.Getenv(replicaCache)
	remotes := gitrepo.NewSharedRemotes(filepath.Join(dir, "git"), filepath.Join(dir, "mirrors"), nil, st)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Printf("URL http://%s\n", ln.Addr())
	hang := os.Getenv(replicaHang) != ""
	h := githost.New(remotes, func(context.Context, githost.Push) error {
		if hang {
			select {}
		}
		return nil
	}, nil, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	_ = http.Serve(ln, h)
}

// motoServer is one moto_server for the package's tests, started by the first that needs it.
type motoServer struct {
	once sync.Once
	cmd  *exec.Cmd
	url  string
	err  error
}

var moto motoServer

func (m *motoServer) start() (string, error) {
	m.once.Do(func() {
		if _, err := exec.LookPath("moto_server"); err != nil {
			m.err = err
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			m.err = err
			return
		}
		addr := ln.Addr().String()
		ln.Close()
		host, port, _ := net.SplitHostPort(addr)
		var log bytes.Buffer
		m.cmd = exec.Command("moto_server", "-H", host, "-p", port)
		m.cmd.Stdout, m.cmd.Stderr = &log, &log
		if m.err = m.cmd.Start(); m.err != nil {
			return
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if resp, err := http.Get("http://" + addr + "/"); err == nil {
				resp.Body.Close()
				m.url = "http://" + addr
				return
			}
		}
		m.err = fmt.Errorf("moto_server did not start:\n%s", log.String())
	})
	return m.url, m.err
}

func (m *motoServer) stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		m.cmd.Process.Kill()
		m.cmd.Wait()
	}
}

func s3Client(endpoint string) *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
}

// env is what replicas share: a schema of the PostgreSQL database and a bucket.
type env struct {
	t      *testing.T
	db     string
	s3URL  string
	client *s3.Client
	bucket string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not on the PATH")
	}
	db := storetest.PostgresURL(t)
	url, err := moto.start()
	if err != nil {
		t.Skipf("no moto_server: %v", err)
	}
	e := &env{t: t, db: db, s3URL: url, client: s3Client(url), bucket: "git-" + uuid.NewString()[:8]}
	if _, err := e.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(e.bucket)}); err != nil {
		t.Fatal(err)
	}
	return e
}

// replica is one server of the shared repositories, with a cache directory of its own, and
// the pushes it reported.
type replica struct {
	url, dir string
	remotes  *gitrepo.Remotes
	srv      *httptest.Server
	mu       sync.Mutex
	pushes   []githost.Push
	// refuse, when set, is the error the replica's recording of pushes fails with.
	refuse error
}

// replica starts a replica with its cache in dir (a new directory if ""); configure, if set,
// changes its store's configuration.
func (e *env) replica(dir string, configure func(*shared.Config)) *replica {
	t := e.t
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := shared.Config{DatabaseURL: e.db, Client: e.client, Bucket: e.bucket, Prefix: "git/"}
	if configure != nil {
		configure(&cfg)
	}
	var logs bytes.Buffer
	var logsMu sync.Mutex
	cfg.Logger = slog.New(slog.NewTextHandler(lockedWriter{&logsMu, &logs}, nil))
	st, err := shared.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rp := &replica{dir: dir}
	rp.remotes = gitrepo.NewSharedRemotes(filepath.Join(dir, "git"), filepath.Join(dir, "mirrors"), nil, st)
	rp.srv = httptest.NewServer(githost.New(rp.remotes, func(_ context.Context, p githost.Push) error {
		rp.mu.Lock()
		defer rp.mu.Unlock()
		if rp.refuse != nil {
			return rp.refuse
		}
		rp.pushes = append(rp.pushes, p)
		return nil
	}, nil, cfg.Logger))
	t.Cleanup(func() {
		rp.srv.Close()
		st.Close()
		if t.Failed() {
			logsMu.Lock()
			t.Logf("replica %s logs:\n%s", dir, logs.String())
			logsMu.Unlock()
		}
	})
	rp.url = rp.srv.URL + githost.Prefix
	return rp
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// reported are the pushes the replica reported, without their IDs.
func (rp *replica) reported() []githost.Push {
	pushes := rp.reportedWithIDs()
	for i := range pushes {
		pushes[i].ID = ""
	}
	return pushes
}

func (rp *replica) reportedWithIDs() []githost.Push {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return slices.Clone(rp.pushes)
}

// replicaProcess starts a replica as a process of its own, to kill, and returns its URL (up to
// githost.Prefix) and the process; with hang, it never reports a push it stored.
func (e *env) replicaProcess(hang bool) (string, *exec.Cmd) {
	t := e.t
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), replicaEnv+"=1", replicaDB+"="+e.db, replicaS3+"="+e.s3URL, replicaBkt+"="+e.bucket, replicaCache+"="+t.TempDir())
	if hang {
		cmd.Env = append(cmd.Env, replicaHang+"=1")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "URL ")
	if err != nil || !ok {
		t.Fatalf("the replica process said %q (%v):\n%s", line, err, stderr.String())
	}
	return url + githost.Prefix, cmd
}

// git runs git in dir with a configuration of its own and returns its combined output.
func git(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := git(t, dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// workTree makes a repository with one commit on main and returns its directory and the commit.
// The commit holds 2 MiB that do not compress, so that a push of it goes in chunks.
func workTree(t *testing.T) (dir, commit string) {
	t.Helper()
	dir = t.TempDir()
	mustGit(t, dir, "init", "-q", "-b", "main")
	write(t, dir, "README", "hello\n")
	data := make([]byte, 2<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(dir, "data"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	mustGit(t, dir, "add", "README", "data")
	mustGit(t, dir, "commit", "-q", "-m", "first")
	return dir, mustGit(t, dir, "rev-parse", "HEAD")
}

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// commit writes a file and commits it, returning the commit.
func commit(t *testing.T, dir, name, body string) string {
	t.Helper()
	write(t, dir, name, body)
	mustGit(t, dir, "add", name)
	mustGit(t, dir, "commit", "-q", "-m", "change "+name)
	return mustGit(t, dir, "rev-parse", "HEAD")
}

// lsRemote lists the refs of a remote, by name.
func lsRemote(t *testing.T, url string) map[string]string {
	t.Helper()
	refs := map[string]string{}
	for line := range strings.Lines(mustGit(t, t.TempDir(), "ls-remote", url)) {
		if id, ref, ok := strings.Cut(strings.TrimSpace(line), "\t"); ok {
			refs[ref] = id
		}
	}
	return refs
}

// checkClone clones url and checks the clone: its main is at want, and git fsck finds the
// repository whole.
func checkClone(t *testing.T, url, want string) string {
	t.Helper()
	clone := filepath.Join(t.TempDir(), "clone")
	mustGit(t, t.TempDir(), "clone", "-q", url, clone)
	if got := mustGit(t, clone, "rev-parse", "HEAD"); got != want {
		t.Fatalf("a clone of %s has main at %s, want %s", url, got, want)
	}
	mustGit(t, clone, "fsck", "--full", "--strict")
	return clone
}

// TestPushThroughOneReplicaFetchThroughAnother: what a push through one replica stores, a clone
// through another gets, and the other way round; and each replica reports the pushes it took.
func TestPushThroughOneReplicaFetchThroughAnother(t *testing.T) {
	e := newEnv(t)
	a, b := e.replica("", nil), e.replica("", nil)
	work, first := workTree(t)

	if out, err := git(t, work, "clone", b.url+"owner/app", filepath.Join(t.TempDir(), "c")); err == nil || !strings.Contains(out, "does not exist: push to it to create it") {
		t.Fatalf("a clone of a repository no one pushed: %v\n%s", err, out)
	}
	mustGit(t, work, "push", "-q", a.url+"owner/app", "main")
	clone := checkClone(t, b.url+"owner/app", first)
	if got, err := os.ReadFile(filepath.Join(clone, "README")); err != nil || string(got) != "hello\n" {
		t.Fatalf("the clone through B has README %q, %v", got, err)
	}

	second := commit(t, clone, "second.txt", "two\n")
	mustGit(t, clone, "push", "-q", "origin", "main")
	mustGit(t, work, "fetch", "-q", a.url+"owner/app", "main")
	if got := mustGit(t, work, "rev-parse", "FETCH_HEAD"); got != second {
		t.Fatalf("a fetch through A got %s, want the commit pushed through B, %s", got, second)
	}
	if ra, rb := lsRemote(t, a.url+"owner/app"), lsRemote(t, b.url+"owner/app"); !maps.Equal(ra, rb) || ra["refs/heads/main"] != second {
		t.Fatalf("the replicas disagree: A has %v, B has %v", ra, rb)
	}
	if got, want := a.reported(), []githost.Push{{Repository: "owner/app", Branch: "main", Commit: first}}; !slices.Equal(got, want) {
		t.Errorf("A reported %+v, want %+v", got, want)
	}
	if got, want := b.reported(), []githost.Push{{Repository: "owner/app", Branch: "main", Commit: second, Before: first}}; !slices.Equal(got, want) {
		t.Errorf("B reported %+v, want %+v", got, want)
	}
}

// TestRemotesReadPushesOfAnotherReplica: a replica's gitrepo.Remotes (runners, sources) read a
// hosted repository as pushed through another: its branches, tags and files; and tags pushed
// through one replica are listed and moved through another.
func TestRemotesReadPushesOfAnotherReplica(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a, b := e.replica("", nil), e.replica("", nil)
	work, first := workTree(t)
	url := a.url + "tags"
	mustGit(t, work, "push", "-q", url, "main")
	second := commit(t, work, "src/main.go", "package main\n")
	mustGit(t, work, "tag", "v1.0")
	mustGit(t, work, "tag", "-a", "v1.1", "-m", "annotated")
	mustGit(t, work, "push", "-q", url, "main", "v1.0", "v1.1")

	rm, err := b.remotes.Resolve("tags")
	if err != nil {
		t.Fatal(err)
	}
	head, err := b.remotes.Head(ctx, rm, "main")
	if err != nil || head.ID != second {
		t.Fatalf("Head through B: %+v, %v; want %s", head, err, second)
	}
	tags, err := b.remotes.Tags(ctx, rm, "main")
	if want := map[string]string{"v1.0": second, "v1.1": second}; err != nil || !maps.Equal(tags, want) {
		t.Fatalf("Tags through B: %v, %v; want %v", tags, err, want)
	}
	files, err := b.remotes.ChangedFiles(ctx, rm, first, second)
	if err != nil || !slices.Equal(files, []string{"src/main.go"}) {
		t.Fatalf("ChangedFiles through B: %q, %v", files, err)
	}
	for _, clone := range []bool{false, true} {
		zipPath := filepath.Join(t.TempDir(), "src.zip")
		c, err := b.remotes.Archive(ctx, rm, "main", "v1.1", zipPath, clone)
		if err != nil || c.ID != second {
			t.Fatalf("Archive (clone %v) of v1.1 through B: %+v, %v", clone, c, err)
		}
		zr, err := zip.OpenReader(zipPath)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, f := range zr.File {
			names[f.Name] = true
		}
		zr.Close()
		if !names["src/main.go"] || !names["README"] {
			t.Fatalf("Archive (clone %v) through B holds %v", clone, slices.Sorted(maps.Keys(names)))
		}
	}
	if _, err := b.remotes.Head(ctx, gitrepo.Remote{Name: "missing"}, "main"); err == nil {
		t.Fatal("Head of a zero Remote worked")
	}
	missing, _ := b.remotes.Resolve("missing")
	if _, err := b.remotes.Head(ctx, missing, "main"); !errors.Is(err, gitrepo.ErrNoRepository) {
		t.Fatalf("Head of a missing repository through B: %v, want ErrNoRepository", err)
	}
	if _, err := b.remotes.ChangedFiles(ctx, missing, "", second); !errors.Is(err, gitrepo.ErrNoRepository) {
		t.Fatalf("ChangedFiles of a missing repository through B: %v, want ErrNoRepository", err)
	}

	// A tag moved through B, a branch made through B: A sees them, and B reports them as a
	// single server does.
	mustGit(t, work, "tag", "-f", "v1.0", first)
	mustGit(t, work, "branch", "feature", first)
	mustGit(t, work, "push", "-q", "-f", b.url+"tags", "v1.0", "feature", "v1.1")
	refs := lsRemote(t, a.url+"tags")
	if refs["refs/tags/v1.0"] != first || refs["refs/heads/feature"] != first || refs["refs/tags/v1.1^{}"] != second {
		t.Fatalf("A lists %v", refs)
	}
	rmA, _ := a.remotes.Resolve("tags")
	if tags, err := a.remotes.Tags(ctx, rmA, "main"); err != nil || tags["v1.0"] != first {
		t.Fatalf("Tags through A: %v, %v", tags, err)
	}
	wantA := []githost.Push{
		{Repository: "tags", Branch: "main", Commit: first},
		{Repository: "tags", Branch: "main", Commit: second, Before: first},
		{Repository: "tags", Tag: "v1.0", Commit: second},
		{Repository: "tags", Tag: "v1.1", Commit: second},
	}
	wantB := []githost.Push{
		{Repository: "tags", Branch: "feature", Commit: first},
		{Repository: "tags", Tag: "v1.0", Commit: first},
	}
	if got := a.reported(); !slices.Equal(got, wantA) {
		t.Errorf("A reported\n%+v\nwant\n%+v", got, wantA)
	}
	if got := b.reported(); !slices.Equal(got, wantB) {
		t.Errorf("B reported\n%+v\nwant\n%+v", got, wantB)
	}
}

// TestConcurrentPushesThroughTwoReplicas: pushes of diverging commits to one branch through two
// replicas at once: one wins, the other is refused, and the winner is what every replica
// serves; pushes to different branches at once both land. Nothing acknowledged is lost and the
// repository stays whole.
func TestConcurrentPushesThroughTwoReplicas(t *testing.T) {
	e := newEnv(t)
	a, b := e.replica("", nil), e.replica("", nil)
	work, base := workTree(t)
	mustGit(t, work, "push", "-q", a.url+"race", "main")
	x := checkClone(t, a.url+"race", base)
	y := checkClone(t, b.url+"race", base)

	var accepted []string
	for round := range 6 {
		cx := commit(t, x, fmt.Sprintf("x%d.txt", round), "x\n")
		cy := commit(t, y, fmt.Sprintf("y%d.txt", round), "y\n")
		var wg sync.WaitGroup
		var errX, errY error
		var outX, outY string
		wg.Go(func() { outX, errX = git(t, x, "push", "origin", "main") })
		wg.Go(func() { outY, errY = git(t, y, "push", "origin", "main") })
		wg.Wait()
		if (errX == nil) == (errY == nil) {
			t.Fatalf("round %d: both pushes of diverging commits %v:\nA: %v\n%s\nB: %v\n%s", round, map[bool]string{true: "failed", false: "succeeded"}[errX != nil], errX, outX, errY, outY)
		}
		winner := cx
		if errY == nil {
			winner = cy
		}
		accepted = append(accepted, winner)
		for _, rp := range []*replica{a, b} {
			if got := lsRemote(t, rp.url+"race")["refs/heads/main"]; got != winner {
				t.Fatalf("round %d: %s has main at %s, want the accepted push's %s", round, rp.url, got, winner)
			}
		}
		// Both start the next round from what was accepted.
		for _, dir := range []string{x, y} {
			mustGit(t, dir, "fetch", "-q", "origin")
			mustGit(t, dir, "reset", "-q", "--hard", "origin/main")
		}
	}

	// Different branches at once: both land.
	mustGit(t, x, "checkout", "-q", "-b", "bx")
	mustGit(t, y, "checkout", "-q", "-b", "by")
	bx, by := commit(t, x, "bx.txt", "bx\n"), commit(t, y, "by.txt", "by\n")
	var wg sync.WaitGroup
	var errX, errY error
	var outX, outY string
	wg.Go(func() { outX, errX = git(t, x, "push", "origin", "bx") })
	wg.Go(func() { outY, errY = git(t, y, "push", "origin", "by") })
	wg.Wait()
	if errX != nil || errY != nil {
		t.Fatalf("pushes to two branches at once: %v\n%s\n%v\n%s", errX, outX, errY, outY)
	}

	c := e.replica("", nil)
	refs := lsRemote(t, c.url+"race")
	if refs["refs/heads/bx"] != bx || refs["refs/heads/by"] != by {
		t.Fatalf("a fresh replica lists %v, want bx at %s and by at %s", refs, bx, by)
	}
	clone := checkClone(t, c.url+"race", accepted[len(accepted)-1])
	for _, id := range accepted {
		mustGit(t, clone, "merge-base", "--is-ancestor", id, "HEAD")
	}
}

// TestReplicaLosesItsCache: a replica whose disk is gone (it died) loses nothing: the others,
// and a new one, serve every push it took, and it serves them again from an empty directory.
func TestReplicaLosesItsCache(t *testing.T) {
	e := newEnv(t)
	a, b := e.replica("", nil), e.replica("", nil)
	work, _ := workTree(t)
	mustGit(t, work, "push", "-q", a.url+"owner/kept", "main")
	commit(t, work, "two.txt", "2\n")
	mustGit(t, work, "tag", "-a", "v2", "-m", "two")
	tip := commit(t, work, "three.txt", "3\n")
	mustGit(t, work, "push", "-q", a.url+"owner/kept", "main", "v2")
	want := lsRemote(t, a.url+"owner/kept")

	a.srv.Close()
	if err := os.RemoveAll(a.dir); err != nil {
		t.Fatal(err)
	}
	c := e.replica("", nil)
	for _, rp := range []*replica{b, c} {
		if got := lsRemote(t, rp.url+"owner/kept"); !maps.Equal(got, want) {
			t.Fatalf("%s lists %v, want %v", rp.url, got, want)
		}
		clone := checkClone(t, rp.url+"owner/kept", tip)
		mustGit(t, clone, "rev-parse", "v2^{commit}")
	}
	next := commit(t, work, "four.txt", "4\n")
	mustGit(t, work, "push", "-q", c.url+"owner/kept", "main")
	again := e.replica(a.dir, nil)
	checkClone(t, again.url+"owner/kept", next)
}

// TestReplicaKilledRightAfterAPush: a replica killed (SIGKILL) as soon as it answered a push
// lost nothing of it: another replica serves it.
func TestReplicaKilledRightAfterAPush(t *testing.T) {
	e := newEnv(t)
	b := e.replica("", nil)
	url, cmd := e.replicaProcess(false)

	work, _ := workTree(t)
	mustGit(t, work, "push", "-q", url+"killed", "main")
	tip := commit(t, work, "more.txt", "more\n")
	mustGit(t, work, "tag", "v1")
	mustGit(t, work, "push", "-q", url+"killed", "main", "v1")
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	clone := checkClone(t, b.url+"killed", tip)
	if got := mustGit(t, clone, "rev-parse", "v1"); got != tip {
		t.Fatalf("tag v1 through B is at %s, want %s", got, tip)
	}
}

// TestPushThatCannotBeStoredIsRefused: a push whose pack cannot be uploaded fails for the
// client and changes nothing: no repository is created, no branch moves.
func TestPushThatCannotBeStoredIsRefused(t *testing.T) {
	e := newEnv(t)
	good := e.replica("", nil)
	broken := e.replica("", func(c *shared.Config) { c.Bucket = "no-such-bucket-" + uuid.NewString()[:8] })
	work, first := workTree(t)

	if out, err := git(t, work, "push", broken.url+"refused", "main"); err == nil {
		t.Fatalf("a push that could not be stored looked accepted:\n%s", out)
	}
	if out, err := git(t, work, "ls-remote", good.url+"refused"); err == nil || !strings.Contains(out, "does not exist") {
		t.Fatalf("the refused push created the repository: %v\n%s", err, out)
	}
	if len(broken.reported()) > 0 {
		t.Fatalf("a refused push was reported: %+v", broken.reported())
	}
	if entries, _ := os.ReadDir(filepath.Join(broken.dir, "git")); len(entries) > 0 {
		t.Errorf("the refused push left %d entries in the broken replica's cache", len(entries))
	}

	mustGit(t, work, "push", "-q", good.url+"refused", "main")
	commit(t, work, "x.txt", "x\n")
	if out, err := git(t, work, "push", broken.url+"refused", "main"); err == nil {
		t.Fatalf("a push that could not be stored looked accepted:\n%s", out)
	}
	if got := lsRemote(t, good.url+"refused")["refs/heads/main"]; got != first {
		t.Fatalf("after a refused push, main is at %s, want %s", got, first)
	}
	// The broken replica cannot read the packs either, and says so rather than serve a copy
	// it cannot bring up to date.
	if out, err := git(t, work, "ls-remote", broken.url+"refused"); err == nil || !strings.Contains(out, "could not be read from where Sluice keeps it") {
		t.Fatalf("ls-remote through the broken replica: %v\n%s", err, out)
	}
}

// TestUnrecordedPushIsUndoneEverywhere: a push stored but not recorded is undone for every
// replica, so that pushing it again, through any, moves the branch and is recorded.
func TestUnrecordedPushIsUndoneEverywhere(t *testing.T) {
	e := newEnv(t)
	a, b := e.replica("", nil), e.replica("", nil)
	work, first := workTree(t)
	mustGit(t, work, "push", "-q", a.url+"undo", "main")
	second := commit(t, work, "x.txt", "x\n")
	a.mu.Lock()
	a.refuse = errors.New("the store is down")
	a.mu.Unlock()
	if out, err := git(t, work, "push", a.url+"undo", "main"); err == nil {
		t.Fatalf("an unrecorded push looked accepted:\n%s", out)
	}
	if got := lsRemote(t, b.url+"undo")["refs/heads/main"]; got != first {
		t.Fatalf("B has main at %s after an undone push, want %s", got, first)
	}
	mustGit(t, work, "push", "-q", b.url+"undo", "main")
	if got, want := b.reported(), []githost.Push{{Repository: "undo", Branch: "main", Commit: second, Before: first}}; !slices.Equal(got, want) {
		t.Fatalf("B reported %+v, want %+v", got, want)
	}
	checkClone(t, a.url+"undo", second)
}

// TestCompaction: a repository kept in many packs is stored as one by the next push, the packs
// it replaced are deleted, and replicas that held the old packs, or none, serve it whole.
func TestCompaction(t *testing.T) {
	e := newEnv(t)
	few := func(c *shared.Config) { c.CompactAt = 3; c.KeepReplaced = time.Nanosecond }
	a, b := e.replica("", few), e.replica("", few)
	// d keeps the packs a compaction replaced for a while, for its reads under way.
	d := e.replica("", func(c *shared.Config) { c.CompactAt = 3 })
	work, _ := workTree(t)
	var tip string
	for i := range 8 {
		rp := []*replica{a, b}[i%2]
		tip = commit(t, work, fmt.Sprintf("f%d.txt", i), fmt.Sprint(i))
		mustGit(t, work, "tag", fmt.Sprintf("t%d", i))
		mustGit(t, work, "push", "-q", rp.url+"compact", "main", fmt.Sprintf("t%d", i))
		checkClone(t, []*replica{b, a}[i%2].url+"compact", tip)
		checkClone(t, d.url+"compact", tip)
	}
	packs := 0
	out, err := e.client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(e.bucket), Prefix: aws.String("git/compact.git/objects/pack/")})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		if strings.HasSuffix(aws.ToString(o.Key), ".pack") {
			packs++
		}
	}
	// 8 pushes, the first of 1 pack: compacted at the 4th push (3 packs and its own) into 1,
	// then 2 more, then compacted again at the 7th into 1, then 1 more.
	if packs > 3 {
		t.Fatalf("the bucket holds %d packs of the repository after compactions, want at most 3", packs)
	}
	db, err := sql.Open("pgx", e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var listed string
	if err := db.QueryRow("SELECT packs::text FROM git_repositories WHERE name = 'compact'").Scan(&listed); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(listed, "pack-"); n != packs {
		t.Fatalf("the database lists %d packs (%s), the bucket holds %d", n, listed, packs)
	}
	c := e.replica("", nil)
	clone := checkClone(t, c.url+"compact", tip)
	if got := strings.Fields(mustGit(t, clone, "tag")); len(got) != 8 {
		t.Fatalf("tags through a new replica: %q", got)
	}
	for _, rp := range []*replica{a, b} {
		local, _ := filepath.Glob(filepath.Join(rp.dir, "git", "compact.git", "objects", "pack", "*.pack"))
		if len(local) > packs {
			t.Errorf("%s keeps %d packs, more than the repository's %d", rp.dir, len(local), packs)
		}
	}
	if local, _ := filepath.Glob(filepath.Join(d.dir, "git", "compact.git", "objects", "pack", "*.pack")); len(local) <= packs {
		t.Errorf("%s keeps %d packs, want the replaced ones kept a while beside the repository's %d", d.dir, len(local), packs)
	}
}

// pendingMoves reads the pending moves of the repository name from the database.
func (e *env) pendingMoves(name string) []gitrepo.Move {
	t := e.t
	t.Helper()
	db, err := sql.Open("pgx", e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var text string
	if err := db.QueryRow("SELECT pending::text FROM git_repositories WHERE name = $1", name).Scan(&text); err != nil {
		t.Fatal(err)
	}
	var moves []gitrepo.Move
	if err := json.Unmarshal([]byte(text), &moves); err != nil {
		t.Fatal(err)
	}
	return moves
}

// diedAfterStoring pushes refs of work into the repository name through a replica process that
// stores pushes and never reports them, and kills it (SIGKILL) once other serves the branch
// branch at commit: the push is stored, unreported, unanswered. The push fails.
func (e *env) diedAfterStoring(work, name string, other *replica, branch, commit string, refs ...string) {
	t := e.t
	t.Helper()
	url, cmd := e.replicaProcess(true)
	answered := make(chan string, 1)
	go func() {
		out, err := git(t, work, append([]string{"push", url + name}, refs...)...)
		answered <- fmt.Sprintf("%v: %s", err, out)
		if err == nil {
			answered <- "acknowledged"
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); lsRemote(t, other.url+name)["refs/heads/"+branch] != commit; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the push through the replica process did not move %s to %s", branch, commit)
		}
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case out := <-answered:
		t.Fatalf("a push that was not reported was answered: %s", out)
	default:
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	out := <-answered
	select {
	case <-answered:
		t.Fatalf("a push whose replica died before reporting it looked accepted: %s", out)
	default:
	}
}

// TestPushStoredByAReplicaThatDiedIsReported: a replica killed after storing a push and before
// reporting it leaves the push's moves pending, each with an ID. The client pushes again,
// through another replica: git finds the branch at the commit and answers "Everything
// up-to-date", which the replica sends only once it has reported the pending move, exactly
// once and with its ID, and refuses to send while it cannot record it. A different push through
// another replica reports a dead replica's pending moves first, in order, then its own.
func TestPushStoredByAReplicaThatDiedIsReported(t *testing.T) {
	e := newEnv(t)
	b := e.replica("", nil)
	work, first := workTree(t)
	mustGit(t, work, "push", "-q", b.url+"retried", "main")
	if p := e.pendingMoves("retried"); len(p) != 0 {
		t.Fatalf("a reported push left pending moves: %+v", p)
	}
	second := commit(t, work, "second.txt", "2\n")
	e.diedAfterStoring(work, "retried", b, "main", second, "main")
	pending := e.pendingMoves("retried")
	if len(pending) != 1 || pending[0].ID == "" || pending[0] != (gitrepo.Move{ID: pending[0].ID, Branch: "main", Before: first, Commit: second}) {
		t.Fatalf("the push stored and not reported left the pending moves %+v", pending)
	}

	// While the move cannot be recorded, the push again is refused.
	b.mu.Lock()
	b.refuse = errors.New("the store is down")
	b.mu.Unlock()
	if out, err := git(t, work, "push", b.url+"retried", "main"); err == nil {
		t.Fatalf("the push again was acknowledged while the stored push could not be recorded:\n%s", out)
	}
	b.mu.Lock()
	b.refuse = nil
	b.mu.Unlock()
	out, err := git(t, work, "push", b.url+"retried", "main")
	if err != nil || !strings.Contains(out, "Everything up-to-date") {
		t.Fatalf("the push again: %v\n%s", err, out)
	}
	got := b.reportedWithIDs()
	if len(got) != 2 || got[0].ID == "" || got[0].ID == pending[0].ID {
		t.Fatalf("B reported %+v: want its own push, with an ID, and the pending move", got)
	}
	if want := (githost.Push{Repository: "retried", Branch: "main", Commit: second, Before: first, ID: pending[0].ID}); got[1] != want {
		t.Fatalf("B reported %+v for the push again, want %+v", got[1], want)
	}
	if p := e.pendingMoves("retried"); len(p) != 0 {
		t.Fatalf("pending moves left once reported: %+v", p)
	}
	if out := mustGit(t, work, "push", b.url+"retried", "main"); !strings.Contains(out, "Everything up-to-date") {
		t.Fatalf("the push once more: %s", out)
	}
	if got := b.reportedWithIDs(); len(got) != 2 {
		t.Fatalf("the push once more reported %+v again", got[2:])
	}

	// A push of a branch and a tag stored and not reported, then another push: the first's
	// moves are reported first, in order, then the other's.
	third := commit(t, work, "third.txt", "3\n")
	mustGit(t, work, "tag", "v3")
	e.diedAfterStoring(work, "retried", b, "main", third, "main", "v3")
	pending = e.pendingMoves("retried")
	if len(pending) != 2 {
		t.Fatalf("pending moves %+v, want main's and v3's", pending)
	}
	mustGit(t, work, "checkout", "-q", "-b", "feature")
	fourth := commit(t, work, "fourth.txt", "4\n")
	mustGit(t, work, "push", "-q", b.url+"retried", "feature")
	got = b.reportedWithIDs()[2:]
	want := []githost.Push{
		{Repository: "retried", Branch: "main", Commit: third, Before: second, ID: pending[0].ID},
		{Repository: "retried", Tag: "v3", Commit: third, ID: pending[1].ID},
		{Repository: "retried", Branch: "feature", Commit: fourth},
	}
	if len(got) == 3 {
		want[2].ID = got[2].ID
	}
	if !slices.Equal(got, want) || got[2].ID == "" || got[2].ID == pending[0].ID || got[2].ID == pending[1].ID || pending[0].ID == pending[1].ID {
		t.Fatalf("B reported\n%+v\nwant\n%+v\n(each with an ID of its own)", got, want)
	}
	if p := e.pendingMoves("retried"); len(p) != 0 {
		t.Fatalf("pending moves left once reported: %+v", p)
	}
	checkClone(t, b.url+"retried", third)
}

// TestTableOfAnEarlierVersion: the table of repositories as an earlier version created it,
// without pending moves, gains them when a replica opens it, and its repositories are kept.
func TestTableOfAnEarlierVersion(t *testing.T) {
	e := newEnv(t)
	a := e.replica("", nil)
	work, first := workTree(t)
	mustGit(t, work, "push", "-q", a.url+"old", "main")
	db, err := sql.Open("pgx", e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("ALTER TABLE git_repositories DROP COLUMN pending"); err != nil {
		t.Fatal(err)
	}
	b := e.replica("", nil)
	checkClone(t, b.url+"old", first)
	second := commit(t, work, "second.txt", "2\n")
	mustGit(t, work, "push", "-q", b.url+"old", "main")
	if got, want := b.reported(), []githost.Push{{Repository: "old", Branch: "main", Commit: second, Before: first}}; !slices.Equal(got, want) {
		t.Fatalf("B reported %+v, want %+v", got, want)
	}
	if p := e.pendingMoves("old"); len(p) != 0 {
		t.Fatalf("pending moves left once reported: %+v", p)
	}
}
