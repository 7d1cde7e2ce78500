package runners

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/buildspec"
	"github.com/sluicehq/sluice/internal/executor"
)

// codeBuild is the CodeBuild build and test action, run locally: the buildspec of the project
// (a definition in the build projects directory, or buildspec.yml in the primary source) runs
// on the host, on the action's input artifacts.
type codeBuild struct{ *builder }

// project is the part of a CodeBuild project definition (the shape of CodeBuild's CreateProject
// input and of `aws codebuild batch-get-projects`) that local builds use.
type project struct {
	Source struct {
		Buildspec string `json:"buildspec"`
	} `json:"source"`
	Environment struct {
		EnvironmentVariables []environmentVariable `json:"environmentVariables"`
	} `json:"environment"`
	TimeoutInMinutes int `json:"timeoutInMinutes"`
}

// environmentVariable is an environment variable as CodeBuild and the action configuration's
// EnvironmentVariables write it.
type environmentVariable struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Type  string `json:"type"`
}

// plainVariables checks that variables are plain text, which is all local builds can resolve.
func plainVariables(vars []environmentVariable, where string) ([]buildspec.Variable, error) {
	out := make([]buildspec.Variable, 0, len(vars))
	for _, v := range vars {
		if v.Type != "" && v.Type != "PLAINTEXT" {
			return nil, fmt.Errorf("the environment variable %s of %s has type %s; Sluice's local builds resolve only PLAINTEXT variables", v.Name, where, v.Type)
		}
		if !variableName.MatchString(v.Name) {
			return nil, fmt.Errorf("the environment variable name %q of %s is not a shell variable name", v.Name, where)
		}
		out = append(out, buildspec.Variable{Name: v.Name, Value: v.Value})
	}
	return out, nil
}

// loadProject reads the definition of a project, if the build projects directory has one.
func (b *builder) loadProject(name string) (*project, error) {
	if b.cfg.BuildProjects == "" || name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return nil, nil
	}
	path := filepath.Join(b.cfg.BuildProjects, name+".json")
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the build project %s: %w", name, err)
	}
	var p project
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("the build project definition %s is not valid JSON: %w", path, err)
	}
	return &p, nil
}

func (c codeBuild) run(ctx context.Context, j *job) executor.Result {
	config := j.data.ActionConfiguration.Configuration
	name := config["ProjectName"]
	if strings.EqualFold(config["BatchEnabled"], "true") {
		return failed("Batch builds (BatchEnabled true) are not supported by Sluice's local CodeBuild: remove BatchEnabled or set it to false")
	}
	var actionVars []environmentVariable
	if raw := config["EnvironmentVariables"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &actionVars); err != nil {
			return failed(fmt.Sprintf("The action's EnvironmentVariables is not a JSON list of {name, value, type} objects: %v", err))
		}
	}
	env, err := plainVariables(actionVars, "the action's EnvironmentVariables")
	if err != nil {
		return failedErr(err)
	}
	proj, err := c.loadProject(name)
	if err != nil {
		return failedErr(err)
	}
	primary := config["PrimarySource"]
	if primary == "" {
		if len(j.data.InputArtifacts) != 1 {
			return failed("PrimarySource is required when the action has more than one input artifact: name the one that holds the buildspec")
		}
		primary = *j.data.InputArtifacts[0].Name
	}
	sources, err := c.fetchSources(ctx, j)
	if err != nil {
		return failedErr(err)
	}
	if _, ok := sources[primary]; !ok {
		return failed(fmt.Sprintf("PrimarySource %s is not an input artifact of the action", primary))
	}
	timeout := c.cfg.BuildTimeout
	specText, specName := "", "buildspec.yml"
	if proj != nil {
		projectVars, err := plainVariables(proj.Environment.EnvironmentVariables, "the project "+name)
		if err != nil {
			return failedErr(err)
		}
		env = append(projectVars, env...)
		if proj.TimeoutInMinutes > 0 {
			timeout = time.Duration(proj.TimeoutInMinutes) * time.Minute
		}
		if b := proj.Source.Buildspec; strings.Contains(b, "\n") {
			specText, specName = b, "the buildspec of the project "+name
		} else if b != "" {
			specName = b
		}
	}
	if specText == "" {
		if !isLocal(specName) {
			return failed(fmt.Sprintf("The buildspec path %q of the project %s leads out of the primary source artifact: use a relative path that stays inside it", specName, name))
		}
		raw, err := readInside(sources[primary], specName)
		if err != nil {
			return failed(fmt.Sprintf("The primary source artifact %s has no %s: add one, or define the build project %s with its buildspec (see the README's build projects)", primary, specName, name))
		}
		specText = string(raw)
	}
	spec, err := buildspec.Parse([]byte(specText))
	if err != nil {
		return failed(fmt.Sprintf("The buildspec %s is not valid: %v", specName, err))
	}
	outputs := map[string]*buildspec.Artifacts{}
	for i, out := range j.data.OutputArtifacts {
		switch {
		case spec.Secondary[*out.Name] != nil:
			outputs[*out.Name] = spec.Secondary[*out.Name]
		case i == 0:
			outputs[*out.Name] = spec.Artifacts
		}
	}
	return c.builder.run(ctx, j, build{
		spec: spec, sources: sources, primary: primary, env: env, timeout: timeout,
		buildID: name + ":" + uuid.NewString(), artifacts: outputs,
	})
}

// readInside reads the file at the slash-separated path rel under dir, never outside it.
func readInside(dir, rel string) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return fs.ReadFile(root.FS(), strings.TrimPrefix(filepath.ToSlash(rel), "./"))
}
