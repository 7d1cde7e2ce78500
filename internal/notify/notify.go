// Package notify carries short messages on named topics to whoever listens: between the parts
// of one server (InProcess), or between every replica of Sluice on one PostgreSQL database
// (Postgres, through LISTEN/NOTIFY). A message only says that something changed; what changed
// is read from the store, so a listener that may have missed messages is told so (a Resync
// message) and looks everywhere instead.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
)

// Notifier carries short messages on named topics to every listener of the topic.
type Notifier interface {
	// Notify sends payload to the listeners of topic: best effort, and only after the change
	// it announces is committed. The payload is at most MaxPayload bytes; an empty payload is
	// Resync: "something changed on this topic, look everywhere".
	Notify(ctx context.Context, topic, payload string) error
	// Listen returns the messages on topic and a function that stops listening. The first
	// message is Resync, sent once the listener is listening: a change committed after that
	// and notified reaches it, or it receives Resync again. The channel is buffered and
	// never blocks the notifier: a listener whose buffer is full loses what it holds for a
	// single Resync. The channel is never closed; after stop, it receives nothing more.
	Listen(topic string) (msgs <-chan string, stop func())
}

// Resync is the message that tells a listener it may have missed messages: a new listener, one
// whose buffer overflowed, one whose connection to the database was lost and made again. It
// should look at everything the topic is about, as at start.
const Resync = ""

// MaxPayload is the size limit of a payload, in bytes: PostgreSQL's (less than 8000 bytes).
const MaxPayload = 7999

// DefaultBuffer is how many messages a listener's channel holds unless told otherwise.
const DefaultBuffer = 64

// ErrClosed is returned by Notify once the notifier is closed.
var ErrClosed = errors.New("notify: the notifier is closed")

func checkPayload(topic, payload string) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("notify: payload on %q is %d bytes, more than %d", topic, len(payload), MaxPayload)
	}
	return nil
}

// Scoped returns a view of n whose topics are n's topics prefixed by namespace: listeners of
// one namespace hear only what is notified in it. Sluice scopes a notifier shared by a
// server's tenants with each tenant's PostgreSQL schema (or account).
func Scoped(n Notifier, namespace string) Notifier {
	// Escaped, the namespace holds no "/": distinct namespace and topic pairs give distinct
	// topics.
	return scoped{n: n, prefix: url.PathEscape(namespace) + "/"}
}

type scoped struct {
	n      Notifier
	prefix string
}

func (s scoped) Notify(ctx context.Context, topic, payload string) error {
	return s.n.Notify(ctx, s.prefix+topic, payload)
}

func (s scoped) Listen(topic string) (<-chan string, func()) {
	return s.n.Listen(s.prefix + topic)
}

// hub holds the listeners of a notifier, by key (a topic or a PostgreSQL channel).
type hub struct {
	mu     sync.Mutex
	buffer int
	closed bool
	topics map[string]*topic
}

type topic struct {
	listeners map[*listener]struct{}
	// live is whether messages on the topic reach this process (once a LISTEN is done): a
	// listener added while it is not live receives Resync when it becomes live.
	live bool
}

type listener struct {
	ch chan string
}

// send hands msg to l without blocking; sends are serialized by hub.mu. Into a full buffer, it
// puts a single Resync instead of what the buffer held: the listener, reading the Resync after
// all the dropped messages were sent, looks everywhere and so misses none.
func (l *listener) send(msg string) {
	select {
	case l.ch <- msg:
		return
	default:
	}
	for drained := false; !drained; {
		select {
		case <-l.ch:
		default:
			drained = true
		}
	}
	select {
	case l.ch <- Resync:
	default: // unreachable: only this sender fills the buffer, which it just emptied
	}
}

// add adds a listener of key; it receives Resync at once if the topic is live. It reports
// whether the topic is new.
func (h *hub) add(key string) (l *listener, isNew bool) {
	l = &listener{ch: make(chan string, max(h.buffer, 1))}
	if h.closed {
		return l, false
	}
	t := h.topics[key]
	if t == nil {
		if h.topics == nil {
			h.topics = map[string]*topic{}
		}
		t = &topic{listeners: map[*listener]struct{}{}}
		h.topics[key] = t
		isNew = true
	}
	t.listeners[l] = struct{}{}
	if t.live {
		l.send(Resync)
	}
	return l, isNew
}

// remove removes a listener of key and reports whether it was the topic's last.
func (h *hub) remove(key string, l *listener) (last bool) {
	t := h.topics[key]
	if t == nil {
		return false
	}
	if _, ok := t.listeners[l]; !ok {
		return false
	}
	delete(t.listeners, l)
	if len(t.listeners) > 0 {
		return false
	}
	delete(h.topics, key)
	return true
}

// deliver sends msg to the listeners of key.
func (h *hub) deliver(key, msg string) {
	if t := h.topics[key]; t != nil {
		for l := range t.listeners {
			l.send(msg)
		}
	}
}

// setLive marks a topic live and sends Resync to its listeners, unless it already was.
func (h *hub) setLive(t *topic) {
	if t.live {
		return
	}
	t.live = true
	for l := range t.listeners {
		l.send(Resync)
	}
}

// close drops every listener; their channels stay open, and receive nothing more.
func (h *hub) close() {
	h.closed = true
	h.topics = nil
}
