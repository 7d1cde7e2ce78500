package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/sluicehq/sluice/internal/sdktest"
)

// This file drives `sluice serve --auth sigv4 --identities FILE` end to end: requests are signed
// with the access keys of an identities file, refused in AWS's words when they are not, allowed
// or denied by each user's policy, and each account sees only its own pipelines, jobs,
// repositories, buckets and logs.

// identity is one access key of the identities file the tests serve with.
type identity struct{ account, user, key, secret string }

var (
	alice = identity{"111111111111", "alice", "AKIAALICE00000000001", "alice-secret"}
	// reader may read pipelines, objects, repositories and logs of account 111111111111.
	reader = identity{"111111111111", "reader", "AKIAREADER0000000001", "reader-secret"}
	// carol may do everything but delete pipelines.
	carol = identity{"111111111111", "carol", "AKIACAROL00000000001", "carol-secret"}
	// nolist may do everything but list pipelines.
	nolist = identity{"111111111111", "nolist", "AKIANOLIST0000000001", "nolist-secret"}
	// cponly may call CodePipeline only: no git, no S3, no logs.
	cponly = identity{"111111111111", "cponly", "AKIACPONLY0000000001", "cponly-secret"}
	bob    = identity{"222222222222", "bob", "AKIABOB0000000000001", "bob-secret"}
	// newbie is added to the identities while the server runs.
	newbie = identity{"333333333333", "newbie", "AKIANEW0000000000001", "newbie-secret"}
)

const authIdentities = `accounts:
  - id: "111111111111"
    users:
      - name: alice            # no policy: may do everything in its account
        accessKeys: [{id: AKIAALICE00000000001, secret: alice-secret}]
      - name: reader
        accessKeys: [{id: AKIAREADER0000000001, secret: reader-secret}]
        policy:
          - {effect: Allow, action: ["codepipeline:Get*", "codepipeline:List*", "s3:Get*", "s3:List*", "codecommit:GitPull", "logs:GetLogEvents"], resource: ["*"]}
      - name: carol            # everything but deleting pipelines
        accessKeys: [{id: AKIACAROL00000000001, secret: carol-secret}]
        policy:
          - {effect: Allow, action: "*", resource: "*"}
          - {effect: Deny, action: "codepipeline:DeletePipeline", resource: "*"}
      - name: nolist
        accessKeys: [{id: AKIANOLIST0000000001, secret: nolist-secret}]
        policy:
          - {effect: Allow, action: "*", resource: "*"}
          - {effect: Deny, action: "codepipeline:ListPipelines", resource: "*"}
      - name: cponly
        accessKeys: [{id: AKIACPONLY0000000001, secret: cponly-secret}]
        policy:
          - {effect: Allow, action: "codepipeline:*", resource: "*"}
  - id: "222222222222"
    users:
      - name: bob
        accessKeys: [{id: AKIABOB0000000000001, secret: bob-secret}]
`

// env is the environment of an AWS client process (the AWS CLI, `sluice logs`, `sluice worker`)
// that signs with the identity's key and reads no configuration of the machine's.
func (id identity) env() []string {
	return append(slices.Clone(awsEnv), "AWS_ACCESS_KEY_ID="+id.key, "AWS_SECRET_ACCESS_KEY="+id.secret)
}

func (id identity) credentials() aws.Credentials {
	return aws.Credentials{AccessKeyID: id.key, SecretAccessKey: id.secret}
}

func (id identity) arn() string { return "arn:aws:iam::" + id.account + ":user/" + id.user }

// writeIdentities replaces the identities file at path at once, as an editor saving it would.
func writeIdentities(t *testing.T, path, contents string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(contents), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// newAuthServer serves with --auth sigv4 and an identities file holding identities; it returns
// the server and the file's path.
func newAuthServer(t *testing.T, bin, identities string, args ...string) (*testServer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "identities.yaml")
	writeIdentities(t, path, identities)
	return newTestServer(t, bin, append([]string{"--auth", "sigv4", "--identities", path}, args...)...), path
}

// cpAs is a CodePipeline client of srv signing with id's key.
func cpAs(srv *testServer, id identity) *cp.Client {
	return cpWith(srv, credentials.NewStaticCredentialsProvider(id.key, id.secret, ""), "us-east-1")
}

func cpWith(srv *testServer, creds aws.CredentialsProvider, region string) *cp.Client {
	return cp.New(cp.Options{Region: region, BaseEndpoint: aws.String("http://" + srv.addr), Credentials: creds, Retryer: sdktest.ConnectionRetries()})
}

// s3As is an S3 client of srv's built-in endpoint signing with id's key.
func s3As(srv *testServer, id identity) *s3.Client {
	return s3With(srv, credentials.NewStaticCredentialsProvider(id.key, id.secret, ""))
}

func s3With(srv *testServer, creds aws.CredentialsProvider) *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + srv.addr), UsePathStyle: true,
		Retryer: sdktest.ConnectionRetries(), Credentials: creds, DisableLogOutputChecksumValidationSkipped: true})
}

// wantErr checks that err is the AWS error code, with exactly message unless message is empty.
func wantErr(t *testing.T, what string, err error, code, message string) {
	t.Helper()
	var apiErr smithy.APIError
	switch {
	case !errors.As(err, &apiErr):
		t.Errorf("%s: got %v, want %s", what, err, code)
	case apiErr.ErrorCode() != code:
		t.Errorf("%s: got %s (%s), want %s", what, apiErr.ErrorCode(), apiErr.ErrorMessage(), code)
	case message != "" && apiErr.ErrorMessage() != message:
		t.Errorf("%s: %s says\n  %q\nwant\n  %q", what, code, apiErr.ErrorMessage(), message)
	}
}

// errCode is the AWS error code of err, or its text if it is no AWS error, or "" if it is nil.
func errCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// The refusals of the IAM policies of the identities file.
func notAllowed(id identity, action, resource string) string {
	return fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action", id.arn(), action, resource, action)
}

func explicitlyDenied(id identity, action, resource string) string {
	return fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s with an explicit deny in an identity-based policy", id.arn(), action, resource)
}

const (
	badSignature = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	badToken     = "The security token included in the request is invalid."
)

// apiAnswer is the CodePipeline API's answer to a raw request.
type apiAnswer struct {
	status  int
	Type    string `json:"__type"`
	Message string `json:"message"`
	body    string
}

// callAPI posts a CodePipeline request with body, which sign, if set, signs (or spoils).
func callAPI(t *testing.T, addr, op, body string, sign func(r *http.Request, body []byte)) apiAnswer {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("X-Amz-Target", "CodePipeline_20150709."+op)
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if sign != nil {
		sign(r, []byte(body))
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := apiAnswer{status: resp.StatusCode, body: string(raw)}
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("%s answered %d with %q, not an AWS JSON error", op, resp.StatusCode, raw)
		}
	}
	return a
}

// signAs signs a CodePipeline request with creds, as a client would at time at, for service in
// region, over the hash of the body it is given.
func signAs(t *testing.T, creds aws.Credentials, service, region string, at time.Time) func(*http.Request, []byte) {
	return func(r *http.Request, body []byte) {
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), service, region, at); err != nil {
			t.Fatal(err)
		}
	}
}

func (a apiAnswer) check(t *testing.T, what string, status int, code, message string) {
	t.Helper()
	if a.status != status || a.Type != code || (message != "" && a.Message != message) {
		t.Errorf("%s: answered %d %s %q, want %d %s %q", what, a.status, a.Type, a.Message, status, code, message)
	}
}

// approvalPipeline is a pipeline of account that runs nothing on its own: an S3 source that does
// not poll, then a manual approval.
func approvalPipeline(name, account string) *types.PipelineDeclaration {
	return &types.PipelineDeclaration{
		Name: aws.String(name), RoleArn: aws.String("arn:aws:iam::" + account + ":role/cp"),
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts-" + account)},
		Stages: []types.StageDeclaration{
			{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{Name: aws.String("src"),
				ActionTypeId:    &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerAws, Provider: aws.String("S3"), Version: aws.String("1")},
				Configuration:   map[string]string{"S3Bucket": "sources-" + account, "S3ObjectKey": "app.zip", "PollForSourceChanges": "false"},
				OutputArtifacts: []types.OutputArtifact{{Name: aws.String("Src")}}}}},
			approvalStage(),
		},
	}
}

func approvalStage() types.StageDeclaration {
	return types.StageDeclaration{Name: aws.String("Approve"), Actions: []types.ActionDeclaration{{Name: aws.String("approve"),
		ActionTypeId: &types.ActionTypeId{Category: types.ActionCategoryApproval, Owner: types.ActionOwnerAws, Provider: aws.String("Manual"), Version: aws.String("1")}}}}
}

func pipelineARN(account, name string) string {
	return "arn:aws:codepipeline:us-east-1:" + account + ":" + name
}

