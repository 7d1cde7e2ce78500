package sources

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/githost"
	"github.com/sluicehq/sluice/internal/store"
)

// memEvents keeps source events in memory and, as the stores do, refuses a second event with
// an id.
type memEvents struct {
	mu     sync.Mutex
	events []store.SourceEvent
}

func (m *memEvents) AddSourceEvent(_ context.Context, e store.SourceEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, old := range m.events {
		if old.ID == e.ID {
			return errors.New("duplicate key")
		}
	}
	m.events = append(m.events, e)
	return nil
}

func (m *memEvents) SourceEvents(context.Context, int) ([]store.SourceEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]store.SourceEvent(nil), m.events...), nil
}

func (m *memEvents) DeleteSourceEvent(context.Context, string) error { return nil }

func (m *memEvents) SourceTags(context.Context, string) ([]byte, bool, error) { return nil, false, nil }

func (m *memEvents) SetSourceTags(context.Context, string, []byte) error { return nil }

// TestPushedWithAnID: a push with an ID (a repository replicas share) is recorded under it; the
// same push reported again while its event waits is recorded again, under an id of its own,
// rather than refused (which would refuse the client's push); a push without an ID is recorded
// under a new version 7 id.
func TestPushedWithAnID(t *testing.T) {
	events := &memEvents{}
	w := New(nil, events, nil, nil, "123456789012", "us-east-1", slog.New(slog.DiscardHandler))
	ctx := context.Background()
	given := uuid.Must(uuid.NewV7()).String()
	p := githost.Push{Repository: "app", Branch: "main", Commit: "0123456789abcdef0123456789abcdef01234567", ID: given}
	for range 2 {
		if err := w.Pushed(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	p.ID = ""
	if err := w.Pushed(ctx, p); err != nil {
		t.Fatal(err)
	}
	recorded, _ := events.SourceEvents(ctx, 10)
	if len(recorded) != 3 {
		t.Fatalf("recorded %d events, want 3", len(recorded))
	}
	if recorded[0].ID != given || recorded[1].ID == given || recorded[2].ID == given || recorded[1].ID == recorded[2].ID {
		t.Errorf("the events have the ids %q, %q, %q; want %q first, then two others", recorded[0].ID, recorded[1].ID, recorded[2].ID, given)
	}
	for i, rec := range recorded {
		if id, err := uuid.Parse(rec.ID); err != nil || id.Version() != 7 {
			t.Errorf("event %d has the id %q, not a version 7 UUID", i, rec.ID)
		}
		var e Event
		if err := json.Unmarshal(rec.Doc, &e); err != nil || e.Push == nil || e.Push.Commit != p.Commit || e.Push.Branch != "main" {
			t.Errorf("event %d: %s (%v)", i, rec.Doc, err)
		}
	}
}
