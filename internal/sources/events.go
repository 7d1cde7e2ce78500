package sources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/runners"
	"github.com/sluicehq/sluice/internal/store"
)

// Event is a change to a source that may start pipelines: a push to a hosted repository, an
// object version written through the built-in S3 endpoint, a webhook delivery, or a push or pull
// request event that a Git server delivered to a connection's webhook endpoint. It is recorded
// in the store before the change is acknowledged and handled from the record, so that a change
// acknowledged just before a crash still starts its executions; handling one again starts
// nothing twice.
type Event struct {
	Push    *PushEvent    `json:"push,omitempty"`
	Upload  *UploadEvent  `json:"upload,omitempty"`
	Webhook *WebhookEvent `json:"webhook,omitempty"`
	Git     *GitEvent     `json:"git,omitempty"`
}

// PushEvent is a branch of a hosted repository that a push moved to a new commit, from the
// commit Before ("" for a new branch); or, with Tag set instead of Branch, a tag that a push
// created or moved, and the commit it tags.
type PushEvent struct {
	Repository string `json:"repository"`
	Branch     string `json:"branch"`
	Commit     string `json:"commit"`
	Before     string `json:"before,omitempty"`
	Tag        string `json:"tag,omitempty"`
}

// UploadEvent is an object version written through the built-in S3 endpoint.
type UploadEvent struct {
	Bucket  string `json:"bucket"`
	Key     string `json:"key"`
	Version string `json:"version"`
}

// WebhookEvent is a webhook delivery that passed its authentication and filters: it starts the
// webhook's target pipeline.
type WebhookEvent struct {
	Name     string `json:"name"`
	ARN      string `json:"arn"`
	Pipeline string `json:"pipeline"`
	Action   string `json:"action"`
}

// Events is where source events wait until they are handled, and where the tags polling
// sources saw are kept.
type Events interface {
	AddSourceEvent(ctx context.Context, e store.SourceEvent) error
	SourceEvents(ctx context.Context, limit int) ([]store.SourceEvent, error)
	DeleteSourceEvent(ctx context.Context, id string) error
	SourceTags(ctx context.Context, source string) ([]byte, bool, error)
	SetSourceTags(ctx context.Context, source string, doc []byte) error
}

// eventBatch is how many recorded events one pass handles.
const eventBatch = 100

// retryEvents is how often events that could not be handled are tried again.
const retryEvents = time.Second

// giveUpAfter is how long an event that keeps failing is tried before it is dropped, so that it
// holds up the events recorded after it no longer.
const giveUpAfter = 10 * time.Minute

// inbox wakes the loop that handles recorded events.
type inbox struct {
	events Events
	wake   chan struct{}
	// mu serializes passes over the recorded events.
	mu sync.Mutex
	// failing holds when each event that failed was first tried, by id.
	failing map[string]time.Time
}

// Record stores a source event and has it handled; once it returns, the event will start the
// executions it calls for even if the server dies now.
func (w *Watcher) Record(ctx context.Context, e Event) error {
	return w.record(ctx, "", e)
}

// record records e as Record does, under the id id if it is set. An event with that id may be
// recorded already (a change reported twice, see Pushed), and the store refuses a second one:
// the event is then recorded again under an id of its own, since handling a change twice
// starts nothing twice.
func (w *Watcher) record(ctx context.Context, id string, e Event) error {
	doc, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode source event: %w", err)
	}
	if id != "" {
		err := w.inbox.events.AddSourceEvent(ctx, store.SourceEvent{ID: id, Doc: doc, Created: time.Now()})
		if err == nil {
			w.wake()
			return nil
		}
		w.logger.Info("record a source event under its id, perhaps recorded already; recording it under a new one", "event", id, "err", err)
	}
	// A version 7 id grows with time, also within a millisecond: of events recorded in one
	// millisecond, the first recorded is handled first.
	newID, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("make a source event id: %w", err)
	}
	if err := w.inbox.events.AddSourceEvent(ctx, store.SourceEvent{ID: newID.String(), Doc: doc, Created: time.Now()}); err != nil {
		return err
	}
	w.wake()
	return nil
}

// wake has the recorded events handled.
func (w *Watcher) wake() {
	select {
	case w.inbox.wake <- struct{}{}:
	default:
	}
}

