package executor

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/internal/artifacts"
	"github.com/sluicehq/sluice/internal/catalog"
	"github.com/sluicehq/sluice/internal/model"
)

// A step does only store I/O inside its transaction. What it needs from elsewhere — pipeline
// declarations, custom action types, the readiness of artifact buckets — it takes from the
// executor's caches; when one lacks something, the step fails with *missing, the executor fetches
// it outside the transaction and runs the step again. Declarations and action types never
// change once written; a bucket, once ready, stays so.

// maxFetches bounds how often one event's step is run again for what it was missing.
const maxFetches = 16

// missing is what a step needed and found in no cache.
type missing struct {
	declaration *declarationID
	actionType  *model.ActionTypeId
	bucket      string
}

type declarationID struct {
	pipeline   string
	version    int
	generation string
}

func (m *missing) Error() string {
	switch {
	case m.declaration != nil:
		return fmt.Sprintf("the step needs version %d of pipeline %s", m.declaration.version, m.declaration.pipeline)
	case m.actionType != nil:
		return "the step needs the action type " + KeyOf(m.actionType)
	}
	return "the step needs to know whether the artifact bucket " + m.bucket + " is ready"
}

// fetch gets what a step was missing into the caches; a bucket that is not ready goes into
// failures, for the step's next run.
func (x *Executor) fetch(ctx context.Context, m *missing, failures map[string]string) error {
	switch {
	case m.declaration != nil:
		_, err := x.declaration(ctx, m.declaration.pipeline, m.declaration.version, m.declaration.generation)
		return err
	case m.actionType != nil:
		_, _, err := x.ActionType(ctx, m.actionType)
		return err
	}
	failure, err := x.bucketReady(ctx, m.bucket)
	if failure != "" {
		failures[m.bucket] = failure
	}
	return err
}

// bucketReady makes sure an artifact bucket exists, creating it where the store can, and returns
// "" once it is ready, or why actions that write to it fail. Only readiness, which lasts, is
// cached.
func (x *Executor) bucketReady(ctx context.Context, bucket string) (string, error) {
	if _, ok := x.readyBuckets.Load(bucket); ok {
		return "", nil
	}
	failure := ""
	err := x.cfg.Artifacts.EnsureBucket(ctx, bucket)
	switch {
	case errors.Is(err, artifacts.ErrNoSuchBucket):
		failure = fmt.Sprintf("The artifact store bucket %s does not exist in %s: create it, or point the pipeline's artifactStore at a bucket that exists", bucket, x.cfg.Artifacts.Endpoint())
	case errors.Is(err, artifacts.ErrBucketOfAnotherAccount):
		failure = fmt.Sprintf("The artifact store bucket %s belongs to another account: point the pipeline's artifactStore at a bucket of account %s", bucket, x.cfg.AccountID)
	case err != nil:
		return "", fmt.Errorf("ready the artifact bucket %s: %w", bucket, err)
	}
	if failure == "" {
		x.readyBuckets.Store(bucket, true)
	}
	return failure, nil
}

// prepare fetches what the first step of an execution of decl needs, for a step that cannot run
// again (CreatePipeline's, inside its transaction). A bucket the store cannot be asked about now
// comes back with the reason, for the actions that need it to fail with.
func (x *Executor) prepare(ctx context.Context, decl *model.PipelineDeclaration) (map[string]string, error) {
	failures := map[string]string{}
	for _, st := range decl.Stages {
		for i := range st.Actions {
			a := &st.Actions[i]
			if _, _, err := x.ActionType(ctx, a.ActionTypeId); err != nil {
				return nil, err
			}
			if len(a.OutputArtifacts) == 0 {
				continue
			}
			bucket, _ := artifactStore(decl, a, x.cfg.Region)
			failure, err := x.bucketReady(ctx, bucket)
			if err != nil {
				failure = fmt.Sprintf("The artifact store could not be reached to ready the bucket %s: %v", bucket, err)
			}
			if failure != "" {
				failures[bucket] = failure
			}
		}
	}
	return failures, nil
}

// declarationOf returns the declaration a run runs, from the cache.
func (s *step) declarationOf(r *run) (*model.PipelineDeclaration, error) {
	return s.declarationAt(r.Pipeline, r.Version, r.Generation)
}

func (s *step) declarationAt(pipeline string, version int, generation string) (*model.PipelineDeclaration, error) {
	if d, ok := s.x.declarations.Load(declarationKey(pipeline, version, generation)); ok {
		return d.(*model.PipelineDeclaration), nil
	}
	return nil, &missing{declaration: &declarationID{pipeline, version, generation}}
}

// actionType describes the type of an action run, from the catalog or the cache; its type must
// exist.
func (s *step) actionType(id *model.ActionTypeId) (catalog.ActionType, error) {
	if *id.Owner != model.ActionOwnerCustom {
		t, ok := catalog.LookupActionType(*id.Category, *id.Owner, *id.Provider, *id.Version)
		if !ok {
			return t, fmt.Errorf("action type %s is not in the catalog", KeyOf(id))
		}
		return t, nil
	}
	if t, ok := s.x.customTypes.Load(KeyOf(id)); ok {
		return t.(catalog.ActionType), nil
	}
	return catalog.ActionType{}, &missing{actionType: id}
}

// bucket says whether an artifact bucket is ready: "" if it is, else why actions writing to it
// fail.
func (s *step) bucket(name string) (string, error) {
	if _, ok := s.x.readyBuckets.Load(name); ok {
		return "", nil
	}
	if failure, ok := s.failures[name]; ok {
		return failure, nil
	}
	return "", &missing{bucket: name}
}
