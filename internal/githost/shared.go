package githost

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/uuid"

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
//
// The refs are stored with the moves the push made, each with an ID of its own, as pending
// moves, cleared once they are reported: a replica that dies in between leaves them for the
// next holder of the lock, which reports them (reportPending) before it receives anything. The
// client whose push failed with the replica pushes again, through another replica: if it finds
// the refs at its commits already, git answers "Everything up-to-date" from their
// advertisement alone, which settlePending sends only once the pending moves are reported; if
// it sends a push, that push reports them first. A move may so be reported twice, with the
// same ID (a replica that died after reporting it, before clearing it).
func (s *Server) pushShared(w http.ResponseWriter, r *http.Request, shared gitrepo.Shared, gitPath, name, path string) {
	defer s.lock(path)()
	up, err := shared.Lock(r.Context(), name, path)
	if err != nil {
		s.logger.Error("lock a hosted repository for a push", "repository", name, "err", err)
		http.Error(w, "The repository could not be locked for the push; push again", http.StatusServiceUnavailable)
		return
	}
	defer up.Close()
	if err := s.reportPending(r.Context(), name, up); err != nil {
		http.Error(w, "An earlier push into the repository could not be recorded to start pipelines; push again: "+err.Error(), http.StatusInternalServerError)
		return
	}
	// Moves reported but not cleared (the database failed just then) stay pending, to be
	// reported again, with what this push stores.
	prior := up.Pending()
	created, ok := s.ensure(w, name, path)
	if !ok {
		return
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
	moved := moves(name, before, after)
	pending := slices.Clone(prior)
	for i, p := range moved {
		id, err := uuid.NewV7()
		if err != nil {
			answer = newHeldAnswer()
			fail(answer, "make the ids of a push's moves", err)
			return
		}
		moved[i].ID = id.String()
		pending = append(pending, gitrepo.Move{ID: moved[i].ID, Branch: p.Branch, Tag: p.Tag, Before: p.Before, Commit: p.Commit})
	}
	ctx := context.WithoutCancel(r.Context())
	if err := up.Publish(ctx, packs, now, compact, pending); err != nil {
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
	if err := s.report(ctx, name, moved, func() error { return up.Publish(ctx, nil, was, false, prior) }); err != nil {
		answer = newHeldAnswer()
		http.Error(answer, "The push could not be recorded to start pipelines and was undone; push again: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if err := up.ClearPending(ctx); err != nil {
		s.logger.Warn("clear the reported moves of a push; the next push reports them again", "repository", name, "err", err)
	}
}

// reportPending reports the pending moves of the repository name that up locked (those of
// pushes stored and perhaps not reported, see pushShared), in the order they were stored, then
// clears them. It returns why one could not be recorded; a failure to clear them is only
// logged: they are reported again.
func (s *Server) reportPending(ctx context.Context, name string, up gitrepo.Update) error {
	pending := up.Pending()
	if len(pending) == 0 {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	for _, m := range pending {
		p := Push{Repository: name, Branch: m.Branch, Tag: m.Tag, Commit: m.Commit, Before: m.Before, ID: m.ID}
		s.logger.Info("push stored earlier, perhaps unreported", "repository", name, "branch", p.Branch, "tag", p.Tag, "commit", p.Commit, "id", p.ID)
		if err := s.onPush(ctx, p); err != nil {
			s.logger.Error("record a push stored earlier", "repository", name, "branch", p.Branch, "tag", p.Tag, "commit", p.Commit, "id", p.ID, "err", err)
			return err
		}
	}
	if err := up.ClearPending(ctx); err != nil {
		s.logger.Warn("clear the reported moves of earlier pushes; the next push reports them again", "repository", name, "err", err)
	}
	return nil
}

// settlePending reports the pending moves of the repository name, if it has any, before its
// refs are advertised to a push (GET info/refs?service=git-receive-pack). A push of commits
// the refs have already is answered "Everything up-to-date" by git from that advertisement
// alone, without a receive-pack request: when a client pushes again because its push failed
// with a replica that stored it and died before reporting it, this answer acknowledges the
// push, so it may go only once the push is reported. settlePending reports false, having
// answered w, if the moves could not be reported.
func (s *Server) settlePending(w http.ResponseWriter, r *http.Request, shared gitrepo.Shared, name, path string) bool {
	pending, err := shared.Pending(r.Context(), name)
	if err != nil {
		s.logger.Error("read the pending moves of a hosted repository", "repository", name, "err", err)
		http.Error(w, "The repository could not be read from where Sluice keeps it; try again", http.StatusServiceUnavailable)
		return false
	}
	if !pending {
		return true
	}
	defer s.lock(path)()
	up, err := shared.Lock(r.Context(), name, path)
	if err != nil {
		s.logger.Error("lock a hosted repository to report earlier pushes", "repository", name, "err", err)
		http.Error(w, "The repository could not be locked; push again", http.StatusServiceUnavailable)
		return false
	}
	defer up.Close()
	if err := s.reportPending(r.Context(), name, up); err != nil {
		http.Error(w, "An earlier push into the repository could not be recorded to start pipelines; push again: "+err.Error(), http.StatusInternalServerError)
		return false
	}
	return true
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
