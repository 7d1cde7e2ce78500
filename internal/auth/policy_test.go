package auth

import (
	"errors"
	"testing"
)

const (
	bobARN     = "arn:aws:iam::111111111111:user/bob"
	pipelineP  = "arn:aws:codepipeline:us-east-1:111111111111:p"
	pipelineQ  = "arn:aws:codepipeline:us-east-1:111111111111:q"
	stmtAction = "codepipeline:DeletePipeline"
)

func bob(policy ...Statement) *Principal {
	return &Principal{Account: "111111111111", User: "bob", AccessKeyID: bobKey, policy: policy}
}

func allow(actions []string, resources ...string) Statement {
	return Statement{Effect: Allow, Action: actions, Resource: resources}
}

func deny(actions []string, resources ...string) Statement {
	return Statement{Effect: Deny, Action: actions, Resource: resources}
}

func TestAuthorize(t *testing.T) {
	readOnly := allow([]string{"codepipeline:Get*", "codepipeline:List*"}, "*")
	cases := []struct {
		name      string
		policy    []Statement
		action    string
		resources []string
		// wantResource is the resource the refusal names; "" for no refusal.
		wantResource string
		wantExplicit bool
		wantMsg      string
	}{
		{name: "no statements", action: stmtAction, resources: []string{pipelineP}},
		{name: "no statements, no resource", action: stmtAction},
		{name: "read-only reads", policy: []Statement{readOnly}, action: "codepipeline:GetPipeline", resources: []string{pipelineP}},
		{name: "read-only lists", policy: []Statement{readOnly}, action: "codepipeline:ListPipelines", resources: []string{"*"}},
		{name: "read-only deletes", policy: []Statement{readOnly}, action: stmtAction, resources: []string{pipelineP},
			wantResource: pipelineP,
			wantMsg:      "User: arn:aws:iam::111111111111:user/bob is not authorized to perform: codepipeline:DeletePipeline on resource: arn:aws:codepipeline:us-east-1:111111111111:p because no identity-based policy allows the codepipeline:DeletePipeline action"},
		{name: "read-only, action of another service", policy: []Statement{readOnly}, action: "s3:GetObject", resources: []string{"arn:aws:s3:::b/k"}, wantResource: "arn:aws:s3:::b/k"},
		{name: "allow all but deny delete, delete", policy: []Statement{allow([]string{"*"}, "*"), deny([]string{stmtAction}, "*")},
			action: stmtAction, resources: []string{pipelineP}, wantResource: pipelineP, wantExplicit: true,
			wantMsg: "User: arn:aws:iam::111111111111:user/bob is not authorized to perform: codepipeline:DeletePipeline on resource: arn:aws:codepipeline:us-east-1:111111111111:p with an explicit deny in an identity-based policy"},
		{name: "allow all but deny delete, update", policy: []Statement{allow([]string{"*"}, "*"), deny([]string{stmtAction}, "*")},
			action: "codepipeline:UpdatePipeline", resources: []string{pipelineP}},
		{name: "deny before allow still wins", policy: []Statement{deny([]string{"codepipeline:*"}, pipelineP), allow([]string{"*"}, "*")},
			action: "codepipeline:GetPipeline", resources: []string{pipelineP}, wantResource: pipelineP, wantExplicit: true},
		{name: "deny alone", policy: []Statement{deny([]string{"codepipeline:Delete*"}, "*")},
			action: "codepipeline:GetPipeline", resources: []string{pipelineP}, wantResource: pipelineP},
		{name: "action case-insensitive", policy: []Statement{allow([]string{"CodePipeline:getpipeline"}, "*")},
			action: "codepipeline:GetPipeline", resources: []string{pipelineP}},
		{name: "action pattern case-insensitive", policy: []Statement{allow([]string{"CODEPIPELINE:GET*"}, "*")},
			action: "codepipeline:GetPipelineState", resources: []string{pipelineP}},
		{name: "deny case-insensitive", policy: []Statement{allow([]string{"*"}, "*"), deny([]string{"codepipeline:deletepipeline"}, "*")},
			action: stmtAction, resources: []string{pipelineP}, wantResource: pipelineP, wantExplicit: true},
		{name: "resource case-sensitive", policy: []Statement{allow([]string{"*"}, "arn:aws:codepipeline:us-east-1:111111111111:P")},
			action: "codepipeline:GetPipeline", resources: []string{pipelineP}, wantResource: pipelineP},
		{name: "resource pattern case-sensitive", policy: []Statement{allow([]string{"*"}, "ARN:aws:codepipeline:*")},
			action: "codepipeline:GetPipeline", resources: []string{pipelineP}, wantResource: pipelineP},
		{name: "resource wildcard", policy: []Statement{allow([]string{"*"}, "arn:aws:codepipeline:us-east-1:111111111111:*")},
			action: "codepipeline:GetPipeline", resources: []string{pipelineP}},
		{name: "question mark matches one character", policy: []Statement{allow([]string{"codepipeline:GetPipelin?"}, "arn:aws:codepipeline:us-east-1:111111111111:?")},
			action: "codepipeline:GetPipeline", resources: []string{pipelineP}},
		{name: "question mark does not match two", policy: []Statement{allow([]string{"*"}, "arn:aws:codepipeline:us-east-1:111111111111:?")},
			action: "codepipeline:GetPipeline", resources: []string{pipelineP + "p"}, wantResource: pipelineP + "p"},
		{name: "question mark does not match none", policy: []Statement{allow([]string{"*"}, "arn:aws:codepipeline:us-east-1:111111111111:p?")},
			action: "codepipeline:GetPipeline", resources: []string{pipelineP}, wantResource: pipelineP},
		{name: "second of two resources denied", policy: []Statement{allow([]string{"*"}, "*"), deny([]string{"*"}, pipelineQ)},
			action: "codepipeline:PutActionRevision", resources: []string{pipelineP, pipelineQ}, wantResource: pipelineQ, wantExplicit: true},
		{name: "second of two resources not allowed", policy: []Statement{allow([]string{"*"}, pipelineP)},
			action: "codepipeline:PutActionRevision", resources: []string{pipelineP, pipelineQ}, wantResource: pipelineQ},
		{name: "both resources allowed by different statements", policy: []Statement{allow([]string{"*"}, pipelineP), allow([]string{"*"}, pipelineQ)},
			action: "codepipeline:PutActionRevision", resources: []string{pipelineP, pipelineQ}},
		{name: "several patterns in a statement", policy: []Statement{allow([]string{"s3:*", "codepipeline:Start*"}, "x", pipelineP)},
			action: "codepipeline:StartPipelineExecution", resources: []string{pipelineP}},
		{name: "star action only matches its patterns", policy: []Statement{allow([]string{"codepipeline:*"}, "*")},
			action: "codepipelinex:GetPipeline", resources: []string{pipelineP}, wantResource: pipelineP},
		{name: "resource star matches a literal star", policy: []Statement{allow([]string{"*"}, "*")},
			action: "codepipeline:ListPipelines", resources: []string{"*"}},
		{name: "specific resource does not match star", policy: []Statement{allow([]string{"*"}, "arn:aws:codepipeline:*")},
			action: "codepipeline:ListPipelines", resources: []string{"*"}, wantResource: "*"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := bob(tc.policy...).Authorize(tc.action, tc.resources...)
			if tc.wantResource == "" {
				if err != nil {
					t.Fatalf("Authorize: %v", err)
				}
				return
			}
			var denied *AccessDenied
			if !errors.As(err, &denied) {
				t.Fatalf("Authorize = %v (%T), want an *AccessDenied", err, err)
			}
			if denied.Principal != bobARN || denied.Action != tc.action || denied.Resource != tc.wantResource || denied.Explicit != tc.wantExplicit {
				t.Errorf("AccessDenied = %+v, want resource %s, explicit %v", *denied, tc.wantResource, tc.wantExplicit)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Errorf("message = %q\nwant        %q", err.Error(), tc.wantMsg)
			}
		})
	}
}

