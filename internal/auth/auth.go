// Package auth knows who is calling and what they may do: it verifies AWS Signature Version 4
// on requests (in the Authorization header or a presigned URL's query), reads the identities file
// that names accounts, users, their access keys and their IAM-style policies, and evaluates those
// policies. Every surface of the server (the CodePipeline API, the S3 endpoint, hosted git, logs)
// authenticates with this one package and answers its refusals in its own protocol's words.
package auth

import (
	"context"
	"fmt"
)

// Principal is who a request comes from: a user of an account, or, with authentication off, the
// server's one account with no restriction.
type Principal struct {
	// Account is the 12-digit account the principal belongs to.
	Account string
	// User is the user's name; empty for an account's root, which is what every request is with
	// authentication off.
	User string
	// AccessKeyID is the key the request was signed with; empty with authentication off.
	AccessKeyID string
	policy      []Statement
}

// ARN is the principal's ARN as IAM writes it in its messages.
func (p *Principal) ARN() string {
	if p.User == "" {
		return fmt.Sprintf("arn:aws:iam::%s:root", p.Account)
	}
	return fmt.Sprintf("arn:aws:iam::%s:user/%s", p.Account, p.User)
}

// Root is the principal of an account's root: allowed everything in the account. It is every
// request's principal when authentication is off.
func Root(account string) *Principal { return &Principal{Account: account} }

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal ctx carries, if any.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok
}
