package api_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/sluicehq/sluice/internal/api"
)

func build(name, input string, outputs ...string) types.ActionDeclaration {
	a := types.ActionDeclaration{
		Name:           aws.String(name),
		ActionTypeId:   typeID(types.ActionCategoryBuild, types.ActionOwnerAws, "CodeBuild"),
		Configuration:  map[string]string{"ProjectName": "proj"},
		InputArtifacts: []types.InputArtifact{{Name: aws.String(input)}},
	}
	for _, o := range outputs {
		a.OutputArtifacts = append(a.OutputArtifacts, types.OutputArtifact{Name: aws.String(o)})
	}
	return a
}

func TestStructureRules(t *testing.T) {
	limits := api.DefaultLimits
	limits.StagesPerPipeline, limits.ActionsPerStage = 3, 2
	tests := []struct {
		name     string
		change   func(p *types.PipelineDeclaration)
		code     string
		fragment string
	}{
		{"one stage", func(p *types.PipelineDeclaration) { p.Stages = p.Stages[:1] },
			"InvalidStructureException", "Pipeline has only 1 stage(s). There should be a minimum of 2 stages in a pipeline"},
		{"too many stages", func(p *types.PipelineDeclaration) {
			for _, n := range []string{"A", "B"} {
				p.Stages = append(p.Stages, types.StageDeclaration{Name: aws.String(n), Actions: []types.ActionDeclaration{approval("x")}})
			}
		}, "LimitExceededException", "more than the limit of 3 stages"},
		{"too many actions", func(p *types.PipelineDeclaration) {
			p.Stages[1].Actions = append(p.Stages[1].Actions, approval("b"), approval("c"))
		}, "LimitExceededException", "more than the limit of 2 actions per stage"},
		{"duplicate stage", func(p *types.PipelineDeclaration) { p.Stages[1].Name = aws.String("Source") },
			"InvalidStageDeclarationException", "Stage name 'Source' is used by more than one stage"},
		{"empty stage", func(p *types.PipelineDeclaration) { p.Stages[1].Actions = []types.ActionDeclaration{} },
			"InvalidStageDeclarationException", "Stage 'Approve' has no actions"},
		{"duplicate action", func(p *types.PipelineDeclaration) { p.Stages[1].Actions = append(p.Stages[1].Actions, approval("ok")) },
			"InvalidActionDeclarationException", "Action name 'ok' is used by more than one action in stage 'Approve'"},
		{"non-source action first", func(p *types.PipelineDeclaration) {
			p.Stages[0].Actions = append(p.Stages[0].Actions, approval("early"))
		},
			"InvalidStructureException", "Action 'early' in stage 'Source' is not a source action"},
		{"source action later", func(p *types.PipelineDeclaration) {
			later := sourceAction()
			later.Name, later.OutputArtifacts = aws.String("late"), []types.OutputArtifact{{Name: aws.String("other")}}
			p.Stages[1].Actions = append(p.Stages[1].Actions, later)
		}, "InvalidStructureException", "Source action 'late' is in stage 'Approve'"},
		{"unknown provider", func(p *types.PipelineDeclaration) { p.Stages[1].Actions[0].ActionTypeId.Provider = aws.String("Nope") },
			"InvalidActionDeclarationException", "ActionType (Category: 'Approval', Provider: 'Nope', Owner: 'AWS', Version: '1') in action 'ok' is not available in region 'US_EAST_1'"},
		{"unknown custom type", func(p *types.PipelineDeclaration) {
			p.Stages[1].Actions[0].ActionTypeId = typeID(types.ActionCategoryBuild, types.ActionOwnerCustom, "Missing")
		}, "InvalidActionDeclarationException", "Provider: 'Missing', Owner: 'Custom'"},
		{"V2-only provider on V1", func(p *types.PipelineDeclaration) {
			p.Stages[1].Actions[0] = types.ActionDeclaration{Name: aws.String("cmd"), ActionTypeId: typeID(types.ActionCategoryCompute, types.ActionOwnerAws, "Commands"),
				Commands: []string{"make"}, InputArtifacts: []types.InputArtifact{{Name: aws.String("code")}}}
		}, "InvalidActionDeclarationException", "Provider: 'Commands'"},
		{"too few inputs", func(p *types.PipelineDeclaration) {
			b := build("b", "code")
			b.InputArtifacts = nil
			p.Stages[1].Actions[0] = b
		}, "InvalidActionDeclarationException", "Action b declares 0 input artifacts which is less than the minimum count (1)"},
		{"too many outputs", func(p *types.PipelineDeclaration) {
			p.Stages[1].Actions[0] = build("b", "code", "o1", "o2", "o3", "o4", "o5", "o6")
		}, "InvalidActionDeclarationException", "Action b declares 6 output artifacts which is more than the maximum count (5)"},
		{"missing configuration", func(p *types.PipelineDeclaration) { delete(p.Stages[0].Actions[0].Configuration, "S3ObjectKey") },
			"InvalidActionDeclarationException", "Action configuration for action 'src' is missing required configuration 'S3ObjectKey'"},
		{"unknown configuration", func(p *types.PipelineDeclaration) { p.Stages[0].Actions[0].Configuration["Colour"] = "blue" },
			"InvalidActionDeclarationException", "Action configuration for action 'src' contains unknown configuration 'Colour'"},
		{"input nobody produced", func(p *types.PipelineDeclaration) { p.Stages[1].Actions[0] = build("b", "missing") },
			"InvalidActionDeclarationException", "Input artifact 'missing' of action 'b' in stage 'Approve' is not the output artifact of any action that runs before it"},
		{"input from the same runOrder", func(p *types.PipelineDeclaration) {
			p.Stages[1].Actions = []types.ActionDeclaration{build("b1", "code", "mid"), build("b2", "mid")}
		}, "InvalidActionDeclarationException", "Input artifact 'mid' of action 'b2'"},
		{"duplicate output", func(p *types.PipelineDeclaration) { p.Stages[1].Actions[0] = build("b", "code", "code") },
			"InvalidStructureException", "Output Artifact Bundle name must be unique within the pipeline. code has been used more than once."},
		{"both artifact stores", func(p *types.PipelineDeclaration) {
			p.ArtifactStores = map[string]types.ArtifactStore{"us-east-1": *p.ArtifactStore}
		}, "InvalidStructureException", "both artifactStore and artifactStores"},
		{"no artifact store", func(p *types.PipelineDeclaration) { p.ArtifactStore = nil },
			"InvalidStructureException", "neither artifactStore nor artifactStores"},
		{"artifactStores without this region", func(p *types.PipelineDeclaration) {
			p.ArtifactStores = map[string]types.ArtifactStore{"eu-west-1": *p.ArtifactStore}
			p.ArtifactStore = nil
		}, "InvalidStructureException", "pipeline's region, us-east-1"},
		{"queued on V1", func(p *types.PipelineDeclaration) { p.ExecutionMode = types.ExecutionModeQueued },
			"InvalidStructureException", "Execution mode QUEUED is only available for pipelines of type V2"},
		{"variables on V1", func(p *types.PipelineDeclaration) {
			p.Variables = []types.PipelineVariableDeclaration{{Name: aws.String("env")}}
		}, "InvalidStructureException", "variables are only available for pipelines of type V2"},
		{"triggers on V1", func(p *types.PipelineDeclaration) {
			p.Triggers = []types.PipelineTriggerDeclaration{{ProviderType: types.PipelineTriggerProviderTypeCodeStarSourceConnection, GitConfiguration: &types.GitConfiguration{SourceActionName: aws.String("src")}}}
		}, "InvalidStructureException", "Triggers can only be used with V2 pipelines"},
		{"tag triggers on V1", func(p *types.PipelineDeclaration) {
			p.Triggers = []types.PipelineTriggerDeclaration{{ProviderType: types.PipelineTriggerProviderTypeCodeStarSourceConnection, GitConfiguration: &types.GitConfiguration{SourceActionName: aws.String("src"),
				Push: []types.GitPushFilter{{Tags: &types.GitTagFilterCriteria{Includes: []string{"v*"}}}}}}}
		}, "InvalidStructureException", "Triggers on tag can only be used with V2 pipelines"},
		{"artifactStores with a region that is none", func(p *types.PipelineDeclaration) {
			p.ArtifactStores = map[string]types.ArtifactStore{"us-east-1": *p.ArtifactStore, "mars-1": *p.ArtifactStore}
			p.ArtifactStore = nil
		}, "ValidationException", "The region mars-1 specified in 'pipeline.artifactStores' is not a valid AWS Region."},
		{"trigger on a non-connection source", func(p *types.PipelineDeclaration) {
			p.PipelineType = types.PipelineTypeV2
			p.Triggers = []types.PipelineTriggerDeclaration{{ProviderType: types.PipelineTriggerProviderTypeCodeStarSourceConnection, GitConfiguration: &types.GitConfiguration{SourceActionName: aws.String("src")}}}
		}, "InvalidStructureException", "Triggers for connection must reference a CodeStarSourceConnection action"},
		{"duplicate namespace", func(p *types.PipelineDeclaration) {
			p.Stages[0].Actions[0].Namespace = aws.String("ns")
			p.Stages[1].Actions[0].Namespace = aws.String("ns")
		}, "InvalidActionDeclarationException", "Namespaces must be unique across the pipeline definition. The following occur more than once in the pipeline. StageName=[Approve], ActionName=[ok], Namespace=[ns]"},
		{"duplicate blocker", func(p *types.PipelineDeclaration) {
			p.Stages[1].Blockers = []types.BlockerDeclaration{{Name: aws.String("b"), Type: types.BlockerTypeSchedule}, {Name: aws.String("b"), Type: types.BlockerTypeSchedule}}
		}, "InvalidBlockerDeclarationException", "Blocker name 'b'"},
		{"unknown rule type", func(p *types.PipelineDeclaration) {
			p.PipelineType = types.PipelineTypeV2
			p.Stages[1].BeforeEntry = &types.BeforeEntryConditions{Conditions: []types.Condition{{Result: types.ResultFail, Rules: []types.RuleDeclaration{{
				Name: aws.String("r"), RuleTypeId: &types.RuleTypeId{Category: types.RuleCategoryRule, Owner: types.RuleOwnerAws, Provider: aws.String("Nope"), Version: aws.String("1")}}}}}}
		}, "InvalidStageDeclarationException", "Rule 'r' in stage 'Approve'"},
		{"cross-region source", func(p *types.PipelineDeclaration) { p.Stages[0].Actions[0].Region = aws.String("eu-west-1") },
			"InvalidActionDeclarationException", "cannot be cross-region"},
	}
	eachStore(t, limits, func(t *testing.T, e *env) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p := minimal("bad")
				tt.change(p)
				_, err := e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p})
				wantError(t, err, tt.code, tt.fragment)

				must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: minimal("good")}))
				p.Name = aws.String("good")
				_, err = e.client.UpdatePipeline(ctx, &cp.UpdatePipelineInput{Pipeline: p})
				wantError(t, err, tt.code, tt.fragment)
				if got := must[*cp.GetPipelineOutput](t)(e.client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("good")})); *got.Pipeline.Version != 1 {
					t.Fatal("a refused update changed the pipeline")
				}
				must[*cp.DeletePipelineOutput](t)(e.client.DeletePipeline(ctx, &cp.DeletePipelineInput{Name: aws.String("good")}))
			})
		}
	})
}

