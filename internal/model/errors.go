package model

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an error the service reports to its caller: an AWS error code, a message meant for a
// person, and the HTTP status it travels with.
type Error struct {
	Code    string
	Message string
	Status  int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func newError(code, format string, args ...any) *Error {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	return &Error{Code: code, Message: msg, Status: http.StatusBadRequest}
}

// NotImplemented reports that Sluice does not answer an operation yet. It travels as HTTP 501,
// which AWS clients do not retry.
func NotImplemented(operation string) *Error {
	return &Error{
		Code:    "NotImplementedException",
		Message: fmt.Sprintf("The operation %s is not yet available in Sluice.", operation),
		Status:  http.StatusNotImplemented,
	}
}

// ErrSerialization reports a request body that cannot be read as the operation's input.
func ErrSerialization(format string, args ...any) *Error {
	return newError("SerializationException", format, args...)
}

// ErrUnknownOperation reports an X-Amz-Target that names no operation of the service.
func ErrUnknownOperation(format string, args ...any) *Error {
	return newError("UnknownOperationException", format, args...)
}

// ErrInternalFailure reports a fault of the server's own; the caller may retry.
func ErrInternalFailure(format string, args ...any) *Error {
	e := newError("InternalFailure", format, args...)
	e.Status = http.StatusInternalServerError
	return e
}

// HasCode reports whether err is, or wraps, an *Error with the given code.
func HasCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
