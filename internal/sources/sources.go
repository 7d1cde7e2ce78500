// Package sources starts executions when a pipeline's source changes: a push to a repository
// Sluice hosts starts the pipelines whose Git source watches the branch (or, through a V2
// pipeline's trigger filters, the branch, files or tag pushed), at once; and source
// actions that poll (PollForSourceChanges, or DetectChanges for connections) are checked on an
// interval, their S3 object version or branch tip compared with the revision the action last ran.
package sources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/artifacts"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/githost"
	"github.com/sluicehq/sluice/internal/gitrepo"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/runners"
	"github.com/sluicehq/sluice/internal/store"
)

// Watcher starts executions on source changes.
type Watcher struct {
	exec      *executor.Executor
	arts      artifacts.Store
	remotes   *gitrepo.Remotes
	region    string
	accountID string
	logger    *slog.Logger
	inbox     inbox
	watched   watchedObjects
	// kept is where the tags each polling source of a remote repository last saw are kept.
	kept Events
}

// New returns a watcher that records source events in events.
func New(exec *executor.Executor, events Events, arts artifacts.Store, remotes *gitrepo.Remotes, accountID, region string, logger *slog.Logger) *Watcher {
	return &Watcher{exec: exec, arts: arts, remotes: remotes, accountID: accountID, region: region, logger: logger, kept: events,
		inbox: inbox{events: events, wake: make(chan struct{}, 1), failing: map[string]time.Time{}}}
}

// polls reports whether a source action polls for changes: the property's default is true.
func polls(a *model.ActionDeclaration) bool {
	property := "PollForSourceChanges"
	if a.ActionTypeId.Provider != nil && *a.ActionTypeId.Provider == "CodeStarSourceConnection" {
		property = "DetectChanges"
	}
	return !strings.EqualFold(a.Configuration[property], "false")
}

// Pushed records a push to a hosted repository, for the executions it calls for to start. A
// push with an ID (into a repository that replicas share) is recorded under that id. It may be
// reported again (its replica died before it could tell it had), after it was handled or while
// it waits to be: handling it again starts nothing twice, since a source action starts one
// execution per revision (executor.PutRevision: its current revision, and those it was given
// lately, start nothing).
func (w *Watcher) Pushed(ctx context.Context, p githost.Push) error {
	return w.record(ctx, p.ID, Event{Push: &PushEvent{Repository: p.Repository, Branch: p.Branch, Commit: p.Commit, Before: p.Before, Tag: p.Tag}})
}

// pushed starts the executions a push to a hosted repository calls for.
func (w *Watcher) pushed(ctx context.Context, p PushEvent) error {
	actions, err := w.exec.SourceActions(ctx)
	if err != nil {
		return fmt.Errorf("find the pipelines a push to %s starts: %w", p.Repository, err)
	}
	files := w.changedFiles(ctx, p)
	for _, sa := range actions {
		src, ok := runners.WatchedRepository(*sa.Action.ActionTypeId.Provider, sa.Action.Configuration)
		if !ok || src.Repository != p.Repository || !w.remotes.Hosted(src.Repository) || !pushStarts(sa, src, p.Branch, p.Tag, files) {
			continue
		}
		if err := w.start(ctx, sa, p.Commit, w.pushTrigger(sa)); err != nil {
			return err
		}
	}
	return nil
}

// pushTrigger is how AWS would name what started an execution for a push: the EventBridge rule
// of a CodeCommit source that does not poll, the connection's webhook, or the poll.
func (w *Watcher) pushTrigger(sa executor.SourceAction) model.ExecutionTrigger {
	a := sa.Action
	switch {
	case *a.ActionTypeId.Provider == "CodeStarSourceConnection":
		kind := model.TriggerTypeWebhook
		if sa.Declaration.PipelineType != nil && *sa.Declaration.PipelineType == model.PipelineTypeV2 {
			kind = model.TriggerTypeWebhookV2
		}
		return model.ExecutionTrigger{TriggerType: &kind, TriggerDetail: new(a.Configuration["ConnectionArn"])}
	case *a.ActionTypeId.Provider == "CodeCommit" && !polls(a):
		kind := model.TriggerTypeCloudWatchEvent
		arn := fmt.Sprintf("arn:aws:codecommit:%s:%s:%s", w.region, w.accountID, a.Configuration["RepositoryName"])
		return model.ExecutionTrigger{TriggerType: &kind, TriggerDetail: &arn}
	case *a.ActionTypeId.Provider == "GitHub" && !polls(a):
		kind := model.TriggerTypeWebhook
		return model.ExecutionTrigger{TriggerType: &kind, TriggerDetail: a.Name}
	}
	kind := model.TriggerTypePollForSourceChanges
	return model.ExecutionTrigger{TriggerType: &kind, TriggerDetail: a.Name}
}

