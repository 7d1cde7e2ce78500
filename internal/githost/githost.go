// Package githost serves the repositories Sluice hosts over git's smart HTTP protocol, like a
// local CodeCommit: clone and push at /v1/repos/<name>, a push to a new name creates the
// repository (nothing else does: a clone or fetch of a missing one is refused), and every push
// reports the branches and tags it moved. The protocol itself is git's own `git http-backend`, run as a
// CGI program, so the server needs git on its PATH for hosting.
//
// When the remotes' hosted repositories are shared by several replicas (gitrepo.Shared), each
// replica serves its own copy of a repository, brought up to date before every request, and a
// push is received into a staging repository and published (stored where every replica finds
// it) before it is reported and answered: see pushShared.
package githost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/sluicehq/sluice/internal/gitrepo"
)

// Prefix is the path the repositories are served under, as CodeCommit's clone URLs have it.
const Prefix = "/v1/repos/"

// Push is a branch or a tag that a push moved to a new commit: Branch is set for a branch, with
// Before its previous commit ("" for a new branch), and Tag for a tag, whose Commit is the
// commit it tags (an annotated tag's target). ID, set for the pushes into repositories shared
// by replicas, tells the move apart from every other: such a move may be reported twice (see
// pushShared), each time with the same ID.
type Push struct {
	Repository, Branch, Commit string
	Before                     string
	Tag                        string
	ID                         string
}

// Server serves hosted repositories.
type Server struct {
	remotes *gitrepo.Remotes
	// onPush is told of every branch and tag a push moved, before the push is answered: an
	// error fails the answer, so that a push the client sees accepted was heard of.
	onPush func(ctx context.Context, p Push) error
	// authorize, if set, tells whether the request's caller may perform action
	// (codecommit:GitPull or codecommit:GitPush) on the repository.
	authorize func(ctx context.Context, action, repository string) error
	logger    *slog.Logger
	// pushing serialises pushes to one repository, so that each sees which branches it moved:
	// it holds a lock per repository that a push holds or waits for, and no more.
	mu      sync.Mutex
	pushing map[string]*repoLock
}

// repoLock is the lock of one repository's pushes, and how many hold it or wait for it.
type repoLock struct {
	sync.Mutex
	users int
}

// New returns a server of the repositories remotes hosts.
func New(remotes *gitrepo.Remotes, onPush func(context.Context, Push) error, authorize func(ctx context.Context, action, repository string) error, logger *slog.Logger) *Server {
	return &Server{remotes: remotes, onPush: onPush, authorize: authorize, logger: logger, pushing: map[string]*repoLock{}}
}

// IAM's actions for git's two directions, as CodeCommit names them.
const (
	ActionPull = "codecommit:GitPull"
	ActionPush = "codecommit:GitPush"
)

// lock waits until no other push into the repository at path runs, and returns the function
// that lets the next one go.
func (s *Server) lock(path string) (unlock func()) {
	s.mu.Lock()
	l := s.pushing[path]
	if l == nil {
		l = &repoLock{}
		s.pushing[path] = l
	}
	l.users++
	s.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		s.mu.Lock()
		if l.users--; l.users == 0 {
			delete(s.pushing, path)
		}
		s.mu.Unlock()
	}
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
	if s.authorize != nil {
		action := ActionPull
		if endpoint == "/git-receive-pack" || r.URL.Query().Get("service") == "git-receive-pack" {
			action = ActionPush
		}
		if err := s.authorize(r.Context(), action, name); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		http.Error(w, "Hosting git repositories needs the git program on the Sluice server's PATH", http.StatusNotImplemented)
		return
	}
	path := s.remotes.HostedPath(name)
	shared := s.remotes.Shared()
	if endpoint == "/git-receive-pack" && r.Method == http.MethodPost {
		if shared != nil {
			s.pushShared(w, r, shared, gitPath, name, path)
			return
		}
		s.push(w, r, gitPath, name, path)
		return
	}
	missing := false
	if shared != nil {
		err := shared.Sync(r.Context(), name, path)
		if err != nil && !errors.Is(err, gitrepo.ErrNoRepository) {
			s.logger.Error("bring a hosted repository up to date", "repository", name, "err", err)
			http.Error(w, "The repository could not be read from where Sluice keeps it; try again", http.StatusServiceUnavailable)
			return
		}
		missing = err != nil
		if !missing && endpoint == "/info/refs" && r.URL.Query().Get("service") == "git-receive-pack" {
			// The refs a push starts from: see settlePending.
			if !s.settlePending(w, r, shared, name, path) {
				return
			}
		}
	} else {
		_, err := os.Stat(path)
		missing = errors.Is(err, os.ErrNotExist)
	}
	if missing {
		if endpoint != "/info/refs" || r.URL.Query().Get("service") != "git-receive-pack" {
			http.Error(w, fmt.Sprintf("The repository %s does not exist: push to it to create it", name), http.StatusNotFound)
			return
		}
		s.advertiseEmpty(w, r, gitPath)
		return
	}
	backend(gitPath, path, s.logger).ServeHTTP(w, pathInfo(r, path, endpoint))
}

