package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/sluicehq/sluice/internal/api"
)

func createMake(e *env, t *testing.T, version string) *cp.CreateCustomActionTypeOutput {
	t.Helper()
	return must[*cp.CreateCustomActionTypeOutput](t)(e.client.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{
		Category: types.ActionCategoryBuild, Provider: aws.String("Make"), Version: aws.String(version),
		ConfigurationProperties: []types.ActionConfigurationProperty{
			{Name: aws.String("Target"), Required: true, Key: true, Queryable: true, Type: types.ActionConfigurationPropertyTypeString},
			{Name: aws.String("Token"), Required: false, Key: false, Secret: true},
		},
		InputArtifactDetails:  &types.ArtifactDetails{MinimumCount: 1, MaximumCount: 1},
		OutputArtifactDetails: &types.ArtifactDetails{MinimumCount: 0, MaximumCount: 1},
		Settings:              &types.ActionTypeSettings{EntityUrlTemplate: aws.String("https://ci.example/{Config:Target}")},
		Tags:                  []types.Tag{{Key: aws.String("team"), Value: aws.String("build")}},
	}))
}

func TestCustomActionTypes(t *testing.T) {
	limits := api.DefaultLimits
	limits.CustomActionTypes = 2
	eachStore(t, limits, func(t *testing.T, e *env) {
		out := createMake(e, t, "1")
		if out.ActionType.Id.Owner != types.ActionOwnerCustom || len(out.ActionType.ActionConfigurationProperties) != 2 || len(out.Tags) != 1 {
			t.Fatalf("created %+v", out.ActionType)
		}
		_, err := e.client.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{
			Category: types.ActionCategoryBuild, Provider: aws.String("Make"), Version: aws.String("1"),
			InputArtifactDetails: &types.ArtifactDetails{}, OutputArtifactDetails: &types.ArtifactDetails{},
		})
		wantError(t, err, "ActionTypeAlreadyExistsException", "Provider: 'Make', Version: '1'")

		custom := must[*cp.ListActionTypesOutput](t)(e.client.ListActionTypes(ctx, &cp.ListActionTypesInput{ActionOwnerFilter: types.ActionOwnerCustom}))
		if len(custom.ActionTypes) != 1 || *custom.ActionTypes[0].Id.Provider != "Make" || *custom.ActionTypes[0].Settings.EntityUrlTemplate == "" {
			t.Fatalf("custom types %+v", custom.ActionTypes)
		}
		all := must[*cp.ListActionTypesOutput](t)(e.client.ListActionTypes(ctx, &cp.ListActionTypesInput{}))
		owners := map[types.ActionOwner]int{}
		for _, at := range all.ActionTypes {
			owners[at.Id.Owner]++
		}
		if owners[types.ActionOwnerAws] < 15 || owners[types.ActionOwnerThirdParty] < 1 || owners[types.ActionOwnerCustom] != 1 {
			t.Fatalf("owners listed: %v", owners)
		}

		// A pipeline can use it, and its artifact counts and required properties are enforced.
		p := minimal("uses-make")
		p.Stages[1].Actions = []types.ActionDeclaration{{
			Name: aws.String("make"), ActionTypeId: typeID(types.ActionCategoryBuild, types.ActionOwnerCustom, "Make"),
			Configuration: map[string]string{"Target": "all", "Token": "s3cr3t"}, InputArtifacts: []types.InputArtifact{{Name: aws.String("code")}},
		}}
		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}))
		got := must[*cp.GetPipelineOutput](t)(e.client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("uses-make")}))
		if got.Pipeline.Stages[1].Actions[0].Configuration["Token"] != "****" {
			t.Fatal("the custom type's secret property is not masked")
		}
		// Action states link to what the action works on: the type's entityUrlTemplate filled
		// in, and AWS's console for the S3 source, as AWS shows it.
		state := must[*cp.GetPipelineStateOutput](t)(e.client.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String("uses-make")}))
		if got := aws.ToString(state.StageStates[1].ActionStates[0].EntityUrl); got != "https://ci.example/all" {
			t.Fatalf("the custom action's entityUrl is %q", got)
		}
		if got := aws.ToString(state.StageStates[0].ActionStates[0].EntityUrl); got != "https://console.aws.amazon.com/s3/home?#" {
			t.Fatalf("the S3 source's entityUrl is %q", got)
		}
		p.Name = aws.String("bad-make")
		delete(p.Stages[1].Actions[0].Configuration, "Target")
		_, err = e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p})
		wantError(t, err, "InvalidActionDeclarationException", "missing required configuration 'Target'")

		createMake(e, t, "2")
		_, err = e.client.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{
			Category: types.ActionCategoryTest, Provider: aws.String("Other"), Version: aws.String("1"),
			InputArtifactDetails: &types.ArtifactDetails{}, OutputArtifactDetails: &types.ArtifactDetails{},
		})
		wantError(t, err, "LimitExceededException", "2 custom action types")

		must[*cp.DeleteCustomActionTypeOutput](t)(e.client.DeleteCustomActionType(ctx, &cp.DeleteCustomActionTypeInput{
			Category: types.ActionCategoryBuild, Provider: aws.String("Make"), Version: aws.String("1")}))
		must[*cp.DeleteCustomActionTypeOutput](t)(e.client.DeleteCustomActionType(ctx, &cp.DeleteCustomActionTypeInput{
			Category: types.ActionCategoryBuild, Provider: aws.String("Make"), Version: aws.String("1")}))
		_, err = e.client.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{
			Category: types.ActionCategoryBuild, Provider: aws.String("Make"), Version: aws.String("1"),
			InputArtifactDetails: &types.ArtifactDetails{}, OutputArtifactDetails: &types.ArtifactDetails{},
		})
		wantError(t, err, "ActionTypeAlreadyExistsException", "a new definition needs a version that has never been used")
		p.Name = aws.String("after-delete")
		p.Stages[1].Actions[0].Configuration["Target"] = "all"
		_, err = e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p})
		wantError(t, err, "InvalidActionDeclarationException", "Provider: 'Make', Owner: 'Custom', Version: '1'")

		// The definition it was deleted with restores it, as the API Reference says.
		must[*cp.DeleteCustomActionTypeOutput](t)(e.client.DeleteCustomActionType(ctx, &cp.DeleteCustomActionTypeInput{
			Category: types.ActionCategoryBuild, Provider: aws.String("Make"), Version: aws.String("2")}))
		createMake(e, t, "1")
		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}))
		_, err = e.client.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{
			Category: types.ActionCategoryBuild, Provider: aws.String("Make"), Version: aws.String("1"),
			InputArtifactDetails: &types.ArtifactDetails{}, OutputArtifactDetails: &types.ArtifactDetails{},
		})
		wantError(t, err, "ActionTypeAlreadyExistsException", "already exists in account")
	})
}