// runAs runs a client process with id's credentials in its environment (none for a zero id) and
// returns its combined output and error.
func runAs(id identity, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), awsEnv...)
	if id.key != "" {
		cmd.Env = append(cmd.Env, id.env()...)
	} else {
		cmd.Env = append(cmd.Env, "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=")
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestAuthErrors checks each refusal of the CodePipeline API, raw and through the SDK and the AWS
// CLI, and that each user's policy allows and denies what IAM would.
func TestAuthErrors(t *testing.T) {
	bin := buildBinary(t)
	srv, _ := newAuthServer(t, bin, authIdentities, "--data", t.TempDir(), "--start-on-create=false", "--source-poll-interval", "0")
	ctx := context.Background()
	endpoint := "http://" + srv.addr
	a := cpAs(srv, alice)
	if _, err := a.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: approvalPipeline("p", alice.account)}); err != nil {
		t.Fatalf("alice creates a pipeline: %v", err)
	}

	// Raw requests, whose statuses and bodies are checked as they are sent.
	const list = "{}"
	callAPI(t, srv.addr, "ListPipelines", list, nil).check(t, "unsigned", http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
	for _, garbage := range []string{"garbage", "Bearer abc", "AWS4-HMAC-SHA256 garbage",
		"AWS4-HMAC-SHA256 Credential=" + alice.key + "/20250101/us-east-1/codepipeline/aws4_request",
		"AWS " + alice.key + ":c2lnbmF0dXJl"} {
		callAPI(t, srv.addr, "ListPipelines", list, func(r *http.Request, _ []byte) {
			r.Header.Set("Authorization", garbage)
		}).check(t, "Authorization: "+garbage, http.StatusBadRequest, "IncompleteSignatureException", "")
	}
	now := time.Now()
	unknown := aws.Credentials{AccessKeyID: "AKIAUNKNOWN000000001", SecretAccessKey: "whatever"}
	callAPI(t, srv.addr, "ListPipelines", list, signAs(t, unknown, "codepipeline", "us-east-1", now)).
		check(t, "unknown key", http.StatusBadRequest, "UnrecognizedClientException", badToken)
	withToken := alice.credentials()
	withToken.SessionToken = "FwoGZXIvYXdzEXAMPLE"
	callAPI(t, srv.addr, "ListPipelines", list, signAs(t, withToken, "codepipeline", "us-east-1", now)).
		check(t, "alice's key with a session token", http.StatusBadRequest, "UnrecognizedClientException", badToken)
	wrong := aws.Credentials{AccessKeyID: alice.key, SecretAccessKey: "not-alice-secret"}
	callAPI(t, srv.addr, "ListPipelines", list, signAs(t, wrong, "codepipeline", "us-east-1", now)).
		check(t, "wrong secret", http.StatusBadRequest, "InvalidSignatureException", badSignature)
	callAPI(t, srv.addr, "ListPipelines", list, func(r *http.Request, _ []byte) {
		signAs(t, alice.credentials(), "codepipeline", "us-east-1", now)(r, []byte(`{"maxResults":1}`))
	}).check(t, "a body other than the one signed", http.StatusBadRequest, "InvalidSignatureException", badSignature)
	callAPI(t, srv.addr, "ListPipelines", list, func(r *http.Request, body []byte) {
		signAs(t, alice.credentials(), "codepipeline", "us-east-1", now)(r, body)
		r.Header.Set("X-Amz-Target", "CodePipeline_20150709.ListActionTypes")
	}).check(t, "a signed header changed after signing", http.StatusBadRequest, "InvalidSignatureException", badSignature)

	signed := now.Add(-10 * time.Minute).UTC()
	expired := callAPI(t, srv.addr, "ListPipelines", list, signAs(t, alice.credentials(), "codepipeline", "us-east-1", signed))
	expired.check(t, "signed 10 minutes ago", http.StatusBadRequest, "InvalidSignatureException", "")
	m := regexp.MustCompile(`^Signature expired: (\d{8}T\d{6}Z) is now earlier than (\d{8}T\d{6}Z) \((\d{8}T\d{6}Z) - 5 min\.\)$`).FindStringSubmatch(expired.Message)
	if m == nil {
		t.Errorf("signed 10 minutes ago: message %q is not AWS's \"Signature expired: <t> is now earlier than <now-5min> (<now> - 5 min.)\"", expired.Message)
	} else {
		limit, _ := time.Parse("20060102T150405Z", m[2])
		at, _ := time.Parse("20060102T150405Z", m[3])
		if m[1] != signed.Format("20060102T150405Z") || at.Sub(limit) != 5*time.Minute || at.Sub(now) > time.Minute || now.Sub(at) > time.Minute {
			t.Errorf("signed 10 minutes ago at %s, now %s: message %q", signed.Format("20060102T150405Z"), now.UTC().Format("20060102T150405Z"), expired.Message)
		}
	}
	callAPI(t, srv.addr, "ListPipelines", list, signAs(t, alice.credentials(), "codepipeline", "us-east-1", now.Add(10*time.Minute))).
		check(t, "signed 10 minutes ahead", http.StatusBadRequest, "InvalidSignatureException", "")
	callAPI(t, srv.addr, "ListPipelines", list, signAs(t, alice.credentials(), "codepipeline", "eu-west-1", now)).
		check(t, "signed for eu-west-1", http.StatusBadRequest, "InvalidSignatureException", "")
	callAPI(t, srv.addr, "ListPipelines", list, signAs(t, alice.credentials(), "s3", "us-east-1", now)).
		check(t, "signed for the service s3", http.StatusBadRequest, "InvalidSignatureException", "")
	ok := callAPI(t, srv.addr, "ListPipelines", list, signAs(t, alice.credentials(), "codepipeline", "us-east-1", now))
	if ok.status != http.StatusOK || !strings.Contains(ok.body, `"name":"p"`) {
		t.Errorf("alice's raw signed ListPipelines answered %d %s", ok.status, ok.body)
	}
	deny := callAPI(t, srv.addr, "DeletePipeline", `{"name":"p"}`, signAs(t, reader.credentials(), "codepipeline", "us-east-1", now))
	deny.check(t, "reader's raw DeletePipeline", http.StatusBadRequest, "AccessDeniedException",
		notAllowed(reader, "codepipeline:DeletePipeline", pipelineARN(alice.account, "p")))

	// The SDK reads the same refusals.
	_, err := cpWith(srv, aws.AnonymousCredentials{}, "us-east-1").ListPipelines(ctx, &cp.ListPipelinesInput{})
	wantErr(t, "anonymous SDK", err, "MissingAuthenticationTokenException", "Missing Authentication Token")
	_, err = cpWith(srv, credentials.NewStaticCredentialsProvider("AKIAUNKNOWN000000001", "x", ""), "us-east-1").ListPipelines(ctx, &cp.ListPipelinesInput{})
	wantErr(t, "SDK with an unknown key", err, "UnrecognizedClientException", badToken)
	_, err = cpWith(srv, credentials.NewStaticCredentialsProvider(alice.key, "wrong", ""), "us-east-1").ListPipelines(ctx, &cp.ListPipelinesInput{})
	wantErr(t, "SDK with a wrong secret", err, "InvalidSignatureException", badSignature)
	_, err = cpWith(srv, credentials.NewStaticCredentialsProvider(alice.key, alice.secret, ""), "eu-west-1").ListPipelines(ctx, &cp.ListPipelinesInput{})
	wantErr(t, "SDK signing for eu-west-1", err, "InvalidSignatureException", "")

	// Policies: reader reads but changes nothing; carol does everything but delete.
	r, c := cpAs(srv, reader), cpAs(srv, carol)
	_, err = r.DeletePipeline(ctx, &cp.DeletePipelineInput{Name: aws.String("p")})
	wantErr(t, "reader deletes p", err, "AccessDeniedException", notAllowed(reader, "codepipeline:DeletePipeline", pipelineARN(alice.account, "p")))
	_, err = r.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: approvalPipeline("q", alice.account)})
	wantErr(t, "reader creates q", err, "AccessDeniedException", notAllowed(reader, "codepipeline:CreatePipeline", pipelineARN(alice.account, "q")))
	_, err = r.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("p")})
	wantErr(t, "reader starts p", err, "AccessDeniedException", notAllowed(reader, "codepipeline:StartPipelineExecution", pipelineARN(alice.account, "p")))
	_, err = c.DeletePipeline(ctx, &cp.DeletePipelineInput{Name: aws.String("p")})
	wantErr(t, "carol deletes p", err, "AccessDeniedException", explicitlyDenied(carol, "codepipeline:DeletePipeline", pipelineARN(alice.account, "p")))
	if out, err := r.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("p")}); err != nil {
		t.Errorf("reader's GetPipeline: %v", err)
	} else if got := aws.ToString(out.Metadata.PipelineArn); got != pipelineARN(alice.account, "p") {
		t.Errorf("reader's GetPipeline names ARN %s", got)
	}
	if _, err := r.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String("p")}); err != nil {
		t.Errorf("reader's GetPipelineState: %v", err)
	}
	if _, err := r.ListActionTypes(ctx, &cp.ListActionTypesInput{}); err != nil {
		t.Errorf("reader's ListActionTypes: %v", err)
	}
	if _, err := c.TagResource(ctx, &cp.TagResourceInput{ResourceArn: aws.String(pipelineARN(alice.account, "p")),
		Tags: []types.Tag{{Key: aws.String("by"), Value: aws.String("carol")}}}); err != nil {
		t.Errorf("carol tags p: %v", err)
	}
	if _, err := c.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: approvalPipeline("carols", alice.account)}); err != nil {
		t.Errorf("carol creates a pipeline: %v", err)
	}
	_, err = cpAs(srv, nolist).ListPipelines(ctx, &cp.ListPipelinesInput{})
	wantErr(t, "nolist lists pipelines", err, "AccessDeniedException",
		explicitlyDenied(nolist, "codepipeline:ListPipelines", "arn:aws:codepipeline:us-east-1:111111111111:*"))
	if _, err := a.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("p")}); err != nil {
		t.Fatalf("p is gone after refused deletes: %v", err)
	}

	// Alice, whom no policy restricts, does everything in her account.
	aliceDoesEverything(t, a)

	// The AWS CLI signs with the key of its environment.
	out, err := runAs(alice, "aws", "--endpoint-url", endpoint, "codepipeline", "list-pipelines", "--output", "json")
	if err != nil || !strings.Contains(out, `"name": "p"`) {
		t.Errorf("alice's aws codepipeline list-pipelines: %v\n%s", err, out)
	}
	out, err = runAs(nolist, "aws", "--endpoint-url", endpoint, "codepipeline", "list-pipelines")
	want := "An error occurred (AccessDeniedException) when calling the ListPipelines operation: " +
		explicitlyDenied(nolist, "codepipeline:ListPipelines", "arn:aws:codepipeline:us-east-1:111111111111:*")
	if err == nil || !strings.Contains(out, want) {
		t.Errorf("nolist's aws codepipeline list-pipelines (%v) printed\n%s\nwant\n%s", err, out, want)
	}
	out, err = runAs(identity{key: "AKIAUNKNOWN000000001", secret: "x"}, "aws", "--endpoint-url", endpoint, "codepipeline", "list-pipelines")
	if want := "(UnrecognizedClientException) when calling the ListPipelines operation: " + badToken; err == nil || !strings.Contains(out, want) {
		t.Errorf("aws codepipeline list-pipelines with an unknown key (%v) printed\n%s\nwant\n%s", err, out, want)
	}
}

