// Package protocol speaks the AWS JSON 1.1 protocol of CodePipeline over HTTP: it routes a request
// by its X-Amz-Target header to an operation, decodes the body into the operation's typed input,
// hands it to a model.Service, and writes the output or the error the way AWS does, with a request
// id on every response.
package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/model"
)

// DefaultMaxBodyBytes caps a request body unless the Handler says otherwise. The largest legal
// request, a pipeline declaration at AWS's quotas, is well under it.
const DefaultMaxBodyBytes = 8 << 20

// An answer stays small whatever the request: a message repeats at most maxEchoed bytes of any
// one piece of the request (a member's path, a header), and no message is longer than
// maxMessage bytes, whoever wrote it. The validators cut the values they echo themselves.
const (
	maxEchoed  = 256
	maxMessage = 64 << 10
)

// Handler answers CodePipeline requests.
type Handler struct {
	// Service answers every request, unless Gate says which service answers whom.
	Service model.Service
	// Gate, if set, admits each request before its operation runs.
	Gate         Gate
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// Gate admits requests: it tells who sent one and whether they may call its operation. Its
// refusals are *model.Error, written as any operation's errors are.
type Gate interface {
	// Authenticate tells who sent r, whose body is body: it returns r's context carrying who it
	// is, and the service that answers them.
	Authenticate(r *http.Request, body []byte) (context.Context, model.Service, error)
	// Authorize tells whether whoever ctx carries may call the operation op with input in.
	Authorize(ctx context.Context, op string, in any) error
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	requestID := uuid.NewString()
	w.Header().Set("x-amzn-RequestId", requestID)

	opName, out, err := h.serve(r)
	status := http.StatusOK
	if err != nil && r.Context().Err() != nil {
		// The client went away; nobody is left to answer, and it is not a fault of the server.
		return
	}
	if err != nil {
		status = h.writeError(w, err, opName, requestID)
	} else {
		writeJSON(w, http.StatusOK, out)
	}
	if h.Logger != nil && h.Logger.Enabled(r.Context(), slog.LevelDebug) {
		h.Logger.LogAttrs(r.Context(), slog.LevelDebug, "request",
			slog.String("operation", opName), slog.Int("status", status),
			slog.Duration("elapsed", time.Since(start)), slog.String("request_id", requestID))
	}
}

// serve runs one request and returns the operation's name, its output and its error.
func (h *Handler) serve(r *http.Request) (opName string, out any, err error) {
	if r.Method != http.MethodPost {
		return "", nil, &model.Error{Code: "MethodNotAllowedException", Status: http.StatusMethodNotAllowed,
			Message: fmt.Sprintf("CodePipeline requests are POSTed, not sent with %s.", truncate(r.Method, maxEchoed))}
	}
	target := r.Header.Get("X-Amz-Target")
	opName, ok := strings.CutPrefix(target, model.TargetPrefix+".")
	op, known := model.LookupOperation(opName)
	if !ok || !known {
		return opName, nil, model.ErrUnknownOperation("The X-Amz-Target %q names no operation of %s.", truncate(target, maxEchoed), model.TargetPrefix)
	}
	body, err := h.readBody(r)
	if err != nil {
		return opName, nil, err
	}
	ctx, svc := r.Context(), h.Service
	if h.Gate != nil {
		if ctx, svc, err = h.Gate.Authenticate(r, body); err != nil {
			return opName, nil, err
		}
	}
	in := op.NewInput()
	if err := decode(body, in); err != nil {
		return opName, nil, err
	}
	if h.Gate != nil {
		if err := h.Gate.Authorize(ctx, op.Name, in); err != nil {
			return opName, nil, err
		}
	}
	out, err = h.invoke(ctx, svc, op, in)
	return opName, out, err
}

// invoke calls the operation, turning a panic in it into an internal failure so that one bad
// request cannot take the connection, or the server, down.
func (h *Handler) invoke(ctx context.Context, svc model.Service, op *model.Operation, in any) (out any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("operation %s panicked: %v", op.Name, p)
		}
	}()
	return op.Invoke(ctx, svc, in)
}

