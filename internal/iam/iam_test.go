package iam

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/internal/model"
)

const (
	region  = "us-east-1"
	account = "111111111111"
	prefix  = "arn:aws:codepipeline:us-east-1:111111111111:"
)

func ptr[T any](v T) *T { return &v }

func TestEveryOperationIsKnown(t *testing.T) {
	ops := model.Operations()
	for _, op := range ops {
		if !known(op.Name) {
			t.Errorf("%s has no entry", op.Name)
		}
	}
	if len(resources) != len(ops) {
		for name := range resources {
			if _, ok := model.LookupOperation(name); !ok {
				t.Errorf("entry %s is no operation of the model", name)
			}
		}
	}
}

func TestFor(t *testing.T) {
	for _, c := range []struct {
		op   string
		in   any
		want []string
	}{
		{"GetPipeline", &model.GetPipelineInput{Name: ptr("p")}, []string{prefix + "p"}},
		{"DeletePipeline", &model.DeletePipelineInput{Name: ptr("p")}, []string{prefix + "p"}},
		{"RetryStageExecution", &model.RetryStageExecutionInput{PipelineName: ptr("p"), StageName: ptr("Build")}, []string{prefix + "p/Build"}},
		{"PutApprovalResult", &model.PutApprovalResultInput{PipelineName: ptr("p"), StageName: ptr("Gate"), ActionName: ptr("Approve")}, []string{prefix + "p/Gate/Approve"}},
		{"PollForJobs", &model.PollForJobsInput{ActionTypeId: &model.ActionTypeId{
			Category: ptr(model.ActionCategoryBuild), Owner: ptr(model.ActionOwnerCustom), Provider: ptr("Make"), Version: ptr("1"),
		}}, []string{prefix + "actiontype:Custom/Build/Make/1"}},
		{"PollForJobs", &model.PollForJobsInput{ActionTypeId: &model.ActionTypeId{
			Category: ptr(model.ActionCategoryDeploy), Owner: ptr(model.ActionOwnerAws), Provider: ptr("S3"), Version: ptr("1"),
		}}, []string{prefix + "actiontype:AWS/Deploy/S3/1"}},
		{"CreateCustomActionType", &model.CreateCustomActionTypeInput{
			Category: ptr(model.ActionCategoryTest), Provider: ptr("Check"), Version: ptr("2"),
		}, []string{prefix + "actiontype:Custom/Test/Check/2"}},
		{"PutWebhook", &model.PutWebhookInput{Webhook: &model.WebhookDefinition{Name: ptr("hook"), TargetPipeline: ptr("p")}},
			[]string{prefix + "webhook:hook", prefix + "p"}},
		{"TagResource", &model.TagResourceInput{ResourceArn: ptr(prefix + "webhook:hook")}, []string{prefix + "webhook:hook"}},
		{"ListPipelines", &model.ListPipelinesInput{}, []string{"arn:aws:codepipeline:us-east-1:111111111111:*"}},
		{"AcknowledgeJob", &model.AcknowledgeJobInput{JobId: ptr("j"), Nonce: ptr("n")}, []string{"arn:aws:codepipeline:us-east-1:111111111111:*"}},
		{"GetPipeline", &model.GetPipelineInput{}, []string{prefix}},
		{"PutWebhook", &model.PutWebhookInput{}, []string{prefix + "webhook:", prefix}},
		{"GetPipeline", nil, []string{prefix}},
		{"GetPipeline", &model.DeletePipelineInput{Name: ptr("p")}, []string{prefix}},
		{"NoSuchOperation", &model.GetPipelineInput{Name: ptr("p")}, []string{"arn:aws:codepipeline:us-east-1:111111111111:*"}},
	} {
		got := For(c.op, c.in, region, account)
		want := Request{Action: "codepipeline:" + c.op, Resources: c.want}
		if got.Action != want.Action || !slices.Equal(got.Resources, want.Resources) {
			t.Errorf("For(%s, %+v) = %+v, want %+v", c.op, c.in, got, want)
		}
	}
}