func TestCustomActionTypeRules(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		_, err := e.client.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{
			Category: types.ActionCategoryBuild, Provider: aws.String("Q"), Version: aws.String("1"),
			ConfigurationProperties: []types.ActionConfigurationProperty{
				{Name: aws.String("A"), Required: true, Key: true, Queryable: true},
				{Name: aws.String("B"), Required: true, Key: true, Queryable: true},
			},
			InputArtifactDetails: &types.ArtifactDetails{}, OutputArtifactDetails: &types.ArtifactDetails{},
		})
		wantError(t, err, "ValidationException", "at most one queryable")
		_, err = e.client.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{
			Category: types.ActionCategoryBuild, Provider: aws.String("Q"), Version: aws.String("1"),
			InputArtifactDetails: &types.ArtifactDetails{MinimumCount: 3, MaximumCount: 1}, OutputArtifactDetails: &types.ArtifactDetails{},
		})
		wantError(t, err, "ValidationException", "minimumCount (3) is greater than its maximumCount (1)")
	})
}

func TestGetAndUpdateActionType(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		s3 := must[*cp.GetActionTypeOutput](t)(e.client.GetActionType(ctx, &cp.GetActionTypeInput{
			Category: types.ActionCategoryDeploy, Owner: aws.String("AWS"), Provider: aws.String("S3"), Version: aws.String("1")}))
		if s3.ActionType.InputArtifactDetails.MinimumCount != 1 || s3.ActionType.Executor.Type != types.ExecutorTypeJobWorker || len(s3.ActionType.Properties) == 0 {
			t.Fatalf("S3 deploy %+v", s3.ActionType)
		}
		_, err := e.client.GetActionType(ctx, &cp.GetActionTypeInput{
			Category: types.ActionCategoryDeploy, Owner: aws.String("AWS"), Provider: aws.String("Nope"), Version: aws.String("1")})
		wantError(t, err, "ActionTypeNotFoundException", "Provider: 'Nope'")

		gh := must[*cp.GetActionTypeOutput](t)(e.client.GetActionType(ctx, &cp.GetActionTypeInput{
			Category: types.ActionCategorySource, Owner: aws.String("ThirdParty"), Provider: aws.String("GitHub"), Version: aws.String("1")}))
		gh.ActionType.Description = aws.String("GitHub, served by Sluice")
		gh.ActionType.Urls = &types.ActionTypeUrls{ConfigurationUrl: aws.String("https://example.com/config")}
		must[*cp.UpdateActionTypeOutput](t)(e.client.UpdateActionType(ctx, &cp.UpdateActionTypeInput{ActionType: gh.ActionType}))
		again := must[*cp.GetActionTypeOutput](t)(e.client.GetActionType(ctx, &cp.GetActionTypeInput{
			Category: types.ActionCategorySource, Owner: aws.String("ThirdParty"), Provider: aws.String("GitHub"), Version: aws.String("1")}))
		if aws.ToString(again.ActionType.Description) != "GitHub, served by Sluice" {
			t.Fatalf("update not kept: %+v", again.ActionType)
		}
		listed := must[*cp.ListActionTypesOutput](t)(e.client.ListActionTypes(ctx, &cp.ListActionTypesInput{ActionOwnerFilter: types.ActionOwnerThirdParty}))
		found := false
		for _, at := range listed.ActionTypes {
			if *at.Id.Provider == "GitHub" {
				found = at.Settings != nil && aws.ToString(at.Settings.ThirdPartyConfigurationUrl) == "https://example.com/config"
			}
		}
		if !found {
			t.Fatal("ListActionTypes does not show the updated GitHub type")
		}

		s3.ActionType.Description = aws.String("mine now")
		_, err = e.client.UpdateActionType(ctx, &cp.UpdateActionTypeInput{ActionType: s3.ActionType})
		wantError(t, err, "RequestFailedException", "owned by AWS cannot be updated")
		gh.ActionType.Id.Provider = aws.String("NotAType")
		_, err = e.client.UpdateActionType(ctx, &cp.UpdateActionTypeInput{ActionType: gh.ActionType})
		wantError(t, err, "ActionTypeNotFoundException", "NotAType")
	})
}

