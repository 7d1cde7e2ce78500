// Package buildspec reads CodeBuild build specifications (buildspec.yml, version 0.2): the
// phases and their commands, environment variables, exported variables and artifacts. It only
// parses and checks; internal/runners runs them.
package buildspec

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Phase names, in the order they run.
const (
	Install   = "install"
	PreBuild  = "pre_build"
	Build     = "build"
	PostBuild = "post_build"
)

// Phases are the phase names in the order they run.
var Phases = []string{Install, PreBuild, Build, PostBuild}

// What a phase does when one of its commands fails.
const (
	Abort    = "ABORT"
	Continue = "CONTINUE"
)

// Spec is a build specification.
type Spec struct {
	Version string
	// Shell is the shell commands run in; empty means the default.
	Shell string
	// Variables are the plain-text environment variables, in the order written.
	Variables []Variable
	// ExportedVariables are the environment variables whose values at the end of the build
	// become the action's output variables.
	ExportedVariables []string
	Phases            map[string]*Phase
	// Artifacts is the primary artifact; Secondary the others, by artifact identifier.
	Artifacts *Artifacts
	Secondary map[string]*Artifacts
}

// Variable is an environment variable.
type Variable struct{ Name, Value string }

// Phase is one phase of a build.
type Phase struct {
	Commands []string
	// Finally runs after Commands whether they failed or not.
	Finally   []string
	OnFailure string
}

// Artifacts says which files of the build make an artifact.
type Artifacts struct {
	Files         []string
	ExcludePaths  []string
	BaseDirectory string
	DiscardPaths  bool
}

type envSection struct {
	Shell             yaml.Node `yaml:"shell"`
	Variables         yaml.Node `yaml:"variables"`
	ParameterStore    yaml.Node `yaml:"parameter-store"`
	SecretsManager    yaml.Node `yaml:"secrets-manager"`
	ExportedVariables yaml.Node `yaml:"exported-variables"`
}

type document struct {
	Version   yaml.Node            `yaml:"version"`
	Env       envSection           `yaml:"env"`
	Phases    map[string]yaml.Node `yaml:"phases"`
	Artifacts yaml.Node            `yaml:"artifacts"`
	Batch     yaml.Node            `yaml:"batch"`
}

// Parse reads and checks a buildspec.
func Parse(data []byte) (*Spec, error) {
	var doc document
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("the buildspec is not valid YAML: %w", err)
	}
	spec := &Spec{Phases: map[string]*Phase{}}
	var err error
	if spec.Version, err = scalar(&doc.Version, "version"); err != nil {
		return nil, err
	}
	switch spec.Version {
	case "0.2", "0.1":
	case "":
		return nil, errors.New("the buildspec has no version: set version: 0.2")
	default:
		return nil, fmt.Errorf("buildspec version %s is not supported: use version 0.2", spec.Version)
	}
	if doc.Env.ParameterStore.Kind != 0 || doc.Env.SecretsManager.Kind != 0 {
		return nil, errors.New("env/parameter-store and env/secrets-manager are not supported by Sluice's local builds: use env/variables or the action's EnvironmentVariables")
	}
	if doc.Batch.Kind != 0 {
		return nil, errors.New("batch builds are not supported by Sluice's local builds: remove the batch section")
	}
	if spec.Shell, err = scalar(&doc.Env.Shell, "env/shell"); err != nil {
		return nil, err
	}
	if spec.Variables, err = variables(&doc.Env.Variables); err != nil {
		return nil, err
	}
	if spec.ExportedVariables, err = list(&doc.Env.ExportedVariables, "env/exported-variables"); err != nil {
		return nil, err
	}
	for name, node := range doc.Phases {
		if !slices.Contains(Phases, name) {
			return nil, fmt.Errorf("phases/%s is not a build phase: use install, pre_build, build or post_build", name)
		}
		if spec.Phases[name], err = phase(&node, "phases/"+name); err != nil {
			return nil, err
		}
	}
	if err := artifactSections(&doc.Artifacts, spec); err != nil {
		return nil, err
	}
	return spec, nil
}

// scalar reads a scalar of any YAML type as its text; an absent node is "".
func scalar(n *yaml.Node, path string) (string, error) {
	switch n.Kind {
	case 0:
		return "", nil
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "", nil
		}
		return n.Value, nil
	}
	return "", fmt.Errorf("%s (line %d) must be a single value", path, n.Line)
}

