package main

import (
	"flag"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEListsEveryServeFlag keeps the README's table of `sluice serve` flags and the flags
// themselves from drifting apart: every flag has a row naming it and its environment variable,
// and every flag a row names exists.
func TestREADMEListsEveryServeFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "## `sluice serve`\n")
	if !ok {
		t.Fatal("the README has no section ## `sluice serve`")
	}
	table, _, _ = strings.Cut(table, "\n\n## ")
	flagName := regexp.MustCompile("`--([a-z0-9-]+)`")
	envName := regexp.MustCompile("`(SLUICE_[A-Z0-9_…]+)`")
	documented := map[string]string{} // flag → the environment variable its row names
	for line := range strings.SplitSeq(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(line, "| `--") {
			continue
		}
		env := envName.FindStringSubmatch(cells[2])
		for _, m := range flagName.FindAllStringSubmatch(cells[1], -1) {
			documented[m[1]] = ""
			if env != nil {
				documented[m[1]] = env[1]
			}
		}
	}
	fs, _ := newServeFlags(io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		env, ok := documented[f.Name]
		if !ok {
			t.Errorf("the README's table does not list --%s", f.Name)
			return
		}
		want := "SLUICE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		// A row may abbreviate variables it shares: SLUICE_ARTIFACTS_JOB_… stands for two.
		if prefix, short := strings.CutSuffix(env, "…"); !(env == want || short && strings.HasPrefix(want, prefix)) {
			t.Errorf("the README's row for --%s names %q, want %s", f.Name, env, want)
		}
		delete(documented, f.Name)
	})
	for name := range documented {
		t.Errorf("the README's table lists --%s, which sluice serve does not have", name)
	}
}
