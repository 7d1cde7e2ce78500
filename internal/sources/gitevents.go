package sources

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/runners"
	"github.com/sluicehq/sluice/internal/store"
)

// This file starts the pipelines that a Git server's events call for: the push and pull request
// webhooks that GitHub, Gitea or Forgejo deliver to a connection's endpoint
// (internal/connections), which records them as GitEvents. An event concerns the
// CodeStarSourceConnection source actions whose ConnectionArn names the connection and whose
// FullRepositoryId is the event's repository.
//
// A push starts the actions it matches as a push to a hosted repository does (pushStarts: the
// V2 trigger's push filters, or else the action's branch), pinned to the pushed commit through
// PutRevision, which starts one execution per revision of an action: a push to a repository
// Sluice hosts that the Git server also reports starts nothing twice.
//
// A pull request event (OPEN, UPDATED or CLOSED) starts the actions whose trigger has a pull
// request filter it matches, pinned to the pull request's head commit. Those starts carry a
// client token made from the event (the Git server's delivery id, or the recorded event's id), so
// that handling an event again, or a redelivery of it, starts nothing twice, while a later event
// at the same commit (CLOSED after UPDATED, say) starts its own execution.

// GitEvent is a push or pull request event that a Git server delivered to the webhook endpoint
// of a connection, after its signature was checked.
type GitEvent struct {
	// Connection is the connection's id: the last part of its ARN.
	Connection string `json:"connection"`
	// Repository is the repository's full name, owner/name.
	Repository string `json:"repository"`
	// Delivery is the Git server's id of the delivery (X-GitHub-Delivery and the like), if given.
	Delivery    string          `json:"delivery,omitempty"`
	Push        *GitPush        `json:"push,omitempty"`
	PullRequest *GitPullRequest `json:"pullRequest,omitempty"`
}

// GitPush is a push of a branch (or, with Tag set instead, of a tag) from the commit Before (""
// for a new branch) to After.
type GitPush struct {
	Branch string `json:"branch,omitempty"`
	Tag    string `json:"tag,omitempty"`
	Before string `json:"before,omitempty"`
	After  string `json:"after"`
	// Files are the files the payload's commits added, modified or removed, for when the
	// repository cannot be read; FilesListed is false when the payload does not list them all.
	Files       []string `json:"files,omitempty"`
	FilesListed bool     `json:"filesListed,omitempty"`
}

// GitPullRequest is an event of a pull request: Event is OPEN, UPDATED or CLOSED; the pull
// request merges HeadBranch, at HeadCommit, of HeadRepository into BaseBranch, at BaseCommit.
type GitPullRequest struct {
	Number         int    `json:"number"`
	Event          string `json:"event"`
	BaseBranch     string `json:"baseBranch"`
	BaseCommit     string `json:"baseCommit,omitempty"`
	HeadBranch     string `json:"headBranch,omitempty"`
	HeadCommit     string `json:"headCommit"`
	HeadRepository string `json:"headRepository,omitempty"`
}

// ConnectionID is the id of the connection an ARN names, the last part of
// arn:aws:codestar-connections:REGION:ACCOUNT:connection/ID (or arn:aws:codeconnections:…); ""
// for an ARN of no connection.
func ConnectionID(arn string) string {
	_, id, ok := strings.Cut(arn, ":connection/")
	if !ok || !strings.HasPrefix(arn, "arn:") || strings.Contains(id, "/") {
		return ""
	}
	return id
}

