// Package delivery holds what the endpoints that take deliveries from other systems — the
// webhooks PutWebhook hands out, and connections' webhooks for Git servers — share: reading a
// body within a limit, and answering and logging a delivery's outcome, always as JSON
// {"message": "…"}, never logging the body or a secret.
package delivery

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
)

// MaxBodyBytes bounds a delivery's body unless an endpoint is told otherwise: 25 MiB, GitHub's
// cap on a webhook payload ("Payloads are capped at 25 MB"), so that every delivery GitHub, Gitea
// or Forgejo makes fits.
const MaxBodyBytes = 25 << 20

// AccountParameter names, in the URLs handed out for an account's deliveries, the account they
// belong to; a delivery without one goes to the server's own account.
const AccountParameter = "account"

// Document is the JSON document a delivery carries: its body, or, for a form
// (application/x-www-form-urlencoded, which GitHub and Gitea offer), its payload field; form
// reports which.
func Document(body []byte, contentType string) (doc []byte, form bool, err error) {
	if media, _, _ := mime.ParseMediaType(contentType); media != "application/x-www-form-urlencoded" {
		return body, false, nil
	}
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, true, errors.New("the form body cannot be read")
	}
	return []byte(values.Get("payload")), true, nil
}

// Sign is the HMAC of body under secret with the hash newHash makes, as Git servers sign their
// deliveries.
func Sign(newHash func() hash.Hash, secret string, body []byte) []byte {
	mac := hmac.New(newHash, []byte(secret))
	mac.Write(body)
	return mac.Sum(nil)
}

// ReadBody reads the delivery's body, up to limit bytes, or refuses the delivery and reports
// false: 413 for a body over the limit (before it is read when its Content-Length says so), 400
// for a body that cannot be read.
func (o *Outcome) ReadBody(r *http.Request, limit int64) ([]byte, bool) {
	tooLarge := func(reason string) ([]byte, bool) {
		o.Refuse(http.StatusRequestEntityTooLarge, reason, fmt.Sprintf("The body is larger than %d bytes", limit))
		return nil, false
	}
	if r.ContentLength > limit {
		return tooLarge(fmt.Sprintf("a body of %d bytes is over the limit of %d", r.ContentLength, limit))
	}
	body, err := io.ReadAll(http.MaxBytesReader(o.W, r.Body, limit))
	var over *http.MaxBytesError
	if errors.As(err, &over) {
		return tooLarge(fmt.Sprintf("the body is over the limit of %d bytes", limit))
	}
	if err != nil {
		o.Refuse(http.StatusBadRequest, fmt.Sprintf("read the body: %v", err), "The body could not be read")
		return nil, false
	}
	return body, true
}

// WriteMessage answers with status and {"message": message}.
func WriteMessage(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Message string `json:"message"`
	}{message})
}

// Outcome answers one delivery and logs how it went, under a name ("webhook delivery") and the
// delivery's attributes.
type Outcome struct {
	W      http.ResponseWriter
	Logger *slog.Logger
	Name   string
	Attrs  []any
}

// Answer answers with status and message, and logs the outcome at level, with why if reason is
// not empty.
func (o *Outcome) Answer(status int, level slog.Level, outcome, reason, message string) {
	attrs := append(slices.Clip(o.Attrs), "status", status)
	if reason != "" {
		attrs = append(attrs, "reason", reason)
	}
	o.Logger.Log(context.Background(), level, o.Name+" "+outcome, attrs...)
	WriteMessage(o.W, status, message)
}

// Refuse answers a delivery refused (authentication, size, an unknown target).
func (o *Outcome) Refuse(status int, reason, message string) {
	o.Answer(status, slog.LevelInfo, "refused", reason, message)
}

// Ignore answers 200 to a delivery that starts nothing (a filter did not match).
func (o *Outcome) Ignore(reason, message string) {
	o.Answer(http.StatusOK, slog.LevelInfo, "ignored", reason, message)
}

// Fail answers 500 to a delivery that could not be handled, logging err.
func (o *Outcome) Fail(err error, message string) {
	o.Answer(http.StatusInternalServerError, slog.LevelError, "failed", err.Error(), message)
}