// aliceDoesEverything calls, as a user without a policy, most of the API on her own resources.
func aliceDoesEverything(t *testing.T, a *cp.Client) {
	t.Helper()
	ctx := context.Background()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("alice: %s: %v", what, err)
		}
	}
	decl := approvalPipeline("everything", alice.account)
	_, err := a.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: decl, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	must("CreatePipeline", err)
	got, err := a.GetPipeline(ctx, &cp.GetPipelineInput{Name: decl.Name})
	must("GetPipeline", err)
	if err == nil && aws.ToString(got.Metadata.PipelineArn) != pipelineARN(alice.account, "everything") {
		t.Errorf("alice's pipeline has ARN %s", aws.ToString(got.Metadata.PipelineArn))
	}
	decl.Stages[1].Actions[0].Configuration = map[string]string{"CustomData": "updated"}
	_, err = a.UpdatePipeline(ctx, &cp.UpdatePipelineInput{Pipeline: decl})
	must("UpdatePipeline", err)
	_, err = a.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: decl.Name})
	must("GetPipelineState", err)
	_, err = a.DisableStageTransition(ctx, &cp.DisableStageTransitionInput{PipelineName: decl.Name, StageName: aws.String("Approve"),
		TransitionType: types.StageTransitionTypeInbound, Reason: aws.String("test")})
	must("DisableStageTransition", err)
	_, err = a.EnableStageTransition(ctx, &cp.EnableStageTransitionInput{PipelineName: decl.Name, StageName: aws.String("Approve"), TransitionType: types.StageTransitionTypeInbound})
	must("EnableStageTransition", err)
	started, err := a.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: decl.Name})
	must("StartPipelineExecution", err)
	if err == nil {
		_, err = a.GetPipelineExecution(ctx, &cp.GetPipelineExecutionInput{PipelineName: decl.Name, PipelineExecutionId: started.PipelineExecutionId})
		must("GetPipelineExecution", err)
	}
	_, err = a.ListPipelineExecutions(ctx, &cp.ListPipelineExecutionsInput{PipelineName: decl.Name})
	must("ListPipelineExecutions", err)
	_, err = a.ListActionExecutions(ctx, &cp.ListActionExecutionsInput{PipelineName: decl.Name})
	must("ListActionExecutions", err)
	arn := pipelineARN(alice.account, "everything")
	_, err = a.TagResource(ctx, &cp.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("k2"), Value: aws.String("v2")}}})
	must("TagResource", err)
	_, err = a.UntagResource(ctx, &cp.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"k"}})
	must("UntagResource", err)
	tags, err := a.ListTagsForResource(ctx, &cp.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	must("ListTagsForResource", err)
	if err == nil && (len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "k2") {
		t.Errorf("alice's pipeline's tags %v, want k2 alone", tags.Tags)
	}
	_, err = a.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{Category: types.ActionCategoryTest, Provider: aws.String("AliceTest"), Version: aws.String("1"),
		InputArtifactDetails: &types.ArtifactDetails{MaximumCount: 1}, OutputArtifactDetails: &types.ArtifactDetails{MaximumCount: 0}})
	must("CreateCustomActionType", err)
	_, err = a.ListActionTypes(ctx, &cp.ListActionTypesInput{ActionOwnerFilter: types.ActionOwnerCustom})
	must("ListActionTypes", err)
	_, err = a.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: &types.ActionTypeId{Category: types.ActionCategoryTest, Owner: types.ActionOwnerCustom,
		Provider: aws.String("AliceTest"), Version: aws.String("1")}})
	must("PollForJobs", err)
	_, err = a.DeleteCustomActionType(ctx, &cp.DeleteCustomActionTypeInput{Category: types.ActionCategoryTest, Provider: aws.String("AliceTest"), Version: aws.String("1")})
	must("DeleteCustomActionType", err)
	_, err = a.PutWebhook(ctx, &cp.PutWebhookInput{Webhook: &types.WebhookDefinition{Name: aws.String("hook"), TargetPipeline: decl.Name, TargetAction: aws.String("src"),
		Authentication: types.WebhookAuthenticationTypeUnauthenticated, AuthenticationConfiguration: &types.WebhookAuthConfiguration{},
		Filters: []types.WebhookFilterRule{{JsonPath: aws.String("$.ref")}}}})
	must("PutWebhook", err)
	_, err = a.ListWebhooks(ctx, &cp.ListWebhooksInput{})
	must("ListWebhooks", err)
	_, err = a.DeleteWebhook(ctx, &cp.DeleteWebhookInput{Name: aws.String("hook")})
	must("DeleteWebhook", err)
	_, err = a.ListRuleTypes(ctx, &cp.ListRuleTypesInput{})
	must("ListRuleTypes", err)
	_, err = a.DeletePipeline(ctx, &cp.DeletePipelineInput{Name: decl.Name})
	must("DeletePipeline", err)
}

// TestAuthFlags checks that serve refuses --auth and --identities that do not go together, and
// an identities file it cannot take.
func TestAuthFlags(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	writeIdentities(t, good, authIdentities)
	writeIdentities(t, bad, "accounts:\n  - id: \"1234\"\n    users: []\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--identities", good}, "--identities is read with --auth sigv4 only"},
		{[]string{"--auth", "sigv4"}, "--auth sigv4 needs --identities FILE"},
		{[]string{"--auth", "basic", "--identities", good}, `--auth "basic" is neither off nor sigv4`},
		{[]string{"--auth", "sigv4", "--identities", bad}, `account id "1234" is not 12 digits`},
		{[]string{"--auth", "sigv4", "--identities", filepath.Join(dir, "missing.yaml")}, "missing.yaml"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir()}, c.args...)...)
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("sluice serve %s: %v\n%s\nwant it to refuse, saying %q", strings.Join(c.args, " "), err, out, c.want)
		}
	}
}

// Job isolation: each account declares the custom source action type jobType.
var jobType = &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerCustom, Provider: aws.String("Job"), Version: aws.String("1")}

// jobPipeline is a pipeline of id's account whose source is an action of jobType named after
// id's user, followed by a manual approval.
func jobPipeline(name string, id identity) *types.PipelineDeclaration {
	return &types.PipelineDeclaration{
		Name: aws.String(name), RoleArn: aws.String("arn:aws:iam::" + id.account + ":role/cp"),
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String(id.user + "-artifacts")},
		Stages: []types.StageDeclaration{
			{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{Name: aws.String(id.user + "-src"), ActionTypeId: jobType,
				OutputArtifacts: []types.OutputArtifact{{Name: aws.String("Out")}}}}},
			approvalStage(),
		},
	}
}

// startWorkerAs runs `sluice worker` signing with id's key for an action type of id's account,
// with a shell script as its command.
func startWorkerAs(t *testing.T, bin, endpoint string, id identity, category, provider, script string) {
	t.Helper()
	cmd := exec.Command(bin, "worker", "--endpoint", endpoint, "--category", category, "--provider", provider, "--poll-interval", "100ms", "--", "sh", "-ec", script)
	cmd.Env = append(os.Environ(), id.env()...)
	superviseWorker(t, cmd, filepath.Join(t.TempDir(), "worker.log"), id.user+"'s "+provider+" worker")
}

// executionIDs lists the ids of a pipeline's executions.
func executionIDs(t *testing.T, client *cp.Client, pipeline string) []string {
	t.Helper()
	var ids []string
	for _, e := range executions(t, client, pipeline) {
		ids = append(ids, aws.ToString(e.PipelineExecutionId))
	}
	return ids
}

// TestAccountsAreIsolated has alice (account 111111111111) and bob (222222222222) create
// pipelines of the same names, custom action types, webhooks and tags, and checks that neither
// sees, changes or works anything of the other's. On SQLite alice's account is the server's own
// (--account-id), kept where a server without accounts keeps its data; on PostgreSQL both are
// accounts of their own.
func TestAccountsAreIsolated(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		if !slices.Contains(args, "--database") {
			args = append(args, "--account-id", alice.account)
		}
		testAccountsAreIsolated(t, bin, args...)
	})
}

