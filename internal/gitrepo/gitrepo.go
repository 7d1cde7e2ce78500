// Package gitrepo reads the git repositories of Git source actions: it resolves a repository
// name to a remote (a repository hosted by Sluice, or one mapped to a path or URL), fetches a
// branch through a local mirror, and writes a commit's tree as a zip archive. It uses go-git,
// so reading repositories needs no git binary.
package gitrepo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/sluicehq/sluice/internal/archive"
)

// Errors, matched with errors.Is.
var (
	ErrNoRepository = errors.New("the repository does not exist")
	ErrNoBranch     = errors.New("the branch does not exist")
	ErrNoCommit     = errors.New("the commit does not exist")
)

// Remotes resolves repository names to git remotes.
type Remotes struct {
	// hosted is the directory of the repositories Sluice serves, <name>.git each.
	hosted string
	// mapped are remotes given by name: a path, file://, or http(s) URL with credentials.
	mapped map[string]string
	// mirrors keeps bare mirrors of remote repositories, fetched into before each read.
	mirrors string
	locks   sync.Map
	// shared, if set, keeps the hosted repositories for every replica of the server: hosted is
	// then this replica's cache of them, brought up to date before each read.
	shared Shared
}

// Shared keeps the repositories Sluice hosts where every replica of the server finds them, so
// that a replica's hosted directory is only its cache of them: a copy of each repository, made
// current before it is read or pushed to. A nil Shared means the hosted directory is the
// repositories themselves, as with a single server.
type Shared interface {
	// Sync brings the copy at path of the hosted repository name up to date, creating it if
	// need be, or fails with ErrNoRepository if the repository does not exist (was never
	// pushed to).
	Sync(ctx context.Context, name, path string) error
	// Lock waits until no push into name runs on any replica, brings the copy at path up to
	// date (if the repository exists) and returns the push, which holds that lock until its
	// Close.
	Lock(ctx context.Context, name, path string) (Update, error)
	// Pending reports whether the repository name has moves that a push stored and that may
	// not have been reported (see Update.Pending); false for a repository that does not exist.
	Pending(ctx context.Context, name string) (bool, error)
}

// Move is a branch or a tag that a push moved, stored with the refs it moved until it is
// reported (see Update.Pending): Branch is set for a branch, with Before its previous commit
// ("" for a new branch), and Tag for a tag; Commit is the commit it now points at (an annotated
// tag's target). ID tells the move apart from every other, however often it is reported.
type Move struct {
	ID     string `json:"id"`
	Branch string `json:"branch,omitempty"`
	Tag    string `json:"tag,omitempty"`
	Before string `json:"before,omitempty"`
	Commit string `json:"commit"`
}

// Update is a push into a shared repository, which no other push into it runs beside.
type Update interface {
	// Refs are the repository's refs as the push found them: each ref's full name
	// ("refs/heads/main") and the object it names. None for a repository that does not exist.
	Refs() map[string]string
	// Compact tells whether the repository is kept in enough pack files that the push should
	// store it as one: repack everything, and publish the one pack with replace.
	Compact() bool
	// Pending are the moves that earlier pushes stored with their refs and that were not
	// cleared since (ClearPending): a push whose replica died after publishing it and before
	// reporting its moves (or before clearing them) left them, for whoever holds the lock next
	// to report. None for a repository that does not exist.
	Pending() []Move
	// Publish stores the pack files packs (paths of .pack files, each with its .idx beside it)
	// and makes refs all of the repository's refs, and pending its pending moves, in one
	// write; with replace, packs replace all the repository's packs (they hold every object
	// its refs reach). Once it returns nil, the push is stored where every replica finds it,
	// and the copy at path holds it; an error means it was not stored. It may be called again,
	// to undo a publication with the refs (and pending moves) as they were.
	Publish(ctx context.Context, packs []string, refs map[string]string, replace bool, pending []Move) error
	// ClearPending forgets the pending moves, once they are reported.
	ClearPending(ctx context.Context) error
	// Close ends the push, letting the next one in.
	Close()
}

// validName matches repository names: CodeCommit's, or owner/repo for connections.
var validName = regexp.MustCompile(`^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)?$`)

// ValidName reports whether name can name a hosted repository.
func ValidName(name string) bool {
	return validName.MatchString(name) && !strings.Contains(name, "..") && !strings.HasSuffix(name, ".git")
}

