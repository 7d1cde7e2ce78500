package main

import (
	"bytes"
	"context"
	"fmt"
	"github.com/sluicehq/sluice/internal/sdktest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// This file checks that object versions written through the built-in S3 endpoint start the
// pipelines whose S3 source watches them, at once and at that version, with polling off so that
// only the upload itself can have started a run.

// startsEnv is a server with polling off, a versioned source bucket and a site bucket, reached
// with the AWS SDK's CodePipeline and S3 clients.
type startsEnv struct {
	t   *testing.T
	ctx context.Context
	srv *testServer
	// cp retries failed calls: it is used for reads and for idempotent writes only.
	cp *cp.Client
	// s3 makes one attempt per call, so that each acknowledged write is exactly one version.
	s3 *s3.Client
}

func newStartsEnv(t *testing.T, bin string, args ...string) *startsEnv {
	t.Helper()
	srv := newTestServer(t, bin, append([]string{"--start-on-create=false", "--source-poll-interval", "0"}, args...)...)
	e := &startsEnv{t: t, ctx: context.Background(), srv: srv, cp: queryClient(srv), s3: startsS3Client("http://" + srv.addr)}
	for _, bucket := range []string{"sources", "site"} {
		if _, err := e.s3.CreateBucket(e.ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatalf("create bucket %s: %v", bucket, err)
		}
	}
	if _, err := e.s3.PutBucketVersioning(e.ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("sources"),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// startsS3Client is an S3 client of endpoint, path style, one attempt per call.
func startsS3Client(endpoint string) *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true, Retryer: sdktest.ConnectionRetries(),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), DisableLogOutputChecksumValidationSkipped: true})
}

// put writes a new version of an object and returns its version id.
func (e *startsEnv) put(bucket, key, body string) string {
	e.t.Helper()
	out, err := e.s3.PutObject(e.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: bytes.NewReader(zipOf(e.t, map[string]string{"page.txt": body}))})
	if err != nil {
		e.t.Fatalf("put s3://%s/%s: %v", bucket, key, err)
	}
	if bucket == "sources" && aws.ToString(out.VersionId) == "" {
		e.t.Fatalf("put s3://%s/%s into a versioned bucket answered no version id", bucket, key)
	}
	return aws.ToString(out.VersionId)
}

// multipart writes a new version of sources/key in two parts (5 MiB and a few bytes) and returns
// the version id CompleteMultipartUpload answered.
func (e *startsEnv) multipart(key string) string {
	e.t.Helper()
	created, err := e.s3.CreateMultipartUpload(e.ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("sources"), Key: aws.String(key)})
	if err != nil {
		e.t.Fatalf("create multipart upload: %v", err)
	}
	var parts []s3types.CompletedPart
	for i, body := range [][]byte{bytes.Repeat([]byte("p"), 5<<20), []byte("tail")} {
		n := int32(i + 1)
		out, err := e.s3.UploadPart(e.ctx, &s3.UploadPartInput{Bucket: aws.String("sources"), Key: aws.String(key), UploadId: created.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(body)})
		if err != nil {
			e.t.Fatalf("upload part %d: %v", n, err)
		}
		parts = append(parts, s3types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	}
	out, err := e.s3.CompleteMultipartUpload(e.ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("sources"), Key: aws.String(key),
		UploadId: created.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		e.t.Fatalf("complete multipart upload: %v", err)
	}
	if aws.ToString(out.VersionId) == "" {
		e.t.Fatalf("CompleteMultipartUpload into a versioned bucket answered no version id (latest is %s)", e.latest(key))
	}
	return aws.ToString(out.VersionId)
}

// copy copies sources/from onto sources/to and returns the version the copy made. CopyObject's
// answer must name it (x-amz-version-id is the new version's, as in S3); if it does not, the test
// fails, and goes on with the version HeadObject reports, to check the rest.
func (e *startsEnv) copy(from, to string) string {
	e.t.Helper()
	source := e.latest(from)
	out, err := e.s3.CopyObject(e.ctx, &s3.CopyObjectInput{Bucket: aws.String("sources"), Key: aws.String(to), CopySource: aws.String("sources/" + from)})
	if err != nil {
		e.t.Fatalf("copy %s onto %s: %v", from, to, err)
	}
	made := e.latest(to)
	if answered := aws.ToString(out.VersionId); answered != made {
		e.t.Errorf("CopyObject onto a versioned bucket answered version id %q (the copy source's is %s), but the copy made version %s, which HeadObject reports", answered, source, made)
	}
	return made
}

