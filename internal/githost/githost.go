// Package githost serves the repositories Sluice hosts over git's smart HTTP protocol, like a
// local CodeCommit: clone and push at /v1/repos/<name>, a push to a new name creates the
// repository, and every push reports the branches it moved. The protocol itself is git's own
// `git http-backend`, run as a CGI program, so the server needs git on its PATH for hosting.
package githost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/sluicehq/sluice/internal/gitrepo"
)

// Prefix is the path the repositories are served under, as CodeCommit's clone URLs have it.
const Prefix = "/v1/repos/"

// Push is a branch a push moved to a new commit.
type Push struct {
	Repository, Branch, Commit string
}

// Server serves hosted repositories.
type Server struct {
	remotes *gitrepo.Remotes
	// onPush is told of every branch a push moved.
	onPush func(ctx context.Context, p Push)
	logger *slog.Logger
	// pushes serialises pushes to one repository, so that each sees which branches it moved.
	pushes sync.Map
}

// New returns a server of the repositories remotes hosts.
func New(remotes *gitrepo.Remotes, onPush func(context.Context, Push), logger *slog.Logger) *Server {
	return &Server{remotes: remotes, onPush: onPush, logger: logger}
}

// services are the smart HTTP endpoints under a repository's path.
var services = []string{"/info/refs", "/git-upload-pack", "/git-receive-pack", "/HEAD"}

// split parses /v1/repos/<name>[.git]/<endpoint> into the name and the endpoint.
func split(path string) (name, endpoint string, ok bool) {
	rest := strings.TrimPrefix(path, Prefix)
	for _, s := range services {
		if before, found := strings.CutSuffix(rest, s); found {
			return strings.TrimSuffix(before, ".git"), s, true
		}
	}
	return "", "", false
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, endpoint, ok := split(r.URL.Path)
	if !ok || !gitrepo.ValidName(name) {
		http.Error(w, "Not a git endpoint of a repository Sluice can host: use "+Prefix+"<name> as the remote URL, with a name of letters, digits, '.', '_' and '-' (or owner/name)", http.StatusNotFound)
		return
	}
	if !s.remotes.Hosted(name) {
		http.Error(w, fmt.Sprintf("The repository %s is mapped to another remote (--git-remote): push there", name), http.StatusNotFound)
		return
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		http.Error(w, "Hosting git repositories needs the git program on the Sluice server's PATH", http.StatusNotImplemented)
		return
	}
	path := s.remotes.HostedPath(name)
	pushing := endpoint == "/git-receive-pack" || (endpoint == "/info/refs" && r.URL.Query().Get("service") == "git-receive-pack")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if !pushing {
			http.Error(w, fmt.Sprintf("The repository %s does not exist: push to it to create it", name), http.StatusNotFound)
			return
		}
		if err := create(path); err != nil {
			s.logger.Error("create a hosted repository", "repository", name, "err", err)
			http.Error(w, "Creating the repository failed", http.StatusInternalServerError)
			return
		}
		s.logger.Info("created a hosted repository", "repository", name)
	}
	backend := &cgi.Handler{
		Path: gitPath,
		Args: []string{"http-backend"},
		Root: strings.TrimSuffix(Prefix, "/"),
		Dir:  filepath.Dir(path),
		Env: []string{
			"GIT_PROJECT_ROOT=" + filepath.Dir(path),
			"GIT_HTTP_EXPORT_ALL=1",
			// Pushes need no REMOTE_USER: authentication is off, as for the API.
			"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.receivepack", "GIT_CONFIG_VALUE_0=true",
		},
		// git's own messages go to the server's log as warnings.
		Stderr: slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn).Writer(),
	}
	// http-backend finds the repository from PATH_INFO, relative to GIT_PROJECT_ROOT.
	r2 := r.Clone(r.Context())
	r2.URL.Path = Prefix + filepath.Base(path) + endpoint
	if endpoint != "/git-receive-pack" || r.Method != http.MethodPost {
		backend.ServeHTTP(w, r2)
		return
	}
	mu, _ := s.pushes.LoadOrStore(path, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	before := branches(path)
	backend.ServeHTTP(w, r2)
	for branch, commit := range branches(path) {
		if before[branch] != commit {
			s.logger.Info("push", "repository", name, "branch", branch, "commit", commit)
			s.onPush(context.WithoutCancel(r.Context()), Push{Repository: name, Branch: branch, Commit: commit})
		}
	}
}

// create makes an empty bare repository whose default branch is main.
func create(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	_, err := git.PlainInitWithOptions(path, &git.PlainInitOptions{Bare: true, InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	return err
}

// branches reads the commit each branch of a repository points at.
func branches(path string) map[string]string {
	out := map[string]string{}
	repo, err := git.PlainOpen(path)
	if err != nil {
		return out
	}
	refs, err := repo.Branches()
	if err != nil {
		return out
	}
	_ = refs.ForEach(func(ref *plumbing.Reference) error {
		out[ref.Name().Short()] = ref.Hash().String()
		return nil
	})
	return out
}
