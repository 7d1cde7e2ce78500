package runners

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/internal/artifacts"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
)

// s3Source is the S3 source action: the object S3ObjectKey of the versioned bucket S3Bucket,
// copied into the artifact store as the action's output artifact; its version id is the revision.
type s3Source struct {
	arts artifacts.Store
}

func (s s3Source) run(ctx context.Context, job *model.JobData) executor.Result {
	config := job.ActionConfiguration.Configuration
	bucket, key := config["S3Bucket"], config["S3ObjectKey"]
	body, info, err := s.arts.Get(ctx, bucket, key, "")
	switch {
	case errors.Is(err, artifacts.ErrNoSuchBucket):
		return failed(fmt.Sprintf("The source bucket %s does not exist in %s", bucket, s.arts.Endpoint()))
	case errors.Is(err, artifacts.ErrNoSuchKey):
		return failed(fmt.Sprintf("The source object s3://%s/%s does not exist", bucket, key))
	case err != nil:
		return failed(fmt.Sprintf("Reading the source object s3://%s/%s failed: %v", bucket, key, err))
	}
	defer body.Close()
	if info.Version == "" {
		return failed(fmt.Sprintf("The source bucket %s must have versioning enabled: the S3 source action takes the object's version id as its revision", bucket))
	}
	// The S3 source has exactly one output artifact (the catalog says so).
	out := job.OutputArtifacts[0]
	loc := out.Location.S3Location
	if _, err := s.arts.Put(ctx, *loc.BucketName, *loc.ObjectKey, body, info.Size); err != nil {
		return failed(fmt.Sprintf("Storing the source artifact %s failed: %v", *out.Name, err))
	}
	return executor.Result{
		Succeeded: true,
		Summary:   fmt.Sprintf("Fetched s3://%s/%s version %s", bucket, key, info.Version),
		Revision:  &model.CurrentRevision{Revision: new(info.Version), ChangeIdentifier: new(info.ETag), Created: model.NewTimestamp(info.Modified)},
		OutputVariables: map[string]string{
			"BucketName": bucket, "ObjectKey": key, "VersionId": info.Version, "ETag": info.ETag,
		},
	}
}