func (h *Handler) readBody(r *http.Request) ([]byte, error) {
	limit := h.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	if r.ContentLength > limit {
		return nil, errBodyTooLarge(limit)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, model.ErrSerialization("The request body could not be read: %v", err)
	}
	if int64(len(body)) > limit {
		return nil, errBodyTooLarge(limit)
	}
	return body, nil
}

func errBodyTooLarge(limit int64) *model.Error {
	return &model.Error{Code: "RequestEntityTooLargeException", Status: http.StatusRequestEntityTooLarge,
		Message: fmt.Sprintf("The request body is larger than the limit of %d bytes.", limit)}
}

// decode reads an AWS JSON request body into in, a pointer to an input structure. An empty body is
// an empty structure; members in that are not part of the input are ignored. Member names are
// matched exactly, as AWS reads them: {"Name": …} is not the member name but an unknown one. (The
// standard library's decoder matches names regardless of case, hence the JSON v2 decoder here.)
func decode(body []byte, in any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil
	}
	if body[0] != '{' {
		return model.ErrSerialization("The request body must be a JSON object.")
	}
	err := jsonv2.Unmarshal(body, in, jsontext.AllowDuplicateNames(true))
	var syntaxErr *jsontext.SyntacticError
	var semanticErr *jsonv2.SemanticError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &syntaxErr):
		return model.ErrSerialization("The request body is not valid JSON: %s.", truncate(fmt.Sprint(syntaxErr.Err), maxEchoed))
	case errors.As(err, &semanticErr):
		// The path names map entries by their keys, which can be as long as the body.
		path := truncate(strings.ReplaceAll(strings.TrimPrefix(string(semanticErr.JSONPointer), "/"), "/", "."), maxEchoed)
		if semanticErr.Err != nil {
			return model.ErrSerialization("Value at '%s' could not be read: %s.", path, truncate(fmt.Sprint(semanticErr.Err), maxEchoed))
		}
		if semanticErr.GoType != nil {
			return model.ErrSerialization("Value at '%s' must be %s, not a JSON %s.", path, wireKind(semanticErr.GoType), jsonKind(semanticErr.JSONKind))
		}
	}
	return model.ErrSerialization("The request body could not be read: %s", truncate(err.Error(), maxEchoed))
}

// truncate returns s if it has at most n bytes, else as many of its first characters as fit in
// n bytes followed by "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// jsonKind names a kind of JSON value.
func jsonKind(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case '{':
		return "object"
	case '[':
		return "array"
	case 'n':
		return "null"
	}
	return "value"
}

// wireKind names the kind of JSON value a Go type is read from, as the model calls it.
func wireKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		return "a list"
	case reflect.Map:
		return "a map"
	case reflect.Struct:
		return "a structure"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "an integer"
	}
	return "a " + t.Kind().String()
}

func (h *Handler) writeError(w http.ResponseWriter, err error, opName, requestID string) int {
	var apiErr *model.Error
	if !errors.As(err, &apiErr) {
		if h.Logger != nil {
			h.Logger.Error("internal failure", "operation", opName, "request_id", requestID, "err", err)
		}
		apiErr = model.ErrInternalFailure("The server failed to process the request; its log has the details under request id %s.", requestID)
	}
	status := apiErr.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	w.Header().Set("x-amzn-ErrorType", apiErr.Code)
	writeJSON(w, status, errorBody{Type: apiErr.Code, Message: truncate(apiErr.Message, maxMessage)})
	return status
}

type errorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		w.Header().Set("x-amzn-ErrorType", "InternalFailure")
		buf.Reset()
		fmt.Fprintf(&buf, `{"__type":"InternalFailure","message":%q}`, "The response could not be encoded: "+err.Error())
	}
	b := bytes.TrimSpace(buf.Bytes())
	if bytes.Equal(b, []byte("null")) {
		b = []byte("{}")
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