// TestAuthorizeNoResource checks that a call naming no resource is not allowed by a policy that
// allows nothing of it.
func TestAuthorizeNoResource(t *testing.T) {
	p := bob(allow([]string{"codepipeline:Get*"}, "*"))
	if err := p.Authorize("codepipeline:GetPipeline"); err != nil {
		t.Errorf("allowed action without resources: %v", err)
	}
	var denied *AccessDenied
	if err := p.Authorize("codepipeline:DeletePipeline"); !errors.As(err, &denied) || denied.Resource != "*" {
		t.Errorf("refused action without resources: %v", err)
	}
}

func TestAuthorizeRoot(t *testing.T) {
	for _, action := range []string{"codepipeline:DeletePipeline", "s3:PutObject", "*", ""} {
		if err := Root("111111111111").Authorize(action, pipelineP, "*", "arn:aws:codepipeline:eu-west-1:999999999999:x"); err != nil {
			t.Errorf("root: Authorize(%q) = %v", action, err)
		}
	}
}

func TestAccessDeniedMessages(t *testing.T) {
	for _, tc := range []struct {
		e    AccessDenied
		want string
	}{
		{AccessDenied{Principal: "arn:aws:iam::1:user/u", Action: "a:B", Resource: "r"}, "User: arn:aws:iam::1:user/u is not authorized to perform: a:B on resource: r because no identity-based policy allows the a:B action"},
		{AccessDenied{Principal: "arn:aws:iam::1:user/u", Action: "a:B", Resource: "r", Explicit: true}, "User: arn:aws:iam::1:user/u is not authorized to perform: a:B on resource: r with an explicit deny in an identity-based policy"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestWildcard(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"a", "", false},
		{"*", "", true},
		{"*", "anything at all", true},
		{"**", "", true},
		{"?", "", false},
		{"?", "a", true},
		{"?", "ab", false},
		{"??", "ab", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXXbYYbZZc", true},
		{"a*b*c", "acb", false},
		{"a*b*c", "abcd", false},
		{"a*b*c", "abcc", true},
		{"a*", "a", true},
		{"a*", "abc", true},
		{"a*", "ba", false},
		{"ab*", "a", false},
		{"abcdef", "abc", false},
		{"abc", "abcdef", false},
		{"a?c*", "abc", true},
		{"*a", "ba", true},
		{"*a", "ab", false},
		{"*ab", "aab", true},
		{"*ab*ab", "abaabab", true},
		{"a*?", "a", false},
		{"a*?", "ab", true},
		// A literal star or question mark in the input is matched like any character.
		{"*", "*", true},
		{"*", "*x", true},
		{"*a", "*ba", true},
		{"a*", "a*", true},
		{"x*y", "x*z*y", true},
		{"?", "*", true},
		{"?", "?", true},
		{"a", "*", false},
	}
	for _, tc := range cases {
		if got := wildcard(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcard(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
