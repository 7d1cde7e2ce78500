package runners

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/archive"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
)

// tickingClock returns a clock that moves one second each time it is read, from 14:30 UTC.
func tickingClock() func() time.Time {
	t := monday
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

// deployJob is the job of an S3 deploy action with config and input.
func deployJob(t *testing.T, config map[string]string, input model.Artifact) *job {
	t.Helper()
	j, _ := ruleJob(t, "S3", model.RuleDeclaration{Configuration: config}, input)
	j.data.ActionTypeId = &model.ActionTypeId{Category: new(model.ActionCategory("Deploy")), Owner: new(model.ActionOwnerAws), Provider: new("S3"), Version: new("1")}
	j.run = executor.LocalRun{Action: &model.ActionDeclaration{Name: new("Deploy")}}
	return j
}

// wantTarget checks the one deploy target of a result and the names and statuses of its events,
// and that its times follow each other.
func wantTarget(t *testing.T, res executor.Result, bucket, status string, events ...string) model.DeployActionExecutionTarget {
	t.Helper()
	if len(res.Targets) != 1 {
		t.Fatalf("%d targets, want 1: %+v", len(res.Targets), res.Targets)
	}
	target := res.Targets[0]
	if *target.TargetId != bucket || *target.TargetType != "AWS::S3::Bucket" || *target.Status != status {
		t.Errorf("target %s of type %s is %s, want %s of type AWS::S3::Bucket, %s", *target.TargetId, *target.TargetType, *target.Status, bucket, status)
	}
	var got []string
	last := target.StartTime.Time
	for _, e := range target.Events {
		got = append(got, *e.Name+" "+*e.Status)
		if e.StartTime.Time.Before(last) || e.EndTime.Time.Before(e.StartTime.Time) {
			t.Errorf("the event %s runs from %s to %s, after %s", *e.Name, e.StartTime.Time, e.EndTime.Time, last)
		}
		last = e.EndTime.Time
		if e.Context == nil || e.Context.Message == nil || *e.Context.Message == "" {
			t.Errorf("the event %s has no message", *e.Name)
		}
	}
	if target.EndTime.Time.Before(last) {
		t.Errorf("the target ends at %s, before its last event (%s)", target.EndTime.Time, last)
	}
	if strings.Join(got, ", ") != strings.Join(events, ", ") {
		t.Errorf("events %v, want %v", got, events)
	}
	return target
}

// TestS3DeployReportsItsBucketAsTarget deploys to a bucket of the local store, extracted and as
// one object, and to a missing bucket: each deployment reports the bucket as its target, with
// an event for each phase.
func TestS3DeployReportsItsBucketAsTarget(t *testing.T) {
	arts := localArtifacts(t)
	ctx := context.Background()
	if err := arts.EnsureBucket(ctx, "site"); err != nil {
		t.Fatal(err)
	}
	site := putArtifact(t, arts, "Site", map[string]string{"index.html": "<p>hi</p>", "css/a.css": "p{}"})
	d := s3Deploy{arts: arts, limits: archive.DefaultLimits, now: tickingClock()}

	res := d.run(ctx, deployJob(t, map[string]string{"BucketName": "site", "ObjectKey": "web", "Extract": "true"}, site))
	wantResult(t, res, true, "Deployed 2 files to s3://site/web")
	target := wantTarget(t, res, "site", "Succeeded", "Extract Succeeded", "Upload Succeeded")
	if msg := *target.Events[1].Context.Message; msg != "Deployed 2 files to s3://site/web" {
		t.Errorf("the upload's message is %q", msg)
	}
	body, _, err := arts.Get(ctx, "site", "web/css/a.css", "")
	if err != nil {
		t.Fatal(err)
	}
	content, _ := io.ReadAll(body)
	body.Close()
	if string(content) != "p{}" {
		t.Errorf("web/css/a.css holds %q", content)
	}

	res = d.run(ctx, deployJob(t, map[string]string{"BucketName": "site", "ObjectKey": "site.zip", "Extract": "false"}, site))
	wantResult(t, res, true, "Deployed to s3://site/site.zip")
	wantTarget(t, res, "site", "Succeeded", "Upload Succeeded")

	res = d.run(ctx, deployJob(t, map[string]string{"BucketName": "no-such-bucket", "Extract": "true"}, site))
	wantResult(t, res, false, "The deployment bucket no-such-bucket does not exist")
	target = wantTarget(t, res, "no-such-bucket", "Failed", "Extract Succeeded", "Upload Failed")
	if msg := *target.Events[1].Context.Message; !strings.Contains(msg, "does not exist") {
		t.Errorf("the failed upload's message %q does not say why", msg)
	}

	missing := site
	missing.Location = &model.ArtifactLocation{S3Location: &model.S3ArtifactLocation{BucketName: new("artifacts"), ObjectKey: new("gone")}}
	res = d.run(ctx, deployJob(t, map[string]string{"BucketName": "site", "Extract": "true"}, missing))
	wantResult(t, res, false)
	wantTarget(t, res, "site", "Failed", "Extract Failed")
}