// ensure creates the repository at path if it does not exist, and reports whether it did; when it
// cannot, it answers the push and reports not ok.
func (s *Server) ensure(w http.ResponseWriter, name, path string) (created, ok bool) {
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return false, true
	}
	if err := create(path); err != nil {
		s.logger.Error("create a hosted repository", "repository", name, "err", err)
		http.Error(w, "Creating the repository failed", http.StatusInternalServerError)
		return false, false
	}
	return true, true
}

// push runs a push into the repository at path, creating it first if it is new, and reports the
// branches and tags the push moved, branches first, each in name order. Pushes to one repository run one at a time, so that each sees what
// it moved. A new repository that the push left without refs (it failed, or sent nothing) is
// removed again: only a push that stores something creates a repository.
func (s *Server) push(w http.ResponseWriter, r *http.Request, gitPath, name, path string) {
	defer s.lock(path)()
	created, ok := s.ensure(w, name, path)
	if !ok {
		return
	}
	before := readRefs(path)
	// The refs as they are, to put back if the push cannot be recorded.
	raw, err := rawRefs(gitPath, path)
	if err != nil {
		s.logger.Error("read the refs of a hosted repository", "repository", name, "err", err)
		http.Error(w, "Reading the repository's refs failed", http.StatusInternalServerError)
		return
	}
	// git's answer waits until the moved branches were heard of.
	answer := newHeldAnswer()
	defer func() { answer.send(w) }()
	backend(gitPath, path, s.logger).ServeHTTP(answer, pathInfo(r, path, "/git-receive-pack"))
	if created {
		refs, err := hasRefs(path)
		if err != nil {
			// Keep what may be a good push; an empty repository is only clutter.
			s.logger.Warn("read the refs of a repository a push created", "repository", name, "err", err)
		}
		if err == nil && !refs {
			if err := os.RemoveAll(path); err != nil {
				s.logger.Error("remove a repository that a failed push created", "repository", name, "err", err)
			}
			return
		}
		s.logger.Info("created a hosted repository", "repository", name)
	}
	after := readRefs(path)
	if err := s.report(r.Context(), name, moves(name, before, after), func() error { return restoreRefs(gitPath, path, raw) }); err != nil {
		answer = newHeldAnswer()
		http.Error(answer, "The push could not be recorded to start pipelines and was undone; push again: "+err.Error(), http.StatusInternalServerError)
	}
}

// moves lists each branch and tag of the repository name that moved from before to after,
// branches first, each in name order.
func moves(name string, before, after refs) []Push {
	var moved []Push
	for _, branch := range slices.Sorted(maps.Keys(after.branches)) {
		if commit := after.branches[branch]; before.branches[branch] != commit {
			moved = append(moved, Push{Repository: name, Branch: branch, Commit: commit, Before: before.branches[branch]})
		}
	}
	for _, tag := range slices.Sorted(maps.Keys(after.tags)) {
		if commit := after.tags[tag]; before.tags[tag] != commit {
			moved = append(moved, Push{Repository: name, Tag: tag, Commit: commit})
		}
	}
	return moved
}

// report tells onPush of each move of a push into the repository name, in order. If one cannot
// be recorded, the push is undone with undo, so that the client's next push of the same
// commits moves the refs again and is recorded then, instead of finding everything up to
// date; report returns why.
func (s *Server) report(ctx context.Context, name string, moved []Push, undo func() error) error {
	for _, p := range moved {
		s.logger.Info("push", "repository", name, "branch", p.Branch, "tag", p.Tag, "commit", p.Commit)
		if err := s.onPush(context.WithoutCancel(ctx), p); err != nil {
			s.logger.Error("record a push; undoing it", "repository", name, "branch", p.Branch, "tag", p.Tag, "commit", p.Commit, "err", err)
			if undoErr := undo(); undoErr != nil {
				s.logger.Error("undo a push that could not be recorded", "repository", name, "err", undoErr)
			}
			return err
		}
	}
	return nil
}

// rawRefs lists the refs of the repository at path as they are stored: each ref's object,
// annotated tags unpeeled.
func rawRefs(gitPath, path string) (map[string]string, error) {
	out, err := exec.Command(gitPath, "--git-dir", path, "for-each-ref", "--format=%(objectname) %(refname)").Output()
	if err != nil {
		return nil, fmt.Errorf("list refs: %w", err)
	}
	refs := map[string]string{}
	for line := range strings.Lines(string(out)) {
		if object, ref, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			refs[ref] = object
		}
	}
	return refs, nil
}

