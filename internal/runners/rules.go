package runners

import "github.com/sluicehq/sluice/internal/executor"

// ruleName is the name of the rule a job runs, as its job data names it (the pipeline context's
// action), or as its declaration does.
func ruleName(j *job) string {
	if pc := j.data.PipelineContext; pc != nil && pc.Action != nil && pc.Action.Name != nil {
		return *pc.Action.Name
	}
	if j.run.Rule != nil && j.run.Rule.Name != nil {
		return *j.run.Rule.Name
	}
	return ""
}

// ruleRegion is the region the rule a job runs declares, or def if it declares none.
func ruleRegion(j *job, def string) string {
	if j.run.Rule != nil && j.run.Rule.Region != nil && *j.run.Rule.Region != "" {
		return *j.run.Rule.Region
	}
	return def
}

// ruleConfig is the configuration of the rule a job runs, variable references resolved.
func ruleConfig(j *job) map[string]string {
	if j.data.ActionConfiguration == nil {
		return nil
	}
	return j.data.ActionConfiguration.Configuration
}

// ruleResult is res as a rule's result: a rule has no outputs, so whatever variables or revision
// the run produced are dropped.
func ruleResult(res executor.Result) executor.Result {
	res.OutputVariables, res.Revision = nil, nil
	return res
}