// NewRemotes returns remotes that resolve names first through mapped, then to the repositories
// hosted in the directory hosted; mirrors of remote repositories are kept in mirrors.
func NewRemotes(hosted, mirrors string, mapped map[string]string) *Remotes {
	return &Remotes{hosted: hosted, mirrors: mirrors, mapped: mapped}
}

// NewSharedRemotes returns remotes like NewRemotes whose hosted repositories are kept by shared,
// hosted being this replica's cache of them.
func NewSharedRemotes(hosted, mirrors string, mapped map[string]string, shared Shared) *Remotes {
	return &Remotes{hosted: hosted, mirrors: mirrors, mapped: mapped, shared: shared}
}

// Shared returns what keeps the hosted repositories for every replica, or nil if the hosted
// directory holds them.
func (r *Remotes) Shared() Shared {
	return r.shared
}

// sync brings this replica's copy of the hosted repository rm up to date, if the hosted
// repositories are shared.
func (r *Remotes) sync(ctx context.Context, rm Remote) error {
	if r.shared == nil {
		return nil
	}
	err := r.shared.Sync(ctx, rm.Name, rm.path)
	switch {
	case errors.Is(err, ErrNoRepository):
		return fmt.Errorf("%s: %w", rm.Describe(), ErrNoRepository)
	case err != nil:
		return fmt.Errorf("bring %s up to date: %w", rm.Describe(), err)
	}
	return nil
}

// HostedPath is where the hosted repository name lives.
func (r *Remotes) HostedPath(name string) string {
	return filepath.Join(r.hosted, filepath.FromSlash(name)+".git")
}

// Hosted reports whether name resolves to a repository Sluice hosts.
func (r *Remotes) Hosted(name string) bool {
	_, mapped := r.mapped[name]
	return !mapped && ValidName(name)
}

// Remote is one resolved repository.
type Remote struct {
	Name string
	// url is where it is fetched from; empty for a hosted repository.
	url  string
	auth transport.AuthMethod
	path string
}

// Describe says where the repository is, without credentials.
func (rm Remote) Describe() string {
	if rm.url == "" {
		return "the repository " + rm.Name + " hosted by Sluice"
	}
	u, err := url.Parse(rm.url)
	if err == nil && u.User != nil {
		u.User = nil
		return "the repository " + rm.Name + " at " + u.String()
	}
	return "the repository " + rm.Name + " at " + rm.url
}

// Resolve finds the remote of a repository name.
func (r *Remotes) Resolve(name string) (Remote, error) {
	if target, ok := r.mapped[name]; ok {
		rm := Remote{Name: name, url: target}
		if u, err := url.Parse(target); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.User != nil {
			password, _ := u.User.Password()
			rm.auth = &githttp.BasicAuth{Username: u.User.Username(), Password: password}
			u.User = nil
			rm.url = u.String()
		}
		sum := sha256.Sum256([]byte(target))
		rm.path = filepath.Join(r.mirrors, hex.EncodeToString(sum[:8])+".git")
		return rm, nil
	}
	if !ValidName(name) {
		return Remote{}, fmt.Errorf("%q is not a repository name Sluice can host: %w", name, ErrNoRepository)
	}
	return Remote{Name: name, path: r.HostedPath(name)}, nil
}

// lock serialises fetches into one mirror.
func (r *Remotes) lock(path string) func() {
	mu, _ := r.locks.LoadOrStore(path, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	return mu.(*sync.Mutex).Unlock
}

// local opens the repository of rm as it is here, without fetching: the hosted repository
// (brought up to date first if it is shared), or a remote's mirror as last fetched.
func (r *Remotes) local(ctx context.Context, rm Remote) (*git.Repository, error) {
	if rm.url == "" {
		if err := r.sync(ctx, rm); err != nil {
			return nil, err
		}
	}
	repo, err := git.PlainOpen(rm.path)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("%s: %w", rm.Describe(), ErrNoRepository)
	}
	return repo, err
}

// open returns the repository to read rm from, fetching branch into its mirror first, and the
// remote's tags too when tags is set.
func (r *Remotes) open(ctx context.Context, rm Remote, branch string, tags bool) (*git.Repository, error) {
	if rm.url == "" {
		return r.local(ctx, rm)
	}
	defer r.lock(rm.path)()
	repo, err := git.PlainOpen(rm.path)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if repo, err = git.PlainInit(rm.path, true); err == nil {
			_, err = repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{rm.url}})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open the mirror of %s: %w", rm.Describe(), err)
	}
	specs := []config.RefSpec{config.RefSpec(fmt.Sprintf("+refs/heads/%s:refs/heads/%s", branch, branch))}
	if tags {
		specs = append(specs, "+refs/tags/*:refs/tags/*")
	}
	err = repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RefSpecs: specs, Auth: rm.auth, Force: true, Tags: git.NoTags})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
		return repo, nil
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return nil, fmt.Errorf("%s: %w", rm.Describe(), ErrNoRepository)
	case strings.Contains(err.Error(), "couldn't find remote ref"):
		return nil, fmt.Errorf("%s has no branch %s: %w", rm.Describe(), branch, ErrNoBranch)
	}
	return nil, fmt.Errorf("fetch %s from %s: %w", branch, rm.Describe(), err)
}