func testAccountsAreIsolated(t *testing.T, bin string, storeArgs ...string) {
	srv, _ := newAuthServer(t, bin, authIdentities, append([]string{"--source-poll-interval", "0", "--sweep-interval", "200ms"}, storeArgs...)...)
	ctx := context.Background()
	endpoint := "http://" + srv.addr
	a, b := cpAs(srv, alice), cpAs(srv, bob)
	checkAccountStores(t, storeArgs)

	// Custom action types: both declare jobType; alice declares one more, which bob cannot see.
	for _, c := range []*cp.Client{a, b} {
		if _, err := c.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{Category: jobType.Category, Provider: jobType.Provider, Version: jobType.Version,
			InputArtifactDetails: &types.ArtifactDetails{MaximumCount: 0}, OutputArtifactDetails: &types.ArtifactDetails{MinimumCount: 1, MaximumCount: 1}}); err != nil {
			t.Fatalf("create the custom action type: %v", err)
		}
	}
	if _, err := a.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{Category: types.ActionCategoryBuild, Provider: aws.String("AliceOnly"), Version: aws.String("1"),
		InputArtifactDetails: &types.ArtifactDetails{MaximumCount: 1}, OutputArtifactDetails: &types.ArtifactDetails{MaximumCount: 1}}); err != nil {
		t.Fatal(err)
	}
	customTypes := func(c *cp.Client) []string {
		out, err := c.ListActionTypes(ctx, &cp.ListActionTypesInput{ActionOwnerFilter: types.ActionOwnerCustom})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, at := range out.ActionTypes {
			names = append(names, string(at.Id.Category)+"/"+aws.ToString(at.Id.Provider))
		}
		slices.Sort(names)
		return names
	}
	if got := customTypes(a); !slices.Equal(got, []string{"Build/AliceOnly", "Source/Job"}) {
		t.Errorf("alice's custom action types %v", got)
	}
	if got := customTypes(b); !slices.Equal(got, []string{"Source/Job"}) {
		t.Errorf("bob's custom action types %v, want only his own", got)
	}

	// Pipelines: "shared" in both accounts, and one of each's own. Each starts on creation, and
	// its source waits as a job of jobType in its own account.
	for _, p := range []struct {
		c    *cp.Client
		name string
		id   identity
	}{{a, "shared", alice}, {a, "alice-only", alice}, {b, "shared", bob}, {b, "bob-only", bob}} {
		if _, err := p.c.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: jobPipeline(p.name, p.id),
			Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String(p.id.user)}}}); err != nil {
			t.Fatalf("%s creates %s: %v", p.id.user, p.name, err)
		}
	}
	pipelines := func(c *cp.Client) []string {
		out, err := c.ListPipelines(ctx, &cp.ListPipelinesInput{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range out.Pipelines {
			names = append(names, aws.ToString(p.Name))
		}
		slices.Sort(names)
		return names
	}
	if got := pipelines(a); !slices.Equal(got, []string{"alice-only", "shared"}) {
		t.Errorf("alice lists %v", got)
	}
	if got := pipelines(b); !slices.Equal(got, []string{"bob-only", "shared"}) {
		t.Errorf("bob lists %v", got)
	}
	for _, c := range []struct {
		client *cp.Client
		id     identity
	}{{a, alice}, {b, bob}} {
		out, err := c.client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("shared")})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(out.Metadata.PipelineArn); got != pipelineARN(c.id.account, "shared") {
			t.Errorf("%s's shared has ARN %s", c.id.user, got)
		}
		if got := aws.ToString(out.Pipeline.Stages[0].Actions[0].Name); got != c.id.user+"-src" {
			t.Errorf("%s's shared is declared with the source action %s", c.id.user, got)
		}
	}
	_, err := b.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("alice-only")})
	wantErr(t, "bob gets alice-only", err, "PipelineNotFoundException", "")
	if msg := err.Error(); !strings.Contains(msg, bob.account) || strings.Contains(msg, alice.account) {
		t.Errorf("bob's GetPipeline of alice-only: %q, want it to name his account only", msg)
	}
	_, err = b.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("alice-only")})
	wantErr(t, "bob starts alice-only", err, "PipelineNotFoundException", "")
	_, err = b.ListPipelineExecutions(ctx, &cp.ListPipelineExecutionsInput{PipelineName: aws.String("alice-only")})
	wantErr(t, "bob lists the executions of alice-only", err, "PipelineNotFoundException", "")
	_, err = b.ListActionExecutions(ctx, &cp.ListActionExecutionsInput{PipelineName: aws.String("alice-only")})
	wantErr(t, "bob lists the action executions of alice-only", err, "PipelineNotFoundException", "")
	_, err = b.DeletePipeline(ctx, &cp.DeletePipelineInput{Name: aws.String("alice-only")})
	if err != nil {
		wantErr(t, "bob deletes alice-only", err, "PipelineNotFoundException", "")
	}
	if _, err := a.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("alice-only")}); err != nil {
		t.Fatalf("alice-only after bob deleted his (nonexistent) alice-only: %v", err)
	}

	// Tags: bob neither reads nor changes those of alice's pipeline.
	aliceShared := pipelineARN(alice.account, "shared")
	tags, err := b.ListTagsForResource(ctx, &cp.ListTagsForResourceInput{ResourceArn: aws.String(aliceShared)})
	if code := errCode(err); code != "ResourceNotFoundException" && code != "AccessDeniedException" {
		t.Errorf("bob lists the tags of %s: %v (%v), want ResourceNotFoundException or AccessDeniedException", aliceShared, code, tags)
	}
	_, err = b.TagResource(ctx, &cp.TagResourceInput{ResourceArn: aws.String(aliceShared), Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("bob")}}})
	if code := errCode(err); code != "ResourceNotFoundException" && code != "AccessDeniedException" {
		t.Errorf("bob tags %s: %v, want ResourceNotFoundException or AccessDeniedException", aliceShared, code)
	}
	_, err = b.UntagResource(ctx, &cp.UntagResourceInput{ResourceArn: aws.String(aliceShared), TagKeys: []string{"owner"}})
	if code := errCode(err); code != "ResourceNotFoundException" && code != "AccessDeniedException" {
		t.Errorf("bob untags %s: %v, want ResourceNotFoundException or AccessDeniedException", aliceShared, code)
	}
	for _, c := range []struct {
		client *cp.Client
		id     identity
	}{{a, alice}, {b, bob}} {
		out, err := c.client.ListTagsForResource(ctx, &cp.ListTagsForResourceInput{ResourceArn: aws.String(pipelineARN(c.id.account, "shared"))})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Tags) != 1 || aws.ToString(out.Tags[0].Value) != c.id.user {
			t.Errorf("%s's shared is tagged %v", c.id.user, out.Tags)
		}
	}

	// Executions: each shared ran once, in its own account; neither sees the other's.
	waitFor(t, "an execution of each pipeline", func() bool {
		return len(executionIDs(t, a, "shared")) == 1 && len(executionIDs(t, a, "alice-only")) == 1 &&
			len(executionIDs(t, b, "shared")) == 1 && len(executionIDs(t, b, "bob-only")) == 1
	}, func() string {
		return fmt.Sprint(executionIDs(t, a, "shared"), executionIDs(t, a, "alice-only"), executionIDs(t, b, "shared"), executionIDs(t, b, "bob-only"))
	})
	aliceExec, bobExec := executionIDs(t, a, "shared")[0], executionIDs(t, b, "shared")[0]
	if aliceExec == bobExec {
		t.Fatalf("alice's and bob's shared have the same execution %s", aliceExec)
	}
	_, err = b.GetPipelineExecution(ctx, &cp.GetPipelineExecutionInput{PipelineName: aws.String("shared"), PipelineExecutionId: aws.String(aliceExec)})
	wantErr(t, "bob gets alice's execution of shared", err, "PipelineExecutionNotFoundException", "")
	_, err = b.StopPipelineExecution(ctx, &cp.StopPipelineExecutionInput{PipelineName: aws.String("shared"), PipelineExecutionId: aws.String(aliceExec), Abandon: true})
	if err == nil {
		t.Errorf("bob stopped alice's execution %s of shared", aliceExec)
	}

	// Jobs: a worker signing as bob receives bob's jobs only, and fails them.
	worked := filepath.Join(t.TempDir(), "worked")
	startWorkerAs(t, bin, endpoint, bob, "Source", "Job", `echo "$SLUICE_ACCOUNT_ID $SLUICE_PIPELINE_ARN $SLUICE_PIPELINE_EXECUTION_ID" >> `+worked+`; echo "bob's worker refuses" >&2; exit 3`)
	waitForExecution(t, b, "shared", types.PipelineExecutionStatusFailed)
	waitForExecution(t, b, "bob-only", types.PipelineExecutionStatusFailed)
	bobWorked := []string{
		fmt.Sprintf("%s %s %s", bob.account, pipelineARN(bob.account, "bob-only"), executionIDs(t, b, "bob-only")[0]),
		fmt.Sprintf("%s %s %s", bob.account, pipelineARN(bob.account, "shared"), bobExec),
	}
	checkWorked := func() {
		t.Helper()
		raw, _ := os.ReadFile(worked)
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		slices.Sort(lines)
		if !slices.Equal(lines, bobWorked) {
			t.Errorf("bob's worker worked\n  %s\nwant\n  %s", strings.Join(lines, "\n  "), strings.Join(bobWorked, "\n  "))
		}
	}
	for range 3 {
		out, err := b.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: jobType, MaxBatchSize: aws.Int32(10)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Jobs) > 0 {
			t.Fatalf("bob polled %d jobs once his own had run, of account %s", len(out.Jobs), aws.ToString(out.Jobs[0].AccountId))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range []string{"shared", "alice-only"} {
		if e := executions(t, a, p); len(e) != 1 || e[0].Status != types.PipelineExecutionStatusInProgress {
			t.Errorf("alice's %s after bob's worker ran: %v", p, e)
		}
	}
	var aliceJobs []types.Job
	for deadline := time.Now().Add(20 * time.Second); len(aliceJobs) < 2 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, err := a.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: jobType, MaxBatchSize: aws.Int32(10)})
		if err != nil {
			t.Fatal(err)
		}
		aliceJobs = append(aliceJobs, out.Jobs...)
	}
	if len(aliceJobs) != 2 {
		t.Fatalf("alice polled %d jobs, want her 2", len(aliceJobs))
	}
	for _, j := range aliceJobs {
		pc := j.Data.PipelineContext
		if aws.ToString(j.AccountId) != alice.account || !strings.HasPrefix(aws.ToString(pc.PipelineArn), "arn:aws:codepipeline:us-east-1:"+alice.account+":") ||
			aws.ToString(pc.Action.Name) != "alice-src" {
			t.Errorf("alice polled a job of account %s, pipeline %s, action %s", aws.ToString(j.AccountId), aws.ToString(pc.PipelineArn), aws.ToString(pc.Action.Name))
		}
		// Bob knows no job of alice's by its id.
		_, err := b.GetJobDetails(ctx, &cp.GetJobDetailsInput{JobId: j.Id})
		wantErr(t, "bob gets the details of alice's job", err, "JobNotFoundException", "")
		_, err = b.AcknowledgeJob(ctx, &cp.AcknowledgeJobInput{JobId: j.Id, Nonce: j.Nonce})
		wantErr(t, "bob acknowledges alice's job", err, "JobNotFoundException", "")
		_, err = b.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: j.Id})
		wantErr(t, "bob reports alice's job succeeded", err, "JobNotFoundException", "")
		if _, err := a.AcknowledgeJob(ctx, &cp.AcknowledgeJobInput{JobId: j.Id, Nonce: j.Nonce}); err != nil {
			t.Fatalf("alice acknowledges her job: %v", err)
		}
		if _, err := a.PutJobFailureResult(ctx, &cp.PutJobFailureResultInput{JobId: j.Id,
			FailureDetails: &types.FailureDetails{Type: types.FailureTypeJobFailed, Message: aws.String("alice fails it")}}); err != nil {
			t.Fatalf("alice fails her job: %v", err)
		}
	}
	waitForExecution(t, a, "shared", types.PipelineExecutionStatusFailed)
	failure := func(c *cp.Client, exec string) (action, message string) {
		t.Helper()
		out, err := c.ListActionExecutions(ctx, &cp.ListActionExecutionsInput{PipelineName: aws.String("shared")})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ActionExecutionDetails) != 1 {
			t.Fatalf("shared has %d action executions, want 1", len(out.ActionExecutionDetails))
		}
		d := out.ActionExecutionDetails[0]
		if aws.ToString(d.PipelineExecutionId) != exec {
			t.Errorf("the action execution of shared is of execution %s, want %s", aws.ToString(d.PipelineExecutionId), exec)
		}
		if d.Output == nil || d.Output.ExecutionResult == nil || d.Output.ExecutionResult.ErrorDetails == nil {
			return aws.ToString(d.ActionName), ""
		}
		return aws.ToString(d.ActionName), aws.ToString(d.Output.ExecutionResult.ErrorDetails.Message)
	}
	if action, msg := failure(a, aliceExec); action != "alice-src" || !strings.Contains(msg, "alice fails it") {
		t.Errorf("alice's shared ran %s, which failed with %q", action, msg)
	}
	if action, msg := failure(b, bobExec); action != "bob-src" || !strings.Contains(msg, "bob's worker refuses") {
		t.Errorf("bob's shared ran %s, which failed with %q", action, msg)
	}

	// Webhooks of the same name in each account, each delivering to its own account's shared.
	hooks := map[string]string{}
	for _, c := range []struct {
		client *cp.Client
		id     identity
	}{{a, alice}, {b, bob}} {
		out, err := c.client.PutWebhook(ctx, &cp.PutWebhookInput{Webhook: &types.WebhookDefinition{Name: aws.String("hook"), TargetPipeline: aws.String("shared"),
			TargetAction: aws.String(c.id.user + "-src"), Authentication: types.WebhookAuthenticationTypeUnauthenticated, AuthenticationConfiguration: &types.WebhookAuthConfiguration{},
			Filters: []types.WebhookFilterRule{{JsonPath: aws.String("$.ref"), MatchEquals: aws.String("refs/heads/main")}}}})
		if err != nil {
			t.Fatalf("%s puts a webhook: %v", c.id.user, err)
		}
		if got, want := aws.ToString(out.Webhook.Arn), "arn:aws:codepipeline:us-east-1:"+c.id.account+":webhook:hook"; got != want {
			t.Errorf("%s's webhook has ARN %s, want %s", c.id.user, got, want)
		}
		hooks[c.id.user] = aws.ToString(out.Webhook.Url)
		list, err := c.client.ListWebhooks(ctx, &cp.ListWebhooksInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Webhooks) != 1 || aws.ToString(list.Webhooks[0].Arn) != aws.ToString(out.Webhook.Arn) {
			t.Errorf("%s lists webhooks %v, want only his or her own", c.id.user, list.Webhooks)
		}
	}
	if hooks["alice"] == hooks["bob"] {
		t.Fatalf("alice's and bob's webhooks have the same URL %s", hooks["alice"])
	}
	deliver := func(u string) int {
		t.Helper()
		resp, err := http.Post(u, "application/json", strings.NewReader(`{"ref":"refs/heads/main"}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// Alice's URL said to be of another account is no webhook there.
	for _, other := range []string{bob.account, "333333333333"} {
		u, err := url.Parse(hooks["alice"])
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("account", other)
		u.RawQuery = q.Encode()
		if status := deliver(u.String()); status != http.StatusNotFound {
			t.Errorf("a delivery to alice's webhook token under account %s answered %d, want 404", other, status)
		}
	}
	if status := deliver(hooks["alice"]); status != http.StatusOK {
		t.Fatalf("a delivery to alice's webhook answered %d", status)
	}
	waitFor(t, "alice's shared to start again", func() bool { return len(executionIDs(t, a, "shared")) == 2 }, func() string {
		return fmt.Sprint(executionIDs(t, a, "shared"))
	})
	time.Sleep(500 * time.Millisecond)
	if n := len(executionIDs(t, b, "shared")); n != 1 {
		t.Errorf("bob's shared has %d executions after a delivery to alice's webhook, want 1", n)
	}
	// Alice's new job waits for her; bob's worker has not taken it.
	time.Sleep(300 * time.Millisecond)
	checkWorked()
}

// checkAccountStores checks that the accounts' stores are laid out as documented: SQLite under
// <data>/accounts/<id>/ for accounts other than --account-id's, PostgreSQL schemas
// <schema>_account_<id>.
func checkAccountStores(t *testing.T, args []string) {
	t.Helper()
	dataDir, database := storeArgs(args)
	if database == "" {
		if _, err := os.Stat(filepath.Join(dataDir, "accounts", bob.account, "sluice.db")); err != nil {
			t.Errorf("bob's account has no store of its own: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "accounts", alice.account)); err == nil {
			t.Errorf("alice's account, the server's own, has a directory under accounts/")
		}
		return
	}
	u, err := url.Parse(database)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	db, err := sql.Open("pgx", os.Getenv("SLUICE_TEST_POSTGRES"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, account := range []string{alice.account, bob.account} {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM pg_namespace WHERE nspname = $1`, schema+"_account_"+account).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("no schema %s_account_%s", schema, account)
		}
	}
}

