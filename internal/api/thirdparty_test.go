package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/sluicehq/sluice/internal/api"
)

// githubPipeline has a third-party GitHub (v1) source and a manual approval, and runs once.
func githubPipeline(t *testing.T, e *env, name string) {
	t.Helper()
	createGitHubPipeline(t, e, name)
	must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String(name)}))
}

func createGitHubPipeline(t *testing.T, e *env, name string) {
	t.Helper()
	p := minimal(name)
	p.Stages[0].Actions[0] = types.ActionDeclaration{
		Name: aws.String("src"), ActionTypeId: typeID(types.ActionCategorySource, types.ActionOwnerThirdParty, "GitHub"),
		Configuration:   map[string]string{"Owner": "octo", "Repo": "app", "Branch": "main", "OAuthToken": "secret-token"},
		OutputArtifacts: []types.OutputArtifact{{Name: aws.String("code")}},
	}
	must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}))
}

func TestThirdPartyJobProtocol(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		githubPipeline(t, e, "partner")
		id := typeID(types.ActionCategorySource, types.ActionOwnerThirdParty, "GitHub")

		_, err := e.client.PollForThirdPartyJobs(ctx, &cp.PollForThirdPartyJobsInput{ActionTypeId: typeID(types.ActionCategorySource, types.ActionOwnerThirdParty, "Nope")})
		wantError(t, err, "ActionTypeNotFoundException", "Nope")
		var jobs []types.ThirdPartyJob
		for deadline := time.Now().Add(5 * time.Second); len(jobs) == 0 && time.Now().Before(deadline); {
			jobs = must[*cp.PollForThirdPartyJobsOutput](t)(e.client.PollForThirdPartyJobs(ctx, &cp.PollForThirdPartyJobsInput{ActionTypeId: id, MaxBatchSize: aws.Int32(5)})).Jobs
		}
		if len(jobs) != 1 || jobs[0].ClientId == nil || jobs[0].JobId == nil {
			t.Fatalf("polled %+v, want one job with a client id", jobs)
		}
		job, token := jobs[0].JobId, jobs[0].ClientId

		_, err = e.client.GetThirdPartyJobDetails(ctx, &cp.GetThirdPartyJobDetailsInput{JobId: job, ClientToken: aws.String("00000000-0000-0000-0000-000000000000")})
		wantError(t, err, "InvalidClientTokenException", *job)
		_, err = e.client.GetThirdPartyJobDetails(ctx, &cp.GetThirdPartyJobDetailsInput{JobId: aws.String("11111111-2222-3333-4444-555555555555"), ClientToken: token})
		wantError(t, err, "JobNotFoundException", "11111111-2222-3333-4444-555555555555")

		details := must[*cp.GetThirdPartyJobDetailsOutput](t)(e.client.GetThirdPartyJobDetails(ctx, &cp.GetThirdPartyJobDetailsInput{JobId: job, ClientToken: token})).JobDetails
		data := details.Data
		if data.PipelineContext.PipelineArn != nil || data.PipelineContext.PipelineExecutionId != nil || aws.ToString(data.PipelineContext.PipelineName) != "partner" {
			t.Fatalf("third-party pipeline context %+v: want the name without ARN and execution id", data.PipelineContext)
		}
		if data.ActionConfiguration.Configuration["OAuthToken"] != "secret-token" || data.ArtifactCredentials == nil {
			t.Fatalf("job data lacks the configuration's secret or artifact credentials: %+v", data)
		}
		if loc := data.OutputArtifacts[0].Location.S3Location; aws.ToString(loc.BucketName) != "artifacts" {
			t.Fatalf("output artifact location %+v", loc)
		}

		_, err = e.client.AcknowledgeThirdPartyJob(ctx, &cp.AcknowledgeThirdPartyJobInput{JobId: job, Nonce: details.Nonce, ClientToken: aws.String("00000000-0000-0000-0000-000000000000")})
		wantError(t, err, "InvalidClientTokenException", "")
		_, err = e.client.AcknowledgeThirdPartyJob(ctx, &cp.AcknowledgeThirdPartyJobInput{JobId: job, Nonce: aws.String("wrong"), ClientToken: token})
		wantError(t, err, "InvalidNonceException", "")
		ack := must[*cp.AcknowledgeThirdPartyJobOutput](t)(e.client.AcknowledgeThirdPartyJob(ctx, &cp.AcknowledgeThirdPartyJobInput{JobId: job, Nonce: details.Nonce, ClientToken: token}))
		if ack.Status != types.JobStatusInProgress {
			t.Fatalf("acknowledged status %s", ack.Status)
		}

		err = putThirdPartySuccess(e, job, aws.String("00000000-0000-0000-0000-000000000000"))
		wantError(t, err, "InvalidClientTokenException", "")
		if err := putThirdPartySuccess(e, job, token); err != nil {
			t.Fatal(err)
		}
		wantError(t, putThirdPartySuccess(e, job, token), "InvalidJobStateException", "")
		_, err = e.client.PutThirdPartyJobFailureResult(ctx, &cp.PutThirdPartyJobFailureResultInput{JobId: job, ClientToken: token,
			FailureDetails: &types.FailureDetails{Type: types.FailureTypeJobFailed, Message: aws.String("late")}})
		wantError(t, err, "InvalidJobStateException", "")

		state := must[*cp.GetPipelineStateOutput](t)(e.client.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String("partner")}))
		src := state.StageStates[0].ActionStates[0]
		if src.LatestExecution.Status != types.ActionExecutionStatusSucceeded || aws.ToString(src.CurrentRevision.RevisionId) != "abc123" {
			t.Fatalf("source action state %+v, want Succeeded at revision abc123", src)
		}

		// A custom job is not a third-party job.
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		p := minimal("custom")
		p.Stages[0].Actions[0] = types.ActionDeclaration{Name: aws.String("src"), ActionTypeId: typeID(types.ActionCategorySource, types.ActionOwnerCustom, "Fetch"),
			OutputArtifacts: []types.OutputArtifact{{Name: aws.String("code")}}}
		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}))
		must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("custom")}))
		customJob := work(t, e, types.ActionCategorySource, "Fetch", true, nil)
		_, err = e.client.GetThirdPartyJobDetails(ctx, &cp.GetThirdPartyJobDetailsInput{JobId: customJob.Id, ClientToken: token})
		wantError(t, err, "InvalidJobException", *customJob.Id)
	})
}

