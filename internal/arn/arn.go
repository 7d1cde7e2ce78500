// Package arn writes and reads the ARNs of CodePipeline's resources — pipelines, their stages and
// actions, webhooks and action types — in the one form AWS gives them.
package arn

import (
	"errors"
	"fmt"
	"strings"
)

// Kinds of resources.
const (
	KindPipeline   = "pipeline"
	KindWebhook    = "webhook"
	KindActionType = "actiontype"
)

// Resource is what an ARN names.
type Resource struct {
	Region, Account string
	// Kind is KindPipeline, KindWebhook or KindActionType.
	Kind string
	// Name is the pipeline's or webhook's name, or the action type's "Custom/<category>/<provider>/<version>".
	Name string
}

// Pipeline is a pipeline's ARN.
func Pipeline(region, account, name string) string {
	return fmt.Sprintf("arn:aws:codepipeline:%s:%s:%s", region, account, name)
}

// Stage is the ARN of a pipeline's stage, the resource IAM checks for calls on one stage.
func Stage(region, account, pipeline, stage string) string {
	return fmt.Sprintf("arn:aws:codepipeline:%s:%s:%s/%s", region, account, pipeline, stage)
}

// Action is the ARN of an action in a pipeline's stage, the resource IAM checks for calls on one
// action.
func Action(region, account, pipeline, stage, action string) string {
	return fmt.Sprintf("arn:aws:codepipeline:%s:%s:%s/%s/%s", region, account, pipeline, stage, action)
}

// Webhook is a webhook's ARN.
func Webhook(region, account, name string) string {
	return fmt.Sprintf("arn:aws:codepipeline:%s:%s:%s:%s", region, account, KindWebhook, name)
}

// ActionType is a custom action type's ARN.
func ActionType(region, account, category, provider, version string) string {
	return fmt.Sprintf("arn:aws:codepipeline:%s:%s:%s:Custom/%s/%s/%s", region, account, KindActionType, category, provider, version)
}

// OwnedActionType is the ARN of an action type of any owner ("AWS", "ThirdParty" or "Custom");
// for "Custom" it is ActionType's.
func OwnedActionType(region, account, owner, category, provider, version string) string {
	return fmt.Sprintf("arn:aws:codepipeline:%s:%s:%s:%s/%s/%s/%s", region, account, KindActionType, owner, category, provider, version)
}

// ErrNotCodePipeline: the string is not the ARN of a CodePipeline resource.
var ErrNotCodePipeline = errors.New("not a CodePipeline resource ARN")

// Parse reads a CodePipeline resource ARN. A resource part of the form "webhook:<name>" or
// "actiontype:<name>" names a webhook or an action type; any other names a pipeline.
func Parse(s string) (Resource, error) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "codepipeline" || parts[5] == "" {
		return Resource{}, ErrNotCodePipeline
	}
	r := Resource{Region: parts[3], Account: parts[4], Kind: KindPipeline, Name: parts[5]}
	if kind, name, ok := strings.Cut(parts[5], ":"); ok && (kind == KindWebhook || kind == KindActionType) {
		r.Kind, r.Name = kind, name
	}
	return r, nil
}
