package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/sluicehq/sluice/internal/api"
)

// rawCall posts a request and returns the decoded JSON response, to check the wire form itself.
func rawCall(t *testing.T, e *env, op, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(body))
	req.Header.Set("X-Amz-Target", "CodePipeline_20150709."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", op, resp.StatusCode, raw)
	}
	return out
}

func TestCreateAndGetNormalizeAsAWSDoes(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		before := time.Now().Add(-time.Second)
		created := must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{
			Pipeline: minimal("demo"), Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}},
		}))
		if *created.Pipeline.Version != 1 || len(created.Tags) != 1 {
			t.Fatalf("create answered %+v", created)
		}

		got := rawCall(t, e, "GetPipeline", `{"name":"demo"}`)
		want := map[string]any{
			"name": "demo", "roleArn": "arn:aws:iam::" + account + ":role/cp",
			"artifactStore": map[string]any{"type": "S3", "location": "artifacts"},
			"stages": []any{
				map[string]any{"name": "Source", "actions": []any{map[string]any{
					"name": "src", "actionTypeId": map[string]any{"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
					"runOrder": 1.0, "configuration": map[string]any{"S3Bucket": "bucket", "S3ObjectKey": "app.zip"},
					"outputArtifacts": []any{map[string]any{"name": "code"}}, "inputArtifacts": []any{},
				}}},
				map[string]any{"name": "Approve", "actions": []any{map[string]any{
					"name": "ok", "actionTypeId": map[string]any{"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
					"runOrder": 1.0, "configuration": map[string]any{}, "outputArtifacts": []any{}, "inputArtifacts": []any{},
				}}},
			},
			"version": 1.0, "executionMode": "SUPERSEDED", "pipelineType": "V1",
		}
		if !reflect.DeepEqual(got["pipeline"], want) {
			t.Fatalf("GetPipeline pipeline\n got %v\nwant %v", got["pipeline"], want)
		}
		meta := got["metadata"].(map[string]any)
		if meta["pipelineArn"] != "arn:aws:codepipeline:us-east-1:"+account+":demo" || meta["created"] != meta["updated"] {
			t.Fatalf("metadata %v", meta)
		}
		if _, ok := meta["pollingDisabledAt"]; ok {
			t.Fatal("pollingDisabledAt is set on a new pipeline")
		}

		sdk := must[*cp.GetPipelineOutput](t)(e.client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("demo")}))
		if c := *sdk.Metadata.Created; c.Before(before) || c.After(time.Now().Add(time.Second)) {
			t.Fatalf("created %v is not now", c)
		}
	})
}

func TestUpdateKeepsEveryVersion(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		_, err := e.client.UpdatePipeline(ctx, &cp.UpdatePipelineInput{Pipeline: minimal("nope")})
		wantError(t, err, "ResourceNotFoundException", "The account with id '"+account+"' does not include a pipeline with the name 'nope'")

		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: minimal("p")}))
		first := must[*cp.GetPipelineOutput](t)(e.client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("p")}))
		time.Sleep(5 * time.Millisecond)

		changed := minimal("p")
		changed.Stages[1].Actions = append(changed.Stages[1].Actions, approval("second"))
		changed.Version = aws.Int32(1) // AWS ignores the version sent; it is assigned
		updated := must[*cp.UpdatePipelineOutput](t)(e.client.UpdatePipeline(ctx, &cp.UpdatePipelineInput{Pipeline: changed}))
		if *updated.Pipeline.Version != 2 {
			t.Fatalf("updated version %d, want 2", *updated.Pipeline.Version)
		}

		latest := must[*cp.GetPipelineOutput](t)(e.client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("p")}))
		if *latest.Pipeline.Version != 2 || len(latest.Pipeline.Stages[1].Actions) != 2 {
			t.Fatalf("latest %+v", latest.Pipeline)
		}
		if !latest.Metadata.Created.Equal(*first.Metadata.Created) || !latest.Metadata.Updated.After(*first.Metadata.Updated) {
			t.Fatalf("created %v→%v, updated %v→%v", first.Metadata.Created, latest.Metadata.Created, first.Metadata.Updated, latest.Metadata.Updated)
		}
		v1 := must[*cp.GetPipelineOutput](t)(e.client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("p"), Version: aws.Int32(1)}))
		if *v1.Pipeline.Version != 1 || len(v1.Pipeline.Stages[1].Actions) != 1 {
			t.Fatalf("version 1 now reads %+v", v1.Pipeline)
		}
		_, err = e.client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("p"), Version: aws.Int32(3)})
		wantError(t, err, "PipelineVersionNotFoundException", "version 3")
	})
}

func TestConcurrentUpdatesAllBecomeVersions(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: minimal("busy")}))
		const writers = 8
		var wg sync.WaitGroup
		versions := make(chan int32, writers)
		for i := range writers {
			wg.Go(func() {
				p := minimal("busy")
				p.Stages[1].Actions[0].Name = aws.String(fmt.Sprintf("by-writer-%d", i))
				out, err := e.client.UpdatePipeline(ctx, &cp.UpdatePipelineInput{Pipeline: p})
				if err != nil {
					t.Error(err)
					return
				}
				versions <- *out.Pipeline.Version
			})
		}
		wg.Wait()
		close(versions)
		seen := map[int32]bool{}
		for v := range versions {
			if seen[v] {
				t.Fatalf("two updates got version %d", v)
			}
			seen[v] = true
		}
		writersSeen := map[string]bool{}
		for v := int32(2); v <= writers+1; v++ {
			out := must[*cp.GetPipelineOutput](t)(e.client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("busy"), Version: aws.Int32(v)}))
			writersSeen[*out.Pipeline.Stages[1].Actions[0].Name] = true
		}
		if len(seen) != writers || len(writersSeen) != writers {
			t.Fatalf("%d versions and %d distinct writers stored, want %d", len(seen), len(writersSeen), writers)
		}
	})
}