// Commit describes a commit.
type Commit struct {
	ID        string
	Message   string
	Author    string
	AuthorAt  time.Time
	Committed time.Time
}

// Head returns the commit at the tip of branch.
func (r *Remotes) Head(ctx context.Context, rm Remote, branch string) (Commit, error) {
	repo, err := r.open(ctx, rm, branch, false)
	if err != nil {
		return Commit{}, err
	}
	c, err := tip(repo, rm, branch)
	if err != nil {
		return Commit{}, err
	}
	return describe(c), nil
}

func tip(repo *git.Repository, rm Remote, branch string) (*object.Commit, error) {
	ref, err := repo.Reference(plumbing.NewBranchReferenceName(branch), true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, fmt.Errorf("%s has no branch %s: %w", rm.Describe(), branch, ErrNoBranch)
	}
	if err != nil {
		return nil, err
	}
	return repo.CommitObject(ref.Hash())
}

func describe(c *object.Commit) Commit {
	return Commit{ID: c.Hash.String(), Message: c.Message, Author: c.Author.Name, AuthorAt: c.Author.When, Committed: c.Committer.When}
}

// Archive writes the tree of a commit of branch to a zip file at zipPath: the commit given (its
// id, or a tag's name, which names the commit it tags), or the branch's tip. With clone, the
// archive is a clone of the branch checked out at the commit, .git directory included, for
// builds that need git history.
func (r *Remotes) Archive(ctx context.Context, rm Remote, branch, commitID, zipPath string, clone bool) (Commit, error) {
	// A pinned commit may be reachable from a tag only (or be named by one): it needs the
	// remote's tags; the tip only the branch.
	repo, err := r.open(ctx, rm, branch, commitID != "")
	if err != nil {
		return Commit{}, err
	}
	var c *object.Commit
	if commitID == "" {
		c, err = tip(repo, rm, branch)
	} else {
		c, err = commitOrTag(repo, commitID)
		if errors.Is(err, plumbing.ErrObjectNotFound) || errors.Is(err, plumbing.ErrReferenceNotFound) {
			err = fmt.Errorf("%s has no commit or tag %s: %w", rm.Describe(), commitID, ErrNoCommit)
		}
	}
	if err != nil {
		return Commit{}, err
	}
	if clone {
		err = cloneArchive(ctx, rm.path, branch, c.Hash, zipPath)
	} else {
		err = treeArchive(c, zipPath)
	}
	return describe(c), err
}

// commitOrTag finds a commit by its full id, or by the name of a tag that points at it
// (annotated or not).
func commitOrTag(repo *git.Repository, name string) (*object.Commit, error) {
	if plumbing.IsHash(name) {
		return repo.CommitObject(plumbing.NewHash(name))
	}
	ref, err := repo.Tag(name)
	if err != nil {
		return nil, plumbing.ErrReferenceNotFound
	}
	return Peel(repo, ref.Hash())
}

// Peel returns the commit that the object h names: a commit, or a tag (annotated, or a tag of a
// tag) that leads to one.
func Peel(repo *git.Repository, h plumbing.Hash) (*object.Commit, error) {
	for range 10 {
		tag, err := repo.TagObject(h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return repo.CommitObject(h) // not a tag object: a lightweight tag names its commit
		}
		if err != nil {
			return nil, err
		}
		if tag.TargetType != plumbing.CommitObject && tag.TargetType != plumbing.TagObject {
			return nil, fmt.Errorf("tag %s points at a %s, not a commit", tag.Name, tag.TargetType)
		}
		h = tag.Target
	}
	return nil, fmt.Errorf("tag %s: tags nested too deep", h)
}

