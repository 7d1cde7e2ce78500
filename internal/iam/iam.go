// Package iam says what IAM checks for each CodePipeline operation: the action ("codepipeline:<Operation>") and the resources it is performed on, as the Service Authorization Reference lists them.
//
// Source: "Actions, resources, and condition keys for AWS CodePipeline" in the Service
// Authorization Reference,
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscodepipeline.html:
// the "Resource types" column of its actions table says which kind of resource each action is
// checked on, its resource types table says how each kind's ARN is written. An action with no
// resource type there is checked on all the account's resources in the region. The CodePipeline User Guide's permissions reference,
// https://docs.aws.amazon.com/codepipeline/latest/userguide/permissions-reference.html, agrees
// except for DisableStageTransition and EnableStageTransition, which it puts on the pipeline; this
// package follows the Service Authorization Reference and puts them on the stage.
package iam

import (
	"github.com/sluicehq/sluice/internal/arn"
	"github.com/sluicehq/sluice/internal/model"
)

// Request is what one call asks IAM for.
type Request struct {
	// Action is "codepipeline:" followed by the operation's name.
	Action string
	// Resources are the ARNs of the resources the action is performed on; an operation that
	// takes no resource is performed on all of the account's, arn:aws:codepipeline:<region>:<account>:*.
	Resources []string
}

// For returns what the operation named op, called with in (a pointer of the type op.NewInput() returns, already decoded, possibly with nil fields), needs, for an account and region.
//
// A missing member of in leaves its part of an ARN empty. An operation For does not know is
// performed on all the account's resources.
func For(op string, in any, region, account string) Request {
	req := Request{Action: "codepipeline:" + op}
	if f, ok := resources[op]; ok {
		req.Resources = f(in, scope{region, account})
	} else {
		req.Resources = anything(in, scope{region, account})
	}
	return req
}

