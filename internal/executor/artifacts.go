package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
)

// artifactStore returns the bucket and encryption key of the artifact store an action's outputs
// go to: the pipeline's store for the action's region, or its only store.
func artifactStore(decl *model.PipelineDeclaration, ad *model.ActionDeclaration, defaultRegion string) (string, *model.EncryptionKey) {
	region := defaultRegion
	if ad.Region != nil {
		region = *ad.Region
	}
	st := decl.ArtifactStore
	if regional, ok := decl.ArtifactStores[region]; ok {
		st = &regional
	}
	if st == nil || st.Location == nil {
		return "", nil
	}
	return *st.Location, st.EncryptionKey
}

func s3Location(bucket, key string) *model.ArtifactLocation {
	return &model.ArtifactLocation{Type: new(model.ArtifactLocationTypeS3), S3Location: &model.S3ArtifactLocation{BucketName: new(bucket), ObjectKey: new(key)}}
}

// location returns where an artifact of a job is.
func location(a model.Artifact) (bucket, key string, ok bool) {
	if a.Location == nil || a.Location.S3Location == nil || a.Location.S3Location.BucketName == nil || a.Location.S3Location.ObjectKey == nil {
		return "", "", false
	}
	return *a.Location.S3Location.BucketName, *a.Location.S3Location.ObjectKey, true
}

// jobRunning reports whether a job is out with a worker or waiting for one.
func jobRunning(j store.Job) bool {
	switch j.Status {
	case jobQueued, jobDispatched, jobInProgress:
		return true
	}
	return false
}

// JobData returns what a worker is told of a job: its stored data, with the credentials that
// reach its artifacts.
func (x *Executor) JobData(j store.Job) (*model.JobData, error) {
	var data model.JobData
	if err := json.Unmarshal(j.Data, &data); err != nil {
		return nil, fmt.Errorf("decode job %s: %w", j.ID, err)
	}
	if len(data.InputArtifacts)+len(data.OutputArtifacts) > 0 {
		c := x.cfg.Artifacts.JobCredentials(j.ID)
		data.ArtifactCredentials = &model.AWSSessionCredentials{AccessKeyId: new(c.AccessKeyID), SecretAccessKey: new(c.SecretAccessKey), SessionToken: new(c.SessionToken)}
	}
	return &data, nil
}

// ThirdPartyJobData is JobData as a partner's worker sees it: without the pipeline's ARN and
// execution id.
func ThirdPartyJobData(d *model.JobData) *model.ThirdPartyJobData {
	out := &model.ThirdPartyJobData{
		ActionTypeId: d.ActionTypeId, ActionConfiguration: d.ActionConfiguration, InputArtifacts: d.InputArtifacts,
		OutputArtifacts: d.OutputArtifacts, ArtifactCredentials: d.ArtifactCredentials, ContinuationToken: d.ContinuationToken,
		EncryptionKey: d.EncryptionKey,
	}
	if c := d.PipelineContext; c != nil {
		out.PipelineContext = &model.PipelineContext{PipelineName: c.PipelineName, Stage: c.Stage, Action: c.Action}
	}
	return out
}

// Object is an artifact in a bucket.
type Object struct{ Bucket, Key string }

// JobObjects returns the artifacts a job reads and writes, and whether it is still running.
func (x *Executor) JobObjects(ctx context.Context, jobID string) (read, write []Object, running bool, err error) {
	j, err := x.Job(ctx, jobID)
	if errors.Is(err, ErrJobNotFound) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	var data model.JobData
	if err := json.Unmarshal(j.Data, &data); err != nil {
		return nil, nil, false, fmt.Errorf("decode job %s: %w", j.ID, err)
	}
	for _, a := range data.InputArtifacts {
		if b, k, ok := location(a); ok {
			read = append(read, Object{b, k})
		}
	}
	for _, a := range data.OutputArtifacts {
		if b, k, ok := location(a); ok {
			write = append(write, Object{b, k})
		}
	}
	return read, write, jobRunning(j), nil
}

// recordArtifacts notes where a finished job left its outputs, for the actions that consume them,
// and returns them as the action's output artifacts.
func (s *step) recordArtifacts(execID string, j store.Job, revision *model.CurrentRevision) ([]model.ArtifactDetail, error) {
	var data model.JobData
	if err := json.Unmarshal(j.Data, &data); err != nil {
		return nil, fmt.Errorf("decode job %s: %w", j.ID, err)
	}
	r := s.st.Runs[execID]
	out := []model.ArtifactDetail{}
	for _, a := range data.OutputArtifacts {
		bucket, key, ok := location(a)
		if !ok || r == nil {
			continue
		}
		ref := artifactRef{Bucket: bucket, Key: key}
		if revision != nil && revision.Revision != nil {
			ref.Revision = *revision.Revision
		}
		if r.Artifacts == nil {
			r.Artifacts = map[string]artifactRef{}
		}
		r.Artifacts[*a.Name] = ref
		out = append(out, model.ArtifactDetail{Name: a.Name, S3location: &model.S3Location{Bucket: new(bucket), Key: new(key)}})
	}
	return out, nil
}
