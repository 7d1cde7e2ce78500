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
	"time"

	"github.com/sluicehq/sluice/internal/archive"
	"github.com/sluicehq/sluice/internal/artifacts"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
)

// s3Deploy is the S3 deploy action: it writes its input artifact to BucketName, extracted under
// ObjectKey (Extract true) or as the one object ObjectKey. It reports the bucket as its deploy
// target (ListDeployActionExecutionTargets): target type AWS::S3::Bucket, with an event for each
// phase — Extract (the input artifact downloaded and unzipped, with Extract true) and Upload
// (the objects written) — each with its times, status and a message.
type s3Deploy struct {
	arts   artifacts.Store
	limits archive.Limits
	now    func() time.Time
}

// s3DeployTargetType is the target type of the S3 deploy action's bucket.
const s3DeployTargetType = "AWS::S3::Bucket"

// deployTarget records a deploy target and the events of its phases as they happen.
type deployTarget struct {
	now    func() time.Time
	target model.DeployActionExecutionTarget
}

func newDeployTarget(now func() time.Time, id, targetType string) *deployTarget {
	return &deployTarget{now: now, target: model.DeployActionExecutionTarget{
		TargetId: new(id), TargetType: new(targetType), Status: new("InProgress"), StartTime: model.NewTimestamp(now()),
	}}
}

// phase runs one phase of the deployment as an event of the target; its message is what the
// phase did, or why it failed.
func (t *deployTarget) phase(name string, f func() (string, error)) error {
	start := t.now()
	msg, err := f()
	status := "Succeeded"
	if err != nil {
		status, msg = "Failed", err.Error()
	}
	t.target.Events = append(t.target.Events, model.DeployTargetEvent{
		Name: new(name), Status: new(status), StartTime: model.NewTimestamp(start), EndTime: model.NewTimestamp(t.now()),
		Context: &model.DeployTargetEventContext{Message: new(msg)},
	})
	return err
}

// finish ends the target with res's outcome and adds it to res.
func (t *deployTarget) finish(res executor.Result) executor.Result {
	status := "Failed"
	if res.Succeeded {
		status = "Succeeded"
	}
	t.target.Status, t.target.EndTime = new(status), model.NewTimestamp(t.now())
	res.Targets = append(res.Targets, t.target)
	return res
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
	now := d.now
	if now == nil {
		now = time.Now
	}
	target := newDeployTarget(now, bucket, s3DeployTargetType)
	return target.finish(d.deploy(ctx, j, target, bucket, key, extract, meta))
}

// deploy writes the input artifact to the bucket, each phase an event of target.
func (d s3Deploy) deploy(ctx context.Context, j *job, target *deployTarget, bucket, key string, extract bool, meta artifacts.Metadata) executor.Result {
	in := j.data.InputArtifacts[0]
	if !extract {
		var res executor.Result
		_ = target.phase("Upload", func() (string, error) {
			res = d.copy(ctx, j, in, bucket, key, meta)
			if !res.Succeeded {
				return "", errors.New(res.Summary)
			}
			return res.Summary, nil
		})
		return res
	}
	dir := filepath.Join(j.dir, "deploy")
	err := target.phase("Extract", func() (string, error) {
		if err := fetchInput(ctx, d.arts, d.limits, j, in, dir); err != nil {
			return "", err
		}
		return fmt.Sprintf("Extracted the input artifact %s", *in.Name), nil
	})
	if err != nil {
		return failedErr(err)
	}
	prefix := strings.Trim(key, "/")
	var res executor.Result
	_ = target.phase("Upload", func() (string, error) {
		res = d.upload(ctx, j, dir, bucket, prefix, meta)
		if !res.Succeeded {
			return "", errors.New(res.Summary)
		}
		return res.Summary, nil
	})
	return res
}

// copy writes the input artifact as the one object key.
func (d s3Deploy) copy(ctx context.Context, j *job, in model.Artifact, bucket, key string, meta artifacts.Metadata) executor.Result {
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

// upload writes the files extracted into dir under prefix.
func (d s3Deploy) upload(ctx context.Context, j *job, dir, bucket, prefix string, meta artifacts.Metadata) executor.Result {
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
