package notify

import (
	"context"
	"sync"
)

// InProcess is a Notifier whose messages stay in this process: for a server on SQLite, which no
// other process writes.
type InProcess struct {
	hub hub
}

var _ Notifier = (*InProcess)(nil)

// NewInProcess returns an in-process notifier whose listeners each buffer up to buffer messages
// (DefaultBuffer if 0).
func NewInProcess(buffer int) *InProcess {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &InProcess{hub: hub{buffer: buffer}}
}

// Notify sends payload to the listeners of topic before it returns.
func (n *InProcess) Notify(ctx context.Context, topic, payload string) error {
	if err := checkPayload(topic, payload); err != nil {
		return err
	}
	n.hub.mu.Lock()
	defer n.hub.mu.Unlock()
	if n.hub.closed {
		return ErrClosed
	}
	n.hub.deliver(topic, payload)
	return nil
}

// Listen listens to topic; the channel holds Resync at once.
func (n *InProcess) Listen(topic string) (<-chan string, func()) {
	n.hub.mu.Lock()
	defer n.hub.mu.Unlock()
	l, _ := n.hub.add(topic)
	if t := n.hub.topics[topic]; t != nil {
		n.hub.setLive(t)
	}
	var once sync.Once
	return l.ch, func() {
		once.Do(func() {
			n.hub.mu.Lock()
			defer n.hub.mu.Unlock()
			n.hub.remove(topic, l)
		})
	}
}

// Close stops delivering messages: Notify then fails with ErrClosed.
func (n *InProcess) Close() error {
	n.hub.mu.Lock()
	defer n.hub.mu.Unlock()
	n.hub.close()
	return nil
}
