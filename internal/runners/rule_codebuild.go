package runners

import (
	"context"

	"github.com/sluicehq/sluice/internal/executor"
)

// codeBuildRule is the CodeBuild rule, after the User Guide's rule-reference-CodeBuild: the
// project's buildspec runs as the CodeBuild action runs it (ProjectName, PrimarySource,
// EnvironmentVariables; the project definition or the primary source's buildspec.yml; the same
// builder, sandbox and log), and the rule succeeds when the build does. A rule has no outputs:
// the buildspec's artifacts are not collected and its exported variables are dropped.
type codeBuildRule struct{ codeBuild }

func (c codeBuildRule) run(ctx context.Context, j *job) executor.Result {
	return ruleResult(c.codeBuild.run(ctx, j))
}