// gitAs runs git in dir with no credentials but those of the URLs it is given: no helper, no
// prompt.
func gitAs(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-c", "credential.helper="}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/false", "SSH_ASKPASS=/bin/false", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// repoURL is the URL of a hosted repository with id's key and secret as user and password.
func repoURL(srv *testServer, id identity, repo string) string {
	if id.key == "" {
		return "http://" + srv.addr + "/v1/repos/" + repo
	}
	return "http://" + url.UserPassword(id.key, id.secret).String() + "@" + srv.addr + "/v1/repos/" + repo
}

// s3Answer is an S3 XML error.
type s3Answer struct {
	status  int
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
	body    string
}

func s3Get(t *testing.T, r *http.Request) s3Answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := s3Answer{status: resp.StatusCode, body: string(raw)}
	if resp.StatusCode != http.StatusOK {
		xml.Unmarshal(raw, &a)
	}
	return a
}

func httpGetURL(t *testing.T, u string) s3Answer {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s3Get(t, r)
}

// TestGitAndS3WithAuth pushes to hosted git and reads and writes the built-in S3 endpoint as
// users of two accounts: each reaches only its own account's repositories and buckets, as its
// policy allows, and a pipeline of alice's runs from her push through a worker signing as her to
// a deploy into her bucket.
func TestGitAndS3WithAuth(t *testing.T) {
	bin := buildBinary(t)
	srv, _ := newAuthServer(t, bin, authIdentities, "--data", t.TempDir(), "--source-poll-interval", "0", "--sweep-interval", "200ms")
	ctx := context.Background()
	endpoint := "http://" + srv.addr
	as3, bs3, rs3 := s3As(srv, alice), s3As(srv, bob), s3As(srv, reader)

	// S3: alice's bucket is hers alone.
	for _, bucket := range []string{"alice-bucket", "alice-site"} {
		if _, err := as3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatalf("alice creates %s: %v", bucket, err)
		}
	}
	if _, err := as3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alice-bucket"), Key: aws.String("hello.txt"), Body: strings.NewReader("hello, alice\n")}); err != nil {
		t.Fatalf("alice puts an object: %v", err)
	}
	if _, err := bs3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bob-bucket")}); err != nil {
		t.Fatalf("bob creates his bucket: %v", err)
	}
	readObject := func(c *s3.Client, bucket, key string) (string, error) { return readS3(ctx, c, bucket, key) }
	if got, err := readObject(as3, "alice-bucket", "hello.txt"); err != nil || got != "hello, alice\n" {
		t.Errorf("alice reads her object: %q, %v", got, err)
	}
	_, err := readObject(bs3, "alice-bucket", "hello.txt")
	wantErr(t, "bob reads alice's object", err, "AccessDenied", "")
	_, err = bs3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alice-bucket"), Key: aws.String("bob.txt"), Body: strings.NewReader("bob was here")})
	wantErr(t, "bob writes into alice's bucket", err, "AccessDenied", "")
	_, err = bs3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("alice-bucket")})
	wantErr(t, "bob lists alice's bucket", err, "AccessDenied", "")
	_, err = bs3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("alice-bucket"), Key: aws.String("hello.txt")})
	wantErr(t, "bob deletes alice's object", err, "AccessDenied", "")
	_, err = bs3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alice-bucket")})
	wantErr(t, "bob creates a bucket of alice's name", err, "BucketAlreadyExists", "")
	_, err = bs3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bob-bucket"), Key: aws.String("copied.txt"), CopySource: aws.String("alice-bucket/hello.txt")})
	wantErr(t, "bob copies alice's object into his bucket", err, "AccessDenied", "")
	if up, err := bs3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bob-bucket"), Key: aws.String("part-copied.txt")}); err != nil {
		t.Errorf("bob starts a multipart upload into his bucket: %v", err)
	} else {
		_, err = bs3.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("bob-bucket"), Key: aws.String("part-copied.txt"), UploadId: up.UploadId,
			PartNumber: aws.Int32(1), CopySource: aws.String("alice-bucket/hello.txt")})
		// S3 answers AccessDenied; the built-in endpoint does not copy parts at all.
		if code := errCode(err); code != "AccessDenied" && code != "MissingContentLength" && code != "NotImplemented" {
			t.Errorf("bob copies alice's object into a part of his upload: %v, want it refused", err)
		}
	}
	_, err = bs3.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("alice-bucket")})
	wantErr(t, "bob reads the versioning of alice's bucket", err, "AccessDenied", "")
	_, err = bs3.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("alice-bucket")})
	wantErr(t, "bob lists the versions in alice's bucket", err, "AccessDenied", "")
	_, err = bs3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("alice-bucket")})
	wantErr(t, "bob deletes alice's bucket", err, "AccessDenied", "")
	if _, err := bs3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bob-bucket"), Key: aws.String("copied.txt")}); err == nil {
		t.Errorf("bob's bucket holds copied.txt, a copy of alice's object")
	}
	buckets := func(c *s3.Client) []string {
		out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			t.Fatalf("list buckets: %v", err)
		}
		var names []string
		for _, b := range out.Buckets {
			names = append(names, aws.ToString(b.Name))
		}
		return names
	}
	if got := buckets(bs3); !slices.Equal(got, []string{"bob-bucket"}) {
		t.Errorf("bob lists buckets %v, want his own only", got)
	}
	if got := buckets(as3); !slices.Equal(got, []string{"alice-bucket", "alice-site"}) {
		t.Errorf("alice lists buckets %v", got)
	}
	if got := buckets(rs3); !slices.Equal(got, []string{"alice-bucket", "alice-site"}) {
		t.Errorf("reader, of alice's account, lists buckets %v", got)
	}
	if got, err := readObject(as3, "alice-bucket", "hello.txt"); err != nil || got != "hello, alice\n" {
		t.Errorf("alice's object after bob's attempts: %q, %v", got, err)
	}
	// reader reads, and writes nothing.
	if got, err := readObject(rs3, "alice-bucket", "hello.txt"); err != nil || got != "hello, alice\n" {
		t.Errorf("reader reads alice's object: %q, %v", got, err)
	}
	_, err = rs3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alice-bucket"), Key: aws.String("reader.txt"), Body: strings.NewReader("no")})
	wantErr(t, "reader writes", err, "AccessDenied", "")
	_, err = s3As(srv, cponly).ListBuckets(ctx, &s3.ListBucketsInput{})
	wantErr(t, "cponly lists buckets", err, "AccessDenied", "")
	// S3's refusals of signatures.
	_, err = readObject(s3With(srv, credentials.NewStaticCredentialsProvider("AKIAUNKNOWN000000001", "x", "")), "alice-bucket", "hello.txt")
	wantErr(t, "S3 with an unknown key", err, "InvalidAccessKeyId", "")
	_, err = readObject(s3With(srv, credentials.NewStaticCredentialsProvider(alice.key, "wrong", "")), "alice-bucket", "hello.txt")
	wantErr(t, "S3 with a wrong secret", err, "SignatureDoesNotMatch", "")
	_, err = readObject(s3With(srv, aws.AnonymousCredentials{}), "alice-bucket", "hello.txt")
	wantErr(t, "S3 unsigned", err, "AccessDenied", "")
	skewed, err := http.NewRequest(http.MethodGet, endpoint+"/alice-bucket/hello.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	skewed.Header.Set("X-Amz-Content-Sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	if err := v4.NewSigner().SignHTTP(ctx, alice.credentials(), skewed, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "s3", "us-east-1", time.Now().Add(-20*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if a := s3Get(t, skewed); a.status != http.StatusForbidden || a.Code != "RequestTimeTooSkewed" {
		t.Errorf("S3 signed 20 minutes ago: %d %s %q", a.status, a.Code, a.body)
	}
	// Presigned URLs: alice's works for anyone holding it until it expires; bob's reaches nothing
	// of hers.
	presign := func(c *s3.Client, key string, expires time.Duration) string {
		req, err := s3.NewPresignClient(c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("alice-bucket"), Key: aws.String(key)}, s3.WithPresignExpires(expires))
		if err != nil {
			t.Fatal(err)
		}
		return req.URL
	}
	if a := httpGetURL(t, presign(as3, "hello.txt", 5*time.Minute)); a.status != http.StatusOK || a.body != "hello, alice\n" {
		t.Errorf("alice's presigned URL: %d %q", a.status, a.body)
	}
	if a := httpGetURL(t, presign(bs3, "hello.txt", 5*time.Minute)); a.status != http.StatusForbidden || a.Code != "AccessDenied" {
		t.Errorf("bob's presigned URL of alice's object: %d %s", a.status, a.Code)
	}
	tampered := strings.Replace(presign(as3, "hello.txt", 5*time.Minute), "/hello.txt?", "/other.txt?", 1)
	if a := httpGetURL(t, tampered); a.status != http.StatusForbidden || a.Code != "SignatureDoesNotMatch" {
		t.Errorf("alice's presigned URL for another key: %d %s", a.status, a.Code)
	}
	soon := presign(as3, "hello.txt", time.Second)
	time.Sleep(2 * time.Second)
	if a := httpGetURL(t, soon); a.status != http.StatusForbidden || a.Code != "AccessDenied" || !strings.Contains(a.Message, "expired") {
		t.Errorf("alice's expired presigned URL: %d %s %q", a.status, a.Code, a.Message)
	}

	// Git: pushing takes an access key; alice's makes her repository app, and her pipeline runs it.
	repo := newGitRepo(t)
	first := repo.commit("alice's page", map[string]string{"page.txt": "hello from alice\n"})
	if out, err := gitAs(repo.dir, "push", repoURL(srv, identity{}, "app"), "HEAD:refs/heads/main"); err == nil {
		t.Errorf("a push without credentials succeeded:\n%s", out)
	}
	unsigned, err := http.Get(endpoint + "/v1/repos/app/info/refs?service=git-receive-pack")
	if err != nil {
		t.Fatal(err)
	}
	unsigned.Body.Close()
	if unsigned.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(unsigned.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("git without credentials answered %d, WWW-Authenticate %q; want 401 asking for Basic", unsigned.StatusCode, unsigned.Header.Get("WWW-Authenticate"))
	}
	if out, err := gitAs(repo.dir, "push", repoURL(srv, identity{key: alice.key, secret: "wrong"}, "app"), "HEAD:refs/heads/main"); err == nil {
		t.Errorf("a push with a wrong secret succeeded:\n%s", out)
	}
	if out, err := gitAs(repo.dir, "push", repoURL(srv, alice, "app"), "HEAD:refs/heads/main"); err != nil {
		t.Fatalf("alice pushes: %v\n%s", err, out)
	}
	a := cpAs(srv, alice)
	for _, c := range []types.ActionCategory{types.ActionCategoryBuild} {
		if _, err := a.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{Category: c, Provider: aws.String("Shell"), Version: aws.String("1"),
			InputArtifactDetails: &types.ArtifactDetails{MinimumCount: 1, MaximumCount: 1}, OutputArtifactDetails: &types.ArtifactDetails{MinimumCount: 1, MaximumCount: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	startWorkerAs(t, bin, endpoint, alice, "Build", "Shell", `tr a-z A-Z < "$SLUICE_INPUT_DIR/page.txt" > "$SLUICE_OUTPUT_DIR/page.txt"`)
	if _, err := a.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: &types.PipelineDeclaration{
		Name: aws.String("app"), RoleArn: aws.String("arn:aws:iam::111111111111:role/cp"),
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("alice-artifacts")},
		Stages: []types.StageDeclaration{
			{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{Name: aws.String("src"),
				ActionTypeId:    &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerAws, Provider: aws.String("CodeCommit"), Version: aws.String("1")},
				Configuration:   map[string]string{"RepositoryName": "app", "BranchName": "main", "PollForSourceChanges": "false"},
				OutputArtifacts: []types.OutputArtifact{{Name: aws.String("Src")}}}}},
			{Name: aws.String("Build"), Actions: []types.ActionDeclaration{{Name: aws.String("build"),
				ActionTypeId:   &types.ActionTypeId{Category: types.ActionCategoryBuild, Owner: types.ActionOwnerCustom, Provider: aws.String("Shell"), Version: aws.String("1")},
				InputArtifacts: []types.InputArtifact{{Name: aws.String("Src")}}, OutputArtifacts: []types.OutputArtifact{{Name: aws.String("Built")}}}}},
			{Name: aws.String("Deploy"), Actions: []types.ActionDeclaration{{Name: aws.String("deploy"),
				ActionTypeId:   &types.ActionTypeId{Category: types.ActionCategoryDeploy, Owner: types.ActionOwnerAws, Provider: aws.String("S3"), Version: aws.String("1")},
				Configuration:  map[string]string{"BucketName": "alice-site", "Extract": "true", "ObjectKey": "site"},
				InputArtifacts: []types.InputArtifact{{Name: aws.String("Built")}}}}},
		}}}); err != nil {
		t.Fatalf("alice creates app: %v", err)
	}
	e := executionAt(t, a, "app", first)
	if e.Status != types.PipelineExecutionStatusSucceeded {
		t.Fatalf("alice's app ended %s: %s", e.Status, describeActions(t, a, "app"))
	}
	if got, err := readObject(as3, "alice-site", "site/page.txt"); err != nil || got != "HELLO FROM ALICE\n" {
		t.Errorf("alice's deployed page: %q, %v", got, err)
	}
	_, err = readObject(bs3, "alice-site", "site/page.txt")
	wantErr(t, "bob reads alice's deployed page", err, "AccessDenied", "")

	// Bob's account has no repository app; pushing his own makes one apart from alice's.
	clone := t.TempDir()
	if out, err := gitAs(clone, "ls-remote", repoURL(srv, bob, "app")); err == nil {
		t.Errorf("bob lists the refs of alice's app:\n%s", out)
	}
	if out, err := gitAs(clone, "clone", "-q", repoURL(srv, bob, "app"), "bob-clone"); err == nil || strings.Contains(out, first) {
		t.Errorf("bob clones alice's app (%v):\n%s", err, out)
	}
	bobs := newGitRepo(t)
	bobFirst := bobs.commit("bob's page", map[string]string{"page.txt": "hello from bob\n"})
	if out, err := gitAs(bobs.dir, "push", repoURL(srv, bob, "app"), "HEAD:refs/heads/main"); err != nil {
		t.Fatalf("bob pushes his app: %v\n%s", err, out)
	}
	head := func(id identity) string {
		t.Helper()
		out, err := gitAs(clone, "ls-remote", repoURL(srv, id, "app"), "refs/heads/main")
		if err != nil {
			t.Fatalf("%s lists the refs of app: %v\n%s", id.user, err, out)
		}
		commit, _, _ := strings.Cut(strings.TrimSpace(out), "\t")
		return commit
	}
	if got := head(alice); got != first {
		t.Errorf("alice's app is at %s after bob's push, want %s", got, first)
	}
	if got := head(bob); got != bobFirst {
		t.Errorf("bob's app is at %s, want %s", got, bobFirst)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(executions(t, a, "app")); n != 1 {
		t.Errorf("alice's app has %d executions after bob pushed his app, want 1", n)
	}
	// reader fetches alice's app, and pushes nothing; cponly does not even fetch.
	if got := head(reader); got != first {
		t.Errorf("reader sees alice's app at %s, want %s", got, first)
	}
	if out, err := gitAs(clone, "clone", "-q", repoURL(srv, reader, "app"), "reader-clone"); err != nil {
		t.Errorf("reader clones alice's app: %v\n%s", err, out)
	} else if page, _ := os.ReadFile(filepath.Join(clone, "reader-clone", "page.txt")); string(page) != "hello from alice\n" {
		t.Errorf("reader's clone of app holds %q", page)
	}
	second := repo.commit("reader's attempt", map[string]string{"page.txt": "reader was here\n"})
	out, err := gitAs(repo.dir, "push", repoURL(srv, reader, "app"), "HEAD:refs/heads/main")
	if err == nil || !strings.Contains(out, "403") {
		t.Errorf("reader's push (%v) printed\n%s\nwant it refused with 403", err, out)
	}
	if got := head(alice); got != first {
		t.Errorf("alice's app is at %s after reader's push, want %s (not %s)", got, first, second)
	}
	if out, err := gitAs(clone, "ls-remote", repoURL(srv, cponly, "app")); err == nil || !strings.Contains(out, "403") {
		t.Errorf("cponly lists the refs of app (%v):\n%s\nwant it refused with 403", err, out)
	}

	crossAccountPipelines(t, srv)
}

