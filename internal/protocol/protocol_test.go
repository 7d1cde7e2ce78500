package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/internal/model"
)

// recorder is a model.Service that remembers the last operation it answered and its input.
type recorder struct {
	mu    sync.Mutex
	op    string
	input any
	// answer, when set, produces the operation's result.
	answer func(op string, in any) (any, error)
}

func (r *recorder) service() model.Func {
	return func(_ context.Context, op string, in any) (any, error) {
		r.mu.Lock()
		r.op, r.input = op, in
		answer := r.answer
		r.mu.Unlock()
		if answer != nil {
			return answer(op, in)
		}
		return nil, nil
	}
}

func (r *recorder) last() (string, any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.op, r.input
}

func newTestServer(t *testing.T, rec *recorder, maxBody int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(&Handler{Service: rec.service(), MaxBodyBytes: maxBody})
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status    int
	header    http.Header
	errorType string
	message   string
	body      string
}

func post(t *testing.T, url, target, contentType, body string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: string(raw)}
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("response body is not JSON: %q", raw)
	}
	r.errorType, r.message = e.Type, e.Message
	if got := resp.Header.Get("x-amzn-RequestId"); len(got) != 36 {
		t.Errorf("x-amzn-RequestId = %q, want a request id", got)
	}
	if r.errorType != "" && resp.Header.Get("x-amzn-ErrorType") != r.errorType {
		t.Errorf("x-amzn-ErrorType = %q, body says %q", resp.Header.Get("x-amzn-ErrorType"), r.errorType)
	}
	return r
}

const jsonType = "application/x-amz-json-1.1"

func target(op string) string { return model.TargetPrefix + "." + op }

func TestErrorsOfTheProtocol(t *testing.T) {
	rec := &recorder{}
	srv := newTestServer(t, rec, 1024)
	tests := []struct {
		name, target, body string
		status             int
		errorType          string
		messageHas         string
	}{
		{"unknown operation", target("LaunchRockets"), `{}`, 400, "UnknownOperationException", "LaunchRockets"},
		{"missing target", "", `{}`, 400, "UnknownOperationException", "X-Amz-Target"},
		{"other service", "DynamoDB_20120810.ListTables", `{}`, 400, "UnknownOperationException", "DynamoDB_20120810.ListTables"},
		{"not JSON", target("GetPipeline"), `{"name":`, 400, "SerializationException", "not valid JSON"},
		{"not an object", target("GetPipeline"), `["p"]`, 400, "SerializationException", "JSON object"},
		{"trailing garbage", target("GetPipeline"), `{"name":"p"} x`, 400, "SerializationException", "not valid JSON"},
		{"wrong scalar type", target("GetPipeline"), `{"name":7}`, 400, "SerializationException", "Value at 'name' must be a string, not a JSON number"},
		{"wrong nested type", target("CreatePipeline"), `{"pipeline":{"name":"p","stages":"x"}}`, 400, "SerializationException", "'pipeline.stages' must be a list"},
		{"wrong timestamp", target("PutActionRevision"), `{"pipelineName":"p","stageName":"s","actionName":"a","actionRevision":{"revisionId":"r","revisionChangeId":"c","created":"yesterday"}}`, 400, "SerializationException", "seconds since the epoch"},
		{"validation", target("GetPipeline"), `{"name":"bad name!"}`, 400, "ValidationException", "1 validation error detected: Value 'bad name!' at 'name'"},
		{"names are case-sensitive", target("GetPipeline"), `{"Name":"p"}`, 400, "ValidationException", "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"},
		{"nested names are case-sensitive", target("CreatePipeline"), `{"pipeline":{"name":"p","roleArn":"arn:aws:iam::000000000000:role/r","Stages":[]}}`, 400, "ValidationException", "Value null at 'pipeline.stages' failed to satisfy constraint: Member must not be null"},
		{"wrong type in a list", target("CreatePipeline"), `{"pipeline":{"name":"p","stages":[{"name":1}]}}`, 400, "SerializationException", "Value at 'pipeline.stages.0.name' must be a string, not a JSON number"},
		{"body too large", target("GetPipeline"), `{"name":"` + strings.Repeat("a", 2000) + `"}`, 413, "RequestEntityTooLargeException", "1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, srv.URL, tt.target, jsonType, tt.body)
			if r.status != tt.status || r.errorType != tt.errorType || !strings.Contains(r.message, tt.messageHas) {
				t.Errorf("got %d %s %q, want %d %s containing %q", r.status, r.errorType, r.message, tt.status, tt.errorType, tt.messageHas)
			}
		})
	}
}

