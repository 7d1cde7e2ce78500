package runners

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"path"
	"path/filepath"
	"strings"

	"github.com/sluicehq/sluice/internal/archive"
	"github.com/sluicehq/sluice/internal/artifacts"
	"github.com/sluicehq/sluice/internal/executor"
)

// s3Deploy is the S3 deploy action: it writes its input artifact to BucketName, extracted under
// ObjectKey (Extract true) or as the one object ObjectKey.
type s3Deploy struct {
	arts   artifacts.Store
	limits archive.Limits
}

func (d s3Deploy) run(ctx context.Context, j *job) executor.Result {
	config := j.data.ActionConfiguration.Configuration
	bucket, key := config["BucketName"], config["ObjectKey"]
	meta := artifacts.Metadata{CacheControl: config["CacheControl"], ACL: config["CannedACL"]}
	if config["KMSEncryptionKeyARN"] != "" {
		j.logf("KMSEncryptionKeyARN is ignored: Sluice does not encrypt deployed objects")
	}
	extract := strings.EqualFold(config["Extract"], "true")
	if !extract && key == "" {
		return failed("ObjectKey is required when Extract is false: name the object the artifact is written to")
	}
	in := j.data.InputArtifacts[0]
	if !extract {
		srcBucket, srcKey, err := location(in)
		if err != nil {
			return failedErr(err)
		}
		body, info, err := d.arts.Get(ctx, srcBucket, srcKey, "")
		if err != nil {
			return failed(fmt.Sprintf("Reading the input artifact %s failed: %v", *in.Name, err))
		}
		defer body.Close()
		meta.ContentType = contentType(key)
		if _, err := d.arts.Put(ctx, bucket, key, body, info.Size, meta); err != nil {
			return d.writeFailed(bucket, key, err)
		}
		j.logf("Wrote the artifact %s to s3://%s/%s", *in.Name, bucket, key)
		return executor.Result{Succeeded: true, Summary: fmt.Sprintf("Deployed to s3://%s/%s", bucket, key)}
	}
	dir := filepath.Join(j.dir, "deploy")
	if err := fetchInput(ctx, d.arts, d.limits, j, in, dir); err != nil {
		return failedErr(err)
	}
	prefix := strings.Trim(key, "/")
	count := 0
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		meta.ContentType = contentType(name)
		if _, err := putFile(ctx, d.arts, bucket, name, p, meta); err != nil {
			return &writeError{key: name, err: err}
		}
		j.logf("Wrote s3://%s/%s", bucket, name)
		count++
		return nil
	})
	var we *writeError
	if errors.As(err, &we) {
		return d.writeFailed(bucket, we.key, we.err)
	}
	if err != nil {
		return failed(fmt.Sprintf("Deploying to s3://%s/%s failed: %v", bucket, prefix, err))
	}
	return executor.Result{Succeeded: true, Summary: fmt.Sprintf("Deployed %d files to s3://%s/%s", count, bucket, prefix)}
}

// writeError is a failed write of one deployed object.
type writeError struct {
	key string
	err error
}

func (e *writeError) Error() string { return e.key + ": " + e.err.Error() }

func (d s3Deploy) writeFailed(bucket, key string, err error) executor.Result {
	if errors.Is(err, artifacts.ErrNoSuchBucket) {
		return failed(fmt.Sprintf("The deployment bucket %s does not exist in %s: create it first", bucket, d.arts.Endpoint()))
	}
	return failed(fmt.Sprintf("Writing s3://%s/%s failed: %v", bucket, key, err))
}

// contentType guesses an object's content type from its name, as the S3 deploy action does.
func contentType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}