func TestListRuleTypes(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		out := must[*cp.ListRuleTypesOutput](t)(e.client.ListRuleTypes(ctx, &cp.ListRuleTypesInput{}))
		providers := map[string]bool{}
		for _, rt := range out.RuleTypes {
			providers[*rt.Id.Provider] = rt.Id.Category == types.RuleCategoryRule && rt.Id.Owner == types.RuleOwnerAws
		}
		for _, p := range []string{"CloudWatchAlarm", "LambdaInvoke", "DeploymentWindow", "VariableCheck", "Commands"} {
			if !providers[p] {
				t.Errorf("rule type %s missing or malformed", p)
			}
		}
	})
}

func webhook(name string) *types.WebhookDefinition {
	return &types.WebhookDefinition{
		Name: aws.String(name), TargetPipeline: aws.String("src-pipe"), TargetAction: aws.String("src"),
		Filters:                     []types.WebhookFilterRule{{JsonPath: aws.String("$.ref"), MatchEquals: aws.String("refs/heads/{S3Bucket}")}},
		Authentication:              types.WebhookAuthenticationTypeGithubHmac,
		AuthenticationConfiguration: &types.WebhookAuthConfiguration{SecretToken: aws.String("s3cret")},
	}
}

func TestWebhooks(t *testing.T) {
	limits := api.DefaultLimits
	limits.Webhooks = 3
	eachStore(t, limits, func(t *testing.T, e *env) {
		_, err := e.client.PutWebhook(ctx, &cp.PutWebhookInput{Webhook: webhook("h")})
		wantError(t, err, "PipelineNotFoundException", "'src-pipe'")
		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: minimal("src-pipe")}))

		out := must[*cp.PutWebhookOutput](t)(e.client.PutWebhook(ctx, &cp.PutWebhookInput{Webhook: webhook("h1"),
			Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}))
		url := *out.Webhook.Url
		if !strings.HasPrefix(url, "http://sluice.test/_sluice/webhooks/trigger?t=") || *out.Webhook.Arn != "arn:aws:codepipeline:us-east-1:"+account+":webhook:h1" || len(out.Webhook.Tags) != 1 {
			t.Fatalf("put answered %+v", out.Webhook)
		}
		again := must[*cp.PutWebhookOutput](t)(e.client.PutWebhook(ctx, &cp.PutWebhookInput{Webhook: webhook("h1")}))
		if *again.Webhook.Url != url {
			t.Fatal("replacing a webhook changed its URL")
		}

		// The secret token is redacted in answers; sending the mask back keeps the stored one.
		storedToken := func() string {
			rec, err := e.store.GetWebhook(ctx, "h1")
			if err != nil {
				t.Fatal(err)
			}
			var def struct {
				AuthenticationConfiguration struct{ SecretToken string }
			}
			if err := json.Unmarshal(rec.Definition, &def); err != nil {
				t.Fatal(err)
			}
			return def.AuthenticationConfiguration.SecretToken
		}
		if got := *out.Webhook.Definition.AuthenticationConfiguration.SecretToken; got != "****" {
			t.Fatalf("PutWebhook answered the secret token %q", got)
		}
		masked := webhook("h1")
		masked.AuthenticationConfiguration.SecretToken = aws.String("****")
		must[*cp.PutWebhookOutput](t)(e.client.PutWebhook(ctx, &cp.PutWebhookInput{Webhook: masked}))
		if got := storedToken(); got != "s3cret" {
			t.Fatalf("after sending the mask back the stored token is %q", got)
		}
		for _, w := range must[*cp.ListWebhooksOutput](t)(e.client.ListWebhooks(ctx, &cp.ListWebhooksInput{})).Webhooks {
			if got := *w.Definition.AuthenticationConfiguration.SecretToken; got != "****" {
				t.Fatalf("ListWebhooks answered the secret token %q", got)
			}
		}

		bad := []struct {
			change         func(w *types.WebhookDefinition)
			code, fragment string
		}{
			{func(w *types.WebhookDefinition) { w.AuthenticationConfiguration = &types.WebhookAuthConfiguration{} },
				"InvalidWebhookAuthenticationParametersException", "needs a SecretToken"},
			{func(w *types.WebhookDefinition) {
				w.Authentication = types.WebhookAuthenticationTypeIp
				w.AuthenticationConfiguration = &types.WebhookAuthConfiguration{AllowedIPRange: aws.String("10.0.0/8")}
			}, "InvalidWebhookAuthenticationParametersException", "not an IP range in CIDR notation"},
			{func(w *types.WebhookDefinition) {
				w.Authentication = types.WebhookAuthenticationTypeUnauthenticated
			}, "InvalidWebhookAuthenticationParametersException", "take no authentication parameters"},
			{func(w *types.WebhookDefinition) { w.Filters[0].JsonPath = aws.String("$.ref[") },
				"InvalidWebhookFilterPatternException", "not a valid JSONPath expression"},
			{func(w *types.WebhookDefinition) { w.Filters[0].JsonPath = aws.String("ref") },
				"InvalidWebhookFilterPatternException", "must start at the document root"},
			{func(w *types.WebhookDefinition) { w.Filters[0].MatchEquals = aws.String("refs/heads/{Branch}") },
				"InvalidWebhookFilterPatternException", "refers to {Branch}"},
			{func(w *types.WebhookDefinition) { w.TargetAction = aws.String("ok") },
				"ActionNotFoundException", "Action with name ok was not found in the first stage of the pipeline"},
		}
		for _, b := range bad {
			w := webhook("bad")
			b.change(w)
			_, err := e.client.PutWebhook(ctx, &cp.PutWebhookInput{Webhook: w})
			wantError(t, err, b.code, b.fragment)
		}
		ipHook := webhook("h2")
		ipHook.Authentication = types.WebhookAuthenticationTypeIp
		ipHook.AuthenticationConfiguration = &types.WebhookAuthConfiguration{AllowedIPRange: aws.String("10.0.0.0/8")}
		must[*cp.PutWebhookOutput](t)(e.client.PutWebhook(ctx, &cp.PutWebhookInput{Webhook: ipHook}))
		must[*cp.PutWebhookOutput](t)(e.client.PutWebhook(ctx, &cp.PutWebhookInput{Webhook: webhook("h3")}))
		_, err = e.client.PutWebhook(ctx, &cp.PutWebhookInput{Webhook: webhook("h4")})
		wantError(t, err, "LimitExceededException", "3 webhooks")

		var names []string
		var token *string
		for {
			page := must[*cp.ListWebhooksOutput](t)(e.client.ListWebhooks(ctx, &cp.ListWebhooksInput{MaxResults: aws.Int32(2), NextToken: token}))
			for _, w := range page.Webhooks {
				names = append(names, *w.Definition.Name)
			}
			if token = page.NextToken; token == nil {
				break
			}
		}
		if fmt.Sprint(names) != "[h1 h2 h3]" {
			t.Fatalf("listed %v", names)
		}

		must[*cp.RegisterWebhookWithThirdPartyOutput](t)(e.client.RegisterWebhookWithThirdParty(ctx, &cp.RegisterWebhookWithThirdPartyInput{WebhookName: aws.String("h1")}))
		must[*cp.DeregisterWebhookWithThirdPartyOutput](t)(e.client.DeregisterWebhookWithThirdParty(ctx, &cp.DeregisterWebhookWithThirdPartyInput{WebhookName: aws.String("h1")}))
		_, err = e.client.RegisterWebhookWithThirdParty(ctx, &cp.RegisterWebhookWithThirdPartyInput{WebhookName: aws.String("nope")})
		wantError(t, err, "WebhookNotFoundException", "") // the model gives this exception no message member

		must[*cp.DeleteWebhookOutput](t)(e.client.DeleteWebhook(ctx, &cp.DeleteWebhookInput{Name: aws.String("h1")}))
		must[*cp.DeleteWebhookOutput](t)(e.client.DeleteWebhook(ctx, &cp.DeleteWebhookInput{Name: aws.String("h1")}))
		must[*cp.PutWebhookOutput](t)(e.client.PutWebhook(ctx, &cp.PutWebhookInput{Webhook: webhook("h4")}))
	})
}