// TestAnswersStaySmall sends requests whose errors would repeat long pieces of them: a map key
// in a member's path, a header, a service's message that echoes its input. Each answer is cut.
func TestAnswersStaySmall(t *testing.T) {
	long := strings.Repeat("k", 100000)
	rec := &recorder{answer: func(_ string, in any) (any, error) {
		return nil, model.ErrPipelineNotFound("No pipeline named %s", *in.(*model.GetPipelineInput).Name)
	}}
	srv := newTestServer(t, rec, 1<<20)
	tests := []struct {
		name, target, body, errorType, messageHas string
	}{
		{"map key in a path", target("CreatePipeline"), `{"pipeline":{"artifactStores":{"` + long + `":5}}}`, "SerializationException", "Value at 'pipeline.artifactStores.kkkk"},
		{"unknown target", target(long), `{}`, "UnknownOperationException", "The X-Amz-Target \"" + model.TargetPrefix + ".kkkk"},
		{"a long value", target("GetPipeline"), `{"name":"` + long + `"}`, "ValidationException", "(the first 256 of 100000 characters)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, srv.URL, tt.target, jsonType, tt.body)
			if r.errorType != tt.errorType || !strings.Contains(r.message, tt.messageHas) || len(r.message) > 2*maxEchoed+300 {
				t.Errorf("got %s, %d bytes: %.400s", r.errorType, len(r.message), r.message)
			}
		})
	}

	h := &Handler{Service: rec.service()}
	w := httptest.NewRecorder()
	h.writeError(w, model.ErrPipelineNotFound("No pipeline named %s", strings.Repeat("é", maxMessage)), "GetPipeline", "id")
	var e errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	if len(e.Message) > maxMessage+len("...") || !strings.HasSuffix(e.Message, "é...") {
		t.Errorf("a message of %d bytes ends %q", len(e.Message), e.Message[len(e.Message)-10:])
	}
}

func TestGetIsNotAnOperation(t *testing.T) {
	srv := newTestServer(t, &recorder{}, 0)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET / = %d, want 405", resp.StatusCode)
	}
}

func TestDecodingReachesTheHandler(t *testing.T) {
	rec := &recorder{}
	srv := newTestServer(t, rec, 0)
	for _, contentType := range []string{"application/x-amz-json-1.1", "application/x-amz-json-1.0", ""} {
		r := post(t, srv.URL, target("GetPipeline"), contentType, `{"name":"my-pipe","version":3,"someFutureMember":{"a":[1]}}`)
		if r.status != 200 || r.body != "{}" {
			t.Fatalf("content type %q: got %d %s", contentType, r.status, r.body)
		}
		op, in := rec.last()
		got, ok := in.(*model.GetPipelineInput)
		if op != "GetPipeline" || !ok || *got.Name != "my-pipe" || *got.Version != 3 {
			t.Fatalf("handler got %s %#v", op, in)
		}
	}
}

func TestEmptyBodyIsAnEmptyInput(t *testing.T) {
	rec := &recorder{}
	srv := newTestServer(t, rec, 0)
	if r := post(t, srv.URL, target("ListPipelines"), jsonType, ""); r.status != 200 {
		t.Fatalf("empty body: %d %s", r.status, r.body)
	}
	if _, in := rec.last(); *in.(*model.ListPipelinesInput) != (model.ListPipelinesInput{}) {
		t.Errorf("input = %#v, want empty", in)
	}
}