func putThirdPartySuccess(e *env, job, token *string) error {
	_, err := e.client.PutThirdPartyJobSuccessResult(ctx, &cp.PutThirdPartyJobSuccessResultInput{JobId: job, ClientToken: token,
		CurrentRevision: &types.CurrentRevision{Revision: aws.String("abc123"), ChangeIdentifier: aws.String("change-1")}})
	return err
}

func TestPutActionRevision(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryBuild, "Make", 1, 0)
		jobPipeline(e, t, "rev", types.ExecutionModeParallel)
		put := func(stage, action, revision string) (*cp.PutActionRevisionOutput, error) {
			return e.client.PutActionRevision(ctx, &cp.PutActionRevisionInput{PipelineName: aws.String("rev"), StageName: aws.String(stage), ActionName: aws.String(action),
				ActionRevision: &types.ActionRevision{RevisionId: aws.String(revision), RevisionChangeId: aws.String("change-" + revision), Created: aws.Time(time.Unix(1_700_000_000, 0))}})
		}
		_, err := put("Nope", "src", "r1")
		wantError(t, err, "StageNotFoundException", "Nope")
		_, err = put("Source", "nope", "r1")
		wantError(t, err, "ActionNotFoundException", "nope")
		_, err = e.client.PutActionRevision(ctx, &cp.PutActionRevisionInput{PipelineName: aws.String("missing"), StageName: aws.String("Source"), ActionName: aws.String("src"),
			ActionRevision: &types.ActionRevision{RevisionId: aws.String("r"), RevisionChangeId: aws.String("c"), Created: aws.Time(time.Now())}})
		wantError(t, err, "PipelineNotFoundException", "missing")

		first := must[*cp.PutActionRevisionOutput](t)(put("Source", "src", "r1"))
		if !first.NewRevision || first.PipelineExecutionId == nil {
			t.Fatalf("first revision: %+v, want a new revision starting an execution", first)
		}
		again := must[*cp.PutActionRevisionOutput](t)(put("Source", "src", "r1"))
		if again.NewRevision || aws.ToString(again.PipelineExecutionId) != *first.PipelineExecutionId {
			t.Fatalf("same revision again: %+v, want not new, naming the execution that ran it", again)
		}
		exec := must[*cp.GetPipelineExecutionOutput](t)(e.client.GetPipelineExecution(ctx, &cp.GetPipelineExecutionInput{PipelineName: aws.String("rev"), PipelineExecutionId: first.PipelineExecutionId})).PipelineExecution
		if exec.Trigger.TriggerType != types.TriggerTypePutActionRevision {
			t.Fatalf("execution trigger %s, want PutActionRevision", exec.Trigger.TriggerType)
		}
		state := must[*cp.GetPipelineStateOutput](t)(e.client.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String("rev")}))
		if rev := state.StageStates[0].ActionStates[0].CurrentRevision; rev == nil || aws.ToString(rev.RevisionId) != "r1" || aws.ToString(rev.RevisionChangeId) != "change-r1" {
			t.Fatalf("source action's current revision %+v, want r1", rev)
		}
		second := must[*cp.PutActionRevisionOutput](t)(put("Source", "src", "r2"))
		if !second.NewRevision || aws.ToString(second.PipelineExecutionId) == *first.PipelineExecutionId {
			t.Fatalf("second revision: %+v", second)
		}
	})
}