// latest is the version id HeadObject reports for sources/key.
func (e *startsEnv) latest(key string) string {
	out, err := e.s3.HeadObject(e.ctx, &s3.HeadObjectInput{Bucket: aws.String("sources"), Key: aws.String(key)})
	if err != nil {
		return err.Error()
	}
	return aws.ToString(out.VersionId)
}

// startsPipeline is a V2 pipeline whose S3 source watches sources/key, followed by next.
func startsPipeline(name string, mode types.ExecutionMode, key, poll string, next types.ActionDeclaration) *types.PipelineDeclaration {
	return &types.PipelineDeclaration{
		Name: aws.String(name), RoleArn: aws.String("arn:aws:iam::000000000000:role/cp"), PipelineType: types.PipelineTypeV2, ExecutionMode: mode,
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")},
		Stages: []types.StageDeclaration{
			{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{
				Name:            aws.String("Source"),
				ActionTypeId:    &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerAws, Provider: aws.String("S3"), Version: aws.String("1")},
				Configuration:   map[string]string{"S3Bucket": "sources", "S3ObjectKey": key, "PollForSourceChanges": poll},
				OutputArtifacts: []types.OutputArtifact{{Name: aws.String("Src")}},
			}}},
			{Name: aws.String("Next"), Actions: []types.ActionDeclaration{next}},
		},
	}
}

// deployTo is an S3 deploy of the source artifact, as it is, to site/key: run by the server.
func deployTo(key string) types.ActionDeclaration {
	return types.ActionDeclaration{Name: aws.String("Deploy"),
		ActionTypeId:   &types.ActionTypeId{Category: types.ActionCategoryDeploy, Owner: types.ActionOwnerAws, Provider: aws.String("S3"), Version: aws.String("1")},
		Configuration:  map[string]string{"BucketName": "site", "Extract": "false", "ObjectKey": key},
		InputArtifacts: []types.InputArtifact{{Name: aws.String("Src")}}}
}

// slowType is a custom action type whose jobs the test works when it chooses.
func slowType(provider string) *types.ActionTypeId {
	return &types.ActionTypeId{Category: types.ActionCategoryDeploy, Owner: types.ActionOwnerCustom, Provider: aws.String(provider), Version: aws.String("1")}
}

func slowAction(provider string) types.ActionDeclaration {
	return types.ActionDeclaration{Name: aws.String("Slow"), ActionTypeId: slowType(provider), InputArtifacts: []types.InputArtifact{{Name: aws.String("Src")}}}
}

func (e *startsEnv) create(decl *types.PipelineDeclaration) {
	e.t.Helper()
	if _, err := e.cp.CreatePipeline(e.ctx, &cp.CreatePipelineInput{Pipeline: decl}); err != nil {
		e.t.Fatalf("create pipeline %s: %v", aws.ToString(decl.Name), err)
	}
}

func (e *startsEnv) createType(provider string) {
	e.t.Helper()
	if _, err := e.cp.CreateCustomActionType(e.ctx, &cp.CreateCustomActionTypeInput{Category: types.ActionCategoryDeploy, Provider: aws.String(provider),
		Version: aws.String("1"), InputArtifactDetails: &types.ArtifactDetails{MaximumCount: 1}, OutputArtifactDetails: &types.ArtifactDetails{MaximumCount: 0}}); err != nil {
		e.t.Fatal(err)
	}
}