// changedFiles returns what lists, once and only if asked, the files a push of a branch
// changed: between the branch's previous and new commit, or the new commit's own changes for a
// new branch. Files that cannot be read are unknown, and filters on them let the push through.
func (w *Watcher) changedFiles(ctx context.Context, p PushEvent) changedFiles {
	return sync.OnceValues(func() ([]string, bool) {
		rm, err := w.remotes.Resolve(p.Repository)
		var files []string
		if err == nil {
			files, err = w.remotes.ChangedFiles(ctx, rm, p.Before, p.Commit)
		}
		if err != nil {
			w.logger.Warn("read the files a push changed; its file path filters let it through", "repository", p.Repository, "branch", p.Branch, "commit", p.Commit, "err", err)
			return nil, false
		}
		return files, true
	})
}

// pushStarts reports whether a push of a branch or of a tag starts a source action. Where the
// action's V2 pipeline declares a trigger for it, its push filters decide (pushFilterMatches);
// otherwise a push to the branch the action names does, and a tag never.
func pushStarts(sa executor.SourceAction, src runners.GitSource, branch, tag string, files changedFiles) bool {
	if filters, declared := pushFilters(sa.Declaration.Triggers, *sa.Action.Name); declared {
		return pushMatches(filters, branch, tag, files)
	}
	if tag != "" {
		return false
	}
	if *sa.Action.ActionTypeId.Provider == "CodeStarSourceConnection" && !polls(sa.Action) {
		return false // DetectChanges false: a connection source starts only by hand
	}
	return src.Branch == branch
}

// watchesBranch reports whether a push to branch concerns a source action, whatever files it
// changes: the branch it names, or, where a V2 pipeline declares a trigger for the action, a
// branch its push filters include.
func watchesBranch(sa executor.SourceAction, src runners.GitSource, branch string) bool {
	return pushStarts(sa, src, branch, "", unknownFiles)
}

// start starts an execution of a source action's pipeline at revision, unless the action has
// seen the revision already.
// A pipeline deleted since its source action was listed starts nothing.
func (w *Watcher) start(ctx context.Context, sa executor.SourceAction, revision string, trigger model.ExecutionTrigger) error {
	rev := model.ActionRevision{RevisionId: new(revision), RevisionChangeId: new(revision), Created: model.NewTimestamp(time.Now())}
	isNew, execID, err := w.exec.PutRevision(ctx, sa.Pipeline, sa.Version, sa.Generation, sa.Stage, *sa.Action.Name, rev, trigger)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("start an execution of %s for a change of its source %s: %w", sa.Pipeline, *sa.Action.Name, err)
	}
	if isNew {
		w.logger.Info("source changed", "pipeline", sa.Pipeline, "action", *sa.Action.Name, "revision", revision, "execution", execID, "trigger", *trigger.TriggerType)
	}
	return nil
}

// Poll checks every polling source action once.
func (w *Watcher) Poll(ctx context.Context) error {
	actions, err := w.exec.SourceActions(ctx)
	if err != nil {
		return err
	}
	for _, sa := range actions {
		if !polls(sa.Action) {
			continue
		}
		if err := w.pollTags(ctx, sa); err != nil {
			w.logger.Debug("poll a source's tags", "pipeline", sa.Pipeline, "action", *sa.Action.Name, "err", err)
		}
		current, err := w.exec.CurrentRevision(ctx, sa.Pipeline, sa.Stage, *sa.Action.Name)
		if err != nil {
			return err
		}
		if current == "" {
			// The pipeline never ran this source: there is nothing to tell a change from.
			continue
		}
		head, err := w.head(ctx, sa)
		if err != nil {
			w.logger.Debug("poll a source", "pipeline", sa.Pipeline, "action", *sa.Action.Name, "err", err)
			continue
		}
		if head != "" && head != current {
			kind := model.TriggerTypePollForSourceChanges
			if err := w.start(ctx, sa, head, model.ExecutionTrigger{TriggerType: &kind, TriggerDetail: sa.Action.Name}); err != nil {
				w.logger.Error("start an execution for a polled change", "pipeline", sa.Pipeline, "action", *sa.Action.Name, "err", err)
			}
		}
	}
	return nil
}