func TestDeleteIsIdempotent(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: minimal("gone")}))
		must[*cp.DeletePipelineOutput](t)(e.client.DeletePipeline(ctx, &cp.DeletePipelineInput{Name: aws.String("gone")}))
		must[*cp.DeletePipelineOutput](t)(e.client.DeletePipeline(ctx, &cp.DeletePipelineInput{Name: aws.String("gone")}))
		_, err := e.client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("gone")})
		wantError(t, err, "PipelineNotFoundException", "Account '"+account+"' does not have a pipeline with name 'gone'")
	})
}

func TestCreateRefusesDuplicatesAndQuota(t *testing.T) {
	limits := api.DefaultLimits
	limits.Pipelines = 2
	eachStore(t, limits, func(t *testing.T, e *env) {
		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: minimal("one")}))
		_, err := e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: minimal("one")})
		wantError(t, err, "InvalidStructureException", "A pipeline with the name 'one' already exists in account '"+account+"'")
		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: minimal("two")}))
		_, err = e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: minimal("three")})
		wantError(t, err, "LimitExceededException", "2 pipelines")
	})
}

func TestListPipelinesPages(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		var want []string
		for i := range 7 {
			name := fmt.Sprintf("pipe-%d", i)
			want = append(want, name)
			p := minimal(name)
			if i%2 == 1 {
				p.PipelineType, p.ExecutionMode = types.PipelineTypeV2, types.ExecutionModeParallel
			}
			must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}))
		}
		var got []string
		var token *string
		pages := 0
		for {
			out := must[*cp.ListPipelinesOutput](t)(e.client.ListPipelines(ctx, &cp.ListPipelinesInput{MaxResults: aws.Int32(3), NextToken: token}))
			pages++
			for _, p := range out.Pipelines {
				got = append(got, *p.Name)
				wantType := types.PipelineTypeV1
				if *p.Name == "pipe-1" {
					wantType = types.PipelineTypeV2
					if p.ExecutionMode != types.ExecutionModeParallel {
						t.Fatalf("summary %+v", p)
					}
				}
				if *p.Name == "pipe-0" && (p.PipelineType != wantType || *p.Version != 1 || p.Created == nil || p.Updated == nil) {
					t.Fatalf("summary %+v", p)
				}
			}
			if token = out.NextToken; token == nil {
				break
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || pages != 3 {
			t.Fatalf("listed %v in %d pages, want %v in 3", got, pages, want)
		}

		first := must[*cp.ListPipelinesOutput](t)(e.client.ListPipelines(ctx, &cp.ListPipelinesInput{MaxResults: aws.Int32(2)}))
		_, mac, _ := strings.Cut(*first.NextToken, ".")
		tampered := "cGlwZS0w." + mac // another key ("pipe-0") under the genuine signature
		_, err := e.client.ListPipelines(ctx, &cp.ListPipelinesInput{NextToken: aws.String(tampered)})
		wantError(t, err, "InvalidNextTokenException", "nextToken")
		_, err = e.client.ListPipelines(ctx, &cp.ListPipelinesInput{NextToken: aws.String("garbage")})
		wantError(t, err, "InvalidNextTokenException", "nextToken")
		_, err = e.client.ListWebhooks(ctx, &cp.ListWebhooksInput{NextToken: first.NextToken})
		wantError(t, err, "InvalidNextTokenException", "nextToken")
	})
}

func TestSecretsAreMaskedAndKept(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		p := minimal("gh")
		p.Stages[0].Actions[0] = types.ActionDeclaration{
			Name:            aws.String("src"),
			ActionTypeId:    typeID(types.ActionCategorySource, types.ActionOwnerThirdParty, "GitHub"),
			Configuration:   map[string]string{"Owner": "me", "Repo": "app", "Branch": "main", "OAuthToken": "ghp_real"},
			OutputArtifacts: []types.OutputArtifact{{Name: aws.String("code")}},
		}
		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}))
		got := must[*cp.GetPipelineOutput](t)(e.client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("gh")}))
		if tok := got.Pipeline.Stages[0].Actions[0].Configuration["OAuthToken"]; tok != "****" {
			t.Fatalf("OAuthToken reads %q, want it masked", tok)
		}
		// Sending the masked declaration back keeps the stored secret; a new value replaces it.
		must[*cp.UpdatePipelineOutput](t)(e.client.UpdatePipeline(ctx, &cp.UpdatePipelineInput{Pipeline: got.Pipeline}))
		stored, err := e.store.GetPipeline(ctx, "gh", 2)
		if err != nil || !strings.Contains(string(stored.Declaration), `"OAuthToken":"ghp_real"`) {
			t.Fatalf("version 2 lost the secret: %s, %v", stored.Declaration, err)
		}
		got.Pipeline.Stages[0].Actions[0].Configuration["OAuthToken"] = "ghp_new"
		must[*cp.UpdatePipelineOutput](t)(e.client.UpdatePipeline(ctx, &cp.UpdatePipelineInput{Pipeline: got.Pipeline}))
		if stored, _ := e.store.GetPipeline(ctx, "gh", 3); !strings.Contains(string(stored.Declaration), `"OAuthToken":"ghp_new"`) {
			t.Fatalf("version 3 did not take the new secret: %s", stored.Declaration)
		}
	})
}
