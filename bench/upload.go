package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// uploadStart measures how soon an object version written through Sluice's built-in S3
// endpoint starts the pipeline whose S3 source watches it: from the moment PutObject's answer
// is read to the moment ListPipelineExecutions lists an execution InProgress with that version
// as its source revision. One upload at a time, from the same client over loopback as every
// other scenario; the pipeline's second stage is a custom action nobody works, so that each
// execution is InProgress when seen, and it is stopped (abandoned) once timed, outside the
// timing, so that executions do not pile up.
func uploadStart(ctx context.Context, t *target, o options) (result, error) {
	c := newClient(t.endpoint, 1)
	if err := c.s3(ctx, http.MethodPut, "/bench-upload", nil); err != nil {
		return result{}, fmt.Errorf("create the bucket: %w", err)
	}
	versioning := []byte(`<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>`)
	if err := c.s3(ctx, http.MethodPut, "/bench-upload?versioning", versioning); err != nil {
		return result{}, fmt.Errorf("enable versioning: %w", err)
	}
	c.must(ctx, "CreateCustomActionType", `{"category":"Deploy","provider":"BenchIdle","version":"1","inputArtifactDetails":{"minimumCount":0,"maximumCount":1},"outputArtifactDetails":{"minimumCount":0,"maximumCount":0}}`)
	c.must(ctx, "CreatePipeline", fmt.Sprintf(`{"pipeline":{"name":"bench-upload","roleArn":%q,"pipelineType":"V2","executionMode":"PARALLEL","artifactStore":{"type":"S3","location":"bench-artifacts"},"stages":[
{"name":"Source","actions":[{"name":"Source","actionTypeId":{"category":"Source","owner":"AWS","provider":"S3","version":"1"},"configuration":{"S3Bucket":"bench-upload","S3ObjectKey":"app.zip","PollForSourceChanges":"false"},"outputArtifacts":[{"name":"Src"}]}]},
{"name":"Idle","actions":[{"name":"Idle","actionTypeId":{"category":"Deploy","owner":"Custom","provider":"BenchIdle","version":"1"},"inputArtifacts":[{"name":"Src"}]}]}]}}`, t.roleARN))

	var starts []time.Duration
	r := closedLoop(ctx, 1, o.duration, func(ctx context.Context, _, seq int) error {
		version, err := c.putObject(ctx, "/bench-upload/app.zip", fmt.Appendf(nil, "upload %d", seq))
		if err != nil {
			return err
		}
		answered := time.Now()
		for {
			id, status, err := c.executionOf(ctx, "bench-upload", version)
			if err != nil {
				return err
			}
			if id != "" {
				if status != "InProgress" {
					return fmt.Errorf("the execution of version %s is %s when first seen", version, status)
				}
				starts = append(starts, time.Since(answered))
				return expect(c.call(ctx, "StopPipelineExecution", fmt.Sprintf(`{"pipelineName":"bench-upload","pipelineExecutionId":%q,"abandon":true,"reason":"timed"}`, id)))
			}
			if time.Since(answered) > 30*time.Second {
				return fmt.Errorf("no execution of version %s after 30s", version)
			}
			time.Sleep(time.Millisecond)
		}
	})
	if len(starts) == 0 {
		return r, errors.New("no upload started an execution in time: " + r.firstError)
	}
	slices.Sort(starts)
	// The rate is of uploads timed per second of timing; latencies are upload answer → seen.
	out := result{requests: len(starts), errors: r.errors, elapsed: r.elapsed, firstError: r.firstError, latencies: starts}
	out.percentiles()
	return out, nil
}

// s3 sends an S3 request, signed as S3 clients sign an unsigned payload, and expects a 200.
func (c *client) s3(ctx context.Context, method, path string, body []byte) error {
	resp, err := c.s3Do(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	return nil
}

func (c *client) s3Do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	if err := s3Signer.SignHTTP(ctx, benchCredentials, req, "UNSIGNED-PAYLOAD", "s3", c.region, time.Now()); err != nil {
		return nil, err
	}
	return c.http.Do(req)
}

// putObject writes an object and returns the version id of the answer.
func (c *client) putObject(ctx context.Context, path string, body []byte) (string, error) {
	resp, err := c.s3Do(ctx, http.MethodPut, path, body)
	if err != nil {
		return "", err
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("PutObject: HTTP %d: %.200s", resp.StatusCode, out)
	}
	version := resp.Header.Get("X-Amz-Version-Id")
	if version == "" {
		return "", errors.New("PutObject into a versioned bucket answered no version id")
	}
	return version, nil
}

// executionOf finds, among a pipeline's latest executions, the one whose source revision is
// revision, and its status.
func (c *client) executionOf(ctx context.Context, pipeline, revision string) (id, status string, err error) {
	status2, body, err := c.call(ctx, "ListPipelineExecutions", fmt.Sprintf(`{"pipelineName":%q,"maxResults":5}`, pipeline))
	if err := expect(status2, body, err); err != nil {
		return "", "", err
	}
	var out struct {
		Summaries []struct {
			ID              string `json:"pipelineExecutionId"`
			Status          string `json:"status"`
			SourceRevisions []struct {
				RevisionID string `json:"revisionId"`
			} `json:"sourceRevisions"`
		} `json:"pipelineExecutionSummaries"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", "", err
	}
	for _, s := range out.Summaries {
		for _, r := range s.SourceRevisions {
			if r.RevisionID == revision {
				return s.ID, s.Status, nil
			}
		}
	}
	return "", "", nil
}