// allExecutions lists every execution of a pipeline, newest first.
func allExecutions(ctx context.Context, client *cp.Client, pipeline string) ([]types.PipelineExecutionSummary, error) {
	var all []types.PipelineExecutionSummary
	p := cp.NewListPipelineExecutionsPaginator(client, &cp.ListPipelineExecutionsInput{PipelineName: aws.String(pipeline)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		all = append(all, out.PipelineExecutionSummaries...)
	}
	return all, nil
}

// runsOf returns the executions of a pipeline whose source revisions include revision.
func runsOf(all []types.PipelineExecutionSummary, revision string) []types.PipelineExecutionSummary {
	var out []types.PipelineExecutionSummary
	for _, x := range all {
		for _, r := range x.SourceRevisions {
			if aws.ToString(r.RevisionId) == revision {
				out = append(out, x)
				break
			}
		}
	}
	return out
}

// describeRuns lists a pipeline's executions with their revisions, triggers and statuses.
func describeRuns(all []types.PipelineExecutionSummary) string {
	var b strings.Builder
	for _, x := range all {
		var revs []string
		for _, r := range x.SourceRevisions {
			revs = append(revs, aws.ToString(r.RevisionId))
		}
		trigger := ""
		if x.Trigger != nil {
			trigger = string(x.Trigger.TriggerType)
		}
		fmt.Fprintf(&b, "\n  %s %s trigger %s revisions %v", aws.ToString(x.PipelineExecutionId), x.Status, trigger, revs)
	}
	return b.String()
}

// executions lists a pipeline's executions, failing the test on an error.
func (e *startsEnv) executions(pipeline string) []types.PipelineExecutionSummary {
	e.t.Helper()
	all, err := allExecutions(e.ctx, e.cp, pipeline)
	if err != nil {
		e.t.Fatalf("list executions of %s: %v", pipeline, err)
	}
	return all
}

// run waits until the one execution of pipeline for revision has ended and checks that it ended
// with want; there must never be two.
func (e *startsEnv) run(pipeline, revision string, want types.PipelineExecutionStatus) types.PipelineExecutionSummary {
	e.t.Helper()
	var found types.PipelineExecutionSummary
	var all []types.PipelineExecutionSummary
	waitFor(e.t, "the execution of "+pipeline+" for "+revision+" to end", func() bool {
		all = e.executions(pipeline)
		runs := runsOf(all, revision)
		if len(runs) > 1 {
			e.t.Fatalf("%d executions of %s for revision %s, want one:%s", len(runs), pipeline, revision, describeRuns(all))
		}
		if len(runs) == 1 && runs[0].Status != types.PipelineExecutionStatusInProgress && runs[0].Status != types.PipelineExecutionStatusStopping {
			found = runs[0]
			return true
		}
		return false
	}, func() string { return describeRuns(all) + describeActions(e.t, e.cp, pipeline) })
	if found.Status != want {
		e.t.Fatalf("the execution of %s for %s ended %s, want %s:%s%s", pipeline, revision, found.Status, want, describeRuns(all), describeActions(e.t, e.cp, pipeline))
	}
	return found
}

// checkSourceRan checks that the source action of an execution fetched revision.
func (e *startsEnv) checkSourceRan(pipeline string, x types.PipelineExecutionSummary, revision string) {
	e.t.Helper()
	d := actionDetails(e.t, e.cp, pipeline, aws.ToString(x.PipelineExecutionId))["Source"]
	if d.Output == nil || d.Output.OutputVariables["VersionId"] != revision {
		var got map[string]string
		if d.Output != nil {
			got = d.Output.OutputVariables
		}
		e.t.Fatalf("the source of %s's execution for %s fetched %v, want version %s", pipeline, revision, got, revision)
	}
}

// checkTrigger checks what an execution says started it.
func checkTrigger(t *testing.T, pipeline string, x types.PipelineExecutionSummary, kind types.TriggerType, detail func(string) bool) {
	t.Helper()
	if x.Trigger == nil || x.Trigger.TriggerType != kind || !detail(aws.ToString(x.Trigger.TriggerDetail)) {
		t.Fatalf("the execution %s of %s was triggered by %+v, want %s", aws.ToString(x.PipelineExecutionId), pipeline, x.Trigger, kind)
	}
}

// slowJob is a job of a slow action type, acknowledged and not yet answered.
type slowJob struct{ id, execution string }

// takeJob waits for a job of provider and acknowledges it.
func (e *startsEnv) takeJob(provider string) slowJob {
	e.t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, err := e.cp.PollForJobs(e.ctx, &cp.PollForJobsInput{ActionTypeId: slowType(provider), MaxBatchSize: aws.Int32(1)})
		if err != nil {
			e.t.Fatalf("poll for jobs of %s: %v", provider, err)
		}
		if len(out.Jobs) == 1 {
			job := out.Jobs[0]
			if _, err := e.cp.AcknowledgeJob(e.ctx, &cp.AcknowledgeJobInput{JobId: job.Id, Nonce: job.Nonce}); err != nil {
				e.t.Fatalf("acknowledge job: %v", err)
			}
			return slowJob{id: aws.ToString(job.Id), execution: crashJobExecution(job)}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no job of %s came", provider)
		}
	}
}

