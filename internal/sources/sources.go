// Package sources starts executions when a pipeline's source changes: a push to a repository
// Sluice hosts starts the pipelines whose Git source watches the branch, at once; and source
// actions that poll (PollForSourceChanges, or DetectChanges for connections) are checked on an
// interval, their S3 object version or branch tip compared with the revision the action last ran.
package sources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"

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
}

// New returns a watcher that records source events in events.
func New(exec *executor.Executor, events Events, arts artifacts.Store, remotes *gitrepo.Remotes, accountID, region string, logger *slog.Logger) *Watcher {
	return &Watcher{exec: exec, arts: arts, remotes: remotes, accountID: accountID, region: region, logger: logger,
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

// Pushed records a push to a hosted repository, for the executions it calls for to start.
func (w *Watcher) Pushed(ctx context.Context, p githost.Push) error {
	return w.Record(ctx, Event{Push: &PushEvent{Repository: p.Repository, Branch: p.Branch, Commit: p.Commit}})
}

// pushed starts the executions a push to a hosted repository calls for.
func (w *Watcher) pushed(ctx context.Context, p PushEvent) error {
	actions, err := w.exec.SourceActions(ctx)
	if err != nil {
		return fmt.Errorf("find the pipelines a push to %s starts: %w", p.Repository, err)
	}
	for _, sa := range actions {
		src, ok := runners.WatchedRepository(*sa.Action.ActionTypeId.Provider, sa.Action.Configuration)
		if !ok || src.Repository != p.Repository || !w.remotes.Hosted(src.Repository) || !watchesBranch(sa, src, p.Branch) {
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

// watchesBranch reports whether a push to branch concerns a source action: the branch it names,
// or, where a V2 pipeline declares push triggers for the action, a branch they include.
func watchesBranch(sa executor.SourceAction, src runners.GitSource, branch string) bool {
	filtered := false
	for _, t := range sa.Declaration.Triggers {
		gc := t.GitConfiguration
		if gc == nil || gc.SourceActionName == nil || *gc.SourceActionName != *sa.Action.Name {
			continue
		}
		for _, push := range gc.Push {
			if push.Branches == nil {
				continue
			}
			filtered = true
			if matchAny(push.Branches.Includes, branch) && !matchAny(push.Branches.Excludes, branch) {
				return true
			}
		}
	}
	if filtered {
		return false
	}
	if *sa.Action.ActionTypeId.Provider == "CodeStarSourceConnection" && !polls(sa.Action) {
		return false // DetectChanges false: a connection source starts only by hand
	}
	return src.Branch == branch
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := doublestar.Match(p, name); ok {
			return true
		}
	}
	return false
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