func TestValidV2Pipeline(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		p := minimal("v2")
		p.PipelineType, p.ExecutionMode = types.PipelineTypeV2, types.ExecutionModeQueued
		p.Variables = []types.PipelineVariableDeclaration{{Name: aws.String("env"), DefaultValue: aws.String("dev")}}
		p.Stages[1].Actions = []types.ActionDeclaration{
			build("b1", "code", "built"),
			{Name: aws.String("cmd"), ActionTypeId: typeID(types.ActionCategoryCompute, types.ActionOwnerAws, "Commands"), RunOrder: aws.Int32(2),
				Commands: []string{"ls"}, OutputVariables: []string{"X"}, InputArtifacts: []types.InputArtifact{{Name: aws.String("built")}}},
		}
		p.Stages = append(p.Stages, types.StageDeclaration{Name: aws.String("Deploy"), Actions: []types.ActionDeclaration{{
			Name: aws.String("s3"), ActionTypeId: typeID(types.ActionCategoryDeploy, types.ActionOwnerAws, "S3"),
			Configuration:  map[string]string{"BucketName": "site", "Extract": "true"},
			InputArtifacts: []types.InputArtifact{{Name: aws.String("built")}},
		}}})
		out := must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}))
		if out.Pipeline.ExecutionMode != types.ExecutionModeQueued || len(out.Pipeline.Variables) != 1 {
			t.Fatalf("created %+v", out.Pipeline)
		}
	})
}