func TestTags(t *testing.T) {
	limits := api.DefaultLimits
	limits.TagsPerResource = 3
	eachStore(t, limits, func(t *testing.T, e *env) {
		pipeARN := "arn:aws:codepipeline:us-east-1:" + account + ":tagged"
		_, err := e.client.ListTagsForResource(ctx, &cp.ListTagsForResourceInput{ResourceArn: aws.String(pipeARN)})
		noPipeline := "The account with id '" + account + "' does not include a pipeline with the name 'tagged'"
		wantError(t, err, "ResourceNotFoundException", noPipeline)
		_, err = e.client.TagResource(ctx, &cp.TagResourceInput{ResourceArn: aws.String(pipeARN), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
		wantError(t, err, "ResourceNotFoundException", noPipeline)
		_, err = e.client.UntagResource(ctx, &cp.UntagResourceInput{ResourceArn: aws.String(pipeARN), TagKeys: []string{"k"}})
		wantError(t, err, "ResourceNotFoundException", noPipeline)

		systemTags := "Not allowed to modify system tags. System tags start with 'aws:'. msg=[Caller is an end user and not allowed to mutate system tags]"
		_, err = e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: minimal("tagged"),
			Tags: []types.Tag{{Key: aws.String("aws:owner"), Value: aws.String("x")}}})
		wantError(t, err, "InvalidTagsException", systemTags)
		_, err = e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: minimal("tagged"),
			Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("b"), Value: aws.String("")}, {Key: aws.String("c"), Value: aws.String("")}, {Key: aws.String("d"), Value: aws.String("")}}})
		wantError(t, err, "TooManyTagsException", "Tag limit exceeded for resource ["+pipeARN+"].")
		if _, err := e.client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("tagged")}); err == nil {
			t.Fatal("a refused CreatePipeline stored the pipeline")
		}

		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: minimal("tagged"),
			Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}}}))
		must[*cp.TagResourceOutput](t)(e.client.TagResource(ctx, &cp.TagResourceInput{ResourceArn: aws.String(pipeARN),
			Tags: []types.Tag{{Key: aws.String("b"), Value: aws.String("2")}, {Key: aws.String("a"), Value: aws.String("one")}}}))
		_, err = e.client.TagResource(ctx, &cp.TagResourceInput{ResourceArn: aws.String(pipeARN),
			Tags: []types.Tag{{Key: aws.String("c"), Value: aws.String("")}, {Key: aws.String("d"), Value: aws.String("")}}})
		wantError(t, err, "TooManyTagsException", "Tag limit exceeded for resource ["+pipeARN+"].")
		_, err = e.client.TagResource(ctx, &cp.TagResourceInput{ResourceArn: aws.String(pipeARN), Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("")}}})
		wantError(t, err, "InvalidTagsException", systemTags)
		_, err = e.client.UntagResource(ctx, &cp.UntagResourceInput{ResourceArn: aws.String(pipeARN), TagKeys: []string{"aws:x"}})
		wantError(t, err, "InvalidTagsException", systemTags)
		_, err = e.client.TagResource(ctx, &cp.TagResourceInput{ResourceArn: aws.String(pipeARN),
			Tags: []types.Tag{{Key: aws.String("x"), Value: aws.String("1")}, {Key: aws.String("x"), Value: aws.String("2")}}})
		wantError(t, err, "InvalidTagsException", "more than once")

		page1 := must[*cp.ListTagsForResourceOutput](t)(e.client.ListTagsForResource(ctx, &cp.ListTagsForResourceInput{ResourceArn: aws.String(pipeARN), MaxResults: aws.Int32(1)}))
		page2 := must[*cp.ListTagsForResourceOutput](t)(e.client.ListTagsForResource(ctx, &cp.ListTagsForResourceInput{ResourceArn: aws.String(pipeARN), NextToken: page1.NextToken}))
		if len(page1.Tags) != 1 || *page1.Tags[0].Key != "a" || *page1.Tags[0].Value != "one" || len(page2.Tags) != 1 || *page2.Tags[0].Key != "b" || page2.NextToken != nil {
			t.Fatalf("pages %+v %+v", page1, page2)
		}
		must[*cp.UntagResourceOutput](t)(e.client.UntagResource(ctx, &cp.UntagResourceInput{ResourceArn: aws.String(pipeARN), TagKeys: []string{"a"}}))
		left := must[*cp.ListTagsForResourceOutput](t)(e.client.ListTagsForResource(ctx, &cp.ListTagsForResourceInput{ResourceArn: aws.String(pipeARN)}))
		if len(left.Tags) != 1 || *left.Tags[0].Key != "b" {
			t.Fatalf("after untag %+v", left.Tags)
		}

		// Custom action types and webhooks are taggable too.
		createMake(e, t, "1")
		typeARN := "arn:aws:codepipeline:us-east-1:" + account + ":actiontype:Custom/Build/Make/1"
		tags := must[*cp.ListTagsForResourceOutput](t)(e.client.ListTagsForResource(ctx, &cp.ListTagsForResourceInput{ResourceArn: aws.String(typeARN)}))
		if len(tags.Tags) != 1 || *tags.Tags[0].Key != "team" {
			t.Fatalf("action type tags %+v", tags.Tags)
		}

		for arn, code := range map[string]string{
			"arn:aws:codepipeline:us-east-1:" + account + ":actiontype:Build/Make": "InvalidArnException",
			"arn:aws:codepipeline:us-east-1:" + account + ":bad name":              "InvalidArnException",
			"arn:aws:codepipeline:eu-west-1:" + account + ":tagged":                "ResourceNotFoundException",
			"arn:aws:codepipeline:us-east-1:" + account + ":webhook:missing":       "ResourceNotFoundException",
		} {
			_, err := e.client.TagResource(ctx, &cp.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			wantError(t, err, code, "")
		}

		must[*cp.DeletePipelineOutput](t)(e.client.DeletePipeline(ctx, &cp.DeletePipelineInput{Name: aws.String("tagged")}))
		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: minimal("tagged")}))
		fresh := must[*cp.ListTagsForResourceOutput](t)(e.client.ListTagsForResource(ctx, &cp.ListTagsForResourceInput{ResourceArn: aws.String(pipeARN)}))
		if len(fresh.Tags) != 0 {
			t.Fatalf("a re-created pipeline inherited tags %+v", fresh.Tags)
		}
	})
}
