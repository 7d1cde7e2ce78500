// Package api answers CodePipeline's operations: one method per operation, each receiving an input
// that the protocol layer has already decoded and validated. Operations that Sluice does not answer
// yet fall through to model.Unimplemented, which says so.
package api

import "github.com/sluicehq/sluice/internal/model"

// Config is what the operations need to know about the account they serve.
type Config struct {
	AccountID string
	Region    string
}

// Service implements model.Service.
type Service struct {
	model.Unimplemented
	cfg Config
}

var _ model.Service = (*Service)(nil)

// New returns a Service for the account and region in cfg.
func New(cfg Config) *Service {
	return &Service{cfg: cfg}
}