// gitEvent starts what an event of a Git server calls for.
func (w *Watcher) gitEvent(ctx context.Context, id string, e GitEvent) error {
	actions, err := w.exec.SourceActions(ctx)
	if err != nil {
		return fmt.Errorf("find the pipelines an event of %s starts: %w", e.Repository, err)
	}
	repos := map[string]*eventRepository{}
	for _, sa := range actions {
		a := sa.Action
		if *a.ActionTypeId.Provider != "CodeStarSourceConnection" || e.Connection == "" || ConnectionID(a.Configuration["ConnectionArn"]) != e.Connection {
			continue
		}
		src, _ := runners.WatchedRepository(*a.ActionTypeId.Provider, a.Configuration)
		if !strings.EqualFold(src.Repository, e.Repository) {
			continue
		}
		repo := repos[src.Repository]
		if repo == nil {
			repo = w.eventRepository(ctx, src.Repository, e)
			repos[src.Repository] = repo
		}
		switch {
		case e.Push != nil:
			p := e.Push
			if !pushStarts(sa, src, p.Branch, p.Tag, repo.files) {
				continue
			}
			repo.fetch()
			if err := w.start(ctx, sa, p.After, w.pushTrigger(sa)); err != nil {
				return err
			}
		case e.PullRequest != nil:
			pr := e.PullRequest
			filters := pullRequestFilters(sa.Declaration.Triggers, *a.Name)
			if !pullRequestMatches(filters, model.GitPullRequestEventType(pr.Event), pr.BaseBranch, repo.files) {
				continue
			}
			repo.fetch()
			if err := w.startPullRequest(ctx, sa, id, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// startPullRequest starts an execution of a source action's pipeline for a pull request event,
// pinned to the pull request's head commit; an execution started for the same event already
// is not started again.
func (w *Watcher) startPullRequest(ctx context.Context, sa executor.SourceAction, id string, e GitEvent) error {
	pr := e.PullRequest
	key := "event\x00" + id
	if e.Delivery != "" {
		key = "delivery\x00" + e.Connection + "\x00" + e.Delivery
	}
	sum := sha256.Sum256([]byte(key))
	kind := model.TriggerTypeWebhookV2
	detail := fmt.Sprintf("%s pull request #%d %s", sa.Action.Configuration["ConnectionArn"], pr.Number, pr.Event)
	execID, err := w.exec.Start(ctx, executor.Start{Pipeline: sa.Pipeline, Version: sa.Version, Generation: sa.Generation,
		Trigger: model.ExecutionTrigger{TriggerType: &kind, TriggerDetail: &detail},
		SourceRevisions: []model.SourceRevisionOverride{{ActionName: sa.Action.Name,
			RevisionType: new(model.SourceRevisionTypeCommitId), RevisionValue: new(pr.HeadCommit)}},
		ClientToken: "pull-request-" + hex.EncodeToString(sum[:16])})
	if errors.Is(err, store.ErrNotFound) {
		return nil // the pipeline was deleted since
	}
	if err != nil {
		return fmt.Errorf("start an execution of %s for pull request #%d of %s: %w", sa.Pipeline, pr.Number, e.Repository, err)
	}
	w.logger.Info("pull request event", "pipeline", sa.Pipeline, "action", *sa.Action.Name, "repository", e.Repository,
		"pull_request", pr.Number, "event", pr.Event, "revision", pr.HeadCommit, "execution", execID)
	return nil
}

// eventRepository is the repository of an event, as the source actions that match it name it:
// what the event changed in it, read once, and the fetch that brings the event's commits into
// the mirror of a remote repository.
type eventRepository struct {
	files changedFiles
	fetch func()
}

// eventRepository reads the repository name of an event. A remote repository (--git-remote) is
// read from its mirror, which the pushed branch, or the pull request's head branch, is fetched
// into first, so that the files are known and the source action finds the commit; a repository
// Sluice hosts has every pushed commit already. The files a push changed fall back to those its
// payload lists; those of a pull request are unknown then, and file path filters let it through.
func (w *Watcher) eventRepository(ctx context.Context, name string, e GitEvent) *eventRepository {
	branch, before, after := "", "", ""
	switch {
	case e.Push != nil:
		branch, before, after = e.Push.Branch, e.Push.Before, e.Push.After
	case e.PullRequest != nil:
		pr := e.PullRequest
		before, after = pr.BaseCommit, pr.HeadCommit
		if pr.HeadRepository == "" || strings.EqualFold(pr.HeadRepository, e.Repository) {
			branch = pr.HeadBranch
		}
	}
	fetch := sync.OnceFunc(func() {
		if branch == "" || w.remotes.Hosted(name) {
			return
		}
		rm, err := w.remotes.Resolve(name)
		if err == nil {
			_, err = w.remotes.Head(ctx, rm, branch)
		}
		if err != nil {
			w.logger.Warn("fetch the branch of a Git server's event", "repository", name, "branch", branch, "err", err)
		}
	})
	files := sync.OnceValues(func() ([]string, bool) {
		fetch()
		rm, err := w.remotes.Resolve(name)
		var files []string
		if err == nil {
			files, err = w.remotes.ChangedFiles(ctx, rm, before, after)
		}
		if err == nil {
			return files, true
		}
		if e.Push != nil && e.Push.FilesListed {
			w.logger.Info("read the files a push changed from its payload", "repository", name, "commit", after, "err", err)
			return e.Push.Files, true
		}
		w.logger.Warn("read the files an event changed; its file path filters let it through", "repository", name, "commit", after, "err", err)
		return nil, false
	})
	return &eventRepository{files: files, fetch: fetch}
}
