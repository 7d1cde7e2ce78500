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
// An execution pinned to a version (or, with AllowOverrideForS3ObjectKey, to a key) takes that.
type s3Source struct {
	arts artifacts.Store
}

func (s s3Source) run(ctx context.Context, j *job) executor.Result {
	config := j.data.ActionConfiguration.Configuration
	bucket, key, version := config["S3Bucket"], config["S3ObjectKey"], ""
	for _, pin := range j.run.Pins {
		if pin.RevisionType != nil && *pin.RevisionType == model.SourceRevisionTypeS3ObjectKey {
			key = *pin.RevisionValue
		} else {
			version = *pin.RevisionValue
		}
	}
	where := fmt.Sprintf("s3://%s/%s", bucket, key)
	if version != "" {
		where += " version " + version
	}
	j.logf("Fetching %s", where)
	body, info, err := s.arts.Get(ctx, bucket, key, version)
	switch {
	case errors.Is(err, artifacts.ErrNoSuchBucket):
		return failed(fmt.Sprintf("The source bucket %s does not exist in %s", bucket, s.arts.Endpoint()))
	case errors.Is(err, artifacts.ErrNoSuchKey):
		return failed(fmt.Sprintf("The source object s3://%s/%s does not exist", bucket, key))
	case errors.Is(err, artifacts.ErrNoSuchVersion):
		return failed(fmt.Sprintf("The source object %s does not exist", where))
	case err != nil:
		return failed(fmt.Sprintf("Reading the source object %s failed: %v", where, err))
	}
	defer body.Close()
	if info.Version == "" {
		return failed(fmt.Sprintf("The source bucket %s must have versioning enabled: the S3 source action takes the object's version id as its revision", bucket))
	}
	// The S3 source has exactly one output artifact (the catalog says so).
	out := j.data.OutputArtifacts[0]
	outBucket, outKey, err := location(out)
	if err != nil {
		return failed(err.Error())
	}
	if _, err := s.arts.Put(ctx, outBucket, outKey, body, info.Size, artifacts.Metadata{}); err != nil {
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