// finish reports a job's success.
func (e *startsEnv) finish(j slowJob) {
	e.t.Helper()
	if _, err := e.cp.PutJobSuccessResult(e.ctx, &cp.PutJobSuccessResultInput{JobId: aws.String(j.id)}); err != nil {
		e.t.Fatalf("report job %s: %v", j.id, err)
	}
}

// noJob checks that no job of provider waits.
func (e *startsEnv) noJob(provider, why string) {
	e.t.Helper()
	out, err := e.cp.PollForJobs(e.ctx, &cp.PollForJobsInput{ActionTypeId: slowType(provider), MaxBatchSize: aws.Int32(5)})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(out.Jobs) > 0 {
		e.t.Fatalf("%s, but a job of %s waits for execution %s", why, provider, crashJobExecution(out.Jobs[0]))
	}
}

// started waits until a pipeline has one execution per version written to its key, and returns
// them oldest first: the execution started for each write, in the order of the writes. It checks
// that none lists a source revision other than the version of its write; one that lists none yet
// (it waits to enter the source stage) is logged.
func (e *startsEnv) started(pipeline string, versions []string) []string {
	e.t.Helper()
	var all []types.PipelineExecutionSummary
	waitFor(e.t, fmt.Sprintf("%d executions of %s", len(versions), pipeline), func() bool {
		all = e.executions(pipeline)
		return len(all) >= len(versions)
	}, func() string { return describeRuns(all) })
	if len(all) != len(versions) {
		e.t.Fatalf("%d executions of %s for %d writes:%s", len(all), pipeline, len(versions), describeRuns(all))
	}
	var ids []string
	for i := range all {
		x := all[len(all)-1-i]
		ids = append(ids, aws.ToString(x.PipelineExecutionId))
		var revs []string
		for _, r := range x.SourceRevisions {
			revs = append(revs, aws.ToString(r.RevisionId))
		}
		// An execution lists the revision that started it from the start, also while it waits.
		if len(revs) != 1 || revs[0] != versions[i] {
			e.t.Errorf("execution %s of %s, started for write %d of %d (version %s), lists source revisions %v when listed at once, want [%s]:%s",
				ids[i], pipeline, i+1, len(versions), versions[i], revs, versions[i], describeRuns(all))
		}
	}
	return ids
}

// execution gets an execution.
func (e *startsEnv) execution(pipeline, id string) *types.PipelineExecution {
	e.t.Helper()
	out, err := e.cp.GetPipelineExecution(e.ctx, &cp.GetPipelineExecutionInput{PipelineName: aws.String(pipeline), PipelineExecutionId: aws.String(id)})
	if err != nil {
		e.t.Fatalf("get execution %s of %s: %v", id, pipeline, err)
	}
	return out.PipelineExecution
}

// waitEnd waits for an execution to end.
func (e *startsEnv) waitEnd(pipeline, id string) *types.PipelineExecution {
	e.t.Helper()
	var x *types.PipelineExecution
	waitFor(e.t, "the end of execution "+id+" of "+pipeline, func() bool {
		x = e.execution(pipeline, id)
		return x.Status != types.PipelineExecutionStatusInProgress && x.Status != types.PipelineExecutionStatusStopping
	}, func() string { return describeRuns(e.executions(pipeline)) })
	return x
}

