package buildspec

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	spec, err := Parse([]byte(`
version: 0.2
env:
  shell: bash
  variables:
    GREETING: hello
    COUNT: 3
  exported-variables:
    - BUILT_AT
phases:
  install:
    runtime-versions:
      golang: 1.22
    commands:
      - echo install
  build:
    on-failure: CONTINUE
    commands:
      - |
        echo one
        echo two
      - "echo key: value"
    finally:
      - echo done
artifacts:
  files:
    - '**/*'
  base-directory: dist
  discard-paths: yes
  secondary-artifacts:
    Docs:
      files: [docs/*.md]
`))
	if err != nil {
		t.Fatal(err)
	}
	if spec.Shell != "bash" || len(spec.Variables) != 2 || spec.Variables[1] != (Variable{"COUNT", "3"}) {
		t.Fatalf("env %+v %+v", spec.Shell, spec.Variables)
	}
	if got := spec.Phases[Build]; got.OnFailure != Continue || len(got.Commands) != 2 || got.Commands[1] != "echo key: value" || got.Finally[0] != "echo done" {
		t.Fatalf("build phase %+v", got)
	}
	if spec.Phases[Install].OnFailure != Abort {
		t.Fatalf("on-failure defaults to %q", spec.Phases[Install].OnFailure)
	}
	if a := spec.Artifacts; a.BaseDirectory != "dist" || !a.DiscardPaths || a.Files[0] != "**/*" {
		t.Fatalf("artifacts %+v", a)
	}
	if d := spec.Secondary["Docs"]; d == nil || d.Files[0] != "docs/*.md" {
		t.Fatalf("secondary artifacts %+v", spec.Secondary)
	}
}

func TestParseErrors(t *testing.T) {
	for name, tc := range map[string]struct{ doc, want string }{
		"no version":       {"phases: {}", "has no version"},
		"old version":      {"version: 0.3", "version 0.3 is not supported"},
		"unknown phase":    {"version: 0.2\nphases:\n  deploy:\n    commands: [x]", "phases/deploy is not a build phase"},
		"unquoted colon":   {"version: 0.2\nphases:\n  build:\n    commands:\n      - echo a: b", "quote it"},
		"bad on-failure":   {"version: 0.2\nphases:\n  build:\n    on-failure: RETRY_FOREVER", "use ABORT or CONTINUE"},
		"parameter store":  {"version: 0.2\nenv:\n  parameter-store:\n    X: /a", "parameter-store"},
		"batch":            {"version: 0.2\nbatch:\n  fast-fail: true", "batch builds"},
		"not yaml":         {"version: [", "not valid YAML"},
		"empty secondary":  {"version: 0.2\nartifacts:\n  secondary-artifacts:\n    A: {}", "names no files"},
		"variables a list": {"version: 0.2\nenv:\n  variables: [a]", "must be a mapping"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("version: 0.2\nphases:\n  build:\n    commands: [make]\nartifacts:\n  files: ['**/*']"))
	f.Add([]byte("version: 0.2\nenv:\n  variables: {A: 1}\n  exported-variables: A"))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := Parse(data)
		if err == nil && spec.Version == "" {
			t.Fatal("a buildspec without a version was accepted")
		}
	})
}
