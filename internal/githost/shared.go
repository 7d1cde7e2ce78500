package githost

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/internal/gitrepo"
)

// stagingPrefix names the staging repositories of pushes, inside the copy of the repository.
const stagingPrefix = "sluice-push-"

// pushShared runs a push into a repository that shared keeps for every replica of the server.
// The push holds the repository's lock, on every replica, from before git reads it until it is
// answered. git receives it into a staging repository inside this replica's copy, which borrows
// the copy's objects and starts with the repository's refs as shared has them: the copy, which
// serves fetches, never shows a push that is not stored. Then the staged pack and refs are
// published (the pack uploaded, then the refs stored), and only then are the moved branches
// and tags reported and the push answered: a push the client sees accepted is stored where
// every replica finds it, and was heard of. A push that cannot be stored is refused, nothing of
// it applied.
func (s *Server) pushShared(w http.ResponseWriter, r *http.Request, shared gitrepo.Shared, gitPath, name, path string) {
	defer s.lock(path)()
	up, err := shared.Lock(r.Context(), name, path)
	if err != nil {
		s.logger.Error("lock a hosted repository for a push", "repository", name, "err", err)
		http.Error(w, "The repository could not be locked for the push; push again", http.StatusServiceUnavailable)
		return
	}
	defer up.Close()
	created := false
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := create(path); err != nil {
			s.logger.Error("create a hosted repository", "repository", name, "err", err)
			http.Error(w, "Creating the repository failed", http.StatusInternalServerError)
			return
		}
		created = true
	}
	// Staging repositories left by a replica that died during a push: no other push into this
	// copy runs.
	if old, err := filepath.Glob(filepath.Join(path, stagingPrefix+"*")); err == nil {
		for _, dir := range old {
			os.RemoveAll(dir)
		}
	}
	fail := func(w http.ResponseWriter, msg string, err error) {
		s.logger.Error(msg, "repository", name, "err", err)
		http.Error(w, "The push failed and was not applied; push again", http.StatusInternalServerError)
		if created {
			os.RemoveAll(path)
		}
	}
	dir, err := os.MkdirTemp(path, stagingPrefix)
	if err != nil {
		fail(w, "create the staging repository of a push", err)
		return
	}
	defer os.RemoveAll(dir)
	stage := filepath.Join(dir, "push.git")
	was := up.Refs()
	if err := stageRepository(stage, path, was); err != nil {
		fail(w, "create the staging repository of a push", err)
		return
	}
	before, err := stagedRefs(gitPath, stage)
	if err != nil {
		fail(w, "read the refs of a hosted repository", err)
		return
	}
	// git's answer waits until the push is stored and heard of.
	answer := newHeldAnswer()
	defer func() { answer.send(w) }()
	backend(gitPath, stage, s.logger).ServeHTTP(answer, pathInfo(r, stage, "/git-receive-pack"))
	now, err := rawRefs(gitPath, stage)
	if err != nil {
		answer = newHeldAnswer()
		fail(answer, "read the refs of a push", err)
		return
	}
	if maps.Equal(was, now) {
		// Nothing moved: a failed push, or one that sent nothing. It creates no repository.
		if created {
			os.RemoveAll(path)
		}
		return
	}
	compact := up.Compact()
	if err := packStaged(gitPath, stage, compact); err != nil {
		answer = newHeldAnswer()
		fail(answer, "pack the objects of a push", err)
		return
	}
	packs, err := filepath.Glob(filepath.Join(stage, "objects", "pack", "pack-*.pack"))
	if err != nil {
		answer = newHeldAnswer()
		fail(answer, "list the packs of a push", err)
		return
	}
	after, err := stagedRefs(gitPath, stage)
	if err != nil {
		answer = newHeldAnswer()
		fail(answer, "read the refs of a push", err)
		return
	}
	ctx := context.WithoutCancel(r.Context())
	if err := up.Publish(ctx, packs, now, compact); err != nil {
		s.logger.Error("store a push", "repository", name, "err", err)
		answer = newHeldAnswer()
		http.Error(answer, "The push could not be stored where every Sluice replica finds it, and was not applied; push again", http.StatusServiceUnavailable)
		if created {
			os.RemoveAll(path)
		}
		return
	}
	if created {
		s.logger.Info("created a hosted repository", "repository", name)
	}
	if err := s.report(ctx, name, before, after, func() error { return up.Publish(ctx, nil, was, false) }); err != nil {
		answer = newHeldAnswer()
		http.Error(answer, "The push could not be recorded to start pipelines and was undone; push again: "+err.Error(), http.StatusInternalServerError)
	}
}