// checkRanOnly checks that an ended execution's source action, if it ran, fetched version, and
// that the execution lists version, and only it, as its source revision, whether its source ran
// or not (a superseded one never does).
func (e *startsEnv) checkRanOnly(pipeline, id, version, whose string) {
	e.t.Helper()
	d, ran := actionDetails(e.t, e.cp, pipeline, id)["Source"]
	if ran && d.Output != nil {
		if got := d.Output.OutputVariables["VersionId"]; got != version {
			e.t.Errorf("%s execution %s of %s: its source fetched version %s, want %s, the version written", whose, id, pipeline, got, version)
		}
	}
	for _, x := range e.executions(pipeline) {
		if aws.ToString(x.PipelineExecutionId) != id {
			continue
		}
		var revs []string
		for _, r := range x.SourceRevisions {
			revs = append(revs, aws.ToString(r.RevisionId))
		}
		if len(revs) != 1 || revs[0] != version {
			e.t.Errorf("%s execution %s of %s (%s) lists source revisions %v, want [%s]", whose, id, pipeline, x.Status, revs, version)
		}
	}
}

// TestUploadsStartPipelines writes object versions through the built-in S3 endpoint, with
// source polling off: a put, a completed multipart upload and a copy onto a watched key each
// start one execution of every pipeline watching it, at that version, triggered as EventBridge
// would (CloudWatchEvent) where the source does not poll and as its poll would where it does;
// writes to keys nobody watches start nothing; a pipeline created just before an upload sees it.
// Quick uploads supersede the execution waiting in a SUPERSEDED pipeline, and all run, in order,
// in a QUEUED one.
func TestUploadsStartPipelines(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		e := newStartsEnv(t, bin, args...)
		e.create(startsPipeline("events", types.ExecutionModeQueued, "app.zip", "false", deployTo("events.zip")))
		e.create(startsPipeline("polled", types.ExecutionModeQueued, "app.zip", "true", deployTo("polled.zip")))
		watched := map[string][]string{} // pipeline → the versions that must have started it

		isRule := func(detail string) bool {
			return strings.HasPrefix(detail, "arn:aws:events:us-east-1:000000000000:rule/")
		}
		isSource := func(detail string) bool { return detail == "Source" }
		check := func(how, version string) {
			t.Helper()
			x := e.run("events", version, types.PipelineExecutionStatusSucceeded)
			checkTrigger(t, "events", x, types.TriggerTypeCloudWatchEvent, isRule)
			e.checkSourceRan("events", x, version)
			x = e.run("polled", version, types.PipelineExecutionStatusSucceeded)
			checkTrigger(t, "polled", x, types.TriggerTypePollForSourceChanges, isSource)
			e.checkSourceRan("polled", x, version)
			watched["events"] = append(watched["events"], version)
			watched["polled"] = append(watched["polled"], version)
			t.Logf("%s: version %s started both pipelines", how, version)
		}

		// Writes nobody watches: another key, and the same key in another bucket.
		unwatched := []string{e.put("sources", "other.zip", "other\n"), e.put("site", "app.zip", "elsewhere\n")}
		check("put", e.put("sources", "app.zip", "v1\n"))
		check("multipart upload", e.multipart("app.zip"))
		unwatched = append(unwatched, e.put("sources", "staging.zip", "staged\n"))
		check("copy", e.copy("staging.zip", "app.zip"))

		// A pipeline created just after an upload filled the server's cache of watched objects,
		// and an upload to its key right after.
		unwatched = append(unwatched, e.put("sources", "other.zip", "warm the cache\n"))
		e.create(startsPipeline("fresh", types.ExecutionModeQueued, "fresh.zip", "false", deployTo("fresh.zip")))
		fresh := e.put("sources", "fresh.zip", "fresh\n")
		checkTrigger(t, "fresh", e.run("fresh", fresh, types.PipelineExecutionStatusSucceeded), types.TriggerTypeCloudWatchEvent, isRule)
		watched["fresh"] = []string{fresh}

		// SUPERSEDED: three quick uploads. The first upload's execution holds the slow stage; the
		// second's waits for it and is superseded by the third's, which runs after the first.
		e.createType("SlowSuperseded")
		e.create(startsPipeline("superseding", types.ExecutionModeSuperseded, "superseding.zip", "false", slowAction("SlowSuperseded")))
		s := []string{e.put("sources", "superseding.zip", "s1\n"), e.put("sources", "superseding.zip", "s2\n"), e.put("sources", "superseding.zip", "s3\n")}
		sx := e.started("superseding", s)
		first := e.takeJob("SlowSuperseded")
		if first.execution != sx[0] {
			t.Fatalf("the slow stage's first job is of execution %s, want %s, the first upload's:%s", first.execution, sx[0], describeRuns(e.executions("superseding")))
		}
		waitFor(t, "the second upload's execution to be superseded", func() bool {
			return e.execution("superseding", sx[1]).Status == types.PipelineExecutionStatusSuperseded
		}, func() string { return describeRuns(e.executions("superseding")) })
		e.finish(first)
		third := e.takeJob("SlowSuperseded")
		if third.execution != sx[2] {
			t.Fatalf("the slow stage's second job is of execution %s, want %s, the third upload's:%s", third.execution, sx[2], describeRuns(e.executions("superseding")))
		}
		e.finish(third)
		for i, want := range []types.PipelineExecutionStatus{types.PipelineExecutionStatusSucceeded, types.PipelineExecutionStatusSuperseded, types.PipelineExecutionStatusSucceeded} {
			if x := e.waitEnd("superseding", sx[i]); x.Status != want {
				t.Errorf("upload %d's execution %s ended %s, want %s", i+1, sx[i], x.Status, want)
			}
			e.checkRanOnly("superseding", sx[i], s[i], fmt.Sprintf("upload %d's", i+1))
		}
		e.noJob("SlowSuperseded", "both executions that were not superseded ended")
		watched["superseding"] = s

		// QUEUED: five quick uploads all run, one after the other, in the order they were
		// written, each its own version.
		e.createType("SlowQueued")
		e.create(startsPipeline("queued", types.ExecutionModeQueued, "queued.zip", "false", slowAction("SlowQueued")))
		var q []string
		for i := range 5 {
			q = append(q, e.put("sources", "queued.zip", fmt.Sprintf("q%d\n", i)))
		}
		qx := e.started("queued", q)
		for i := range q {
			j := e.takeJob("SlowQueued")
			if j.execution != qx[i] {
				t.Fatalf("job %d of the slow stage is of execution %s, want %s, upload %d's:%s", i+1, j.execution, qx[i], i+1, describeRuns(e.executions("queued")))
			}
			e.noJob("SlowQueued", fmt.Sprintf("upload %d's execution holds the slow stage", i+1))
			e.finish(j)
		}
		for i := range q {
			if x := e.waitEnd("queued", qx[i]); x.Status != types.PipelineExecutionStatusSucceeded {
				t.Errorf("upload %d's execution %s ended %s, want Succeeded", i+1, qx[i], x.Status)
			}
			e.checkRanOnly("queued", qx[i], q[i], fmt.Sprintf("upload %d's", i+1))
		}
		watched["queued"] = q

		// Every pipeline ran exactly the versions written to its key, once each: nothing for the
		// writes nobody watches.
		for pipeline, versions := range watched {
			all := e.executions(pipeline)
			if len(all) != len(versions) {
				t.Errorf("%s has %d executions, want %d, one for each of %v (unwatched writes: %v):%s", pipeline, len(all), len(versions), versions, unwatched, describeRuns(all))
			}
			for _, v := range unwatched {
				if v == "" {
					continue // the unversioned bucket's
				}
				if runs := runsOf(all, v); len(runs) > 0 {
					t.Errorf("the write of version %s to a key %s does not watch started it:%s", v, pipeline, describeRuns(all))
				}
			}
		}
	})
}
