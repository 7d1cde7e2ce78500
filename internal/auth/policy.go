package auth

import (
	"fmt"
	"strings"
)

// Effects of a statement.
const (
	Allow = "Allow"
	Deny  = "Deny"
)

// Statement is one statement of a user's IAM-style policy: it allows or denies the actions that
// match one of its action patterns on the resources that match one of its resource patterns.
// Patterns use IAM's wildcards: * for any run of characters, ? for one; actions match without
// regard to case, as IAM's do.
type Statement struct {
	Effect   string     `yaml:"effect" json:"effect"`
	Action   stringList `yaml:"action" json:"action"`
	Resource stringList `yaml:"resource" json:"resource"`
}

// AccessDenied refuses a request its principal's policy does not allow.
type AccessDenied struct {
	Principal, Action, Resource string
	// Explicit is true when a Deny statement refused it, false when no statement allowed it.
	Explicit bool
}

// Error says it as IAM does.
func (e *AccessDenied) Error() string {
	if e.Explicit {
		return fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s with an explicit deny in an identity-based policy",
			e.Principal, e.Action, e.Resource)
	}
	return fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action",
		e.Principal, e.Action, e.Resource, e.Action)
}

// Authorize says whether p may perform action (e.g. "codepipeline:GetPipeline") on every one of
// resources (ARNs), as IAM evaluates identity-based policies: an explicit Deny wins over any
// Allow, and what no statement allows is denied. A principal without statements, and an
// account's root, may do everything in its account. The error is an *AccessDenied naming the
// first resource refused.
func (p *Principal) Authorize(action string, resources ...string) error {
	if len(p.policy) == 0 {
		return nil
	}
	if len(resources) == 0 {
		// An action on no resource in particular is checked on "*", not allowed unchecked.
		resources = []string{"*"}
	}
	for _, resource := range resources {
		allowed := false
		for _, s := range p.policy {
			if !s.Action.matchesAction(action) || !s.Resource.matches(resource) {
				continue
			}
			if s.Effect == Deny {
				return &AccessDenied{Principal: p.ARN(), Action: action, Resource: resource, Explicit: true}
			}
			allowed = true
		}
		if !allowed {
			return &AccessDenied{Principal: p.ARN(), Action: action, Resource: resource}
		}
	}
	return nil
}

// stringList is a list of patterns that a policy may also write as one string, as IAM allows.
type stringList []string

// UnmarshalYAML reads one string or a list of them.
func (l *stringList) UnmarshalYAML(unmarshal func(any) error) error {
	var one string
	if err := unmarshal(&one); err == nil {
		*l = stringList{one}
		return nil
	}
	var many []string
	if err := unmarshal(&many); err != nil {
		return fmt.Errorf("expected a string or a list of strings")
	}
	*l = many
	return nil
}

func (l stringList) matchesAction(action string) bool {
	for _, pattern := range l {
		if wildcard(strings.ToLower(pattern), strings.ToLower(action)) {
			return true
		}
	}
	return false
}

func (l stringList) matches(s string) bool {
	for _, pattern := range l {
		if wildcard(pattern, s) {
			return true
		}
	}
	return false
}

// wildcard reports whether s matches pattern, where * matches any run of characters and ? any
// one. It backtracks only to the last *, so it takes time linear in the lengths.
func wildcard(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		// A * in the pattern is a wildcard even where s has a * too.
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