// Deliver handles recorded source events until ctx ends: at once when one is recorded here, and
// every second for those left over (recorded before a crash, or failed to start).
func (w *Watcher) Deliver(ctx context.Context) {
	if err := w.reconcile(ctx); err != nil && ctx.Err() == nil {
		w.logger.Error("look for pushes a crash left unrecorded", "err", err)
	}
	ticker := time.NewTicker(retryEvents)
	defer ticker.Stop()
	for {
		w.handleRecorded(ctx)
		select {
		case <-ctx.Done():
			return
		case <-w.inbox.wake:
		case <-ticker.C:
		}
	}
}

// handleRecorded handles the recorded events, oldest first, removing each once handled.
func (w *Watcher) handleRecorded(ctx context.Context) {
	w.inbox.mu.Lock()
	defer w.inbox.mu.Unlock()
	for ctx.Err() == nil {
		recorded, err := w.inbox.events.SourceEvents(ctx, eventBatch)
		if err != nil {
			w.logger.Error("read recorded source events", "err", err)
			return
		}
		for _, rec := range recorded {
			var e Event
			if err := json.Unmarshal(rec.Doc, &e); err != nil {
				w.logger.Error("drop a source event that cannot be read", "event", rec.ID, "err", err)
			} else if err := w.handle(ctx, rec.ID, e); err != nil {
				first, seen := w.inbox.failing[rec.ID]
				if !seen {
					first = time.Now()
					w.inbox.failing[rec.ID] = first
				}
				if time.Since(first) < giveUpAfter {
					// Left for the next pass: a later event may not overtake it (an older
					// revision would start after a newer one).
					w.logger.Warn("handle a source event", "event", rec.ID, "err", err)
					return
				}
				w.logger.Error("drop a source event that failed for too long", "event", rec.ID, "since", first, "err", err)
			}
			delete(w.inbox.failing, rec.ID)
			if err := w.inbox.events.DeleteSourceEvent(ctx, rec.ID); err != nil {
				w.logger.Error("remove a handled source event", "event", rec.ID, "err", err)
				return
			}
		}
		if len(recorded) < eventBatch {
			return
		}
	}
}

// handle starts what an event calls for.
func (w *Watcher) handle(ctx context.Context, id string, e Event) error {
	switch {
	case e.Push != nil:
		return w.pushed(ctx, *e.Push)
	case e.Upload != nil:
		return w.uploaded(ctx, *e.Upload)
	case e.Webhook != nil:
		return w.delivered(ctx, id, *e.Webhook)
	case e.Git != nil:
		return w.gitEvent(ctx, id, *e.Git)
	}
	return nil
}

// uploaded starts the pipelines whose S3 source watches an uploaded object, at its version: as
// EventBridge would (trigger CloudWatchEvent) when the source does not poll, as its poll would
// otherwise.
func (w *Watcher) uploaded(ctx context.Context, u UploadEvent) error {
	actions, err := w.exec.SourceActions(ctx)
	if err != nil {
		return err
	}
	for _, sa := range actions {
		a := sa.Action
		if *a.ActionTypeId.Provider != "S3" || a.Configuration["S3Bucket"] != u.Bucket || a.Configuration["S3ObjectKey"] != u.Key {
			continue
		}
		trigger := model.ExecutionTrigger{TriggerType: new(model.TriggerTypePollForSourceChanges), TriggerDetail: a.Name}
		if !polls(a) {
			trigger = model.ExecutionTrigger{TriggerType: new(model.TriggerTypeCloudWatchEvent),
				TriggerDetail: new(fmt.Sprintf("arn:aws:events:%s:%s:rule/codepipeline-%s-%s", w.region, w.accountID, sa.Pipeline, *a.Name))}
		}
		if err := w.start(ctx, sa, u.Version, trigger); err != nil {
			return err
		}
	}
	return nil
}

