package runners

import (
	"context"
	"os"
	"path/filepath"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/buildspec"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
)

// commands is the Commands action: its commands run as the build phase of a buildspec on its
// input artifacts, its outputVariables exported and its output artifacts' files collected.
type commands struct{ *builder }

func (c commands) run(ctx context.Context, j *job) executor.Result {
	action := j.run.Action
	return c.runCommands(ctx, j, commandRun{
		kind: "Commands action", name: *action.Name, commands: action.Commands,
		outputVariables: action.OutputVariables, outputArtifacts: action.OutputArtifacts,
	})
}

// commandRun is a list of commands to run the way the Commands action runs them: a Commands
// action's or a Commands rule's.
type commandRun struct {
	// kind and name name what the commands belong to, for messages and the build id.
	kind, name      string
	commands        []string
	outputVariables []string
	outputArtifacts []model.OutputArtifact
}

// runCommands runs c.commands as the build phase of a buildspec, in the builder's sandbox, on the
// job's input artifacts (the first is the one the build starts in; without any, it starts in an
// empty directory), exporting c.outputVariables and collecting c.outputArtifacts' files.
func (b *builder) runCommands(ctx context.Context, j *job, c commandRun) executor.Result {
	if len(c.commands) == 0 {
		return failed("The " + c.kind + " has no commands")
	}
	sources, err := b.fetchSources(ctx, j)
	if err != nil {
		return failedErr(err)
	}
	primary := ""
	if len(j.data.InputArtifacts) > 0 {
		primary = *j.data.InputArtifacts[0].Name
	} else {
		dir := filepath.Join(j.work, sourcesDir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return failedErr(err)
		}
		sources[primary] = dir
	}
	spec := &buildspec.Spec{
		Version:           "0.2",
		Phases:            map[string]*buildspec.Phase{buildspec.Build: {Commands: c.commands, OnFailure: buildspec.Abort}},
		ExportedVariables: c.outputVariables,
	}
	outputs := map[string]*buildspec.Artifacts{}
	for _, out := range c.outputArtifacts {
		files := out.Files
		if len(files) == 0 {
			files = []string{"**/*"}
		}
		outputs[*out.Name] = &buildspec.Artifacts{Files: files}
	}
	return b.run(ctx, j, build{
		spec: spec, sources: sources, primary: primary, timeout: b.cfg.BuildTimeout,
		buildID: "commands-" + c.name + ":" + uuid.NewString(), artifacts: outputs,
	})
}
