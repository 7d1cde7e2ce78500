package model

import (
	"context"
	"sort"
)

// Operation is one operation of the service: its name, the top-level members its input requires,
// the errors the model lists for it, and how to hand a decoded input to a Service.
type Operation struct {
	Name     string
	Required []string
	Errors   []string
	// NewInput returns a new, empty input of the operation, ready to decode into.
	NewInput func() any
	call     func(ctx context.Context, s Service, in any) (any, error)
}

// Invoke validates in, which must come from NewInput, and calls the operation on s. The result is
// the operation's output, or nil for operations that have none.
func (op *Operation) Invoke(ctx context.Context, s Service, in any) (any, error) {
	if err := in.(interface{ Validate() error }).Validate(); err != nil {
		return nil, err
	}
	return op.call(ctx, s, in)
}

// LookupOperation returns the operation with the given name.
func LookupOperation(name string) (*Operation, bool) {
	op, ok := operations[name]
	return op, ok
}

// Operations returns every operation of the service, sorted by name.
func Operations() []*Operation {
	ops := make([]*Operation, 0, len(operations))
	for _, op := range operations {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Name < ops[j].Name })
	return ops
}
