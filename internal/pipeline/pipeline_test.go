package pipeline

import (
	"encoding/json"
	"testing"

	"github.com/sluicehq/sluice/internal/catalog"
	"github.com/sluicehq/sluice/internal/model"
)

func catalogOnly(id model.ActionTypeId) (catalog.ActionType, bool, error) {
	t, ok := catalog.LookupActionType(*id.Category, *id.Owner, *id.Provider, *id.Version)
	return t, ok, nil
}

const valid = `{"pipeline":{"name":"p","roleArn":"arn:aws:iam::123456789012:role/r","artifactStore":{"type":"S3","location":"bucket"},
"stages":[{"name":"Source","actions":[{"name":"src","actionTypeId":{"category":"Source","owner":"AWS","provider":"S3","version":"1"},
"configuration":{"S3Bucket":"b","S3ObjectKey":"k"},"outputArtifacts":[{"name":"code"}]}]},
{"name":"Build","actions":[{"name":"b","actionTypeId":{"category":"Build","owner":"AWS","provider":"CodeBuild","version":"1"},
"configuration":{"ProjectName":"x"},"inputArtifacts":[{"name":"code"}],"outputArtifacts":[{"name":"out"}]},
{"name":"gh","runOrder":2,"actionTypeId":{"category":"Approval","owner":"AWS","provider":"Manual","version":"1"}}]}]}}`

// check decodes a CreatePipeline body, applies the model's validation, and then this package's.
func check(body string) (*model.PipelineDeclaration, error, bool) {
	var in model.CreatePipelineInput
	if json.Unmarshal([]byte(body), &in) != nil || in.Validate() != nil {
		return nil, nil, false
	}
	Normalize(in.Pipeline)
	return in.Pipeline, Validate(in.Pipeline, "us-east-1", DefaultLimits, catalogOnly), true
}

func TestValidDeclarationPasses(t *testing.T) {
	p, err, ok := check(valid)
	if !ok || err != nil {
		t.Fatalf("valid pipeline refused: %v", err)
	}
	if *p.Stages[1].Actions[0].RunOrder != 1 || *p.PipelineType != model.PipelineTypeV1 {
		t.Fatalf("not normalized: %+v", p)
	}
}

func TestKeepSecretsRestoresMaskedValues(t *testing.T) {
	mk := func(token string) *model.PipelineDeclaration {
		return &model.PipelineDeclaration{Stages: []model.StageDeclaration{{Name: new("S"), Actions: []model.ActionDeclaration{{
			Name: new("gh"), ActionTypeId: &model.ActionTypeId{Category: new(model.ActionCategorySource), Owner: new(model.ActionOwnerThirdParty), Provider: new("GitHub"), Version: new("1")},
			Configuration: map[string]string{"OAuthToken": token, "Owner": "me"},
		}}}}}
	}
	updated := mk(catalog.SecretMask)
	KeepSecrets(updated, mk("real"), catalogOnly)
	if got := updated.Stages[0].Actions[0].Configuration["OAuthToken"]; got != "real" {
		t.Fatalf("OAuthToken = %q, want the stored value", got)
	}
	MaskSecrets(updated, catalogOnly)
	if c := updated.Stages[0].Actions[0].Configuration; c["OAuthToken"] != catalog.SecretMask || c["Owner"] != "me" {
		t.Fatalf("masked configuration %v", c)
	}
}

// FuzzValidate: no declaration that passes the model's constraints makes the structure rules panic.
func FuzzValidate(f *testing.F) {
	f.Add(valid)
	f.Add(`{"pipeline":{"name":"p","roleArn":"arn:aws:iam::123456789012:role/r","artifactStores":{"us-east-1":{"type":"S3","location":"bkt"}},"pipelineType":"V2",
		"triggers":[{"providerType":"CodeStarSourceConnection","gitConfiguration":{"sourceActionName":"x"}}],"stages":[{"name":"a","actions":[]}]}}`)
	f.Add(`{"pipeline":{"name":"p","roleArn":"arn:aws:iam::123456789012:role/r","artifactStore":{"type":"S3","location":"bkt"},"pipelineType":"V2",
		"stages":[{"name":"a","actions":[{"name":"x","region":"eu-west-1","actionTypeId":{"category":"Compute","owner":"AWS","provider":"Commands","version":"1"}}],
		"beforeEntry":{"conditions":[{"rules":[{"name":"r","ruleTypeId":{"category":"Rule","provider":"VariableCheck"}}]}]}},{"name":"b","actions":[{"name":"y","actionTypeId":{"category":"Source","owner":"Custom","provider":"Z","version":"1"}}]}]}}`)
	f.Fuzz(func(t *testing.T, body string) {
		if _, err, ok := check(body); ok && err != nil {
			if _, isAPIError := err.(*model.Error); !isAPIError {
				t.Fatalf("Validate returned %T %v, want an API error", err, err)
			}
		}
	})
}
