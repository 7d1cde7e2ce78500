package githost_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/internal/githost"
	"github.com/sluicehq/sluice/internal/gitrepo"
)

// host serves hosted repositories under a temporary directory on a loopback port, and records
// the pushes it reports.
type host struct {
	url, dir string
	mu       sync.Mutex
	pushes   []githost.Push
	// refuse, when set, is the error the host's recording of pushes fails with.
	refuse error
}

func newHost(t *testing.T) *host {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not on the PATH")
	}
	h := &host{dir: filepath.Join(t.TempDir(), "git")}
	remotes := gitrepo.NewRemotes(h.dir, filepath.Join(t.TempDir(), "mirrors"), nil)
	srv := httptest.NewServer(githost.New(remotes, func(_ context.Context, p githost.Push) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.refuse != nil {
			return h.refuse
		}
		h.pushes = append(h.pushes, p)
		return nil
	}, nil, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	h.url = srv.URL + githost.Prefix
	return h
}

// onDisk lists what the host keeps on disk: the directories and files under its root, down to
// the repositories.
func (h *host) onDisk(t *testing.T) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(h.dir, func(path string, d os.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return filepath.SkipAll
		}
		if err != nil || path == h.dir {
			return err
		}
		found = append(found, path)
		if d.IsDir() && strings.HasSuffix(path, ".git") {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
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
	return out
}

// workTree makes a repository with one commit on main and returns its directory and the commit.
// The commit holds 2 MiB that do not compress, more than git's http.postBuffer, so that a push of
// it goes in chunks.
func workTree(t *testing.T) (dir, commit string) {
	t.Helper()
	dir = t.TempDir()
	mustGit(t, dir, "init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 2<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(dir, "data"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	mustGit(t, dir, "add", "README", "data")
	mustGit(t, dir, "commit", "-q", "-m", "first")
	return dir, strings.TrimSpace(mustGit(t, dir, "rev-parse", "HEAD"))
}

func TestReadingAMissingRepositoryCreatesNothing(t *testing.T) {
	h := newHost(t)
	work, _ := workTree(t)

	for _, args := range [][]string{
		{"clone", h.url + "missing", filepath.Join(t.TempDir(), "clone")},
		{"ls-remote", h.url + "missing"},
		{"fetch", h.url + "owner/missing", "main"},
	} {
		out, err := git(t, work, args...)
		if err == nil || !strings.Contains(out, "remote: The repository ") || !strings.Contains(out, "does not exist: push to it to create it") {
			t.Errorf("git %s: %v, want it to fail with the server's message:\n%s", args[0], err, out)
		}
	}
	// A push starts by asking for the refs, as a dry run does and then stops.
	if out, err := git(t, work, "push", "--dry-run", h.url+"dry", "main"); err != nil || !strings.Contains(out, "[new branch]") {
		t.Errorf("git push --dry-run: %v\n%s", err, out)
	}
	// A POST that is no push.
	resp, err := http.Post(h.url+"junk/git-receive-pack", "application/x-git-receive-pack-request", strings.NewReader("0000"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	if found := h.onDisk(t); len(found) > 0 {
		t.Errorf("reads of missing repositories left %q on disk", found)
	}
	if len(h.pushes) > 0 {
		t.Errorf("pushes reported: %+v", h.pushes)
	}
}

func TestPushCreatesTheRepository(t *testing.T) {
	h := newHost(t)
	work, commit := workTree(t)

	mustGit(t, work, "push", "-q", h.url+"owner/new", "main")
	if _, err := os.Stat(filepath.Join(h.dir, "owner", "new.git")); err != nil {
		t.Fatalf("the push created no repository: %v", err)
	}
	if want := (githost.Push{Repository: "owner/new", Branch: "main", Commit: commit}); len(h.pushes) != 1 || h.pushes[0] != want {
		t.Fatalf("pushes reported: %+v, want %+v", h.pushes, want)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	mustGit(t, t.TempDir(), "clone", "-q", h.url+"owner/new", clone)
	if got, err := os.ReadFile(filepath.Join(clone, "README")); err != nil || string(got) != "hello\n" {
		t.Fatalf("the clone has README %q, %v", got, err)
	}
	if out := mustGit(t, t.TempDir(), "ls-remote", h.url+"owner/new"); !strings.Contains(out, commit+"\trefs/heads/main") {
		t.Errorf("ls-remote:\n%s", out)
	}
}

// TestPushIsAnsweredOnlyOnceRecorded: a push whose moved branches cannot be recorded (to start
// pipelines) fails for the client, which then knows to push again, instead of looking accepted.
func TestPushIsAnsweredOnlyOnceRecorded(t *testing.T) {
	h := newHost(t)
	work, _ := workTree(t)
	h.refuse = errors.New("the store is down")
	out, err := git(t, work, "push", h.url+"owner/app", "main")
	if err == nil {
		t.Fatalf("a push that could not be recorded looked accepted:\n%s", out)
	}
	// The refused push was undone: pushing the same commit again moves the branch and is recorded.
	h.refuse = nil
	mustGit(t, work, "push", "-q", h.url+"owner/app", "main")
	if len(h.pushes) != 1 {
		t.Fatalf("pushes recorded after the retry: %+v", h.pushes)
	}
	mustGit(t, work, "commit", "-q", "--allow-empty", "-m", "again")
	h.refuse = errors.New("down again")
	if out, err := git(t, work, "push", h.url+"owner/app", "main"); err == nil {
		t.Fatalf("a second unrecorded push looked accepted:\n%s", out)
	}
	if out := mustGit(t, t.TempDir(), "ls-remote", h.url+"owner/app"); !strings.Contains(out, h.pushes[0].Commit+"\trefs/heads/main") {
		t.Fatalf("the unrecorded push was not undone; the remote has:\n%s", out)
	}
}

// TestPushReportsTagsAndPreviousCommits: a push reports the previous commit of each branch it
// moved ("" for a new one) and each tag it created or moved, at the commit it tags; what it
// left alone, it does not report.
func TestPushReportsTagsAndPreviousCommits(t *testing.T) {
	h := newHost(t)
	work, first := workTree(t)
	url := h.url + "owner/tags"
	mustGit(t, work, "push", "-q", url, "main")

	mustGit(t, work, "commit", "-q", "--allow-empty", "-m", "second")
	second := strings.TrimSpace(mustGit(t, work, "rev-parse", "HEAD"))
	mustGit(t, work, "tag", "v1.0")                          // lightweight
	mustGit(t, work, "tag", "-a", "v1.1", "-m", "annotated") // annotated: reported at its commit
	mustGit(t, work, "push", "-q", url, "main", "v1.0", "v1.1")

	mustGit(t, work, "tag", "-f", "v1.0", first) // moved
	mustGit(t, work, "branch", "feature", first)
	mustGit(t, work, "push", "-q", "-f", url, "v1.0", "feature", "v1.1")

	want := []githost.Push{
		{Repository: "owner/tags", Branch: "main", Commit: first},
		{Repository: "owner/tags", Branch: "main", Commit: second, Before: first},
		{Repository: "owner/tags", Tag: "v1.0", Commit: second},
		{Repository: "owner/tags", Tag: "v1.1", Commit: second},
		{Repository: "owner/tags", Branch: "feature", Commit: first},
		{Repository: "owner/tags", Tag: "v1.0", Commit: first},
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.pushes) != len(want) {
		t.Fatalf("pushes reported:\n%+v\nwant\n%+v", h.pushes, want)
	}
	for i := range want {
		if h.pushes[i] != want[i] {
			t.Errorf("push %d reported %+v, want %+v", i, h.pushes[i], want[i])
		}
	}
}
