package runners

import (
	"context"

	"github.com/sluicehq/sluice/internal/executor"
)

// commandsRule is the Commands rule, after the User Guide's rule-reference-Commands: the rule's
// commands (a field of its declaration, like the Commands action's) run exactly as the Commands
// action's do — the build phase of a buildspec, in the build sandbox, with the same log — on its
// input artifact (or in an empty directory when it has none), and the rule succeeds when every
// command exits 0. A rule has no outputs: no variables are exported and no files collected.
type commandsRule struct{ *builder }

func (c commandsRule) run(ctx context.Context, j *job) executor.Result {
	var cmds []string
	if j.run.Rule != nil {
		cmds = j.run.Rule.Commands
	}
	return ruleResult(c.runCommands(ctx, j, commandRun{kind: "Commands rule", name: ruleName(j), commands: cmds}))
}