// delivered starts a webhook's target pipeline; its target source action fetches its branch's
// head. The event's id makes the start idempotent.
func (w *Watcher) delivered(ctx context.Context, id string, d WebhookEvent) error {
	actions, err := w.exec.SourceActions(ctx)
	if err != nil {
		return err
	}
	for _, sa := range actions {
		if sa.Pipeline != d.Pipeline || *sa.Action.Name != d.Action {
			continue
		}
		execID, err := w.exec.Start(ctx, executor.Start{Pipeline: sa.Pipeline, Version: sa.Version, Generation: sa.Generation,
			Trigger: model.ExecutionTrigger{TriggerType: new(model.TriggerTypeWebhook), TriggerDetail: new(d.ARN)}, ClientToken: "webhook-" + id})
		if errors.Is(err, store.ErrNotFound) {
			return nil // the pipeline was deleted since
		}
		if err != nil {
			return err
		}
		w.logger.Info("webhook delivered", "webhook", d.Name, "pipeline", sa.Pipeline, "execution", execID)
		return nil
	}
	w.logger.Warn("webhook delivery for a pipeline or action that no longer exists", "webhook", d.Name, "pipeline", d.Pipeline, "action", d.Action)
	return nil
}

// watchedObjects caches which S3 objects some pipeline's S3 source watches, so that the uploads
// nobody watches — job artifacts, mostly — cost no store write.
type watchedObjects struct {
	mu      sync.Mutex
	objects map[[2]string]bool
	read    time.Time
}

// watchedFor is how long the cache of watched objects is trusted without being told of changes
// (by Changed), for changes made by another server on the same store.
const watchedFor = 5 * time.Second

// Changed tells the watcher that pipelines were created, updated or deleted.
func (w *Watcher) Changed() {
	w.watched.mu.Lock()
	w.watched.objects = nil
	w.watched.mu.Unlock()
}

// Uploaded records an object version written through the built-in S3 endpoint, if a pipeline's S3
// source watches the object.
func (w *Watcher) Uploaded(ctx context.Context, bucket, key, version string) error {
	watched, err := w.watches(ctx, bucket, key)
	if err != nil || !watched {
		return err
	}
	return w.Record(ctx, Event{Upload: &UploadEvent{Bucket: bucket, Key: key, Version: version}})
}

func (w *Watcher) watches(ctx context.Context, bucket, key string) (bool, error) {
	w.watched.mu.Lock()
	defer w.watched.mu.Unlock()
	if w.watched.objects == nil || time.Since(w.watched.read) > watchedFor {
		actions, err := w.exec.SourceActions(ctx)
		if err != nil {
			return false, fmt.Errorf("find the objects S3 sources watch: %w", err)
		}
		objects := map[[2]string]bool{}
		for _, sa := range actions {
			if *sa.Action.ActionTypeId.Provider == "S3" {
				objects[[2]string{sa.Action.Configuration["S3Bucket"], sa.Action.Configuration["S3ObjectKey"]}] = true
			}
		}
		w.watched.objects, w.watched.read = objects, time.Now()
	}
	return w.watched.objects[[2]string{bucket, key}], nil
}

// reconcile records, as pushes, the moves of hosted branches that no event recorded: git moves a
// branch before the push is recorded, so a server that died in between would otherwise never
// start what the push called for. It compares the branch each source of a hosted repository
// watches, and does not poll, with the revision that source last ran; handling the push again
// where it was recorded after all starts nothing twice.
func (w *Watcher) reconcile(ctx context.Context) error {
	actions, err := w.exec.SourceActions(ctx)
	if err != nil {
		return err
	}
	for _, sa := range actions {
		src, ok := runners.WatchedRepository(*sa.Action.ActionTypeId.Provider, sa.Action.Configuration)
		if !ok || polls(sa.Action) || !w.remotes.Hosted(src.Repository) {
			continue
		}
		current, err := w.exec.CurrentRevision(ctx, sa.Pipeline, sa.Stage, *sa.Action.Name)
		if err != nil {
			return err
		}
		if current == "" {
			continue // never ran: nothing to tell a change from
		}
		rm, err := w.remotes.Resolve(src.Repository)
		if err != nil {
			continue
		}
		head, err := w.remotes.Head(ctx, rm, src.Branch)
		if err != nil || head.ID == current {
			continue
		}
		w.logger.Info("a hosted branch moved without a recorded push", "repository", src.Repository, "branch", src.Branch, "commit", head.ID)
		if err := w.Record(ctx, Event{Push: &PushEvent{Repository: src.Repository, Branch: src.Branch, Before: current, Commit: head.ID}}); err != nil {
			return err
		}
	}
	return nil
}
