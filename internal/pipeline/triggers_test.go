package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/model"
)

// v2 declares a V2 pipeline whose first stage holds a connection source "src" on branch main,
// a CodeCommit source "cc" and, when detect is "false", DetectChanges false on "src"; triggers
// is the JSON of its triggers, or "" for none.
func v2(triggers, detect string) string {
	config := `"ConnectionArn":"arn:aws:codeconnections:us-east-1:123456789012:connection/x","FullRepositoryId":"acme/app","BranchName":"main"`
	if detect != "" {
		config += `,"DetectChanges":"` + detect + `"`
	}
	decl := `{"pipeline":{"name":"p","roleArn":"arn:aws:iam::123456789012:role/r","artifactStore":{"type":"S3","location":"bucket"},"pipelineType":"V2",
"stages":[{"name":"Source","actions":[
{"name":"src","actionTypeId":{"category":"Source","owner":"AWS","provider":"CodeStarSourceConnection","version":"1"},"configuration":{` + config + `},"outputArtifacts":[{"name":"code"}]},
{"name":"cc","actionTypeId":{"category":"Source","owner":"AWS","provider":"CodeCommit","version":"1"},"configuration":{"RepositoryName":"r","BranchName":"main"},"outputArtifacts":[{"name":"cc"}]}]},
{"name":"Approve","actions":[{"name":"ok","actionTypeId":{"category":"Approval","owner":"AWS","provider":"Manual","version":"1"}}]}]`
	if triggers != "" {
		decl += `,"triggers":` + triggers
	}
	return decl + `}}`
}

// trigger is the JSON of a trigger of a source action with a git configuration's filters.
func trigger(action, filters string) string {
	if filters != "" {
		filters = "," + filters
	}
	return fmt.Sprintf(`{"providerType":"CodeStarSourceConnection","gitConfiguration":{"sourceActionName":%q%s}}`, action, filters)
}

func TestTriggerValidation(t *testing.T) {
	const (
		source  = "Triggers for connection must reference a CodeStarSourceConnection action. Note that when you specify a trigger, you cant specify more than one trigger per source action."
		filters = "The trigger configuration for the source action is not valid. Make sure to choose valid filter combinations."
	)
	branches := `"branches":{"includes":["main"]}`
	tags := `"tags":{"includes":["v*"]}`
	paths := `"filePaths":{"includes":["src/**"]}`
	for _, tc := range []struct {
		name, triggers, want string
	}{
		{"push on branches", `[` + trigger("src", `"push":[{`+branches+`}]`) + `]`, ""},
		{"push on tags", `[` + trigger("src", `"push":[{`+tags+`}]`) + `]`, ""},
		{"push on branches and file paths", `[` + trigger("src", `"push":[{`+branches+`,`+paths+`}]`) + `]`, ""},
		{"push on excluded branches only", `[` + trigger("src", `"push":[{"branches":{"excludes":["wip/**"]}}]`) + `]`, ""},
		{"push filters of both kinds", `[` + trigger("src", `"push":[{`+tags+`},{`+branches+`}]`) + `]`, ""},
		{"pull request on branches", `[` + trigger("src", `"pullRequest":[{"events":["OPEN","CLOSED"],`+branches+`,`+paths+`}]`) + `]`, ""},
		{"push and pull request", `[` + trigger("src", `"push":[{`+tags+`}],"pullRequest":[{`+branches+`}]`) + `]`, ""},

		{"branches and tags in one push filter", `[` + trigger("src", `"push":[{`+branches+`,`+tags+`}]`) + `]`, filters},
		{"push filter with neither branches nor tags", `[` + trigger("src", `"push":[{`+paths+`}]`) + `]`, filters},
		{"push filter with empty criteria", `[` + trigger("src", `"push":[{"branches":{}}]`) + `]`, filters},
		{"file paths with tags", `[` + trigger("src", `"push":[{`+tags+`,`+paths+`}]`) + `]`, filters},
		{"pull request without branches", `[` + trigger("src", `"pullRequest":[{"events":["OPEN"],`+paths+`}]`) + `]`, filters},
		{"no filter at all", `[` + trigger("src", "") + `]`, filters},

		{"a source action that does not exist", `[` + trigger("nope", `"push":[{`+branches+`}]`) + `]`, source},
		{"a CodeCommit source action", `[` + trigger("cc", `"push":[{`+branches+`}]`) + `]`, source},
		{"a non-source action", `[` + trigger("ok", `"push":[{`+branches+`}]`) + `]`, source},
		{"two triggers of one source action", `[` + trigger("src", `"push":[{`+branches+`}]`) + `,` + trigger("src", `"push":[{`+tags+`}]`) + `]`, source},
	} {
		_, err, ok := check(v2(tc.triggers, ""))
		if !ok {
			t.Errorf("%s: the model refused the declaration", tc.name)
			continue
		}
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", tc.name, err)
			}
			continue
		}
		var apiErr *model.Error
		if !errors.As(err, &apiErr) || apiErr.Code != "InvalidStructureException" || apiErr.Message != tc.want {
			t.Errorf("%s: got %v, want InvalidStructureException %q", tc.name, err, tc.want)
		}
	}
}