// TestEveryOperation decodes one body that names every resource any operation can name into each
// operation's input, and checks all of For's answers.
func TestEveryOperation(t *testing.T) {
	const body = `{
		"name": "n", "pipelineName": "p", "stageName": "s", "actionName": "a", "webhookName": "w",
		"resourceArn": "arn:aws:codepipeline:us-east-1:111111111111:p",
		"category": "Build", "owner": "Custom", "provider": "Make", "version": "1",
		"actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "Hub", "version": "2"},
		"actionType": {"id": {"category": "Deploy", "owner": "AWS", "provider": "Ship", "version": "3"}},
		"pipeline": {"name": "q"},
		"webhook": {"name": "w", "targetPipeline": "p"}
	}`
	pipeline, stage, action, webhook := prefix+"p", prefix+"p/s", prefix+"p/s/a", prefix+"webhook:w"
	want := map[string][]string{
		"AcknowledgeJob":                   {"arn:aws:codepipeline:us-east-1:111111111111:*"},
		"AcknowledgeThirdPartyJob":         {"arn:aws:codepipeline:us-east-1:111111111111:*"},
		"CreateCustomActionType":           {prefix + "actiontype:Custom/Build/Make/1"},
		"CreatePipeline":                   {prefix + "q"},
		"DeleteCustomActionType":           {prefix + "actiontype:Custom/Build/Make/1"},
		"DeletePipeline":                   {prefix + "n"},
		"DeleteWebhook":                    {prefix + "webhook:n"},
		"DeregisterWebhookWithThirdParty":  {webhook},
		"DisableStageTransition":           {stage},
		"EnableStageTransition":            {stage},
		"GetActionType":                    {"arn:aws:codepipeline:us-east-1:111111111111:*"},
		"GetJobDetails":                    {"arn:aws:codepipeline:us-east-1:111111111111:*"},
		"GetPipeline":                      {prefix + "n"},
		"GetPipelineExecution":             {pipeline},
		"GetPipelineState":                 {prefix + "n"},
		"GetThirdPartyJobDetails":          {"arn:aws:codepipeline:us-east-1:111111111111:*"},
		"ListActionExecutions":             {pipeline},
		"ListActionTypes":                  {"arn:aws:codepipeline:us-east-1:111111111111:*"},
		"ListDeployActionExecutionTargets": {pipeline},
		"ListPipelineExecutions":           {pipeline},
		"ListPipelines":                    {"arn:aws:codepipeline:us-east-1:111111111111:*"},
		"ListRuleExecutions":               {pipeline},
		"ListRuleTypes":                    {"arn:aws:codepipeline:us-east-1:111111111111:*"},
		"ListTagsForResource":              {pipeline},
		"ListWebhooks":                     {prefix + "webhook:*"},
		"OverrideStageCondition":           {stage},
		"PollForJobs":                      {prefix + "actiontype:ThirdParty/Source/Hub/2"},
		"PollForThirdPartyJobs":            {"arn:aws:codepipeline:us-east-1:111111111111:*"},
		"PutActionRevision":                {action},
		"PutApprovalResult":                {action},
		"PutJobFailureResult":              {"arn:aws:codepipeline:us-east-1:111111111111:*"},
		"PutJobSuccessResult":              {"arn:aws:codepipeline:us-east-1:111111111111:*"},
		"PutThirdPartyJobFailureResult":    {"arn:aws:codepipeline:us-east-1:111111111111:*"},
		"PutThirdPartyJobSuccessResult":    {"arn:aws:codepipeline:us-east-1:111111111111:*"},
		"PutWebhook":                       {webhook, pipeline},
		"RegisterWebhookWithThirdParty":    {webhook},
		"RetryStageExecution":              {stage},
		"RollbackStage":                    {stage},
		"StartPipelineExecution":           {prefix + "n"},
		"StopPipelineExecution":            {pipeline},
		"TagResource":                      {pipeline},
		"UntagResource":                    {pipeline},
		"UpdateActionType":                 {prefix + "actiontype:AWS/Deploy/Ship/3"},
		"UpdatePipeline":                   {prefix + "q"},
	}
	for _, op := range model.Operations() {
		in := op.NewInput()
		// GetPipeline's "version" is a number: the rest of the body still decodes.
		var typeErr *json.UnmarshalTypeError
		if err := json.Unmarshal([]byte(body), in); err != nil && !errors.As(err, &typeErr) {
			t.Fatalf("%s: %v", op.Name, err)
		}
		w, ok := want[op.Name]
		if !ok {
			t.Errorf("%s: no expectation", op.Name)
			continue
		}
		if got := For(op.Name, in, region, account); !slices.Equal(got.Resources, w) {
			t.Errorf("%s: resources %q, want %q", op.Name, got.Resources, w)
		}
	}
}

func TestEmptyInputs(t *testing.T) {
	for _, op := range model.Operations() {
		for _, in := range []any{op.NewInput(), nil} {
			got := For(op.Name, in, region, account)
			if got.Action != "codepipeline:"+op.Name || len(got.Resources) == 0 {
				t.Errorf("For(%s, %#v) = %+v", op.Name, in, got)
			}
		}
	}
}

// known reports whether For knows the operation named op.
func known(op string) bool {
	_, ok := resources[op]
	return ok
}
