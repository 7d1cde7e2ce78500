package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeIsCurrent fails when the committed *_gen.go files differ from what the
// generator writes from this machine's botocore model: run `go generate ./internal/model`.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	path, err := findModel()
	if err != nil {
		t.Skipf("cannot check the generated code without the botocore model: %v", err)
	}
	files, err := generateFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("generator wrote %d files, want 3", len(files))
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatalf("%s: %v (run go generate ./internal/model)", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go generate ./internal/model", name)
		}
		if !bytes.HasPrefix(got, []byte("// Code generated ")) || !bytes.Contains(got, []byte("DO NOT EDIT.")) {
			t.Errorf("%s lacks the generated-code header", name)
		}
	}
}

// TestGeneratorCopiesNoDocumentation guards the rule that the model's prose stays out of the code.
func TestGeneratorCopiesNoDocumentation(t *testing.T) {
	path, err := findModel()
	if err != nil {
		t.Skipf("botocore model not found: %v", err)
	}
	files, err := generateFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range files {
		for _, marker := range []string{"<p>", "</p>", "<code>", "<note>"} {
			if bytes.Contains(src, []byte(marker)) {
				t.Errorf("%s contains documentation markup %q", name, marker)
			}
		}
	}
}

func TestEnumIdent(t *testing.T) {
	for in, want := range map[string]string{
		"ALL_ACTIONS":   "AllActions",
		"InProgress":    "InProgress",
		"V1":            "V1",
		"GITHUB_HMAC":   "GithubHmac",
		"Custom":        "Custom",
		"Rolled-back":   "RolledBack",
		"STOP_PIPELINE": "StopPipeline",
	} {
		if got := enumIdent(in); got != want {
			t.Errorf("enumIdent(%q) = %q, want %q", in, got, want)
		}
	}
}
