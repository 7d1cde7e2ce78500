package filter

import (
	"errors"
	"fmt"
	"testing"
)

func TestExpandAndPlaceholders(t *testing.T) {
	conf := map[string]string{"Branch": "main", "Owner": "acme", "Empty": ""}
	for _, c := range []struct{ in, want, missing string }{
		{"refs/heads/{Branch}", "refs/heads/main", ""},
		{"{Owner}/{Branch}/{Branch}", "acme/main/main", ""},
		{"no placeholders", "no placeholders", ""},
		{"x{Empty}y", "xy", ""},
		{"{Branch", "{Branch", ""},
		{"refs/heads/{Nope}", "", "Nope"},
	} {
		got, err := Expand(c.in, conf)
		var missing *MissingKeyError
		if c.missing != "" {
			if !errors.As(err, &missing) || missing.Key != c.missing {
				t.Errorf("Expand(%q) = %q, %v; want the missing key %s", c.in, got, err, c.missing)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if got := fmt.Sprint(Placeholders("{Owner}/x/{Branch}")); got != "[Owner Branch]" {
		t.Errorf("Placeholders = %s", got)
	}
}

func TestCompile(t *testing.T) {
	if _, err := Compile("ref"); !errors.Is(err, ErrNotAtRoot) {
		t.Errorf("Compile(ref) = %v", err)
	}
	if _, err := Compile("$.ref["); err == nil || errors.Is(err, ErrNotAtRoot) {
		t.Errorf("Compile($.ref[) = %v", err)
	}
	if _, err := Compile("$.commits[*].id"); err != nil {
		t.Error(err)
	}
}

func TestMatch(t *testing.T) {
	doc, err := Parse([]byte(`{"ref":"refs/heads/main","n":42,"f":1.5,"big":123456789012345678901234567890,"ok":true,"none":null,
		"commits":[{"id":"a"},{"id":"b"}],"obj":{"k":"v"}}`))
	if err != nil {
		t.Fatal(err)
	}
	conf := map[string]string{"Branch": "main"}
	for _, c := range []struct {
		path  string
		match *string
		want  bool
	}{
		{"$.ref", new("refs/heads/{Branch}"), true},
		{"$.ref", new("refs/heads/dev"), false},
		{"$.ref", new("refs/heads/main "), false},
		{"$.n", new("42"), true},
		{"$.f", new("1.5"), true},
		{"$.big", new("123456789012345678901234567890"), true},
		{"$.ok", new("true"), true},
		{"$.none", new("null"), true},
		{"$.commits[*].id", new("b"), true},
		{"$.commits[*].id", new("c"), false},
		{"$.obj", new("map[k:v]"), false}, // objects and arrays equal no string
		{"$.missing", new(""), false},
		{"$.ref", nil, true},
		{"$.missing", nil, false},
	} {
		got, reason, err := Match(doc, Rule{JSONPath: c.path, MatchEquals: c.match}, conf)
		if err != nil || got != c.want || (got == (reason != "")) {
			t.Errorf("Match(%s, %v) = %v %q %v; want %v", c.path, c.match, got, reason, err, c.want)
		}
	}
	var missing *MissingKeyError
	if _, _, err := Match(doc, Rule{JSONPath: "$.ref", MatchEquals: new("refs/heads/{Nope}")}, conf); !errors.As(err, &missing) {
		t.Errorf("a placeholder the action lacks: %v", err)
	}
	if _, _, err := Match(doc, Rule{JSONPath: "ref"}, conf); !errors.Is(err, ErrNotAtRoot) {
		t.Errorf("a path not at the root: %v", err)
	}
}
