package runners

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/archive"
	"github.com/sluicehq/sluice/internal/buildspec"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
)

// builder runs buildspecs, for the CodeBuild and Commands actions: each build in the run's fresh
// directory, in a sandbox (or as its own process group), killed whole when it times out, its job
// ends or the server dies.
type builder struct {
	cfg     *Config
	sandbox *sandbox
}

// sourcesDir is the directory of the work directory that holds the input artifacts.
const sourcesDir = "src"

// build is one buildspec to run.
type build struct {
	spec *buildspec.Spec
	// sources are the extracted input artifacts by name; primary names the one builds start in.
	sources map[string]string
	primary string
	// env holds the variables given outside the buildspec, which win over its own.
	env     []buildspec.Variable
	timeout time.Duration
	// buildID is CODEBUILD_BUILD_ID: project:uuid.
	buildID string
	// artifacts maps each output artifact to the buildspec section that makes it.
	artifacts map[string]*buildspec.Artifacts
}

// fetchSources extracts every input artifact of j into its own directory.
func (b *builder) fetchSources(ctx context.Context, j *job) (map[string]string, error) {
	dirs := map[string]string{}
	for _, in := range j.data.InputArtifacts {
		dir := filepath.Join(j.work, sourcesDir, *in.Name)
		if err := fetchInput(ctx, b.cfg.Artifacts, b.cfg.ArtifactLimits, j, in, dir); err != nil {
			return nil, err
		}
		dirs[*in.Name] = dir
	}
	return dirs, nil
}

var variableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// run runs a build and reports its result: output variables from the exported variables and
// output artifacts from the artifact sections.
func (b *builder) run(ctx context.Context, j *job, bd build) executor.Result {
	for _, name := range bd.spec.ExportedVariables {
		if !variableName.MatchString(name) {
			return failed(fmt.Sprintf("The exported variable name %q is not a shell variable name", name))
		}
	}
	for _, out := range j.data.OutputArtifacts {
		if section := bd.artifacts[*out.Name]; section != nil {
			if err := checkArtifactPaths(*out.Name, section); err != nil {
				return failedErr(err)
			}
		}
	}
	shell, err := buildShell(bd.spec.Shell)
	if err != nil {
		return failed(err.Error())
	}
	state := filepath.Join(j.work, stateDir)
	if err := os.MkdirAll(state, 0o755); err != nil {
		return failed(err.Error())
	}
	scriptPath := filepath.Join(state, "build.sh")
	if err := os.WriteFile(scriptPath, []byte(script(bd.spec, state)), 0o644); err != nil {
		return failed(err.Error())
	}
	env, err := b.environment(j, bd)
	if err != nil {
		return failed(fmt.Sprintf("The build's environment could not be prepared: %v", err))
	}
	buildCtx, cancel := context.WithTimeout(ctx, bd.timeout)
	defer cancel()
	cmd := b.sandbox.command(buildCtx, j.work, bd.sources[bd.primary], env, shell, scriptPath)
	tail := &tailBuffer{max: 2048}
	// One comparable writer for both streams, so that exec writes to it from one goroutine.
	out := io.MultiWriter(j.log, tail)
	cmd.Stdout, cmd.Stderr = out, out
	if b.sandbox.bwrap != "" {
		j.logf("Running the build %s with %s, in a sandbox", bd.buildID, shell)
	} else {
		j.logf("Running the build %s with %s, not isolated (--build-isolation none)", bd.buildID, shell)
	}
	runErr := runLocked(cmd)
	// What the build left is read through root: it may have put links to anything in the place
	// of any file.
	root, err := os.OpenRoot(j.work)
	if err != nil {
		return failed(fmt.Sprintf("The build's work directory could not be opened: %v", err))
	}
	defer root.Close()
	if runErr != nil && cmd.ProcessState != nil && cmd.ProcessState.Exited() && !errors.Is(buildCtx.Err(), context.DeadlineExceeded) {
		// The script exits 1 after recording the failing command.
		if res, ok := commandFailure(root, tail.String()); ok {
			return res
		}
	}
	switch {
	case errors.Is(buildCtx.Err(), context.DeadlineExceeded):
		return failed(fmt.Sprintf("The build timed out: it did not finish within %s, and was stopped\n\nLog tail:\n%s", timeoutText(ctx, bd.timeout), tail.String()))
	case ctx.Err() != nil:
		return failed("The build was stopped")
	case runErr != nil:
		return failed(fmt.Sprintf("The build could not run: %v\n\nLog tail:\n%s", runErr, tail.String()))
	}
	vars, err := readExported(root)
	if err != nil {
		return failed(fmt.Sprintf("Reading the exported variables failed: %v", err))
	}
	for _, out := range j.data.OutputArtifacts {
		section := bd.artifacts[*out.Name]
		if err := b.storeArtifact(ctx, j, root, bd, out, section); err != nil {
			return failedErr(err)
		}
	}
	return executor.Result{Succeeded: true, Summary: "Build " + bd.buildID + " succeeded", ExternalID: bd.buildID, OutputVariables: vars}
}

