// Package store defines where Sluice keeps what users declare: pipelines and their versions,
// custom action types, webhooks and tags. One interface, two implementations (store/sqlite, the
// embedded default, and store/postgres), one shared test suite (store/storetest). Every method is
// one transaction: it stores all it was asked to or nothing.
//
// Documents (pipeline declarations, action type declarations, webhook definitions) travel as the
// JSON the API returns; the store indexes what it must query and keeps the rest opaque.
package store

import (
	"context"
	"errors"
	"time"
)

var (
	ErrNotFound        = errors.New("not found")
	ErrVersionNotFound = errors.New("version not found")
	ErrExists          = errors.New("already exists")
	// ErrConflict: the record changed since it was read; read it again and retry.
	ErrConflict      = errors.New("concurrent modification")
	ErrLimitExceeded = errors.New("limit exceeded")
	ErrTooManyTags   = errors.New("too many tags")
	// ErrOtherAccount: the store holds another account's records.
	ErrOtherAccount = errors.New("the store belongs to another account")
)

// Pipeline is one version of a pipeline.
type Pipeline struct {
	Name    string
	Version int
	// Generation tells apart pipelines that had the same name: it is set when a pipeline is
	// created and kept by all its versions, so that name, version and generation name one
	// declaration for ever.
	Generation    string
	PipelineType  string
	ExecutionMode string
	// Declaration is the JSON of the pipeline's model.PipelineDeclaration.
	Declaration       []byte
	Created           time.Time
	Updated           time.Time
	PollingDisabledAt *time.Time
}

// ActionType is a custom action type. A deleted one stays as a tombstone so that its identity
// cannot be used again by another declaration, as in AWS; the same declaration restores it.
type ActionType struct {
	// ID is "Category/Owner/Provider/Version".
	ID    string
	Owner string
	// Declaration is the JSON of its model.ActionTypeDeclaration.
	Declaration []byte
	Created     time.Time
}

// Webhook is a webhook definition and its state.
type Webhook struct {
	Name string
	// Definition is the JSON of its model.WebhookDefinition.
	Definition    []byte
	URL           string
	Registered    bool
	LastTriggered *time.Time
	ErrorMessage  string
	ErrorCode     string
}

// Tag is a key and value on a resource.
type Tag struct {
	Key   string
	Value string
}

// Page asks for up to Limit records after the one whose key is After ("" for the first page).
type Page struct {
	After string
	Limit int
}

// Store keeps Sluice's declarations.
type Store interface {
	// CreatePipeline stores version 1 of a pipeline with its tags under resourceARN and, unless
	// first is nil, the first step of its executions, in one transaction: a pipeline is never
	// stored without the first execution its creation started. It fails with ErrExists if the
	// name is taken and ErrLimitExceeded if maxPipelines exist already.
	CreatePipeline(ctx context.Context, p Pipeline, resourceARN string, tags []Tag, maxPipelines int, first StepFunc) error
	// GetPipeline returns version (0: the latest) of a pipeline: ErrNotFound, ErrVersionNotFound.
	GetPipeline(ctx context.Context, name string, version int) (Pipeline, error)
	// UpdatePipeline stores p as the pipeline's next version: p.Version must be the current
	// version plus one, else ErrConflict. Earlier versions stay readable.
	UpdatePipeline(ctx context.Context, p Pipeline) error
	// DeletePipeline removes a pipeline, every version, its tags, and its executions with their
	// history and jobs; a missing one is no error.
	DeletePipeline(ctx context.Context, name, resourceARN string) error
	// ListPipelines returns the latest versions, by name, without declarations.
	ListPipelines(ctx context.Context, page Page) ([]Pipeline, error)

	// CreateActionType stores a new custom action type with its tags, or restores a deleted one
	// whose declaration is exactly t's: ErrExists if the identity is in use, or was used by a
	// declaration that differs; ErrLimitExceeded if maxTypes live ones exist.
	CreateActionType(ctx context.Context, t ActionType, resourceARN string, tags []Tag, maxTypes int) error
	// GetActionType returns a live custom action type or ErrNotFound.
	GetActionType(ctx context.Context, id string) (ActionType, error)
	// UpdateActionType replaces a live action type's declaration, or ErrNotFound.
	UpdateActionType(ctx context.Context, t ActionType) error
	// DeleteActionType turns a live action type into a tombstone and drops its tags.
	DeleteActionType(ctx context.Context, id, resourceARN string) error
	// ListActionTypes returns live custom action types by ID; owner "" means any.
	ListActionTypes(ctx context.Context, owner string, page Page) ([]ActionType, error)

	// PutWebhook creates or replaces a webhook; tags are added to the webhook's. It fails with
	// ErrLimitExceeded when creating one more than maxWebhooks.
	PutWebhook(ctx context.Context, w Webhook, resourceARN string, tags []Tag, maxWebhooks, maxTags int) error
	GetWebhook(ctx context.Context, name string) (Webhook, error)
	// SetWebhookRegistered records whether the webhook is registered with its third party.
	SetWebhookRegistered(ctx context.Context, name string, registered bool) error
	// SetWebhookTriggered records when a delivery to the webhook last started its pipeline:
	// ErrNotFound if there is no such webhook.
	SetWebhookTriggered(ctx context.Context, name string, at time.Time) error
	DeleteWebhook(ctx context.Context, name, resourceARN string) error
	ListWebhooks(ctx context.Context, page Page) ([]Webhook, error)

	// ListTags returns a resource's tags by key.
	ListTags(ctx context.Context, resourceARN string, page Page) ([]Tag, error)
	// TagResource adds or replaces tags: ErrTooManyTags if the resource would have more than maxTags.
	TagResource(ctx context.Context, resourceARN string, tags []Tag, maxTags int) error
	UntagResource(ctx context.Context, resourceARN string, keys []string) error

	Runtime
	Leases

	// Claim records that the store holds the records of account, the first time, and after
	// that checks that it does: ErrOtherAccount if it holds another's. Each account has a store of
	// its own; one that existed before accounts belongs to the account that claims it first.
	Claim(ctx context.Context, account string) error

	// Secret returns the named random secret of this installation, creating it on first use, so
	// that every replica sharing the store signs and checks tokens alike.
	Secret(ctx context.Context, name string) ([]byte, error)

	// Ready reports whether the store can take writes: it commits a write that leaves nothing
	// behind, and fails if that write fails or has not committed when ctx is done.
	Ready(ctx context.Context) error

	Close() error
}