func TestProvidersRoutedToJobWorkers(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		p := minimal("routed")
		p.Stages[0].Actions[0] = types.ActionDeclaration{Name: aws.String("src"), ActionTypeId: typeID(types.ActionCategorySource, types.ActionOwnerCustom, "Fetch"),
			OutputArtifacts: []types.OutputArtifact{{Name: aws.String("code")}}}
		p.Stages[1] = types.StageDeclaration{Name: aws.String("Deploy"), Actions: []types.ActionDeclaration{
			{Name: aws.String("stack"), ActionTypeId: typeID(types.ActionCategoryDeploy, types.ActionOwnerAws, "CloudFormation"),
				Configuration: map[string]string{"ActionMode": "CREATE_UPDATE", "StackName": "app"}, InputArtifacts: []types.InputArtifact{{Name: aws.String("code")}}},
			{Name: aws.String("deploy"), ActionTypeId: typeID(types.ActionCategoryDeploy, types.ActionOwnerAws, "CodeDeploy"),
				Configuration: map[string]string{"ApplicationName": "app", "DeploymentGroupName": "g"}, InputArtifacts: []types.InputArtifact{{Name: aws.String("code")}}},
		}}
		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}))
		must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("routed")}))
		work(t, e, types.ActionCategorySource, "Fetch", true, nil)

		// CloudFormation is routed to job workers (see newEnv); CodeDeploy has no runner and no route.
		cfn := typeID(types.ActionCategoryDeploy, types.ActionOwnerAws, "CloudFormation")
		var jobs []types.Job
		for deadline := time.Now().Add(5 * time.Second); len(jobs) == 0 && time.Now().Before(deadline); {
			jobs = must[*cp.PollForJobsOutput](t)(e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: cfn})).Jobs
		}
		if len(jobs) != 1 || jobs[0].Data.ActionConfiguration.Configuration["StackName"] != "app" || len(jobs[0].Data.InputArtifacts) != 1 {
			t.Fatalf("CloudFormation jobs %+v", jobs)
		}
		execs := must[*cp.ListActionExecutionsOutput](t)(e.client.ListActionExecutions(ctx, &cp.ListActionExecutionsInput{PipelineName: aws.String("routed")})).ActionExecutionDetails
		for _, d := range execs {
			if aws.ToString(d.ActionName) != "deploy" {
				continue
			}
			msg := aws.ToString(d.Output.ExecutionResult.ErrorDetails.Message)
			if d.Status != types.ActionExecutionStatusFailed || msg == "" || !strings.Contains(msg, "CodeDeploy") || !strings.Contains(msg, "--worker-providers") {
				t.Fatalf("unrouted CodeDeploy action: %s %q, want Failed naming the provider and the flag", d.Status, msg)
			}
		}
		_, err := e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: typeID(types.ActionCategoryDeploy, types.ActionOwnerAws, "NoSuchThing")})
		wantError(t, err, "ActionTypeNotFoundException", "NoSuchThing")
	})
}

func TestRegionalArtifactStoresAndEncryptionKeys(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		p := minimal("regional")
		p.ArtifactStore = nil
		p.ArtifactStores = map[string]types.ArtifactStore{
			"us-east-1": {Type: types.ArtifactStoreTypeS3, Location: aws.String("east-bucket"),
				EncryptionKey: &types.EncryptionKey{Id: aws.String("arn:aws:kms:us-east-1:123456789012:key/k"), Type: types.EncryptionKeyTypeKms}},
			"eu-west-1": {Type: types.ArtifactStoreTypeS3, Location: aws.String("west-bucket")},
		}
		p.Stages[0].Actions = []types.ActionDeclaration{{Name: aws.String("east"), ActionTypeId: typeID(types.ActionCategorySource, types.ActionOwnerCustom, "Fetch"),
			OutputArtifacts: []types.OutputArtifact{{Name: aws.String("e")}}}}
		cfn := typeID(types.ActionCategoryDeploy, types.ActionOwnerAws, "CloudFormation")
		p.Stages[1] = types.StageDeclaration{Name: aws.String("Deploy"), Actions: []types.ActionDeclaration{{Name: aws.String("west"), ActionTypeId: cfn,
			Region: aws.String("eu-west-1"), Configuration: map[string]string{"ActionMode": "CREATE_UPDATE", "StackName": "s"},
			InputArtifacts: []types.InputArtifact{{Name: aws.String("e")}}, OutputArtifacts: []types.OutputArtifact{{Name: aws.String("w")}}}}}
		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}))
		must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("regional")}))
		east := work(t, e, types.ActionCategorySource, "Fetch", true, nil)
		if b, k := aws.ToString(east.Data.OutputArtifacts[0].Location.S3Location.BucketName), east.Data.EncryptionKey; b != "east-bucket" || k == nil || aws.ToString(k.Id) != "arn:aws:kms:us-east-1:123456789012:key/k" {
			t.Fatalf("us-east-1 job: bucket %s, key %+v", b, k)
		}
		jobs := must[*cp.PollForJobsOutput](t)(e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: cfn})).Jobs
		if len(jobs) != 1 {
			t.Fatalf("polled %d CloudFormation jobs, want 1", len(jobs))
		}
		west := jobs[0].Data
		if b, k := aws.ToString(west.OutputArtifacts[0].Location.S3Location.BucketName), west.EncryptionKey; b != "west-bucket" || k != nil {
			t.Fatalf("eu-west-1 job: bucket %s, key %+v", b, k)
		}
		in := west.InputArtifacts[0].Location.S3Location
		if aws.ToString(in.BucketName) != "east-bucket" || aws.ToString(in.ObjectKey) != aws.ToString(east.Data.OutputArtifacts[0].Location.S3Location.ObjectKey) {
			t.Fatalf("eu-west-1 job's input %+v is not where the source stored it", in)
		}
	})
}