// timeoutText names the limit a build hit: its own timeout or the action's deadline.
func timeoutText(ctx context.Context, timeout time.Duration) string {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < timeout {
		return "the action's timeout"
	}
	return timeout.String()
}

// stateDir is the directory of the work directory that holds the build script and what it
// records: the failing command (failed) and the exported variables (exported).
const stateDir = ".sluice"

// maxStateFile bounds what Sluice reads of the files the build script records.
const maxStateFile = 1 << 20

// readState reads a file the build script recorded, name in stateDir, through root.
func readState(root *os.Root, name string) ([]byte, error) {
	f, _, err := openRegular(root, path.Join(stateDir, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	if err == nil && len(raw) > maxStateFile {
		err = fmt.Errorf("%s takes more than %d bytes", name, maxStateFile)
	}
	return raw, err
}

// commandFailure reads which command failed, as the build script recorded it.
func commandFailure(root *os.Root, tail string) (executor.Result, bool) {
	raw, err := readState(root, "failed")
	if err != nil {
		return executor.Result{}, false
	}
	phase, rest, _ := strings.Cut(string(raw), "\n")
	status, command, _ := strings.Cut(rest, "\n")
	return failed(fmt.Sprintf("Error while executing command: %s. Reason: exit status %s (phase %s)\n\nLog tail:\n%s",
		command, status, strings.ToUpper(phase), tail)), true
}

// buildShell picks the shell a buildspec asks for; bash by default where there is one.
func buildShell(want string) (string, error) {
	switch want {
	case "":
		if p, err := exec.LookPath("bash"); err == nil {
			return p, nil
		}
		return exec.LookPath("sh")
	case "bash", "/bin/bash", "sh", "/bin/sh":
		return exec.LookPath(want)
	}
	return "", fmt.Errorf("env/shell %s is not supported by Sluice's local builds: use bash or /bin/sh", want)
}

func (b *builder) environment(j *job, bd build) ([]string, error) {
	env, err := b.sandbox.environment(j.work)
	if err != nil {
		return nil, err
	}
	pc := j.data.PipelineContext
	env["CODEBUILD_CI"] = "true"
	env["CODEBUILD_BUILD_ID"] = bd.buildID
	env["CODEBUILD_BUILD_ARN"] = fmt.Sprintf("arn:aws:codebuild:%s:%s:build/%s", b.cfg.Region, b.cfg.AccountID, bd.buildID)
	env["CODEBUILD_BUILD_IMAGE"] = "sluice/local"
	env["CODEBUILD_INITIATOR"] = "codepipeline/" + *pc.PipelineName
	env["CODEBUILD_START_TIME"] = fmt.Sprint(time.Now().UnixMilli())
	env["CODEBUILD_SRC_DIR"] = bd.sources[bd.primary]
	env["AWS_REGION"], env["AWS_DEFAULT_REGION"] = b.cfg.Region, b.cfg.Region
	for _, in := range j.data.InputArtifacts {
		if *in.Name != bd.primary {
			env["CODEBUILD_SRC_DIR_"+*in.Name] = bd.sources[*in.Name]
			continue
		}
		if bucket, key, err := location(in); err == nil {
			env["CODEBUILD_SOURCE_VERSION"] = "arn:aws:s3:::" + bucket + "/" + key
		}
		if in.Revision != nil {
			env["CODEBUILD_RESOLVED_SOURCE_VERSION"] = *in.Revision
		}
	}
	for _, v := range append(slices.Clone(bd.spec.Variables), bd.env...) {
		env[v.Name] = v.Value
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out, nil
}

// quote makes s one word for a POSIX shell.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// script turns a buildspec into one shell script, so that the phases share a shell as they do
// in CodeBuild: a directory changed or a variable set in one is seen by the next. It records the
// first failing command in state/failed and the exported variables in state/exported.
func script(spec *buildspec.Spec, state string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "__sluice_state=%s\n", quote(state))
	s.WriteString(`__sluice_log() { printf '[Container] %s %s\n' "$(date -u '+%Y/%m/%d %H:%M:%S')" "$1"; }
__sluice_failed() {
  export CODEBUILD_BUILD_SUCCEEDING=0
  [ -e "$__sluice_state/failed" ] || printf '%s\n%s\n%s' "$__sluice_phase" "$1" "$__sluice_cmd" > "$__sluice_state/failed"
  __sluice_log "Command did not exit successfully $__sluice_cmd exit status $1"
}
`)
	// post_build is a function so that it can also run from the exit trap: a build command that
	// calls exit ends the shell, and post_build still follows a failed build phase.
	s.WriteString("__sluice_post_build() {\n:\n")
	if p := spec.Phases[buildspec.PostBuild]; p != nil {
		phaseSection(&s, buildspec.PostBuild, p)
	}
	s.WriteString(`}
trap '__sluice_status=$?; if [ "$__sluice_finished" != 1 ]; then __sluice_finished=1; __sluice_failed "$__sluice_status"; if [ "$__sluice_phase" = build ]; then __sluice_post_build; fi; fi' EXIT
export CODEBUILD_BUILD_SUCCEEDING=1
__sluice_skip=0
__sluice_skip_post=0
__sluice_finished=0
`)
	for _, name := range buildspec.Phases {
		if p := spec.Phases[name]; p != nil && name != buildspec.PostBuild {
			phaseSection(&s, name, p)
		}
	}
	s.WriteString("__sluice_post_build\n: > \"$__sluice_state/exported\"\n")
	for _, name := range spec.ExportedVariables {
		fmt.Fprintf(&s, "if [ -n \"${%s+x}\" ]; then printf '%%s=%%s\\0' %s \"$%s\" >> \"$__sluice_state/exported\"; fi\n", name, name, name)
	}
	s.WriteString("__sluice_finished=1\n[ -e \"$__sluice_state/failed\" ] && exit 1\nexit 0\n")
	return s.String()
}

// phaseSection writes the part of the script that runs one phase: its commands until one fails,
// then its finally commands, and what a failure means for the phases after it.
func phaseSection(s *strings.Builder, name string, p *buildspec.Phase) {
	skip := "__sluice_skip"
	if name == buildspec.PostBuild {
		// post_build runs after a failed build phase, not after a failed install or pre_build.
		skip = "__sluice_skip_post"
	}
	upper := strings.ToUpper(name)
	fmt.Fprintf(s, "if [ \"$%s\" = 0 ]; then\n__sluice_phase=%s\n__sluice_log 'Entering phase %s'\n__sluice_rc=0\nwhile :; do\n", skip, name, upper)
	for _, c := range p.Commands {
		fmt.Fprintf(s, "__sluice_cmd=%s\n__sluice_log \"Running command $__sluice_cmd\"\n%s\n__sluice_rc=$?; if [ \"$__sluice_rc\" != 0 ]; then __sluice_failed \"$__sluice_rc\"; break; fi\n", quote(c), c)
	}
	s.WriteString("break\ndone\n")
	for _, c := range p.Finally {
		fmt.Fprintf(s, "__sluice_cmd=%s\n__sluice_log \"Running command $__sluice_cmd\"\n%s\n__sluice_frc=$?; if [ \"$__sluice_frc\" != 0 ]; then __sluice_failed \"$__sluice_frc\"; __sluice_rc=$__sluice_frc; fi\n", quote(c), c)
	}
	fmt.Fprintf(s, "if [ \"$__sluice_rc\" = 0 ]; then __sluice_log 'Phase complete: %s State: SUCCEEDED'; else __sluice_log 'Phase complete: %s State: FAILED'", upper, upper)
	if p.OnFailure == buildspec.Abort {
		s.WriteString("; __sluice_skip=1")
		if name == buildspec.Install || name == buildspec.PreBuild {
			s.WriteString("; __sluice_skip_post=1")
		}
	}
	s.WriteString("; fi\nfi\n")
}

// readExported reads the exported variables, NUL-separated name=value pairs.
func readExported(root *os.Root) (map[string]string, error) {
	raw, err := readState(root, "exported")
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for item := range bytes.SplitSeq(raw, []byte{0}) {
		if name, value, ok := strings.Cut(string(item), "="); ok {
			vars[name] = value
		}
	}
	return vars, nil
}

// storeArtifact zips the files an artifact section names and stores them as out.
func (b *builder) storeArtifact(ctx context.Context, j *job, root *os.Root, bd build, out model.Artifact, section *buildspec.Artifacts) error {
	if section == nil {
		return fmt.Errorf("nothing says which files make the output artifact %s: add artifacts/files to the buildspec (or, with several output artifacts, a secondary-artifacts entry named %s)", *out.Name, *out.Name)
	}
	base := path.Join(sourcesDir, bd.primary, section.BaseDirectory)
	files, err := collect(ctx, root, base, section, b.cfg.ArtifactLimits, j.logf)
	if err != nil {
		return fmt.Errorf("collecting the files of the output artifact %s: %w", *out.Name, err)
	}
	if len(files) == 0 {
		return fmt.Errorf("no files match the artifact paths %s of the output artifact %s under %s", strings.Join(section.Files, ", "), *out.Name, cmp.Or(section.BaseDirectory, "the source directory"))
	}
	zipPath := filepath.Join(j.dir, *out.Name+".output.zip")
	w, err := archive.Create(zipPath)
	if err != nil {
		return err
	}
	if err := writeCollected(ctx, w, root, base, files, section.DiscardPaths); err != nil {
		w.Abort()
		return fmt.Errorf("zipping the files of the output artifact %s: %w", *out.Name, err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	return storeOutput(ctx, b.cfg.Artifacts, j, out, zipPath)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }
