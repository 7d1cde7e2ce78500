package gitrepo

import (
	"archive/zip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// work is a repository hosted by Remotes, written to with go-git's work tree.
type work struct {
	t    *testing.T
	dir  string
	repo *git.Repository
}

func newWork(t *testing.T, r *Remotes, name string) *work {
	t.Helper()
	dir := r.HostedPath(name)
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	if err != nil {
		t.Fatal(err)
	}
	return &work{t: t, dir: dir, repo: repo}
}

// commit writes files (an empty body removes the file) and commits them all.
func (w *work) commit(files map[string]string) string {
	w.t.Helper()
	wt, err := w.repo.Worktree()
	if err != nil {
		w.t.Fatal(err)
	}
	for name, body := range files {
		path := filepath.Join(w.dir, filepath.FromSlash(name))
		if body == "" {
			if _, err := wt.Remove(name); err != nil {
				w.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			w.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			w.t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			w.t.Fatal(err)
		}
	}
	sig := &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}
	h, err := wt.Commit("change", &git.CommitOptions{Author: sig, AllowEmptyCommits: true})
	if err != nil {
		w.t.Fatal(err)
	}
	return h.String()
}

func TestChangedFiles(t *testing.T) {
	ctx := context.Background()
	r := NewRemotes(t.TempDir(), t.TempDir(), nil)
	w := newWork(t, r, "acme/app")
	first := w.commit(map[string]string{"README.md": "hello\n", "src/main.go": "package main\n", "docs/a.md": "a\n"})
	second := w.commit(map[string]string{"src/main.go": "package main // two\n", "src/util/x.go": "package util\n"})
	third := w.commit(map[string]string{"docs/a.md": "", "docs/b.md": "a\n"}) // a rename, without rename detection
	empty := w.commit(nil)
	rm, err := r.Resolve("acme/app")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		before, after string
		want          []string
	}{
		{"root commit of a new branch", "", first, []string{"README.md", "docs/a.md", "src/main.go"}},
		{"modified and added", first, second, []string{"src/main.go", "src/util/x.go"}},
		{"renamed: both paths", second, third, []string{"docs/a.md", "docs/b.md"}},
		{"several commits at once", first, third, []string{"docs/a.md", "docs/b.md", "src/main.go", "src/util/x.go"}},
		{"new branch: the tip's own changes", "", third, []string{"docs/a.md", "docs/b.md"}},
		{"backwards, as after a force push", third, first, []string{"docs/a.md", "docs/b.md", "src/main.go", "src/util/x.go"}},
		{"an empty commit", third, empty, []string{}},
		{"the same commit", second, second, []string{}},
	} {
		got, err := r.ChangedFiles(ctx, rm, tc.before, tc.after)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: changed files %q, want %q", tc.name, got, tc.want)
		}
	}

	if _, err := r.ChangedFiles(ctx, rm, first, "0123456789012345678901234567890123456789"); !errors.Is(err, ErrNoCommit) {
		t.Errorf("unknown commit: %v, want ErrNoCommit", err)
	}
	if _, err := r.ChangedFiles(ctx, rm, "not-a-commit", first); !errors.Is(err, ErrNoCommit) {
		t.Errorf("malformed commit id: %v, want ErrNoCommit", err)
	}
	missing, _ := r.Resolve("acme/missing")
	if _, err := r.ChangedFiles(ctx, missing, "", first); !errors.Is(err, ErrNoRepository) {
		t.Errorf("missing repository: %v, want ErrNoRepository", err)
	}
}

// TestCloneArchiveOfACommitOffTheBranch: a run started by a tag, or by a push to another
// branch, archives a commit its source's branch does not hold, clone and all.
func TestCloneArchiveOfACommitOffTheBranch(t *testing.T) {
	ctx := context.Background()
	r := NewRemotes(t.TempDir(), t.TempDir(), nil)
	w := newWork(t, r, "app")
	mainTip := w.commit(map[string]string{"name.txt": "main\n"})
	wt, _ := w.repo.Worktree()
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName("release"), Create: true}); err != nil {
		t.Fatal(err)
	}
	onBranch := w.commit(map[string]string{"name.txt": "release\n"})
	if err := wt.Checkout(&git.CheckoutOptions{Hash: plumbing.NewHash(mainTip), Branch: plumbing.NewBranchReferenceName("tagged"), Create: true}); err != nil {
		t.Fatal(err)
	}
	tagged := w.commit(map[string]string{"name.txt": "release\n", "more.txt": "x\n"})
	if _, err := w.repo.CreateTag("v1.0", plumbing.NewHash(tagged), nil); err != nil {
		t.Fatal(err)
	}
	if err := w.repo.Storer.RemoveReference(plumbing.NewBranchReferenceName("tagged")); err != nil {
		t.Fatal(err)
	}
	rm, _ := r.Resolve("app")
	for _, tc := range []struct {
		commit string
		clone  bool
	}{{onBranch, false}, {onBranch, true}, {tagged, false}, {tagged, true}} {
		clone := tc.clone
		zipPath := filepath.Join(t.TempDir(), "out.zip")
		c, err := r.Archive(ctx, rm, "main", tc.commit, zipPath, clone)
		if err != nil {
			t.Fatalf("archive (clone %v): %v", clone, err)
		}
		if c.ID != tc.commit {
			t.Fatalf("archived %s, want %s", c.ID, tc.commit)
		}
		zr, err := zip.OpenReader(zipPath)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range zr.File {
			if f.Name == "name.txt" {
				rd, _ := f.Open()
				b := make([]byte, 64)
				n, _ := rd.Read(b)
				rd.Close()
				found = string(b[:n]) == "release\n"
			}
		}
		zr.Close()
		if !found {
			t.Errorf("archive (clone %v) lacks the tagged name.txt", clone)
		}
	}
}

// TestArchiveOfATagOfARemote: a remote repository's tags come into its mirror, so that a source
// pinned to a tag's name (annotated or not) runs the commit it tags.
func TestArchiveOfATagOfARemote(t *testing.T) {
	origin := NewRemotes(t.TempDir(), t.TempDir(), nil)
	w := newWork(t, origin, "app")
	first := w.commit(map[string]string{"page.txt": "one\n"})
	if _, err := w.repo.CreateTag("light", plumbing.NewHash(first), nil); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}
	if _, err := w.repo.CreateTag("v1", plumbing.NewHash(first), &git.CreateTagOptions{Tagger: sig, Message: "release 1"}); err != nil {
		t.Fatal(err)
	}
	w.commit(map[string]string{"page.txt": "two\n"})

	r := NewRemotes(t.TempDir(), t.TempDir(), map[string]string{"app": w.dir})
	rm, err := r.Resolve("app")
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"v1", "light"} {
		c, err := r.Archive(context.Background(), rm, "main", tag, filepath.Join(t.TempDir(), "src.zip"), false)
		if err != nil || c.ID != first {
			t.Fatalf("archive of tag %s: commit %s, %v; want %s", tag, c.ID, err, first)
		}
	}
	if _, err := r.Archive(context.Background(), rm, "main", "v9", filepath.Join(t.TempDir(), "src.zip"), false); !errors.Is(err, ErrNoCommit) {
		t.Fatalf("archive of a missing tag: %v, want ErrNoCommit", err)
	}
}