// pollTags starts a source action of a remote repository for each tag that appeared on the
// remote, or moved, since the last poll, where the action's push filters take the tag. Tags of
// hosted repositories start pipelines as they are pushed; a Git server's push webhook does the
// same for remote ones at once. The tags seen are kept in the store, so that whichever replica
// polls next, or this one after a restart, starts what appeared meanwhile; the first poll of a
// source only learns them. A tag is started before the tags seen are kept: should the server
// die between the two, the next poll starts it again, and a revision already run starts nothing.
func (w *Watcher) pollTags(ctx context.Context, sa executor.SourceAction) error {
	filters, declared := pushFilters(sa.Declaration.Triggers, *sa.Action.Name)
	if !declared || !slices.ContainsFunc(filters, func(f model.GitPushFilter) bool { return f.Tags != nil }) {
		return nil
	}
	src, ok := runners.WatchedRepository(*sa.Action.ActionTypeId.Provider, sa.Action.Configuration)
	if !ok || w.remotes.Hosted(src.Repository) {
		return nil
	}
	rm, err := w.remotes.Resolve(src.Repository)
	if err != nil {
		return err
	}
	tags, err := w.remotes.Tags(ctx, rm, src.Branch)
	if err != nil {
		return err
	}
	key := sa.Pipeline + "/" + *sa.Action.Name // names hold no "/"
	raw, known, err := w.kept.SourceTags(ctx, key)
	if err != nil {
		return err
	}
	var seen map[string]string
	if known {
		if err := json.Unmarshal(raw, &seen); err != nil {
			return fmt.Errorf("read the tags %s of %s saw: %w", *sa.Action.Name, sa.Pipeline, err)
		}
	}
	if known && maps.Equal(seen, tags) {
		return nil
	}
	if !known {
		w.logger.Debug("learned the tags of a remote source", "pipeline", sa.Pipeline, "action", *sa.Action.Name, "tags", len(tags))
	} else {
		for _, tag := range slices.Sorted(maps.Keys(tags)) {
			if commit := tags[tag]; seen[tag] != commit && pushMatches(filters, "", tag, unknownFiles) {
				trigger := model.ExecutionTrigger{TriggerType: new(model.TriggerTypePollForSourceChanges), TriggerDetail: sa.Action.Name}
				if err := w.start(ctx, sa, commit, trigger); err != nil {
					return err
				}
			}
		}
	}
	doc, err := json.Marshal(tags)
	if err != nil {
		return err
	}
	return w.kept.SetSourceTags(ctx, key, doc)
}

// head is a source's latest revision: the object's version id or the branch's tip; none for a git
// source whose pipeline's push triggers exclude its branch.
func (w *Watcher) head(ctx context.Context, sa executor.SourceAction) (string, error) {
	a := sa.Action
	if *a.ActionTypeId.Provider == "S3" {
		info, err := w.arts.Head(ctx, a.Configuration["S3Bucket"], a.Configuration["S3ObjectKey"], "")
		return info.Version, err
	}
	src, ok := runners.WatchedRepository(*a.ActionTypeId.Provider, a.Configuration)
	if !ok || !watchesBranch(sa, src, src.Branch) {
		return "", nil
	}
	rm, err := w.remotes.Resolve(src.Repository)
	if err != nil {
		return "", err
	}
	c, err := w.remotes.Head(ctx, rm, src.Branch)
	return c.ID, err
}

// Run polls every interval until ctx ends.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := w.Poll(ctx); err != nil && ctx.Err() == nil {
				w.logger.Error("poll sources", "err", err)
			}
		}
	}
}