// crossAccountPipelines checks that pipelines reach the buckets of their own account only: bob's
// pipelines that name alice's buckets (as a source, a deploy target or their artifact store)
// fail and copy nothing in or out, and an upload to alice's bucket starts alice's pipeline that
// watches it, not bob's.
func crossAccountPipelines(t *testing.T, srv *testServer) {
	ctx := context.Background()
	a, b := cpAs(srv, alice), cpAs(srv, bob)
	as3, bs3 := s3As(srv, alice), s3As(srv, bob)
	if _, err := as3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alice-sources")}); err != nil {
		t.Fatal(err)
	}
	if _, err := as3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("alice-sources"),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	putSource := func(page string) string {
		t.Helper()
		out, err := as3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alice-sources"), Key: aws.String("app.zip"),
			Body: bytes.NewReader(zipOf(t, map[string]string{"page.txt": page}))})
		if err != nil {
			t.Fatalf("alice uploads her source: %v", err)
		}
		return aws.ToString(out.VersionId)
	}
	v1 := putSource("version one\n")
	s3Source := func(bucket string) types.StageDeclaration {
		return types.StageDeclaration{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{Name: aws.String("src"),
			ActionTypeId:    &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerAws, Provider: aws.String("S3"), Version: aws.String("1")},
			Configuration:   map[string]string{"S3Bucket": bucket, "S3ObjectKey": "app.zip", "PollForSourceChanges": "false"},
			OutputArtifacts: []types.OutputArtifact{{Name: aws.String("Src")}}}}}
	}
	repoSource := types.StageDeclaration{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{Name: aws.String("src"),
		ActionTypeId:    &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerAws, Provider: aws.String("CodeCommit"), Version: aws.String("1")},
		Configuration:   map[string]string{"RepositoryName": "app", "BranchName": "main", "PollForSourceChanges": "false"},
		OutputArtifacts: []types.OutputArtifact{{Name: aws.String("Src")}}}}}
	deploy := func(bucket, key string) types.StageDeclaration {
		return types.StageDeclaration{Name: aws.String("Deploy"), Actions: []types.ActionDeclaration{{Name: aws.String("deploy"),
			ActionTypeId:   &types.ActionTypeId{Category: types.ActionCategoryDeploy, Owner: types.ActionOwnerAws, Provider: aws.String("S3"), Version: aws.String("1")},
			Configuration:  map[string]string{"BucketName": bucket, "Extract": "true", "ObjectKey": key},
			InputArtifacts: []types.InputArtifact{{Name: aws.String("Src")}}}}}
	}
	create := func(c *cp.Client, id identity, name, artifactBucket string, stages ...types.StageDeclaration) {
		t.Helper()
		if _, err := c.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: &types.PipelineDeclaration{
			Name: aws.String(name), RoleArn: aws.String("arn:aws:iam::" + id.account + ":role/cp"), PipelineType: types.PipelineTypeV2,
			ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String(artifactBucket)}, Stages: stages}}); err != nil {
			t.Fatalf("%s creates %s: %v", id.user, name, err)
		}
	}
	keys := func(c *s3.Client, bucket, prefix string) []string {
		t.Helper()
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
		if err != nil {
			t.Fatalf("list %s/%s: %v", bucket, prefix, err)
		}
		var keys []string
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		return keys
	}

	create(a, alice, "from-s3", "alice-artifacts", s3Source("alice-sources"), deploy("alice-site", "from-s3"))
	create(b, bob, "steal", "bob-artifacts", s3Source("alice-sources"), deploy("bob-bucket", "stolen"))
	create(b, bob, "intrude", "bob-artifacts", repoSource, deploy("alice-site", "intruded"))
	create(b, bob, "borrow", "alice-artifacts", repoSource, deploy("bob-bucket", "borrowed"))
	if e := executionAt(t, a, "from-s3", v1); e.Status != types.PipelineExecutionStatusSucceeded {
		t.Errorf("alice's from-s3 ended %s: %s", e.Status, describeActions(t, a, "from-s3"))
	}
	if got, err := readS3(ctx, as3, "alice-site", "from-s3/page.txt"); err != nil || got != "version one\n" {
		t.Errorf("alice's from-s3 deployed %q, %v", got, err)
	}
	for _, p := range []string{"steal", "intrude", "borrow"} {
		waitForExecution(t, b, p, types.PipelineExecutionStatusFailed)
	}
	if got := keys(bs3, "bob-bucket", "stolen"); len(got) > 0 {
		t.Errorf("bob's steal copied alice's source into his bucket: %v", got)
	}
	if got := keys(as3, "alice-site", "intruded"); len(got) > 0 {
		t.Errorf("bob's intrude deployed into alice's bucket: %v", got)
	}
	if got := keys(as3, "alice-artifacts", "borrow"); len(got) > 0 {
		t.Errorf("bob's borrow stored artifacts in alice's bucket: %v", got)
	}
	// A start of borrow after its creation, whose artifact bucket is alice's, fails as well.
	started, err := b.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("borrow")})
	if err != nil {
		t.Errorf("bob starts borrow again: %v", err)
	} else {
		waitUpTo(t, 15*time.Second, "bob's second execution of borrow to fail", func() bool {
			out, err := b.GetPipelineExecution(ctx, &cp.GetPipelineExecutionInput{PipelineName: aws.String("borrow"), PipelineExecutionId: started.PipelineExecutionId})
			return err == nil && out.PipelineExecution.Status == types.PipelineExecutionStatusFailed
		}, func() string { return describeActions(t, b, "borrow") })
		if got := keys(as3, "alice-artifacts", "borrow"); len(got) > 0 {
			t.Errorf("bob's borrow stored artifacts in alice's bucket: %v", got)
		}
	}

	// So does one a push to bob's app starts; the push starts his intrude too (which fails), once,
	// and does not hold up his later pushes.
	otherSource := types.StageDeclaration{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{Name: aws.String("src"),
		ActionTypeId:    &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerAws, Provider: aws.String("CodeCommit"), Version: aws.String("1")},
		Configuration:   map[string]string{"RepositoryName": "other", "BranchName": "main", "PollForSourceChanges": "false"},
		OutputArtifacts: []types.OutputArtifact{{Name: aws.String("Src")}}}}}
	others := newGitRepo(t)
	others.commit("bob's other page", map[string]string{"page.txt": "other\n"})
	if out, err := gitAs(others.dir, "push", repoURL(srv, bob, "other"), "HEAD:refs/heads/main"); err != nil {
		t.Fatalf("bob pushes other: %v\n%s", err, out)
	}
	create(b, bob, "bob-other", "bob-artifacts", otherSource, deploy("bob-bucket", "other"))
	waitForExecution(t, b, "bob-other", types.PipelineExecutionStatusSucceeded)
	borrowRuns, intrudeRuns := len(executions(t, b, "borrow")), len(executions(t, b, "intrude"))
	bobs := newGitRepo(t)
	pushed := bobs.commit("bob's second page", map[string]string{"page.txt": "bob again\n"})
	if out, err := gitAs(bobs.dir, "push", "-f", repoURL(srv, bob, "app"), "HEAD:refs/heads/main"); err != nil {
		t.Fatalf("bob pushes his app again: %v\n%s", err, out)
	}
	later := others.commit("bob's other page, again", map[string]string{"page.txt": "other again\n"})
	if out, err := gitAs(others.dir, "push", repoURL(srv, bob, "other"), "HEAD:refs/heads/main"); err != nil {
		t.Fatalf("bob pushes other again: %v\n%s", err, out)
	}
	waitUpTo(t, 15*time.Second, "bob's push to start borrow, which fails", func() bool {
		e := executions(t, b, "borrow")
		return len(e) > borrowRuns && e[0].Status == types.PipelineExecutionStatusFailed
	}, func() string { return describeRuns(executions(t, b, "borrow")) })
	waitUpTo(t, 5*time.Second, "bob's later push of other to start bob-other", func() bool {
		for _, e := range executions(t, b, "bob-other") {
			for _, r := range e.SourceRevisions {
				if aws.ToString(r.RevisionId) == later {
					return true
				}
			}
		}
		return false
	}, func() string { return describeRuns(executions(t, b, "bob-other")) })
	time.Sleep(time.Second)
	if e := executions(t, b, "intrude"); len(e) != intrudeRuns+1 {
		t.Errorf("bob's push of %s started intrude %d times, want once:%s", pushed, len(e)-intrudeRuns, describeRuns(e))
	}

	// An upload to alice's bucket starts alice's pipeline that watches it, not bob's steal.
	stealRuns := len(executions(t, b, "steal"))
	v2 := putSource("version two\n")
	if e := executionAt(t, a, "from-s3", v2); e.Status != types.PipelineExecutionStatusSucceeded {
		t.Errorf("alice's from-s3 of the upload ended %s: %s", e.Status, describeActions(t, a, "from-s3"))
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(executions(t, b, "steal")); n != stealRuns {
		t.Errorf("alice's upload started bob's steal: %d executions, were %d", n, stealRuns)
	}
}