// restoreRefs puts the refs of the repository at path back as rawRefs found them: moved ones
// back, new ones deleted.
func restoreRefs(gitPath, path string, was map[string]string) error {
	now, err := rawRefs(gitPath, path)
	if err != nil {
		return err
	}
	var stdin strings.Builder
	for ref, object := range now {
		switch old, had := was[ref]; {
		case !had:
			fmt.Fprintf(&stdin, "delete %s %s\n", ref, object)
		case old != object:
			fmt.Fprintf(&stdin, "update %s %s %s\n", ref, old, object)
		}
	}
	for ref, old := range was {
		if _, has := now[ref]; !has {
			fmt.Fprintf(&stdin, "create %s %s\n", ref, old)
		}
	}
	cmd := exec.Command(gitPath, "--git-dir", path, "update-ref", "--stdin")
	cmd.Stdin = strings.NewReader(stdin.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("restore refs: %v: %s", err, out)
	}
	return nil
}

// heldAnswer is an HTTP answer kept until it may be sent.
type heldAnswer struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func newHeldAnswer() *heldAnswer { return &heldAnswer{header: http.Header{}, code: http.StatusOK} }

func (a *heldAnswer) Header() http.Header         { return a.header }
func (a *heldAnswer) Write(b []byte) (int, error) { return a.body.Write(b) }
func (a *heldAnswer) WriteHeader(code int)        { a.code = code }

// send writes the answer to w.
func (a *heldAnswer) send(w http.ResponseWriter) {
	maps.Copy(w.Header(), a.header)
	w.WriteHeader(a.code)
	w.Write(a.body.Bytes())
}

// advertiseEmpty answers a push's first request, for the refs of a repository that does not
// exist yet, with those of an empty repository: none. The empty repository is a temporary one,
// so that git's own answer lists the capabilities of the git that receives the push.
func (s *Server) advertiseEmpty(w http.ResponseWriter, r *http.Request, gitPath string) {
	dir, err := os.MkdirTemp("", "sluice-git-")
	if err == nil {
		defer os.RemoveAll(dir)
		err = create(filepath.Join(dir, "empty.git"))
	}
	if err != nil {
		s.logger.Error("create an empty repository to advertise", "err", err)
		http.Error(w, "Listing the refs of a new repository failed", http.StatusInternalServerError)
		return
	}
	path := filepath.Join(dir, "empty.git")
	backend(gitPath, path, s.logger).ServeHTTP(w, pathInfo(r, path, "/info/refs"))
}

// backend is git's http-backend serving the repository at path.
func backend(gitPath, path string, logger *slog.Logger) *cgi.Handler {
	return &cgi.Handler{
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
		Stderr: slog.NewLogLogger(logger.Handler(), slog.LevelWarn).Writer(),
	}
}

// pathInfo returns r addressed to endpoint of the repository at path: http-backend finds the
// repository from PATH_INFO, relative to GIT_PROJECT_ROOT.
func pathInfo(r *http.Request, path, endpoint string) *http.Request {
	r2 := r.Clone(r.Context())
	r2.URL.Path = Prefix + filepath.Base(path) + endpoint
	// git sends a request larger than its http.postBuffer (1 MiB: any sizeable push) in chunks,
	// whose length it does not know in advance. Go's CGI refuses those, but http-backend reads
	// a body without CONTENT_LENGTH to its end, so the body goes as a stream of unknown length.
	r2.TransferEncoding = nil
	return r2
}

// create makes an empty bare repository whose default branch is main.
func create(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	_, err := git.PlainInitWithOptions(path, &git.PlainInitOptions{Bare: true, InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	return err
}

// hasRefs reports whether the repository at path has a ref besides HEAD: a branch or a tag.
func hasRefs(path string) (bool, error) {
	repo, err := git.PlainOpen(path)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", path, err)
	}
	refs, err := repo.References()
	if err != nil {
		return false, fmt.Errorf("list the refs of %s: %w", path, err)
	}
	found := false
	err = refs.ForEach(func(ref *plumbing.Reference) error {
		found = found || ref.Name() != plumbing.HEAD
		return nil
	})
	return found, err
}

// refs are the commits a repository's branches and tags point at, by their short names.
type refs struct {
	branches, tags map[string]string
}

// readRefs reads the commit each branch and each tag of a repository points at. An annotated
// tag counts as the commit it tags; a tag of something other than a commit is left out.
func readRefs(path string) refs {
	out := refs{branches: map[string]string{}, tags: map[string]string{}}
	repo, err := git.PlainOpen(path)
	if err != nil {
		return out
	}
	all, err := repo.References()
	if err != nil {
		return out
	}
	_ = all.ForEach(func(ref *plumbing.Reference) error {
		switch {
		case ref.Type() != plumbing.HashReference:
		case ref.Name().IsBranch():
			out.branches[ref.Name().Short()] = ref.Hash().String()
		case ref.Name().IsTag():
			if c, err := gitrepo.Peel(repo, ref.Hash()); err == nil {
				out.tags[ref.Name().Short()] = c.Hash.String()
			}
		}
		return nil
	})
	return out
}
