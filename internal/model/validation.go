package model

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The validators in validate_gen.go report failures the way AWS does, one sentence per failure:
//
//	Value 'bad name!' at 'pipeline.name' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\-_]+
//
// Paths name members as the wire does, lists by 1-based index ("stages.2.member.name").
//
// Whatever the input, a message stays short: it echoes at most maxShown characters of a value
// (or of a map key in a path), saying how long the value is, and lists at most maxListed
// failures, counting them all. AWS echoes values whole, as far as public sources show; Sluice
// cuts them so that a request's answer, and the memory it takes, do not grow with its values.

// stringRule holds the constraints of a string shape.
type stringRule struct {
	min, max       int
	hasMin, hasMax bool
	pattern        *regexp.Regexp
	patternText    string
	enum           []string
	sensitive      bool
}

// intRule holds the bounds of an integer shape, or the size bounds of a list or map.
type intRule struct {
	min, max       int
	hasMin, hasMax bool
}

const (
	// maxShown is how many characters of a value, or of a map key in a path, a message echoes.
	maxShown = 256
	// maxListed is how many failures a message lists.
	maxListed = 100
)

// checker collects validation failures: the first maxListed, and how many there are.
type checker struct {
	failures []string
	count    int
}

// add records a failure, formatting its sentence only if it is to be listed.
func (c *checker) add(format string, args ...any) {
	c.count++
	if len(c.failures) < maxListed {
		c.failures = append(c.failures, fmt.Sprintf(format, args...))
	}
}

func (c *checker) missing(path string) {
	c.add("Value null at '%s' failed to satisfy constraint: Member must not be null", path)
}

func (c *checker) fail(value *string, path, constraint string) {
	if value == nil {
		c.add("Value at '%s' failed to satisfy constraint: %s", path, constraint)
		return
	}
	if n := utf8.RuneCountInString(*value); n > maxShown {
		c.add("Value '%s' (the first %d of %d characters) at '%s' failed to satisfy constraint: %s", prefix(*value, maxShown), maxShown, n, path, constraint)
		return
	}
	c.add("Value '%s' at '%s' failed to satisfy constraint: %s", *value, path, constraint)
}

// prefix returns the first n characters of s.
func prefix(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

func (c *checker) checkString(path, s string, r *stringRule) {
	shown := &s
	if r.sensitive {
		shown = nil
	}
	for _, broken := range r.broken(s) {
		c.fail(shown, path, broken)
	}
}

// broken lists the constraints of r that s fails, in the order AWS reports them.
func (r *stringRule) broken(s string) []string {
	var out []string
	if r.pattern != nil && !r.pattern.MatchString(s) {
		out = append(out, "Member must satisfy regular expression pattern: "+r.patternText)
	}
	n := utf8.RuneCountInString(s)
	if r.hasMin && n < r.min {
		out = append(out, fmt.Sprintf("Member must have length greater than or equal to %d", r.min))
	}
	if r.hasMax && n > r.max {
		out = append(out, fmt.Sprintf("Member must have length less than or equal to %d", r.max))
	}
	if len(r.enum) > 0 && !slices.Contains(r.enum, s) {
		out = append(out, "Member must satisfy enum value set: ["+strings.Join(r.enum, ", ")+"]")
	}
	return out
}

// all lists every constraint of r, as AWS names them when a map's keys or values break any.
func (r *stringRule) all() string {
	var out []string
	if r.hasMax {
		out = append(out, fmt.Sprintf("Member must have length less than or equal to %d", r.max))
	}
	if r.hasMin {
		out = append(out, fmt.Sprintf("Member must have length greater than or equal to %d", r.min))
	}
	if r.pattern != nil {
		out = append(out, "Member must satisfy regular expression pattern: "+r.patternText)
	}
	if len(r.enum) > 0 {
		out = append(out, "Member must satisfy enum value set: ["+strings.Join(r.enum, ", ")+"]")
	}
	return "[" + strings.Join(out, ", ") + "]"
}

func (c *checker) checkInt(path string, n int, r *intRule) {
	shown := strconv.Itoa(n)
	if r.hasMin && n < r.min {
		c.fail(&shown, path, fmt.Sprintf("Member must have value greater than or equal to %d", r.min))
	}
	if r.hasMax && n > r.max {
		c.fail(&shown, path, fmt.Sprintf("Member must have value less than or equal to %d", r.max))
	}
}

// checkSize checks the number of elements of a list or entries of a map.
func (c *checker) checkSize(path string, n int, r intRule) {
	if r.hasMin && n < r.min {
		c.fail(nil, path, fmt.Sprintf("Member must have length greater than or equal to %d", r.min))
	}
	if r.hasMax && n > r.max {
		c.fail(nil, path, fmt.Sprintf("Member must have length less than or equal to %d", r.max))
	}
}

func checkMapKeys[V any](c *checker, path string, m map[string]V, keyRule *stringRule) {
	for k := range m {
		if len(keyRule.broken(k)) > 0 {
			c.fail(nil, path, "Map keys must satisfy constraint: "+keyRule.all())
			return
		}
	}
}

func checkStringMap[S ~string](c *checker, path string, m map[string]S, keyRule, valueRule *stringRule) {
	if keyRule != nil {
		checkMapKeys(c, path, m, keyRule)
	}
	if valueRule == nil {
		return
	}
	for _, v := range m {
		if len(valueRule.broken(string(v))) > 0 {
			c.fail(nil, path, "Map value must satisfy constraint: "+valueRule.all())
			return
		}
	}
}

func (c *checker) err() error {
	switch c.count {
	case 0:
		return nil
	case 1:
		return newError("ValidationException", "1 validation error detected: %s", c.failures[0])
	}
	listed := strings.Join(c.failures, "; ")
	if unlisted := c.count - len(c.failures); unlisted > 0 {
		listed += fmt.Sprintf("; and %d more, not listed", unlisted)
	}
	return newError("ValidationException", "%d validation errors detected: %s", c.count, listed)
}

// ErrNull reports a member that the operation needs but the model leaves optional, in the words the
// validators use for a required one.
func ErrNull(path string) error {
	c := checker{}
	c.missing(path)
	return c.err()
}

func memberPath(parent, member string) string {
	if parent == "" {
		return member
	}
	return parent + "." + member
}

func elemPath(list string, i int) string {
	return list + "." + strconv.Itoa(i+1) + ".member"
}

// entryPath names a map's entry by its key, whose first maxShown characters it shows.
func entryPath(m, key string) string {
	if shown := prefix(key, maxShown); len(shown) < len(key) {
		key = shown + "..."
	}
	return m + "." + key + ".member"
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func stringValues[S ~string](values []S) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}