// waitUpTo polls until cond holds, for up to d.
func waitUpTo(t *testing.T, d time.Duration, what string, cond func() bool, describe func() string) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("%s did not happen within %s: %s", what, d, describe())
			return
		}
	}
}

// readS3 reads an object.
func readS3(ctx context.Context, c *s3.Client, bucket, key string) (string, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

// TestLogsAndSluiceEndpointsWithAuth reads a build's log with `sluice logs` and over HTTP as users
// of either account: only the account that ran it reads it.
func TestLogsAndSluiceEndpointsWithAuth(t *testing.T) {
	bin := buildBinary(t)
	srv, _ := newAuthServer(t, bin, authIdentities, "--data", t.TempDir(), "--source-poll-interval", "0", "--build-isolation", "none")
	ctx := context.Background()
	endpoint := "http://" + srv.addr

	health, err := http.Get(endpoint + "/_sluice/health")
	if err != nil {
		t.Fatal(err)
	}
	health.Body.Close()
	if health.StatusCode != http.StatusOK {
		t.Errorf("/_sluice/health without credentials answered %d", health.StatusCode)
	}

	repo := newGitRepo(t)
	repo.commit("source", map[string]string{"README": "logged\n"})
	if out, err := gitAs(repo.dir, "push", repoURL(srv, alice, "logged"), "HEAD:refs/heads/main"); err != nil {
		t.Fatalf("alice pushes: %v\n%s", err, out)
	}
	a := cpAs(srv, alice)
	if _, err := a.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: &types.PipelineDeclaration{
		Name: aws.String("logged"), RoleArn: aws.String("arn:aws:iam::111111111111:role/cp"), PipelineType: types.PipelineTypeV2,
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("alice-artifacts")},
		Stages: []types.StageDeclaration{
			{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{Name: aws.String("src"),
				ActionTypeId:    &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerAws, Provider: aws.String("CodeCommit"), Version: aws.String("1")},
				Configuration:   map[string]string{"RepositoryName": "logged", "BranchName": "main", "PollForSourceChanges": "false"},
				OutputArtifacts: []types.OutputArtifact{{Name: aws.String("Src")}}}}},
			{Name: aws.String("Run"), Actions: []types.ActionDeclaration{{Name: aws.String("echo"), Commands: []string{"echo sum=$((40+2))"},
				ActionTypeId:   &types.ActionTypeId{Category: types.ActionCategoryCompute, Owner: types.ActionOwnerAws, Provider: aws.String("Commands"), Version: aws.String("1")},
				InputArtifacts: []types.InputArtifact{{Name: aws.String("Src")}}}}},
		}}}); err != nil {
		t.Fatal(err)
	}
	execID := waitForExecution(t, a, "logged", types.PipelineExecutionStatusSucceeded)
	logURL := aws.ToString(actionDetails(t, a, "logged", execID)["echo"].Output.ExecutionResult.ExternalExecutionUrl)
	if !strings.HasPrefix(logURL, endpoint+"/_sluice/logs/") {
		t.Fatalf("the Commands action's external execution URL is %q", logURL)
	}

	// sluice logs signs with the credentials of its environment.
	logs := func(id identity) (string, error) {
		return runAs(id, bin, "logs", "--endpoint", endpoint, "logged")
	}
	if out, err := logs(alice); err != nil || !strings.Contains(out, "sum=42") {
		t.Errorf("alice's sluice logs (%v):\n%s", err, out)
	}
	if out, err := logs(reader); err != nil || !strings.Contains(out, "sum=42") {
		t.Errorf("reader's sluice logs (%v):\n%s", err, out)
	}
	if out, err := logs(bob); err == nil || strings.Contains(out, "sum=42") || !strings.Contains(out, "PipelineNotFoundException") {
		t.Errorf("bob's sluice logs of alice's pipeline (%v):\n%s", err, out)
	}
	if out, err := logs(cponly); err == nil || strings.Contains(out, "sum=42") || !strings.Contains(out, "403") {
		t.Errorf("cponly's sluice logs, who may not read logs (%v):\n%s", err, out)
	}
	if out, err := logs(identity{}); err == nil || strings.Contains(out, "sum=42") || !strings.Contains(out, "MissingAuthenticationTokenException") {
		t.Errorf("sluice logs without credentials (%v):\n%s", err, out)
	}

	// The log over HTTP: 401 without credentials, for the browser to ask; HTTP Basic or SigV4
	// for the service sluice.
	get := func(what string, prepare func(*http.Request)) (int, string, http.Header) {
		t.Helper()
		r, err := http.NewRequest(http.MethodGet, logURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if prepare != nil {
			prepare(r)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	basic := func(id identity) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(id.key, id.secret) }
	}
	sigv4 := func(id identity, service string) func(*http.Request) {
		return func(r *http.Request) {
			if err := v4.NewSigner().SignHTTP(ctx, id.credentials(), r, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", service, "us-east-1", time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if status, body, header := get("unsigned", nil); status != http.StatusUnauthorized || strings.Contains(body, "sum=42") || !strings.HasPrefix(header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("the log without credentials: %d, WWW-Authenticate %q: %q", status, header.Get("WWW-Authenticate"), body)
	}
	for _, c := range []struct {
		what    string
		prepare func(*http.Request)
		ok      bool
	}{
		{"alice's Basic", basic(alice), true},
		{"reader's Basic", basic(reader), true},
		{"alice's SigV4", sigv4(alice, "sluice"), true},
		{"bob's Basic", basic(bob), false},
		{"bob's SigV4", sigv4(bob, "sluice"), false},
		{"cponly's Basic", basic(cponly), false},
		{"alice's key with a wrong secret", basic(identity{key: alice.key, secret: "wrong"}), false},
		{"alice's SigV4 for the service codepipeline", sigv4(alice, "codepipeline"), false},
	} {
		status, body, _ := get(c.what, c.prepare)
		switch {
		case c.ok && (status != http.StatusOK || !strings.Contains(body, "sum=42")):
			t.Errorf("the log with %s: %d %q", c.what, status, body)
		case !c.ok && (status != http.StatusNotFound && status != http.StatusForbidden || strings.Contains(body, "sum=42")):
			t.Errorf("the log with %s: %d %q, want 403 or 404", c.what, status, body)
		}
	}
	if status, _, _ := get("cponly's Basic", basic(cponly)); status != http.StatusForbidden {
		t.Errorf("alice's log with cponly's Basic answered %d, want 403 (no logs:GetLogEvents)", status)
	}

	// sluice connection-secret signs too: each account has its own secret and webhook URL for a
	// connection id, and only who may get the connection reads them.
	secret := func(id identity, extra ...string) (string, error) {
		out, err := runAs(id, bin, append([]string{"connection-secret", "--endpoint", endpoint, "--connection-id", "conn-1"}, extra...)...)
		return strings.TrimSpace(out), err
	}
	aliceSecret, err := secret(alice)
	if err != nil || aliceSecret == "" || strings.Contains(aliceSecret, " ") {
		t.Errorf("alice's connection-secret (%v): %q", err, aliceSecret)
	}
	bobSecret, err := secret(bob)
	if err != nil || bobSecret == "" || bobSecret == aliceSecret {
		t.Errorf("bob's connection-secret (%v): %q, alice's %q: want a secret of his own", err, bobSecret, aliceSecret)
	}
	for _, id := range []identity{alice, bob} {
		u, err := secret(id, "--url")
		if want := endpoint + "/_sluice/connections/conn-1/webhook?account=" + id.account; err != nil || u != want {
			t.Errorf("%s's connection-secret --url (%v): %q, want %q", id.user, err, u, want)
		}
	}
	for _, id := range []identity{reader, cponly, {}} {
		if out, err := secret(id); err == nil || strings.Contains(out, aliceSecret) {
			t.Errorf("connection-secret as %q, who may not get connections (%v): %q", id.user, err, out)
		}
	}
}

// signal sends sig to the server process.
func (s *testServer) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}

// TestIdentitiesReloadOnSIGHUP edits the identities file while the server runs: on SIGHUP a new
// user of a new account can sign in and has pipelines of its own, an invalid file changes
// nothing, and a key taken out of the file stops working.
func TestIdentitiesReloadOnSIGHUP(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) { testIdentitiesReload(t, bin, args...) })
}

