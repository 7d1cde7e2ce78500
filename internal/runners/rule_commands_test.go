package runners

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/archive"
	"github.com/sluicehq/sluice/internal/artifacts"
	"github.com/sluicehq/sluice/internal/credentials"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/objects"
)

// localArtifacts is an artifact store of the kind the server keeps under its data directory.
func localArtifacts(t *testing.T) artifacts.Store {
	t.Helper()
	objs, err := objects.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	return artifacts.NewLocal(objs, credentials.NewIssuer([]byte("test-key-of-32-bytes-0123456789a")), "http://127.0.0.1:4566", "000000000000", "000000000000")
}

// putArtifact stores files, zipped, as the artifact name in the store's bucket "artifacts".
func putArtifact(t *testing.T, arts artifacts.Store, name string, files map[string]string) model.Artifact {
	t.Helper()
	ctx := context.Background()
	if err := arts.EnsureBucket(ctx, "artifacts"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for path, content := range files {
		w, err := zw.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, content)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	key := "my-pipeline/" + name + "/" + time.Now().Format("150405.000000000")
	if _, err := arts.Put(ctx, "artifacts", key, &buf, int64(buf.Len()), artifacts.Metadata{}); err != nil {
		t.Fatal(err)
	}
	return model.Artifact{Name: new(name), Location: &model.ArtifactLocation{Type: new(model.ArtifactLocationTypeS3),
		S3Location: &model.S3ArtifactLocation{BucketName: new("artifacts"), ObjectKey: new(key)}}}
}

// testBuilder is the builder the runners use, with the build sandbox when this host can make one
// (the test script installs bubblewrap), and without isolation otherwise.
func testBuilder(t *testing.T, arts artifacts.Store) *builder {
	t.Helper()
	cfg := &Config{Artifacts: arts, ArtifactLimits: archive.DefaultLimits, BuildTimeout: time.Minute, Region: "eu-west-1", AccountID: "111122223333"}
	area := t.TempDir()
	sb, err := newSandbox(context.Background(), IsolationSandbox, area)
	if err != nil {
		t.Logf("builds run without isolation here: %v", err)
		if sb, err = newSandbox(context.Background(), IsolationNone, area); err != nil {
			t.Fatal(err)
		}
	}
	return &builder{cfg: cfg, sandbox: sb}
}

// TestCommandsRule runs the Commands rule's commands on its input artifact, as the Commands
// action runs them: it succeeds when they all exit 0, and fails naming the one that did not.
func TestCommandsRule(t *testing.T) {
	arts := localArtifacts(t)
	b := testBuilder(t, arts)
	source := putArtifact(t, arts, "SourceArtifact", map[string]string{"index.html": "<p>hello</p>", "docs/a.md": "# a"})
	ctx := context.Background()

	j, log := ruleJob(t, "Commands", model.RuleDeclaration{Commands: []string{"test -f docs/a.md", "grep -q hello index.html", "echo checked the site"}}, source)
	res := commandsRule{b}.run(ctx, j)
	wantResult(t, res, true, "Build commands-MyRule:", "succeeded")
	if !strings.HasPrefix(res.ExternalID, "commands-MyRule:") {
		t.Errorf("external id %q, want the build id", res.ExternalID)
	}
	for _, want := range []string{"Downloaded the input artifact SourceArtifact", "Running command grep -q hello index.html", "checked the site"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}

	j, _ = ruleJob(t, "Commands", model.RuleDeclaration{Commands: []string{"grep -q hello index.html", "grep -q goodbye index.html", "echo never"}}, source)
	wantResult(t, commandsRule{b}.run(ctx, j), false, "Error while executing command: grep -q goodbye index.html. Reason: exit status 1")

	// Without an input artifact, the commands run in an empty directory.
	j, _ = ruleJob(t, "Commands", model.RuleDeclaration{Commands: []string{`test -z "$(ls -A)"`, `test "$PWD" = "$CODEBUILD_SRC_DIR"`}})
	wantResult(t, commandsRule{b}.run(ctx, j), true)

	j, _ = ruleJob(t, "Commands", model.RuleDeclaration{}, source)
	wantResult(t, commandsRule{b}.run(ctx, j), false, "The Commands rule has no commands")
}

// TestCommandsActionAfterSharingItsPath checks that the Commands action, whose path the rule now
// shares, still exports its output variables and collects its output artifact.
func TestCommandsActionAfterSharingItsPath(t *testing.T) {
	arts := localArtifacts(t)
	b := testBuilder(t, arts)
	source := putArtifact(t, arts, "SourceArtifact", map[string]string{"main.c": "int main(){}"})
	j, _ := ruleJob(t, "Commands", model.RuleDeclaration{}, source)
	out := model.Artifact{Name: new("BuildOutput"), Location: &model.ArtifactLocation{Type: new(model.ArtifactLocationTypeS3),
		S3Location: &model.S3ArtifactLocation{BucketName: new("artifacts"), ObjectKey: new("my-pipeline/BuildOutpu/out1")}}}
	j.data.OutputArtifacts = []model.Artifact{out}
	j.run.Rule = nil
	j.run.Action = &model.ActionDeclaration{Name: new("Compile"), Commands: []string{"mkdir dist", "cp main.c dist/", "VERSION=1.2.3"},
		OutputVariables: []string{"VERSION"}, OutputArtifacts: []model.OutputArtifact{{Name: new("BuildOutput"), Files: []string{"dist/**/*"}}}}
	res := commands{b}.run(context.Background(), j)
	wantResult(t, res, true, "Build commands-Compile:")
	if res.OutputVariables["VERSION"] != "1.2.3" {
		t.Errorf("output variables %v", res.OutputVariables)
	}
	body, _, err := arts.Get(context.Background(), "artifacts", "my-pipeline/BuildOutpu/out1", "")
	if err != nil {
		t.Fatalf("the output artifact was not stored: %v", err)
	}
	raw, _ := io.ReadAll(body)
	body.Close()
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil || len(zr.File) != 1 || filepath.ToSlash(zr.File[0].Name) != "dist/main.c" {
		t.Errorf("the output artifact holds %v (%v), want dist/main.c", zr, err)
	}
}

// TestCodeBuildRule runs a CodeBuild rule's buildspec as the CodeBuild action does: the rule
// succeeds when the build does, and keeps none of its outputs.
func TestCodeBuildRule(t *testing.T) {
	arts := localArtifacts(t)
	b := testBuilder(t, arts)
	ctx := context.Background()
	spec := "version: 0.2\nenv:\n  exported-variables: [RESULT]\nphases:\n  build:\n    commands:\n      - test -f app.txt\n      - RESULT=tested\nartifacts:\n  files: ['**/*']\n"
	source := putArtifact(t, arts, "SourceArtifact", map[string]string{"buildspec.yml": spec, "app.txt": "app"})
	j, log := ruleJob(t, "CodeBuild", model.RuleDeclaration{Configuration: map[string]string{"ProjectName": "integration-tests"}}, source)
	res := codeBuildRule{codeBuild{b}}.run(ctx, j)
	wantResult(t, res, true, "Build integration-tests:", "succeeded")
	if res.OutputVariables != nil {
		t.Errorf("a rule kept the build's variables %v", res.OutputVariables)
	}
	if !strings.Contains(log.String(), "Running command test -f app.txt") {
		t.Errorf("the log lacks the build:\n%s", log)
	}

	failing := putArtifact(t, arts, "SourceArtifact", map[string]string{"buildspec.yml": "version: 0.2\nphases:\n  build:\n    commands:\n      - test -f missing.txt\n"})
	j, _ = ruleJob(t, "CodeBuild", model.RuleDeclaration{Configuration: map[string]string{"ProjectName": "integration-tests"}}, failing)
	wantResult(t, codeBuildRule{codeBuild{b}}.run(ctx, j), false, "Error while executing command: test -f missing.txt")
}