// resources says, for each operation, which resources a call with the given input is performed on.
var resources = map[string]func(in any, s scope) []string{
	"AcknowledgeJob":           anything,
	"AcknowledgeThirdPartyJob": anything,
	"CreateCustomActionType": on(func(in *model.CreateCustomActionTypeInput, s scope) []string {
		return []string{s.customActionType(str(in.Category), str(in.Provider), str(in.Version))}
	}),
	"CreatePipeline": on(func(in *model.CreatePipelineInput, s scope) []string {
		return []string{s.pipeline(declared(in.Pipeline))}
	}),
	"DeleteCustomActionType": on(func(in *model.DeleteCustomActionTypeInput, s scope) []string {
		return []string{s.customActionType(str(in.Category), str(in.Provider), str(in.Version))}
	}),
	"DeletePipeline": on(func(in *model.DeletePipelineInput, s scope) []string {
		return []string{s.pipeline(str(in.Name))}
	}),
	"DeleteWebhook": on(func(in *model.DeleteWebhookInput, s scope) []string {
		return []string{s.webhook(str(in.Name))}
	}),
	"DeregisterWebhookWithThirdParty": on(func(in *model.DeregisterWebhookWithThirdPartyInput, s scope) []string {
		return []string{s.webhook(str(in.WebhookName))}
	}),
	"DisableStageTransition": on(func(in *model.DisableStageTransitionInput, s scope) []string {
		return []string{s.stage(str(in.PipelineName), str(in.StageName))}
	}),
	"EnableStageTransition": on(func(in *model.EnableStageTransitionInput, s scope) []string {
		return []string{s.stage(str(in.PipelineName), str(in.StageName))}
	}),
	// The reference gives GetActionType no resource type, although it names an action type.
	"GetActionType": anything,
	"GetJobDetails": anything,
	"GetPipeline": on(func(in *model.GetPipelineInput, s scope) []string {
		return []string{s.pipeline(str(in.Name))}
	}),
	"GetPipelineExecution": on(func(in *model.GetPipelineExecutionInput, s scope) []string {
		return []string{s.pipeline(str(in.PipelineName))}
	}),
	"GetPipelineState": on(func(in *model.GetPipelineStateInput, s scope) []string {
		return []string{s.pipeline(str(in.Name))}
	}),
	"GetThirdPartyJobDetails": anything,
	"ListActionExecutions": on(func(in *model.ListActionExecutionsInput, s scope) []string {
		return []string{s.pipeline(str(in.PipelineName))}
	}),
	"ListActionTypes": anything,
	"ListDeployActionExecutionTargets": on(func(in *model.ListDeployActionExecutionTargetsInput, s scope) []string {
		return []string{s.pipeline(str(in.PipelineName))}
	}),
	"ListPipelineExecutions": on(func(in *model.ListPipelineExecutionsInput, s scope) []string {
		return []string{s.pipeline(str(in.PipelineName))}
	}),
	"ListPipelines": anything,
	"ListRuleExecutions": on(func(in *model.ListRuleExecutionsInput, s scope) []string {
		return []string{s.pipeline(str(in.PipelineName))}
	}),
	"ListRuleTypes": anything,
	"ListTagsForResource": on(func(in *model.ListTagsForResourceInput, _ scope) []string {
		return []string{str(in.ResourceArn)}
	}),
	// The reference requires a webhook, but the call names none: it is performed on every
	// webhook of the account in the region.
	"ListWebhooks": func(_ any, s scope) []string {
		return []string{s.webhook("*")}
	},
	"OverrideStageCondition": on(func(in *model.OverrideStageConditionInput, s scope) []string {
		return []string{s.stage(str(in.PipelineName), str(in.StageName))}
	}),
	"PollForJobs": on(func(in *model.PollForJobsInput, s scope) []string {
		id := in.ActionTypeId
		if id == nil {
			id = new(model.ActionTypeId)
		}
		return []string{s.actionType(str(id.Owner), str(id.Category), str(id.Provider), str(id.Version))}
	}),
	"PollForThirdPartyJobs": anything,
	"PutActionRevision": on(func(in *model.PutActionRevisionInput, s scope) []string {
		return []string{s.action(str(in.PipelineName), str(in.StageName), str(in.ActionName))}
	}),
	"PutApprovalResult": on(func(in *model.PutApprovalResultInput, s scope) []string {
		return []string{s.action(str(in.PipelineName), str(in.StageName), str(in.ActionName))}
	}),
	"PutJobFailureResult":           anything,
	"PutJobSuccessResult":           anything,
	"PutThirdPartyJobFailureResult": anything,
	"PutThirdPartyJobSuccessResult": anything,
	"PutWebhook": on(func(in *model.PutWebhookInput, s scope) []string {
		w := in.Webhook
		if w == nil {
			w = new(model.WebhookDefinition)
		}
		return []string{s.webhook(str(w.Name)), s.pipeline(str(w.TargetPipeline))}
	}),
	"RegisterWebhookWithThirdParty": on(func(in *model.RegisterWebhookWithThirdPartyInput, s scope) []string {
		return []string{s.webhook(str(in.WebhookName))}
	}),
	"RetryStageExecution": on(func(in *model.RetryStageExecutionInput, s scope) []string {
		return []string{s.stage(str(in.PipelineName), str(in.StageName))}
	}),
	"RollbackStage": on(func(in *model.RollbackStageInput, s scope) []string {
		return []string{s.stage(str(in.PipelineName), str(in.StageName))}
	}),
	"StartPipelineExecution": on(func(in *model.StartPipelineExecutionInput, s scope) []string {
		return []string{s.pipeline(str(in.Name))}
	}),
	"StopPipelineExecution": on(func(in *model.StopPipelineExecutionInput, s scope) []string {
		return []string{s.pipeline(str(in.PipelineName))}
	}),
	"TagResource": on(func(in *model.TagResourceInput, _ scope) []string {
		return []string{str(in.ResourceArn)}
	}),
	"UntagResource": on(func(in *model.UntagResourceInput, _ scope) []string {
		return []string{str(in.ResourceArn)}
	}),
	"UpdateActionType": on(func(in *model.UpdateActionTypeInput, s scope) []string {
		id := new(model.ActionTypeIdentifier)
		if in.ActionType != nil && in.ActionType.Id != nil {
			id = in.ActionType.Id
		}
		return []string{s.actionType(str(id.Owner), str(id.Category), str(id.Provider), str(id.Version))}
	}),
	"UpdatePipeline": on(func(in *model.UpdatePipelineInput, s scope) []string {
		return []string{s.pipeline(declared(in.Pipeline))}
	}),
}

// anything is the resources of an operation that takes none: every resource of the account in
// the region, as IAM names it in its refusals (arn:aws:codepipeline:<region>:<account>:*), which a
// policy's "*" matches.
func anything(_ any, s scope) []string { return []string{s.pipeline("*")} }

// on adapts f to the input as For receives it: an in that is nil, or not a *T, reads as an empty T.
func on[T any](f func(in *T, s scope) []string) func(in any, s scope) []string {
	return func(in any, s scope) []string {
		t, _ := in.(*T)
		if t == nil {
			t = new(T)
		}
		return f(t, s)
	}
}

// scope is the region and account whose resources a call is on.
type scope struct{ region, account string }

func (s scope) pipeline(name string) string { return arn.Pipeline(s.region, s.account, name) }

func (s scope) stage(pipeline, stage string) string {
	return arn.Stage(s.region, s.account, pipeline, stage)
}

func (s scope) action(pipeline, stage, action string) string {
	return arn.Action(s.region, s.account, pipeline, stage, action)
}

func (s scope) webhook(name string) string { return arn.Webhook(s.region, s.account, name) }

func (s scope) customActionType(category, provider, version string) string {
	return arn.ActionType(s.region, s.account, category, provider, version)
}

func (s scope) actionType(owner, category, provider, version string) string {
	return arn.OwnedActionType(s.region, s.account, owner, category, provider, version)
}

// str is *p, or "" when p is nil.
func str[T ~string](p *T) string {
	if p == nil {
		return ""
	}
	return string(*p)
}

// declared is the name of the pipeline p declares, or "" when p is nil.
func declared(p *model.PipelineDeclaration) string {
	if p == nil {
		return ""
	}
	return str(p.Name)
}
