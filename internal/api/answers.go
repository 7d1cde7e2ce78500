package api

import (
	"sync"

	"github.com/sluicehq/sluice/internal/model"
)

// answerCacheSize bounds the declarations an answerCache keeps.
const answerCacheSize = 1024

// answerCache keeps declarations as GetPipeline answers them — decoded, secrets masked — by the
// JSON they were stored as. Decoding is most of GetPipeline's work, and a stored version never
// changes; keyed by content, an entry cannot go stale, not even when a pipeline is deleted and
// created again under the same name. Only declarations whose actions are all of types from the
// catalog are kept, since masking a custom type's secrets depends on that type as it is stored.
// Answers are shared between requests and must not be modified.
type answerCache struct {
	mu      sync.RWMutex
	entries map[string]*model.PipelineDeclaration
}

func (c *answerCache) get(stored []byte) *model.PipelineDeclaration {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.entries[string(stored)]
}

func (c *answerCache) put(stored []byte, decl *model.PipelineDeclaration) {
	for _, stage := range decl.Stages {
		for _, a := range stage.Actions {
			if a.ActionTypeId == nil || a.ActionTypeId.Owner == nil || *a.ActionTypeId.Owner == model.ActionOwnerCustom {
				return
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*model.PipelineDeclaration{}
	}
	if len(c.entries) >= answerCacheSize {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[string(stored)] = decl
}