// Tags lists the tags of rm (fetched into its mirror, with branch, for a remote) and the commit
// each tags.
func (r *Remotes) Tags(ctx context.Context, rm Remote, branch string) (map[string]string, error) {
	repo, err := r.open(ctx, rm, branch, true)
	if err != nil {
		return nil, err
	}
	iter, err := repo.Tags()
	if err != nil {
		return nil, fmt.Errorf("list the tags of %s: %w", rm.Describe(), err)
	}
	tags := map[string]string{}
	err = iter.ForEach(func(ref *plumbing.Reference) error {
		if c, err := Peel(repo, ref.Hash()); err == nil {
			tags[ref.Name().Short()] = c.Hash.String()
		}
		return nil
	})
	return tags, err
}

// treeArchive zips the files of a commit's tree.
func treeArchive(c *object.Commit, zipPath string) error {
	tree, err := c.Tree()
	if err != nil {
		return err
	}
	w, err := archive.Create(zipPath)
	if err != nil {
		return err
	}
	err = tree.Files().ForEach(func(f *object.File) error {
		if f.Mode == filemode.Submodule || f.Mode == filemode.Symlink {
			return nil
		}
		mode, err := f.Mode.ToOSFileMode()
		if err != nil {
			return err
		}
		rd, err := f.Reader()
		if err != nil {
			return err
		}
		defer rd.Close()
		return w.Add(f.Name, mode.Perm(), c.Committer.When, rd)
	})
	if err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}

// cloneArchive clones the repository at path, checks out commit and zips the whole work tree.
func cloneArchive(ctx context.Context, path, branch string, commit plumbing.Hash, zipPath string) error {
	dir, err := os.MkdirTemp(filepath.Dir(zipPath), "clone-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	repo, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{URL: path, ReferenceName: plumbing.NewBranchReferenceName(branch), SingleBranch: true, NoCheckout: true})
	if err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	if _, err := repo.CommitObject(commit); errors.Is(err, plumbing.ErrObjectNotFound) {
		// A commit off the branch, as a push to another branch or of a tag starts a run at:
		// the clone gets the repository's other branches and its tags too.
		err = repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", Tags: git.AllTags,
			RefSpecs: []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return fmt.Errorf("fetch the branches and tags holding %s: %w", commit, err)
		}
	}
	wt, err := repo.Worktree()
	if err != nil {
		return err
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: commit, Force: true}); err != nil {
		return fmt.Errorf("check out %s: %w", commit, err)
	}
	return archive.ZipDir(dir, zipPath)
}

// ChangedFiles lists, sorted, the paths of the files that differ between two commits of a
// repository: added, modified and deleted files (both paths of a renamed one), by their path
// from the repository's root. An empty before stands for a branch that did not exist: the files
// are then those the commit after changed against its first parent (all its files for a root
// commit). The commits are read from the repository as it is here, without fetching: the hosted
// repository (brought up to date first if it is shared), or a remote's mirror as last fetched.
func (r *Remotes) ChangedFiles(ctx context.Context, rm Remote, before, after string) ([]string, error) {
	repo, err := r.local(ctx, rm)
	if err != nil {
		return nil, err
	}
	to, err := commitObject(repo, rm, after)
	if err != nil {
		return nil, err
	}
	var from *object.Commit
	switch {
	case before != "":
		if from, err = commitObject(repo, rm, before); err != nil {
			return nil, err
		}
	case to.NumParents() > 0:
		if from, err = to.Parent(0); err != nil {
			return nil, fmt.Errorf("read the parent of %s in %s: %w", after, rm.Describe(), err)
		}
	}
	fromTree := &object.Tree{}
	if from != nil {
		if fromTree, err = from.Tree(); err != nil {
			return nil, err
		}
	}
	toTree, err := to.Tree()
	if err != nil {
		return nil, err
	}
	changes, err := object.DiffTreeWithOptions(ctx, fromTree, toTree, nil)
	if err != nil {
		return nil, fmt.Errorf("compare %s with %s in %s: %w", before, after, rm.Describe(), err)
	}
	seen := map[string]bool{}
	for _, c := range changes {
		for _, name := range []string{c.From.Name, c.To.Name} {
			if name != "" {
				seen[name] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// commitObject reads a commit of repo by its id.
func commitObject(repo *git.Repository, rm Remote, id string) (*object.Commit, error) {
	if !plumbing.IsHash(id) {
		return nil, fmt.Errorf("%s has no commit %s: %w", rm.Describe(), id, ErrNoCommit)
	}
	c, err := repo.CommitObject(plumbing.NewHash(id))
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("%s has no commit %s: %w", rm.Describe(), id, ErrNoCommit)
	}
	return c, err
}