// stageRepository creates at stage a bare repository that borrows the objects of the
// repository at path and has refs: it keeps what a push sends as one pack file of its own (no
// loose objects, no automatic gc), to publish.
func stageRepository(stage, path string, refs map[string]string) error {
	objects, err := filepath.Abs(filepath.Join(path, "objects"))
	if err != nil {
		return err
	}
	for _, d := range []string{"objects/pack", "objects/info", "refs/heads", "refs/tags"} {
		if err := os.MkdirAll(filepath.Join(stage, filepath.FromSlash(d)), 0o755); err != nil {
			return err
		}
	}
	var packed strings.Builder
	packed.WriteString("# pack-refs with: sorted \n")
	for _, ref := range slices.Sorted(maps.Keys(refs)) {
		fmt.Fprintf(&packed, "%s %s\n", refs[ref], ref)
	}
	for file, body := range map[string]string{
		"HEAD": "ref: refs/heads/main\n",
		"config": "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n" +
			"[receive]\n\tunpackLimit = 1\n\tautogc = false\n[transfer]\n\tunpackLimit = 1\n[gc]\n\tauto = 0\n",
		"objects/info/alternates": objects + "\n",
		"packed-refs":             packed.String(),
	} {
		if err := os.WriteFile(filepath.Join(stage, filepath.FromSlash(file)), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// packStaged leaves the objects of the staging repository in pack files: with compact, in one
// pack holding every object its refs reach (borrowed ones too), to replace all the
// repository's packs; otherwise it packs any loose objects, which receive.unpackLimit should
// have left none of.
func packStaged(gitPath, stage string, compact bool) error {
	args := []string{"--git-dir", stage, "-c", "repack.writeBitmaps=false", "-c", "pack.writeBitmaps=false", "repack", "-d", "-q"}
	if compact {
		args = append(args, "-a")
	} else {
		loose, err := filepath.Glob(filepath.Join(stage, "objects", "[0-9a-f][0-9a-f]"))
		if err != nil || len(loose) == 0 {
			return err
		}
		args = append(args, "-l")
	}
	if out, err := exec.Command(gitPath, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("git repack: %v: %s", err, out)
	}
	return nil
}

// stagedRefs reads the branches and tags of the repository at path as readRefs does, with git,
// which reads the objects the repository borrows: the commit each branch and each tag points
// at, an annotated tag's target for a tag, tags of something other than a commit left out.
func stagedRefs(gitPath, path string) (refs, error) {
	out := refs{branches: map[string]string{}, tags: map[string]string{}}
	raw, err := rawRefs(gitPath, path)
	if err != nil {
		return out, err
	}
	var tags []string
	var stdin strings.Builder
	for ref, object := range raw {
		if branch, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
			out.branches[branch] = object
		} else if tag, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
			tags = append(tags, tag)
			fmt.Fprintf(&stdin, "%s^{commit}\n", object)
		}
	}
	if len(tags) == 0 {
		return out, nil
	}
	cmd := exec.Command(gitPath, "--git-dir", path, "cat-file", "--batch-check=%(objectname) %(objecttype)")
	cmd.Stdin = strings.NewReader(stdin.String())
	peeled, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("peel tags: %w", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(peeled), "\n"), "\n")
	if len(lines) != len(tags) {
		return out, fmt.Errorf("peel tags: %d answers for %d tags", len(lines), len(tags))
	}
	for i, line := range lines {
		if object, kind, ok := strings.Cut(line, " "); ok && kind == "commit" {
			out.tags[tags[i]] = object
		}
	}
	return out, nil
}
