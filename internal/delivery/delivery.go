// Package delivery holds what the endpoints that take deliveries from other systems — the
// webhooks PutWebhook hands out, and connections' webhooks for Git servers — share: reading a
// body within a limit, and answering and logging a delivery's outcome, always as JSON
// {"message": "…"}, never logging the body or a secret.
package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
)

// ReadBody reads a request's body up to limit bytes. A body over the limit is refused before it
// is read when its Content-Length says so: status is then 413, else 400 for a body that cannot
// be read.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, status int, err error) {
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("a body of %d bytes is over the limit of %d", r.ContentLength, limit)
	}
	body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the body is over the limit of %d bytes", limit)
	}
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("read the body: %w", err)
	}
	return body, 0, nil
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