func testIdentitiesReload(t *testing.T, bin string, storeArgs ...string) {
	const onlyAlice = `accounts:
  - id: "111111111111"
    users:
      - name: alice
        accessKeys: [{id: AKIAALICE00000000001, secret: alice-secret}]
`
	srv, path := newAuthServer(t, bin, onlyAlice, append([]string{"--start-on-create=false", "--source-poll-interval", "0"}, storeArgs...)...)
	ctx := context.Background()
	a, n := cpAs(srv, alice), cpAs(srv, newbie)
	list := func(c *cp.Client) error {
		_, err := c.ListPipelines(ctx, &cp.ListPipelinesInput{})
		return err
	}
	if err := list(a); err != nil {
		t.Fatalf("alice lists pipelines: %v", err)
	}
	wantErr(t, "newbie before the reload", list(n), "UnrecognizedClientException", badToken)
	if _, err := a.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: approvalPipeline("alices", alice.account)}); err != nil {
		t.Fatal(err)
	}

	// The file, now JSON, adds newbie in a new account.
	writeIdentities(t, path, `{"accounts": [
  {"id": "111111111111", "users": [{"name": "alice", "accessKeys": [{"id": "AKIAALICE00000000001", "secret": "alice-secret"}]}]},
  {"id": "333333333333", "users": [{"name": "newbie", "accessKeys": [{"id": "AKIANEW0000000000001", "secret": "newbie-secret"}]}]}
]}`)
	srv.signal(syscall.SIGHUP)
	waitFor(t, "newbie's key to work after SIGHUP", func() bool { return list(n) == nil }, func() string { return fmt.Sprint(list(n)) })
	if _, err := n.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: approvalPipeline("newbies", newbie.account)}); err != nil {
		t.Fatalf("newbie creates a pipeline in the new account: %v", err)
	}
	if out, err := n.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("newbies")}); err != nil {
		t.Fatal(err)
	} else if got := aws.ToString(out.Metadata.PipelineArn); got != pipelineARN(newbie.account, "newbies") {
		t.Errorf("newbie's pipeline has ARN %s", got)
	}
	names := func(c *cp.Client) []string {
		out, err := c.ListPipelines(ctx, &cp.ListPipelinesInput{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range out.Pipelines {
			names = append(names, aws.ToString(p.Name))
		}
		return names
	}
	if got := names(n); !slices.Equal(got, []string{"newbies"}) {
		t.Errorf("newbie lists %v", got)
	}
	if got := names(a); !slices.Equal(got, []string{"alices"}) {
		t.Errorf("alice lists %v", got)
	}

	// A file that is not valid leaves the identities as they were.
	logged := func() int {
		log, _ := os.ReadFile(srv.logPath)
		return bytes.Count(log, []byte("identities not reloaded"))
	}
	before := logged()
	writeIdentities(t, path, "accounts: [ {id: \"111111111111\", users: [ {name: alice, accessKeys: [")
	srv.signal(syscall.SIGHUP)
	waitFor(t, "the server to log that it kept the identities", func() bool { return logged() > before }, func() string {
		log, _ := os.ReadFile(srv.logPath)
		return string(log)
	})
	if err := list(a); err != nil {
		t.Errorf("alice after an invalid file: %v", err)
	}
	if err := list(n); err != nil {
		t.Errorf("newbie after an invalid file: %v", err)
	}

	// A key taken out of the file stops working.
	writeIdentities(t, path, `accounts:
  - id: "333333333333"
    users:
      - name: newbie
        accessKeys: [{id: AKIANEW0000000000001, secret: newbie-secret}]
`)
	srv.signal(syscall.SIGHUP)
	waitFor(t, "alice's key to stop working", func() bool { return errCode(list(a)) == "UnrecognizedClientException" }, func() string { return fmt.Sprint(list(a)) })
	if err := list(n); err != nil {
		t.Errorf("newbie after alice was removed: %v", err)
	}
}

// TestAuthOffIsUnchanged checks that without --auth every request, signed with any key or not at
// all, is the root of --account-id.
func TestAuthOffIsUnchanged(t *testing.T) {
	bin := buildBinary(t)
	const account = "123456789012"
	srv := newTestServer(t, bin, "--data", t.TempDir(), "--account-id", account, "--start-on-create=false")
	ctx := context.Background()
	test := cpWith(srv, credentials.NewStaticCredentialsProvider("test", "test", ""), "us-east-1")
	if _, err := test.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: approvalPipeline("plain", account)}); err != nil {
		t.Fatal(err)
	}
	for what, c := range map[string]*cp.Client{
		"test/test":         test,
		"alice's key":       cpAs(srv, alice),
		"anonymous":         cpWith(srv, aws.AnonymousCredentials{}, "us-east-1"),
		"signed elsewhere":  cpWith(srv, credentials.NewStaticCredentialsProvider("AKIAUNKNOWN000000001", "x", ""), "eu-west-1"),
		"bob's wrong key":   cpWith(srv, credentials.NewStaticCredentialsProvider(bob.key, "wrong", ""), "us-east-1"),
		"reader's key only": cpAs(srv, reader),
	} {
		out, err := c.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("plain")})
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		if got := aws.ToString(out.Metadata.PipelineArn); got != pipelineARN(account, "plain") {
			t.Errorf("%s: ARN %s", what, got)
		}
	}
	if _, err := cpAs(srv, reader).DeletePipeline(ctx, &cp.DeletePipelineInput{Name: aws.String("plain")}); err != nil {
		t.Errorf("with --auth off, any key deletes: %v", err)
	}
}