func TestOutputAndErrorsFromTheService(t *testing.T) {
	rec := &recorder{answer: func(op string, in any) (any, error) {
		switch op {
		case "GetPipeline":
			return nil, model.ErrPipelineNotFound("Account '000000000000' does not have a pipeline with name '%s'", *in.(*model.GetPipelineInput).Name)
		case "ListPipelines":
			return &model.ListPipelinesOutput{Pipelines: []model.PipelineSummary{}}, nil
		case "DeletePipeline":
			return nil, errors.New("disk on fire")
		}
		panic("boom")
	}}
	srv := newTestServer(t, rec, 0)

	r := post(t, srv.URL, target("GetPipeline"), jsonType, `{"name":"nope"}`)
	if r.status != 400 || r.errorType != "PipelineNotFoundException" || r.message != "Account '000000000000' does not have a pipeline with name 'nope'" {
		t.Errorf("service error: %+v", r)
	}
	if r := post(t, srv.URL, target("ListPipelines"), jsonType, `{}`); r.status != 200 || r.body != `{"pipelines":[]}` {
		t.Errorf("output: %d %s", r.status, r.body)
	}
	if r := post(t, srv.URL, target("DeletePipeline"), jsonType, `{"name":"p"}`); r.status != 500 || r.errorType != "InternalFailure" || strings.Contains(r.message, "disk on fire") {
		t.Errorf("internal error: %+v", r)
	}
	if r := post(t, srv.URL, target("StopPipelineExecution"), jsonType, `{"pipelineName":"p","pipelineExecutionId":"3f2504e0-4f89-11d3-9a0c-0305e82c3301"}`); r.status != 500 || r.errorType != "InternalFailure" {
		t.Errorf("panic: %+v", r)
	}
}

func TestUnimplementedOperationSaysSo(t *testing.T) {
	srv := httptest.NewServer(&Handler{Service: model.Unimplemented{}})
	defer srv.Close()
	r := post(t, srv.URL, target("ListWebhooks"), jsonType, `{}`)
	if r.status != http.StatusNotImplemented || r.errorType != "NotImplementedException" || !strings.Contains(r.message, "ListWebhooks") {
		t.Errorf("got %+v", r)
	}
}

// TestEveryOperationChecksRequiredMembers sends each operation a body without its required
// members; operations that require none must reach the service.
func TestEveryOperationChecksRequiredMembers(t *testing.T) {
	rec := &recorder{}
	srv := newTestServer(t, rec, 0)
	for _, op := range model.Operations() {
		t.Run(op.Name, func(t *testing.T) {
			r := post(t, srv.URL, target(op.Name), jsonType, `{}`)
			if len(op.Required) == 0 {
				if name, _ := rec.last(); r.status != 200 || name != op.Name {
					t.Fatalf("got %d %s; the service saw %q", r.status, r.body, name)
				}
				return
			}
			if r.status != 400 || r.errorType != "ValidationException" {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			for _, m := range op.Required {
				if !strings.Contains(r.message, "Value null at '"+m+"' failed to satisfy constraint: Member must not be null") {
					t.Errorf("message does not name the missing %s: %s", m, r.message)
				}
			}
		})
	}
}

// FuzzHandler sends arbitrary bodies to every operation: the server must answer each with a
// well-formed response and never panic.
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `{"name":"p"}`, `{"name":null,"version":-1}`, `{"pipeline":{"stages":[{"actions":[{}]}]}}`,
		`{"pipeline":{"name":"p","roleArn":"r","stages":[],"artifactStores":{"us-east-1":{"type":"S3","location":"b"}}}}`,
		`{"jobId":"3f2504e0-4f89-11d3-9a0c-0305e82c3301","nonce":"1","currentRevision":{"created":1.5e9}}`,
		`{"created":"yesterday"}`, `{"maxResults":1e400}`, `{"a":` + strings.Repeat("[", 100) + `}`,
	} {
		f.Add(seed)
	}
	h := &Handler{Service: model.Unimplemented{}}
	ops := model.Operations()
	f.Fuzz(func(t *testing.T, body string) {
		for _, op := range ops {
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			req.Header.Set("X-Amz-Target", target(op.Name))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code == http.StatusOK || w.Code == http.StatusInternalServerError {
				t.Fatalf("%s %q: status %d %s", op.Name, body, w.Code, w.Body)
			}
			var e map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e["__type"] == "" || e["message"] == "" {
				t.Fatalf("%s %q: malformed error %s", op.Name, body, w.Body)
			}
		}
	})
}
