package model

import (
	"encoding/json"
	"strings"
	"testing"
)

func validate(t *testing.T, in interface{ Validate() error }, body string) string {
	t.Helper()
	if err := json.Unmarshal([]byte(body), in); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	err := in.Validate()
	if err == nil {
		return ""
	}
	e, ok := err.(*Error)
	if !ok || e.Code != "ValidationException" || e.Status != 400 {
		t.Fatalf("Validate returned %#v, want a ValidationException", err)
	}
	return e.Message
}

func TestValidationMessages(t *testing.T) {
	tests := []struct {
		name string
		in   interface{ Validate() error }
		body string
		want string
	}{
		{
			name: "pattern",
			in:   new(GetPipelineInput),
			body: `{"name":"bad name!"}`,
			want: `1 validation error detected: Value 'bad name!' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\-_]+`,
		},
		{
			name: "missing required member",
			in:   new(GetPipelineInput),
			body: `{}`,
			want: `1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null`,
		},
		{
			name: "explicit null is missing",
			in:   new(GetPipelineInput),
			body: `{"name":null}`,
			want: `1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null`,
		},
		{
			name: "integer range",
			in:   new(GetPipelineInput),
			body: `{"name":"p","version":0}`,
			want: `1 validation error detected: Value '0' at 'version' failed to satisfy constraint: Member must have value greater than or equal to 1`,
		},
		{
			name: "two failures on one member",
			in:   new(GetPipelineInput),
			body: `{"name":""}`,
			want: `2 validation errors detected: Value '' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\-_]+; Value '' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1`,
		},
		{
			name: "max length",
			in:   new(GetPipelineInput),
			body: `{"name":"` + strings.Repeat("a", 101) + `"}`,
			want: `1 validation error detected: Value '` + strings.Repeat("a", 101) + `' at 'name' failed to satisfy constraint: Member must have length less than or equal to 100`,
		},
		{
			name: "enum and nested list paths",
			in:   new(CreatePipelineInput),
			body: `{"pipeline":{"name":"p","roleArn":"arn:aws:iam::123456789012:role/r","pipelineType":"V3","stages":[{"name":"s","actions":[]},{"name":"t","actions":[{"name":"a","actionTypeId":{"category":"Source","owner":"AWS","provider":"S3","version":"1"},"runOrder":1000}]}]}}`,
			want: `2 validation errors detected: Value '1000' at 'pipeline.stages.2.member.actions.1.member.runOrder' failed to satisfy constraint: Member must have value less than or equal to 999; Value 'V3' at 'pipeline.pipelineType' failed to satisfy constraint: Member must satisfy enum value set: [V1, V2]`,
		},
		{
			name: "map values",
			in:   new(CreatePipelineInput),
			body: `{"pipeline":{"name":"p","roleArn":"arn:aws:iam::123456789012:role/r","stages":[{"name":"s","actions":[{"name":"a","actionTypeId":{"category":"Source","owner":"AWS","provider":"S3","version":"1"},"configuration":{"S3Bucket":""}}]}]}}`,
			want: `1 validation error detected: Value at 'pipeline.stages.1.member.actions.1.member.configuration' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 1000, Member must have length greater than or equal to 1]`,
		},
		{
			name: "list size and scalar list members",
			in:   new(UntagResourceInput),
			body: `{"resourceArn":"arn:aws:codepipeline:us-east-1:123456789012:p","tagKeys":[""]}`,
			want: `1 validation error detected: Value '' at 'tagKeys.1.member' failed to satisfy constraint: Member must have length greater than or equal to 1`,
		},
		{
			name: "job id pattern",
			in:   new(PutJobSuccessResultInput),
			body: `{"jobId":"not-a-job-id"}`,
			want: `1 validation error detected: Value 'not-a-job-id' at 'jobId' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`,
		},
		{
			name: "valid input",
			in:   new(ListPipelinesInput),
			body: `{"maxResults":1000}`,
			want: ``,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validate(t, tt.in, tt.body); got != tt.want {
				t.Errorf("message\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

func TestLongValuesAreCut(t *testing.T) {
	long := strings.Repeat("é", 300) // characters, not bytes, count
	got := validate(t, new(GetPipelineInput), `{"name":"`+long+`"}`)
	shown := `Value '` + strings.Repeat("é", 256) + `' (the first 256 of 300 characters) at 'name' failed to satisfy constraint: `
	want := `2 validation errors detected: ` + shown + `Member must satisfy regular expression pattern: [A-Za-z0-9.@\-_]+; ` + shown + `Member must have length less than or equal to 100`
	if got != want {
		t.Errorf("message\n got: %s\nwant: %s", got, want)
	}

	key := strings.Repeat("k", 1000)
	got = validate(t, new(CreatePipelineInput), `{"pipeline":{"name":"p","roleArn":"r","stages":[],"artifactStores":{"`+key+`":{"type":"S3","location":"!"}}}}`)
	path := `'pipeline.artifactStores.` + strings.Repeat("k", 256) + `....member.location'`
	if !strings.Contains(got, "Value '!' at "+path) || strings.Contains(got, strings.Repeat("k", 257)) {
		t.Errorf("a long map key in a path: %s", got)
	}
}

func TestManyFailuresAreCounted(t *testing.T) {
	keys := strings.Repeat(`"",`, 149) + `""`
	got := validate(t, new(UntagResourceInput), `{"resourceArn":"arn:aws:codepipeline:us-east-1:123456789012:p","tagKeys":[`+keys+`]}`)
	if !strings.HasPrefix(got, "150 validation errors detected: ") || !strings.HasSuffix(got, "; and 50 more, not listed") {
		t.Errorf("message: %.200s … %s", got, got[max(0, len(got)-100):])
	}
	if n := strings.Count(got, "failed to satisfy constraint"); n != maxListed {
		t.Errorf("%d failures listed, want %d", n, maxListed)
	}
	if !strings.Contains(got, "at 'tagKeys.100.member'") || strings.Contains(got, "at 'tagKeys.101.member'") {
		t.Errorf("the listed failures are not the first ones: %.300s", got)
	}
}

func TestSensitiveRuleHidesValue(t *testing.T) {
	var c checker
	c.checkString("secret", "", &stringRule{min: 1, hasMin: true, sensitive: true})
	if len(c.failures) != 1 || strings.Contains(c.failures[0], "''") || !strings.HasPrefix(c.failures[0], "Value at 'secret'") {
		t.Fatalf("failures = %q", c.failures)
	}
}

func TestEveryOperationHasAValidatingInput(t *testing.T) {
	ops := Operations()
	if len(ops) != 44 {
		t.Fatalf("the model has %d operations, want 44", len(ops))
	}
	for _, op := range ops {
		in := op.NewInput()
		if _, ok := in.(interface{ Validate() error }); !ok {
			t.Errorf("%s input %T has no Validate", op.Name, in)
		}
	}
}

// FuzzValidate feeds arbitrary JSON to every operation's validator: none may panic.
func FuzzValidate(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"name":"p","version":3}`,
		`{"pipeline":{"name":"p","stages":[{"name":"s","actions":[{"name":"a","configuration":{"":""}}]}],"artifactStores":{"x":{}}}}`,
		`{"tags":[{},{"key":"aws:x"}],"tagKeys":["a",""]}`,
		`{"jobs":[],"queryParam":{"a":"b","c":"d"},"maxBatchSize":-1}`,
	} {
		f.Add(seed)
	}
	ops := Operations()
	f.Fuzz(func(t *testing.T, body string) {
		for _, op := range ops {
			in := op.NewInput()
			if json.Unmarshal([]byte(body), in) != nil {
				continue
			}
			if err := in.(interface{ Validate() error }).Validate(); err != nil && !HasCode(err, "ValidationException") {
				t.Fatalf("%s: Validate returned %v", op.Name, err)
			}
		}
	})
}
