package protocol

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/sluicehq/sluice/internal/model"
)

const (
	jobID  = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
	execID = "7d2ce8a4-4b5e-4a3e-9d0e-2f0c7f1a9b11"
	arn    = "arn:aws:codepipeline:us-east-1:000000000000:my-pipe"
)

// TestSDKRequestsDecodeIntoTypedInputs sends one well-formed request per operation with
// aws-sdk-go-v2 and checks the typed input the service receives.
func TestSDKRequestsDecodeIntoTypedInputs(t *testing.T) {
	rec := &recorder{}
	srv := newTestServer(t, rec, 0)
	client := cp.New(cp.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	})
	ctx := context.Background()
	created := time.Unix(1700000000, 250_000_000)
	typeID := &types.ActionTypeId{Category: types.ActionCategoryBuild, Owner: types.ActionOwnerCustom, Provider: aws.String("Make"), Version: aws.String("1")}
	const typeIDJSON = `{"category":"Build","owner":"Custom","provider":"Make","version":"1"}`
	pipeline := &types.PipelineDeclaration{
		Name: aws.String("my-pipe"), RoleArn: aws.String("arn:aws:iam::000000000000:role/r"),
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("bucket")},
		PipelineType:  types.PipelineTypeV2, ExecutionMode: types.ExecutionModeQueued,
		Stages: []types.StageDeclaration{{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{
			Name: aws.String("src"), ActionTypeId: typeID, RunOrder: aws.Int32(2),
			Configuration:   map[string]string{"Key": "Value"},
			OutputArtifacts: []types.OutputArtifact{{Name: aws.String("out")}},
		}}}},
		Variables: []types.PipelineVariableDeclaration{{Name: aws.String("env"), DefaultValue: aws.String("dev")}},
	}
	const pipelineJSON = `{"name":"my-pipe","roleArn":"arn:aws:iam::000000000000:role/r","artifactStore":{"type":"S3","location":"bucket"},
		"stages":[{"name":"Source","actions":[{"name":"src","actionTypeId":` + typeIDJSON + `,"runOrder":2,"configuration":{"Key":"Value"},"outputArtifacts":[{"name":"out"}]}]}],
		"executionMode":"QUEUED","pipelineType":"V2","variables":[{"name":"env","defaultValue":"dev"}]}`
	artifactDetails := &types.ArtifactDetails{MinimumCount: 0, MaximumCount: 1}

	tests := []struct {
		op   string
		call func() error
		want string
	}{
		{"AcknowledgeJob", func() error {
			_, err := client.AcknowledgeJob(ctx, &cp.AcknowledgeJobInput{JobId: aws.String(jobID), Nonce: aws.String("n1")})
			return err
		}, `{"jobId":"` + jobID + `","nonce":"n1"}`},
		{"AcknowledgeThirdPartyJob", func() error {
			_, err := client.AcknowledgeThirdPartyJob(ctx, &cp.AcknowledgeThirdPartyJobInput{JobId: aws.String("job"), Nonce: aws.String("n1"), ClientToken: aws.String("tok")})
			return err
		}, `{"jobId":"job","nonce":"n1","clientToken":"tok"}`},
		{"CreateCustomActionType", func() error {
			_, err := client.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{
				Category: types.ActionCategoryBuild, Provider: aws.String("Make"), Version: aws.String("1"),
				InputArtifactDetails: artifactDetails, OutputArtifactDetails: artifactDetails,
				ConfigurationProperties: []types.ActionConfigurationProperty{{Name: aws.String("Target"), Required: true, Key: true, Secret: false, Queryable: true, Type: types.ActionConfigurationPropertyTypeString}},
				Tags:                    []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}},
			})
			return err
		}, `{"category":"Build","provider":"Make","version":"1","configurationProperties":[{"name":"Target","required":true,"key":true,"secret":false,"queryable":true,"type":"String"}],
			"inputArtifactDetails":{"minimumCount":0,"maximumCount":1},"outputArtifactDetails":{"minimumCount":0,"maximumCount":1},"tags":[{"key":"team","value":"a"}]}`},
		{"CreatePipeline", func() error {
			_, err := client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: pipeline, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		}, `{"pipeline":` + pipelineJSON + `,"tags":[{"key":"k","value":"v"}]}`},
		{"DeleteCustomActionType", func() error {
			_, err := client.DeleteCustomActionType(ctx, &cp.DeleteCustomActionTypeInput{Category: types.ActionCategoryBuild, Provider: aws.String("Make"), Version: aws.String("1")})
			return err
		}, `{"category":"Build","provider":"Make","version":"1"}`},
		{"DeletePipeline", func() error {
			_, err := client.DeletePipeline(ctx, &cp.DeletePipelineInput{Name: aws.String("my-pipe")})
			return err
		}, `{"name":"my-pipe"}`},
		{"DeleteWebhook", func() error {
			_, err := client.DeleteWebhook(ctx, &cp.DeleteWebhookInput{Name: aws.String("hook")})
			return err
		}, `{"name":"hook"}`},
		{"DeregisterWebhookWithThirdParty", func() error {
			_, err := client.DeregisterWebhookWithThirdParty(ctx, &cp.DeregisterWebhookWithThirdPartyInput{WebhookName: aws.String("hook")})
			return err
		}, `{"webhookName":"hook"}`},
		{"DisableStageTransition", func() error {
			_, err := client.DisableStageTransition(ctx, &cp.DisableStageTransitionInput{PipelineName: aws.String("my-pipe"), StageName: aws.String("Build"), TransitionType: types.StageTransitionTypeInbound, Reason: aws.String("freeze")})
			return err
		}, `{"pipelineName":"my-pipe","stageName":"Build","transitionType":"Inbound","reason":"freeze"}`},
		{"EnableStageTransition", func() error {
			_, err := client.EnableStageTransition(ctx, &cp.EnableStageTransitionInput{PipelineName: aws.String("my-pipe"), StageName: aws.String("Build"), TransitionType: types.StageTransitionTypeOutbound})
			return err
		}, `{"pipelineName":"my-pipe","stageName":"Build","transitionType":"Outbound"}`},
		{"GetActionType", func() error {
			_, err := client.GetActionType(ctx, &cp.GetActionTypeInput{Category: types.ActionCategoryDeploy, Owner: aws.String("AWS"), Provider: aws.String("S3"), Version: aws.String("1")})
			return err
		}, `{"category":"Deploy","owner":"AWS","provider":"S3","version":"1"}`},
		{"GetJobDetails", func() error {
			_, err := client.GetJobDetails(ctx, &cp.GetJobDetailsInput{JobId: aws.String(jobID)})
			return err
		}, `{"jobId":"` + jobID + `"}`},
		{"GetPipeline", func() error {
			_, err := client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("my-pipe"), Version: aws.Int32(4)})
			return err
		}, `{"name":"my-pipe","version":4}`},
		{"GetPipelineExecution", func() error {
			_, err := client.GetPipelineExecution(ctx, &cp.GetPipelineExecutionInput{PipelineName: aws.String("my-pipe"), PipelineExecutionId: aws.String(execID)})
			return err
		}, `{"pipelineName":"my-pipe","pipelineExecutionId":"` + execID + `"}`},
		{"GetPipelineState", func() error {
			_, err := client.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String("my-pipe")})
			return err
		}, `{"name":"my-pipe"}`},
		{"GetThirdPartyJobDetails", func() error {
			_, err := client.GetThirdPartyJobDetails(ctx, &cp.GetThirdPartyJobDetailsInput{JobId: aws.String("job"), ClientToken: aws.String("tok")})
			return err
		}, `{"jobId":"job","clientToken":"tok"}`},
		{"ListActionExecutions", func() error {
			_, err := client.ListActionExecutions(ctx, &cp.ListActionExecutionsInput{PipelineName: aws.String("my-pipe"), Filter: &types.ActionExecutionFilter{PipelineExecutionId: aws.String(execID), LatestInPipelineExecution: &types.LatestInPipelineExecutionFilter{PipelineExecutionId: aws.String(execID), StartTimeRange: types.StartTimeRangeAll}}, MaxResults: aws.Int32(50), NextToken: aws.String("t")})
			return err
		}, `{"pipelineName":"my-pipe","filter":{"pipelineExecutionId":"` + execID + `","latestInPipelineExecution":{"pipelineExecutionId":"` + execID + `","startTimeRange":"All"}},"maxResults":50,"nextToken":"t"}`},
		{"ListActionTypes", func() error {
			_, err := client.ListActionTypes(ctx, &cp.ListActionTypesInput{ActionOwnerFilter: types.ActionOwnerAws, RegionFilter: aws.String("us-west-2")})
			return err
		}, `{"actionOwnerFilter":"AWS","regionFilter":"us-west-2"}`},
		{"ListDeployActionExecutionTargets", func() error {
			_, err := client.ListDeployActionExecutionTargets(ctx, &cp.ListDeployActionExecutionTargetsInput{PipelineName: aws.String("my-pipe"), ActionExecutionId: aws.String("ae"), Filters: []types.TargetFilter{{Name: types.TargetFilterNameTargetStatus, Values: []string{"Succeeded"}}}})
			return err
		}, `{"pipelineName":"my-pipe","actionExecutionId":"ae","filters":[{"name":"TARGET_STATUS","values":["Succeeded"]}]}`},
		{"ListPipelineExecutions", func() error {
			_, err := client.ListPipelineExecutions(ctx, &cp.ListPipelineExecutionsInput{PipelineName: aws.String("my-pipe"), Filter: &types.PipelineExecutionFilter{SucceededInStage: &types.SucceededInStageFilter{StageName: aws.String("Deploy")}}, MaxResults: aws.Int32(10)})
			return err
		}, `{"pipelineName":"my-pipe","maxResults":10,"filter":{"succeededInStage":{"stageName":"Deploy"}}}`},
		{"ListPipelines", func() error {
			_, err := client.ListPipelines(ctx, &cp.ListPipelinesInput{MaxResults: aws.Int32(1000), NextToken: aws.String("next")})
			return err
		}, `{"nextToken":"next","maxResults":1000}`},
		{"ListRuleExecutions", func() error {
			_, err := client.ListRuleExecutions(ctx, &cp.ListRuleExecutionsInput{PipelineName: aws.String("my-pipe"), Filter: &types.RuleExecutionFilter{PipelineExecutionId: aws.String(execID)}})
			return err
		}, `{"pipelineName":"my-pipe","filter":{"pipelineExecutionId":"` + execID + `"}}`},
		{"ListRuleTypes", func() error {
			_, err := client.ListRuleTypes(ctx, &cp.ListRuleTypesInput{RuleOwnerFilter: types.RuleOwnerAws})
			return err
		}, `{"ruleOwnerFilter":"AWS"}`},
		{"ListTagsForResource", func() error {
			_, err := client.ListTagsForResource(ctx, &cp.ListTagsForResourceInput{ResourceArn: aws.String(arn), MaxResults: aws.Int32(5)})
			return err
		}, `{"resourceArn":"` + arn + `","maxResults":5}`},
		{"ListWebhooks", func() error {
			_, err := client.ListWebhooks(ctx, &cp.ListWebhooksInput{MaxResults: aws.Int32(2)})
			return err
		}, `{"MaxResults":2}`},
		{"OverrideStageCondition", func() error {
			_, err := client.OverrideStageCondition(ctx, &cp.OverrideStageConditionInput{PipelineName: aws.String("my-pipe"), StageName: aws.String("Deploy"), PipelineExecutionId: aws.String(execID), ConditionType: types.ConditionTypeBeforeEntry})
			return err
		}, `{"pipelineName":"my-pipe","stageName":"Deploy","pipelineExecutionId":"` + execID + `","conditionType":"BEFORE_ENTRY"}`},
		{"PollForJobs", func() error {
			_, err := client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: typeID, MaxBatchSize: aws.Int32(3), QueryParam: map[string]string{"Target": "all"}})
			return err
		}, `{"actionTypeId":` + typeIDJSON + `,"maxBatchSize":3,"queryParam":{"Target":"all"}}`},
		{"PollForThirdPartyJobs", func() error {
			_, err := client.PollForThirdPartyJobs(ctx, &cp.PollForThirdPartyJobsInput{ActionTypeId: typeID, MaxBatchSize: aws.Int32(1)})
			return err
		}, `{"actionTypeId":` + typeIDJSON + `,"maxBatchSize":1}`},
		{"PutActionRevision", func() error {
			_, err := client.PutActionRevision(ctx, &cp.PutActionRevisionInput{PipelineName: aws.String("my-pipe"), StageName: aws.String("Source"), ActionName: aws.String("src"),
				ActionRevision: &types.ActionRevision{RevisionId: aws.String("r1"), RevisionChangeId: aws.String("c1"), Created: aws.Time(created)}})
			return err
		}, `{"pipelineName":"my-pipe","stageName":"Source","actionName":"src","actionRevision":{"revisionId":"r1","revisionChangeId":"c1","created":1700000000.25}}`},
		{"PutApprovalResult", func() error {
			_, err := client.PutApprovalResult(ctx, &cp.PutApprovalResultInput{PipelineName: aws.String("my-pipe"), StageName: aws.String("Approve"), ActionName: aws.String("ok"),
				Result: &types.ApprovalResult{Status: types.ApprovalStatusApproved, Summary: aws.String("ship it")}, Token: aws.String(jobID)})
			return err
		}, `{"pipelineName":"my-pipe","stageName":"Approve","actionName":"ok","result":{"summary":"ship it","status":"Approved"},"token":"` + jobID + `"}`},
		{"PutJobFailureResult", func() error {
			_, err := client.PutJobFailureResult(ctx, &cp.PutJobFailureResultInput{JobId: aws.String(jobID), FailureDetails: &types.FailureDetails{Type: types.FailureTypeJobFailed, Message: aws.String("broke"), ExternalExecutionId: aws.String("x1")}})
			return err
		}, `{"jobId":"` + jobID + `","failureDetails":{"type":"JobFailed","message":"broke","externalExecutionId":"x1"}}`},
		{"PutJobSuccessResult", func() error {
			_, err := client.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: aws.String(jobID), ContinuationToken: aws.String("more"),
				CurrentRevision:  &types.CurrentRevision{Revision: aws.String("r"), ChangeIdentifier: aws.String("c"), Created: aws.Time(created)},
				ExecutionDetails: &types.ExecutionDetails{Summary: aws.String("done"), PercentComplete: aws.Int32(50)}, OutputVariables: map[string]string{"Out": "1"}})
			return err
		}, `{"jobId":"` + jobID + `","currentRevision":{"revision":"r","changeIdentifier":"c","created":1700000000.25},"continuationToken":"more","executionDetails":{"summary":"done","percentComplete":50},"outputVariables":{"Out":"1"}}`},
		{"PutThirdPartyJobFailureResult", func() error {
			_, err := client.PutThirdPartyJobFailureResult(ctx, &cp.PutThirdPartyJobFailureResultInput{JobId: aws.String("job"), ClientToken: aws.String("tok"), FailureDetails: &types.FailureDetails{Type: types.FailureTypeConfigurationError, Message: aws.String("m")}})
			return err
		}, `{"jobId":"job","clientToken":"tok","failureDetails":{"type":"ConfigurationError","message":"m"}}`},
		{"PutThirdPartyJobSuccessResult", func() error {
			_, err := client.PutThirdPartyJobSuccessResult(ctx, &cp.PutThirdPartyJobSuccessResultInput{JobId: aws.String("job"), ClientToken: aws.String("tok"), ContinuationToken: aws.String("c")})
			return err
		}, `{"jobId":"job","clientToken":"tok","continuationToken":"c"}`},
		{"PutWebhook", func() error {
			_, err := client.PutWebhook(ctx, &cp.PutWebhookInput{Webhook: &types.WebhookDefinition{Name: aws.String("hook"), TargetPipeline: aws.String("my-pipe"), TargetAction: aws.String("src"),
				Filters:                     []types.WebhookFilterRule{{JsonPath: aws.String("$.ref"), MatchEquals: aws.String("refs/heads/{Branch}")}},
				Authentication:              types.WebhookAuthenticationTypeGithubHmac,
				AuthenticationConfiguration: &types.WebhookAuthConfiguration{SecretToken: aws.String("s3cret")}}})
			return err
		}, `{"webhook":{"name":"hook","targetPipeline":"my-pipe","targetAction":"src","filters":[{"jsonPath":"$.ref","matchEquals":"refs/heads/{Branch}"}],"authentication":"GITHUB_HMAC","authenticationConfiguration":{"SecretToken":"s3cret"}}}`},
		{"RegisterWebhookWithThirdParty", func() error {
			_, err := client.RegisterWebhookWithThirdParty(ctx, &cp.RegisterWebhookWithThirdPartyInput{WebhookName: aws.String("hook")})
			return err
		}, `{"webhookName":"hook"}`},
		{"RetryStageExecution", func() error {
			_, err := client.RetryStageExecution(ctx, &cp.RetryStageExecutionInput{PipelineName: aws.String("my-pipe"), StageName: aws.String("Build"), PipelineExecutionId: aws.String(execID), RetryMode: types.StageRetryModeFailedActions})
			return err
		}, `{"pipelineName":"my-pipe","stageName":"Build","pipelineExecutionId":"` + execID + `","retryMode":"FAILED_ACTIONS"}`},
		{"RollbackStage", func() error {
			_, err := client.RollbackStage(ctx, &cp.RollbackStageInput{PipelineName: aws.String("my-pipe"), StageName: aws.String("Deploy"), TargetPipelineExecutionId: aws.String(execID)})
			return err
		}, `{"pipelineName":"my-pipe","stageName":"Deploy","targetPipelineExecutionId":"` + execID + `"}`},
		{"StartPipelineExecution", func() error {
			_, err := client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("my-pipe"), ClientRequestToken: aws.String("tok-1"),
				Variables:       []types.PipelineVariable{{Name: aws.String("env"), Value: aws.String("prod")}},
				SourceRevisions: []types.SourceRevisionOverride{{ActionName: aws.String("src"), RevisionType: types.SourceRevisionTypeCommitId, RevisionValue: aws.String("abc")}}})
			return err
		}, `{"name":"my-pipe","variables":[{"name":"env","value":"prod"}],"clientRequestToken":"tok-1","sourceRevisions":[{"actionName":"src","revisionType":"COMMIT_ID","revisionValue":"abc"}]}`},
		{"StopPipelineExecution", func() error {
			_, err := client.StopPipelineExecution(ctx, &cp.StopPipelineExecutionInput{PipelineName: aws.String("my-pipe"), PipelineExecutionId: aws.String(execID), Abandon: true, Reason: aws.String("enough")})
			return err
		}, `{"pipelineName":"my-pipe","pipelineExecutionId":"` + execID + `","abandon":true,"reason":"enough"}`},
		{"TagResource", func() error {
			_, err := client.TagResource(ctx, &cp.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		}, `{"resourceArn":"` + arn + `","tags":[{"key":"k","value":"v"}]}`},
		{"UntagResource", func() error {
			_, err := client.UntagResource(ctx, &cp.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"k", "j"}})
			return err
		}, `{"resourceArn":"` + arn + `","tagKeys":["k","j"]}`},
		{"UpdateActionType", func() error {
			_, err := client.UpdateActionType(ctx, &cp.UpdateActionTypeInput{ActionType: &types.ActionTypeDeclaration{
				Id:                    &types.ActionTypeIdentifier{Category: types.ActionCategoryBuild, Owner: aws.String("AWS"), Provider: aws.String("Make"), Version: aws.String("1")},
				Executor:              &types.ActionTypeExecutor{Type: types.ExecutorTypeJobWorker, Configuration: &types.ExecutorConfiguration{JobWorkerExecutorConfiguration: &types.JobWorkerExecutorConfiguration{PollingAccounts: []string{"000000000000"}}}},
				InputArtifactDetails:  &types.ActionTypeArtifactDetails{MinimumCount: 0, MaximumCount: 1},
				OutputArtifactDetails: &types.ActionTypeArtifactDetails{MinimumCount: 0, MaximumCount: 1},
			}})
			return err
		}, `{"actionType":{"executor":{"configuration":{"jobWorkerExecutorConfiguration":{"pollingAccounts":["000000000000"]}},"type":"JobWorker"},"id":{"category":"Build","owner":"AWS","provider":"Make","version":"1"},"inputArtifactDetails":{"minimumCount":0,"maximumCount":1},"outputArtifactDetails":{"minimumCount":0,"maximumCount":1}}}`},
		{"UpdatePipeline", func() error {
			_, err := client.UpdatePipeline(ctx, &cp.UpdatePipelineInput{Pipeline: pipeline})
			return err
		}, `{"pipeline":` + pipelineJSON + `}`},
	}

	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			seen[tt.op] = true
			if err := tt.call(); err != nil {
				t.Fatalf("the SDK call failed: %v", err)
			}
			op, in := rec.last()
			if op != tt.op {
				t.Fatalf("the service answered %q", op)
			}
			if want := reflect.TypeOf(must(model.LookupOperation(tt.op)).NewInput()); reflect.TypeOf(in) != want {
				t.Fatalf("input is a %T, want %v", in, want)
			}
			assertSameJSON(t, in, tt.want)
		})
	}
	for _, op := range model.Operations() {
		if !seen[op.Name] {
			t.Errorf("no SDK request exercises %s", op.Name)
		}
	}
}

func must(op *model.Operation, ok bool) *model.Operation {
	if !ok {
		panic("unknown operation")
	}
	return op
}

func assertSameJSON(t *testing.T, got any, want string) {
	t.Helper()
	raw, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("decoded input\n got: %s\nwant: %s", raw, want)
	}
}
