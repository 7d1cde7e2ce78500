// Package filter holds the rules of a webhook's filters, shared by PutWebhook, which checks them,
// and the delivery endpoint, which applies them: a filter's jsonPath is a JSONPath expression from
// the document root, and its matchEquals may name configuration properties of the webhook's target
// action as {Key} placeholders. It is pure: no I/O, no HTTP.
package filter

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/ohler55/ojg/jp"
	"github.com/ohler55/ojg/oj"
)

// placeholder matches a {ConfigurationKey} reference in a filter's matchEquals.
var placeholder = regexp.MustCompile(`\{([^{}]*)\}`)

// ErrNotAtRoot: a jsonPath must start at the document root, '$'.
var ErrNotAtRoot = errors.New("a JSONPath must start at the document root, '$'")

// Compile parses a filter's jsonPath: ErrNotAtRoot unless it starts with '$', else the parser's
// error if it is not a JSONPath expression.
func Compile(path string) (jp.Expr, error) {
	if !strings.HasPrefix(path, "$") {
		return nil, ErrNotAtRoot
	}
	return jp.ParseString(path)
}

// Placeholders returns the configuration keys that matchEquals names as {Key}, in order.
func Placeholders(matchEquals string) []string {
	var keys []string
	for _, m := range placeholder.FindAllStringSubmatch(matchEquals, -1) {
		keys = append(keys, m[1])
	}
	return keys
}

// MissingKeyError: matchEquals names a configuration property the target action does not have.
type MissingKeyError struct{ Key string }

func (e *MissingKeyError) Error() string {
	return fmt.Sprintf("matchEquals refers to {%s}, which is not a configuration property of the target action", e.Key)
}

// Expand replaces the placeholders of matchEquals with the values of the target action's
// configuration: "refs/heads/{Branch}" with Branch "main" is "refs/heads/main". A key that
// configuration lacks is a *MissingKeyError.
func Expand(matchEquals string, configuration map[string]string) (string, error) {
	var missing error
	out := placeholder.ReplaceAllStringFunc(matchEquals, func(m string) string {
		key := m[1 : len(m)-1]
		v, ok := configuration[key]
		if !ok && missing == nil {
			missing = &MissingKeyError{Key: key}
		}
		return v
	})
	if missing != nil {
		return "", missing
	}
	return out, nil
}

// Rule is a webhook filter rule: JSONPath and, optionally, the value it must select.
type Rule struct {
	JSONPath    string
	MatchEquals *string
}

// Parse reads a delivery's body as a JSON document.
func Parse(body []byte) (any, error) {
	return oj.Parse(body)
}

// Match reports whether doc (from Parse) passes a rule, given the target action's configuration
// for its placeholders. The rule passes when its path selects a value equal to matchEquals with
// placeholders replaced: a string as it is, a number, true, false or null as JSON writes it; when
// the path selects several values, one equal is enough. A rule without matchEquals passes when its
// path selects anything. When it fails, reason says why, naming neither the body nor its values.
func Match(doc any, r Rule, configuration map[string]string) (ok bool, reason string, err error) {
	expr, err := Compile(r.JSONPath)
	if err != nil {
		return false, "", fmt.Errorf("jsonPath %q: %w", r.JSONPath, err)
	}
	selected := expr.Get(doc)
	if r.MatchEquals == nil {
		if len(selected) == 0 {
			return false, fmt.Sprintf("jsonPath %s selects nothing", r.JSONPath), nil
		}
		return true, "", nil
	}
	want, err := Expand(*r.MatchEquals, configuration)
	if err != nil {
		return false, "", err
	}
	for _, v := range selected {
		if s, ok := scalar(v); ok && s == want {
			return true, "", nil
		}
	}
	if len(selected) == 0 {
		return false, fmt.Sprintf("jsonPath %s selects nothing", r.JSONPath), nil
	}
	return false, fmt.Sprintf("jsonPath %s selects no value equal to %q", r.JSONPath, *r.MatchEquals), nil
}

// scalar is a selected value as matchEquals is compared with it; objects and arrays have none.
func scalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case int64:
		return strconv.FormatInt(v, 10), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	case nil:
		return "null", true
	}
	return "", false
}