// TestTriggerLimits: the numbers of filters and of patterns are the model's constraints,
// refused as ValidationException before the structure is looked at.
func TestTriggerLimits(t *testing.T) {
	many := func(n int) string {
		var p []string
		for i := range n {
			p = append(p, fmt.Sprintf("%q", fmt.Sprintf("b%d", i)))
		}
		return "[" + strings.Join(p, ",") + "]"
	}
	push := func(n int) string {
		var f []string
		for range n {
			f = append(f, `{"branches":{"includes":["main"]}}`)
		}
		return "[" + strings.Join(f, ",") + "]"
	}
	for _, tc := range []struct {
		name, filters string
		valid         bool
	}{
		{"3 push filters", `"push":` + push(3), true},
		{"4 push filters", `"push":` + push(4), false},
		{"4 pull request filters", `"pullRequest":` + push(4), false},
		{"8 branch includes", `"push":[{"branches":{"includes":` + many(8) + `}}]`, true},
		{"9 branch includes", `"push":[{"branches":{"includes":` + many(9) + `}}]`, false},
		{"9 tag excludes", `"push":[{"tags":{"excludes":` + many(9) + `}}]`, false},
		{"9 file path includes", `"push":[{"branches":{"includes":["main"]},"filePaths":{"includes":` + many(9) + `}}]`, false},
		{"an empty includes list", `"push":[{"branches":{"includes":[]}}]`, false},
		{"an unknown pull request event", `"pullRequest":[{"events":["MERGED"],"branches":{"includes":["main"]}}]`, false},
	} {
		var in model.CreatePipelineInput
		if err := json.Unmarshal([]byte(v2(`[`+trigger("src", tc.filters)+`]`, "")), &in); err != nil {
			t.Fatal(err)
		}
		err := in.Validate()
		var apiErr *model.Error
		switch {
		case tc.valid && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case !tc.valid && (!errors.As(err, &apiErr) || apiErr.Code != "ValidationException"):
			t.Errorf("%s: got %v, want a ValidationException", tc.name, err)
		}
	}
}

func TestDefaultTriggers(t *testing.T) {
	p, err, ok := check(v2("", ""))
	if !ok || err != nil {
		t.Fatalf("refused: %v", err)
	}
	got, _ := json.Marshal(p.Triggers)
	want := `[{"providerType":"CodeStarSourceConnection","gitConfiguration":{"sourceActionName":"src","push":[{"branches":{"includes":["main"]}}]}}]`
	if string(got) != want {
		t.Fatalf("default triggers %s, want %s", got, want)
	}

	// None where the pipeline declares its own, where the source does not detect changes, or
	// for a V1 pipeline.
	declared := `[` + trigger("src", `"push":[{"tags":{"includes":["v*"]}}]`) + `]`
	if p, err, _ := check(v2(declared, "")); err != nil || len(p.Triggers) != 1 || p.Triggers[0].GitConfiguration.Push[0].Tags == nil {
		t.Errorf("declared triggers became %+v (%v)", p.Triggers, err)
	}
	if p, err, _ := check(v2("", "false")); err != nil || len(p.Triggers) != 0 {
		t.Errorf("DetectChanges false: triggers %+v (%v)", p.Triggers, err)
	}
	v1 := strings.Replace(v2("", ""), `"pipelineType":"V2",`, "", 1)
	if p, err, _ := check(v1); err != nil || len(p.Triggers) != 0 {
		t.Errorf("V1: triggers %+v (%v)", p.Triggers, err)
	}
	// What GetPipeline shows can be sent back as is.
	if p, err, _ := check(v2(string(got), "")); err != nil || len(p.Triggers) != 1 {
		t.Errorf("the default trigger sent back: %+v (%v)", p.Triggers, err)
	}
}
