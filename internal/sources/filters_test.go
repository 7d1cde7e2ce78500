package sources

import (
	"testing"

	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/runners"
)

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		// '*' stays within a path component, '**' crosses them.
		{"main", "main", true},
		{"main", "mainline", false},
		{"*", "main", true},
		{"*", "feature/x", false},
		{"feature/*", "feature/x", true},
		{"feature/*", "feature/x/y", false},
		{"feature/*", "feature/", true},
		{"feature/**", "feature/x/y", true},
		{"feature/**", "feature", false},
		{"**", "a/b/c.txt", true},
		{"**/*.js", "common/lib/a.js", true},
		{"**/*.js", "a.js", false}, // as in Java: "**/" needs a '/'
		{"common/**/*.js", "common/x/a.js", true},
		{"common/**/*.js", "common/a.js", false},
		{"**.md", "docs/deep/README.md", true},
		{"*.java", "Main.java", true},
		{"*.java", "src/Main.java", false},
		{"*.*", "file.txt", true},
		{"*.*", "Makefile", false},
		// '?' is one character, never '/'.
		{"foo.?", "foo.c", true},
		{"foo.?", "foo.cc", false},
		{"v?", "v/", false},
		// Groups.
		{"*.{java,class}", "A.class", true},
		{"*.{java,class}", "A.go", false},
		{"release-{v0,v1}", "release-v1", true},
		{"{main,release/**}", "release/1/2", true},
		{"a,b", "a,b", true},
		{"x}", "x}", true},
		// Bracket expressions: sets, ranges, negation; '/' never.
		{"v[0-9]", "v7", true},
		{"v[0-9]", "vx", false},
		{"v[!0-9]", "vx", true},
		{"v[!0-9]", "v7", false},
		{"v[!0-9]", "v/", false},
		{"v[abc]", "vb", true},
		{"v[-a]", "v-", true},
		{"v[a-]", "v-", true},
		{"v[+-0]", "v.", true},
		{"v[+-0]", "v/", false},
		{"v[^a]", "v^", true},
		// Escapes and characters special to regular expressions.
		{`v\*`, "v*", true},
		{`v\*`, "vx", false},
		{"release.1", "releasex1", false},
		{"a+b", "a+b", true},
		{"(x)|y", "(x)|y", true},
		// A pattern that is no valid glob matches only its own text.
		{"a{b", "a{b", true},
		{"a{b", "ab", false},
		{"{a,{b}}", "a", false},
		{"[a", "a", false},
		{`a\`, "a", false},
		{"[a/b]", "/", false},
		{"[z-a]", "m", false},
		// Unicode is a character like any other.
		{"r?sum?", "résumé", true},
	} {
		if got := globMatch(tc.pattern, tc.name); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestFilterCriteria(t *testing.T) {
	branches := func(in, ex []string) *model.GitBranchFilterCriteria {
		return &model.GitBranchFilterCriteria{Includes: in, Excludes: ex}
	}
	for _, tc := range []struct {
		name   string
		c      *model.GitBranchFilterCriteria
		branch string
		want   bool
	}{
		{"included", branches([]string{"release/**"}, nil), "release/1.0", true},
		{"not included", branches([]string{"release/**"}, nil), "main", false},
		{"excludes win", branches([]string{"release/**"}, []string{"release/skip-*"}), "release/skip-this", false},
		{"excluded only", branches(nil, []string{"wip/**"}), "wip/x", false},
		{"excludes only let the rest in", branches(nil, []string{"wip/**"}), "main", true},
		{"one of several includes", branches([]string{"main", "dev"}, nil), "dev", true},
		{"no criteria", nil, "main", false},
	} {
		if got := branchMatches(tc.c, tc.branch); got != tc.want {
			t.Errorf("%s: branchMatches(%+v, %q) = %v, want %v", tc.name, tc.c, tc.branch, got, tc.want)
		}
	}

	tags := &model.GitTagFilterCriteria{Includes: []string{"v*", "release-*"}, Excludes: []string{"*-rc*"}}
	for tag, want := range map[string]bool{"v1.0": true, "release-2": true, "v2.0-rc1": false, "nightly": false} {
		if got := tagMatches(tags, tag); got != want {
			t.Errorf("tagMatches(%q) = %v, want %v", tag, got, want)
		}
	}

	paths := &model.GitFilePathFilterCriteria{Includes: []string{"src/**", "go.mod"}, Excludes: []string{"**/*.md", "src/generated/**"}}
	for _, tc := range []struct {
		files []string
		want  bool
	}{
		{[]string{"src/main.go"}, true},
		{[]string{"go.mod"}, true},
		{[]string{"README.md", "src/README.md"}, false}, // excluded paths only
		{[]string{"src/generated/x.go", "docs/a.txt"}, false},
		{[]string{"docs/a.txt", "src/generated/x.go", "src/a.go"}, true}, // one included path is enough
		{nil, false}, // a change to no file
	} {
		if got := filePathsMatch(paths, tc.files); got != tc.want {
			t.Errorf("filePathsMatch(%q) = %v, want %v", tc.files, got, tc.want)
		}
	}
	if filePathsMatch(&model.GitFilePathFilterCriteria{Excludes: []string{"docs/**"}}, []string{"docs/a", "main.go"}) != true {
		t.Errorf("an excludes-only file path filter refused a change outside them")
	}
}

func TestPushFilterMatches(t *testing.T) {
	files := func(f ...string) changedFiles { return func() ([]string, bool) { return f, true } }
	asked := false
	noFiles := func() ([]string, bool) { asked = true; return nil, true }
	branchFilter := model.GitPushFilter{Branches: &model.GitBranchFilterCriteria{Includes: []string{"main"}}}
	withPaths := model.GitPushFilter{Branches: &model.GitBranchFilterCriteria{Includes: []string{"main"}},
		FilePaths: &model.GitFilePathFilterCriteria{Includes: []string{"app/**"}, Excludes: []string{"app/docs/**"}}}
	tagFilter := model.GitPushFilter{Tags: &model.GitTagFilterCriteria{Includes: []string{"v*"}, Excludes: []string{"v0*"}}}
	for _, tc := range []struct {
		name        string
		filter      model.GitPushFilter
		branch, tag string
		files       changedFiles
		want        bool
	}{
		{"branch filter, branch push", branchFilter, "main", "", noFiles, true},
		{"branch filter, other branch", branchFilter, "dev", "", noFiles, false},
		{"branch filter, tag push", branchFilter, "", "main", noFiles, false},
		{"tag filter, tag push", tagFilter, "", "v1.2", noFiles, true},
		{"tag filter, excluded tag", tagFilter, "", "v0.9", noFiles, false},
		{"tag filter, branch push", tagFilter, "v1", "", noFiles, false},
		{"file paths, included file", withPaths, "main", "", files("app/x.go", "README"), true},
		{"file paths, excluded files only", withPaths, "main", "", files("app/docs/a.md", "README"), false},
		{"file paths, other branch", withPaths, "dev", "", files("app/x.go"), false},
		{"file paths, files unknown", withPaths, "main", "", unknownFiles, true},
		{"empty branch criteria", model.GitPushFilter{Branches: &model.GitBranchFilterCriteria{}}, "main", "", noFiles, false},
		{"empty filter", model.GitPushFilter{}, "main", "", noFiles, false},
	} {
		if got := pushFilterMatches(tc.filter, tc.branch, tc.tag, tc.files); got != tc.want {
			t.Errorf("%s: pushFilterMatches = %v, want %v", tc.name, got, tc.want)
		}
	}
	if asked {
		t.Errorf("the changed files were read for a filter without file paths")
	}
}

func TestPushStarts(t *testing.T) {
	action := func(provider string, config map[string]string) *model.ActionDeclaration {
		return &model.ActionDeclaration{Name: new("Source"), ActionTypeId: &model.ActionTypeId{Category: new(model.ActionCategorySource),
			Owner: new(model.ActionOwnerAws), Provider: new(provider), Version: new("1")}, Configuration: config}
	}
	connection := func(config map[string]string) *model.ActionDeclaration {
		return action("CodeStarSourceConnection", config)
	}
	trigger := func(gc model.GitConfiguration) []model.PipelineTriggerDeclaration {
		gc.SourceActionName = new("Source")
		return []model.PipelineTriggerDeclaration{{ProviderType: new(model.PipelineTriggerProviderTypeCodeStarSourceConnection), GitConfiguration: &gc}}
	}
	tags := model.GitConfiguration{Push: []model.GitPushFilter{{Tags: &model.GitTagFilterCriteria{Includes: []string{"v*"}}}}}
	prOnly := model.GitConfiguration{PullRequest: []model.GitPullRequestFilter{{Branches: &model.GitBranchFilterCriteria{Includes: []string{"main"}}}}}
	twoFilters := model.GitConfiguration{Push: []model.GitPushFilter{
		{Tags: &model.GitTagFilterCriteria{Includes: []string{"v*"}}},
		{Branches: &model.GitBranchFilterCriteria{Includes: []string{"release/*"}}},
	}}
	otherAction := model.GitConfiguration{Push: tags.Push}
	config := map[string]string{"BranchName": "main", "FullRepositoryId": "acme/app"}
	for _, tc := range []struct {
		name        string
		action      *model.ActionDeclaration
		triggers    []model.PipelineTriggerDeclaration
		branch, tag string
		want        bool
	}{
		{"no trigger: its branch", connection(config), nil, "main", "", true},
		{"no trigger: another branch", connection(config), nil, "dev", "", false},
		{"no trigger: a tag", connection(config), nil, "", "v1", false},
		{"no trigger, DetectChanges false", connection(map[string]string{"BranchName": "main", "DetectChanges": "false"}), nil, "main", "", false},
		{"CodeCommit: its branch", action("CodeCommit", map[string]string{"BranchName": "main"}), nil, "main", "", true},
		{"tag trigger: a tag", connection(config), trigger(tags), "", "v1", true},
		{"tag trigger: its own branch no more", connection(config), trigger(tags), "main", "", false},
		{"pull request trigger: no push", connection(config), trigger(prOnly), "main", "", false},
		{"either filter: branch", connection(config), trigger(twoFilters), "release/2", "", true},
		{"either filter: tag", connection(config), trigger(twoFilters), "", "v2", true},
		{"either filter: neither", connection(config), trigger(twoFilters), "main", "", false},
	} {
		sa := executor.SourceAction{Action: tc.action, Declaration: &model.PipelineDeclaration{Triggers: tc.triggers}}
		src, _ := runners.WatchedRepository(*tc.action.ActionTypeId.Provider, tc.action.Configuration)
		if got := pushStarts(sa, src, tc.branch, tc.tag, unknownFiles); got != tc.want {
			t.Errorf("%s: pushStarts = %v, want %v", tc.name, got, tc.want)
		}
	}
	// A trigger of another source action leaves this one on its own branch.
	other := trigger(otherAction)
	other[0].GitConfiguration.SourceActionName = new("Other")
	sa := executor.SourceAction{Action: connection(config), Declaration: &model.PipelineDeclaration{Triggers: other}}
	if !pushStarts(sa, runners.GitSource{Repository: "acme/app", Branch: "main"}, "main", "", unknownFiles) {
		t.Errorf("a trigger of another action stopped a push to this action's branch")
	}
}
