package sqlstore

import (
	"sync"

	"github.com/sluicehq/sluice/internal/store"
)

// latestCache keeps the latest version of pipelines as read, for a database only this process
// writes (SQLite): every write goes through the committer, which drops a pipeline's entry once
// the write that changed it is committed and before the writer hears so. A read that began
// before such a drop may not fill the entry in with what it read: epoch tells.
type latestCache struct {
	mu      sync.RWMutex
	epoch   uint64
	entries map[string]store.Pipeline
}

func newLatestCache() *latestCache {
	return &latestCache{entries: map[string]store.Pipeline{}}
}

// get returns the cached latest version of name, or the epoch to pass to put after reading it.
func (c *latestCache) get(name string) (p store.Pipeline, ok bool, epoch uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	p, ok = c.entries[name]
	return p, ok, c.epoch
}

// put caches p unless a write was committed since epoch.
func (c *latestCache) put(p store.Pipeline, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if len(c.entries) >= latestCacheSize {
		for name := range c.entries {
			delete(c.entries, name)
			break
		}
	}
	c.entries[p.Name] = p
}

// drop forgets what is cached of name.
func (c *latestCache) drop(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	delete(c.entries, name)
}

// latestCacheSize bounds the pipelines a latestCache keeps.
const latestCacheSize = 10000