func TestActionStatesLinkToTheSourceAndItsRevision(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		createGitHubPipeline(t, e, "linked")
		must[*cp.PutActionRevisionOutput](t)(e.client.PutActionRevision(ctx, &cp.PutActionRevisionInput{PipelineName: aws.String("linked"), StageName: aws.String("Source"), ActionName: aws.String("src"),
			ActionRevision: &types.ActionRevision{RevisionId: aws.String("0123abc"), RevisionChangeId: aws.String("0123abc"), Created: aws.Time(time.Now())}}))
		state := must[*cp.GetPipelineStateOutput](t)(e.client.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String("linked")}))
		src := state.StageStates[0].ActionStates[0]
		if got := aws.ToString(src.EntityUrl); got != "https://github.com/octo/app/tree/main" {
			t.Errorf("entityUrl %q", got)
		}
		if got := aws.ToString(src.RevisionUrl); got != "https://github.com/octo/app/commit/0123abc" {
			t.Errorf("revisionUrl %q", got)
		}
		if approval := state.StageStates[1].ActionStates[0]; approval.EntityUrl != nil || approval.RevisionUrl != nil {
			t.Errorf("the approval has links %v %v", aws.ToString(approval.EntityUrl), aws.ToString(approval.RevisionUrl))
		}
	})
}

func TestActionExecutionsMaskSecrets(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		githubPipeline(t, e, "secrets")
		createMake(e, t, "1")
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		p := minimal("custom-secrets")
		p.Stages[0].Actions[0] = types.ActionDeclaration{Name: aws.String("src"), ActionTypeId: typeID(types.ActionCategorySource, types.ActionOwnerCustom, "Fetch"),
			OutputArtifacts: []types.OutputArtifact{{Name: aws.String("code")}}}
		p.Stages[1].Actions = []types.ActionDeclaration{{
			Name: aws.String("make"), ActionTypeId: typeID(types.ActionCategoryBuild, types.ActionOwnerCustom, "Make"),
			Configuration: map[string]string{"Target": "#{codepipeline.PipelineExecutionId}", "Token": "s3cr3t"}, InputArtifacts: []types.InputArtifact{{Name: aws.String("code")}},
		}}
		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}))
		must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("custom-secrets")}))
		work(t, e, types.ActionCategorySource, "Fetch", true, nil)

		seen := map[string]bool{}
		for deadline := time.Now().Add(5 * time.Second); len(seen) < 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for _, name := range []string{"secrets", "custom-secrets"} {
				out := must[*cp.ListActionExecutionsOutput](t)(e.client.ListActionExecutions(ctx, &cp.ListActionExecutionsInput{PipelineName: aws.String(name)}))
				for _, d := range out.ActionExecutionDetails {
					for _, config := range []map[string]string{d.Input.Configuration, d.Input.ResolvedConfiguration} {
						for k, v := range config {
							if v == "secret-token" || v == "s3cr3t" {
								t.Fatalf("%s's action %s answers its secret %s in clear", name, *d.ActionName, k)
							}
						}
					}
					if d.Input.ResolvedConfiguration["OAuthToken"] == "****" || d.Input.ResolvedConfiguration["Token"] == "****" {
						seen[name] = true
					}
				}
			}
		}
		if len(seen) < 2 {
			t.Fatalf("the secret properties were not shown masked in both pipelines: %v", seen)
		}
	})
}