// list reads a sequence of scalars; a single scalar is a list of one.
func list(n *yaml.Node, path string) ([]string, error) {
	switch n.Kind {
	case 0:
		return nil, nil
	case yaml.ScalarNode:
		v, err := scalar(n, path)
		if v == "" || err != nil {
			return nil, err
		}
		return []string{v}, nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for i, item := range n.Content {
			if item.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("%s[%d] (line %d) must be a string: quote it if it contains ': '", path, i, item.Line)
			}
			out = append(out, item.Value)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s (line %d) must be a list", path, n.Line)
}

// mapping returns the key and value nodes of a mapping, in order.
func mapping(n *yaml.Node, path string) ([][2]*yaml.Node, error) {
	if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s (line %d) must be a mapping", path, n.Line)
	}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
	}
	return out, nil
}

func variables(n *yaml.Node) ([]Variable, error) {
	pairs, err := mapping(n, "env/variables")
	if err != nil {
		return nil, err
	}
	out := make([]Variable, 0, len(pairs))
	for _, kv := range pairs {
		v, err := scalar(kv[1], "env/variables/"+kv[0].Value)
		if err != nil {
			return nil, err
		}
		out = append(out, Variable{Name: kv[0].Value, Value: v})
	}
	return out, nil
}

func phase(n *yaml.Node, path string) (*Phase, error) {
	pairs, err := mapping(n, path)
	if err != nil {
		return nil, err
	}
	p := &Phase{OnFailure: Abort}
	for _, kv := range pairs {
		key, sub := kv[0].Value, path+"/"+kv[0].Value
		switch key {
		case "commands":
			p.Commands, err = list(kv[1], sub)
		case "finally":
			p.Finally, err = list(kv[1], sub)
		case "on-failure":
			var v string
			v, err = scalar(kv[1], sub)
			switch strings.ToUpper(v) {
			case Abort, Continue:
				p.OnFailure = strings.ToUpper(v)
			default:
				err = fmt.Errorf("%s is %q: use ABORT or CONTINUE", sub, v)
			}
		case "runtime-versions", "run-as":
			// Local builds run on the host's tools as the server's user.
		default:
			err = fmt.Errorf("%s is not a phase setting: use commands, finally or on-failure", sub)
		}
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

func artifactSections(n *yaml.Node, spec *Spec) error {
	pairs, err := mapping(n, "artifacts")
	if err != nil || len(pairs) == 0 {
		return err
	}
	primary, err := artifactSection(n, "artifacts")
	if err != nil {
		return err
	}
	if len(primary.Files) > 0 {
		spec.Artifacts = primary
	}
	for _, kv := range pairs {
		if kv[0].Value != "secondary-artifacts" {
			continue
		}
		secondary, err := mapping(kv[1], "artifacts/secondary-artifacts")
		if err != nil {
			return err
		}
		spec.Secondary = map[string]*Artifacts{}
		for _, s := range secondary {
			a, err := artifactSection(s[1], "artifacts/secondary-artifacts/"+s[0].Value)
			if err != nil {
				return err
			}
			if len(a.Files) == 0 {
				return fmt.Errorf("artifacts/secondary-artifacts/%s names no files", s[0].Value)
			}
			spec.Secondary[s[0].Value] = a
		}
	}
	return nil
}

func artifactSection(n *yaml.Node, path string) (*Artifacts, error) {
	pairs, err := mapping(n, path)
	if err != nil {
		return nil, err
	}
	a := &Artifacts{}
	for _, kv := range pairs {
		key, sub := kv[0].Value, path+"/"+kv[0].Value
		switch key {
		case "files":
			a.Files, err = list(kv[1], sub)
		case "exclude-paths":
			a.ExcludePaths, err = list(kv[1], sub)
		case "base-directory":
			a.BaseDirectory, err = scalar(kv[1], sub)
		case "discard-paths":
			var v string
			v, err = scalar(kv[1], sub)
			a.DiscardPaths = yes(v)
		}
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

// yes reads a YAML 1.1 style boolean, as buildspecs write them ("yes", "true").
func yes(v string) bool {
	switch strings.ToLower(v) {
	case "yes", "true", "on", "y":
		return true
	}
	return false
}
