package executor

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
)

// ruleRun is one run of a rule of a stage condition. Rules run as jobs of type
// RuleTypeKey(provider, version), served by the server's own runners.
type ruleRun struct {
	ID          string        `json:"id"`
	Stage       string        `json:"stage"`
	Kind        engine.Kind   `json:"kind"`
	Name        string        `json:"name"`
	Status      engine.Status `json:"status"`
	Summary     string        `json:"summary,omitempty"`
	Started     time.Time     `json:"started"`
	Changed     time.Time     `json:"changed"`
	Deadline    time.Time     `json:"deadline,omitzero"`
	JobID       string        `json:"jobId,omitempty"`
	ExternalID  string        `json:"externalId,omitempty"`
	ExternalURL string        `json:"externalUrl,omitempty"`
}

// RuleTypeKey is the type key of the jobs that run a rule type's rules.
func RuleTypeKey(provider, version string) string {
	return TypeKey("Rule", string(model.RuleOwnerAws), provider, version)
}

// ruleDeclaration finds the declaration of a rule run.
func (s *step) ruleDeclaration(r *run, rule engine.Rule) (*model.PipelineDeclaration, *model.RuleDeclaration, error) {
	decl, err := s.declarationOf(r)
	if err != nil {
		return nil, nil, err
	}
	if rd := findRule(&decl.Stages[rule.Stage], rule.Kind, rule.Name); rd != nil {
		return decl, rd, nil
	}
	return nil, nil, fmt.Errorf("pipeline %s version %d has no %s rule %s in stage %d", r.Pipeline, r.Version, rule.Kind, rule.Name, rule.Stage)
}

// declaredConditions returns the conditions a stage declares of the given kind.
func declaredConditions(stage *model.StageDeclaration, kind engine.Kind) []model.Condition {
	switch {
	case kind == engine.BeforeEntry && stage.BeforeEntry != nil:
		return stage.BeforeEntry.Conditions
	case kind == engine.OnSuccess && stage.OnSuccess != nil:
		return stage.OnSuccess.Conditions
	case kind == engine.OnFailure && stage.OnFailure != nil:
		return stage.OnFailure.Conditions
	}
	return nil
}

// findRule returns the rule of a stage's condition of the given kind.
func findRule(stage *model.StageDeclaration, kind engine.Kind, name string) *model.RuleDeclaration {
	conds := declaredConditions(stage, kind)
	for i := range conds {
		for j := range conds[i].Rules {
			if *conds[i].Rules[j].Name == name {
				return &conds[i].Rules[j]
			}
		}
	}
	return nil
}

// startRule records the start of a rule run and queues its job, or fails it at once when it
// cannot run.
func (s *step) startRule(execID string, rule engine.Rule) ([]engine.Event, error) {
	r := s.st.Runs[execID]
	decl, rd, err := s.ruleDeclaration(r, rule)
	if err != nil {
		return nil, err
	}
	stageName := *decl.Stages[rule.Stage].Name
	rr := &ruleRun{ID: rule.ID, Stage: stageName, Kind: rule.Kind, Name: rule.Name, Status: engine.InProgress, Started: s.now, Changed: s.now}
	if r.Rules == nil {
		r.Rules = map[string]*ruleRun{}
	}
	r.Rules[rule.ID] = rr
	l := s.latest(stageName, execID)
	if c := l.Conditions[rule.Kind]; c == nil || c.Status != engine.InProgress {
		if l.Conditions == nil {
			l.Conditions = map[engine.Kind]*conditionRun{}
		}
		l.Conditions[rule.Kind] = &conditionRun{Status: engine.InProgress, Changed: s.now, Rules: map[string]*ruleRun{}}
	}
	defer s.mirrorRule(execID, rr)

	id := rd.RuleTypeId
	input := &model.RuleExecutionInput{
		RuleTypeId:     id,
		Configuration:  rd.Configuration,
		RoleArn:        rd.RoleArn,
		Region:         rd.Region,
		InputArtifacts: inputDetails(r, rd.InputArtifacts),
	}
	if input.Configuration == nil {
		input.Configuration = map[string]string{}
	}
	if input.Region == nil {
		input.Region = new(s.x.cfg.Region)
	}
	detail := &model.RuleExecutionDetail{
		PipelineExecutionId: new(execID),
		RuleExecutionId:     new(rule.ID),
		PipelineVersion:     new(r.Version),
		StageName:           new(stageName),
		RuleName:            new(rule.Name),
		StartTime:           model.NewTimestamp(s.now),
		LastUpdateTime:      model.NewTimestamp(s.now),
		Status:              new(model.RuleExecutionStatusInProgress),
		Input:               input,
		Output:              &model.RuleExecutionOutput{},
	}
	resolved, resolveErr := s.resolve(execID, r, input.Configuration)
	if resolveErr == nil {
		input.ResolvedConfiguration = resolved
	}
	s.putRuleDoc(execID, rr, detail)
	if resolveErr != nil {
		return s.settleRule(execID, rule.ID, engine.Failed, resolveErr.Error(), nil)
	}
	key := RuleTypeKey(*id.Provider, *id.Version)
	if !s.x.cfg.LocalProviders[key] {
		return s.settleRule(execID, rule.ID, engine.Failed, fmt.Sprintf("Sluice has no runner for the rule provider %s", *id.Provider), nil)
	}
	job, failure, err := s.newRuleJob(execID, r, stageName, rd, rule, resolved)
	if err != nil {
		return nil, err
	}
	if failure != "" {
		return s.settleRule(execID, rule.ID, engine.Failed, failure, nil)
	}
	rr.JobID = job.ID
	if s.x.cfg.LogURL != nil {
		rr.ExternalURL = s.x.cfg.LogURL(rule.ID)
	}
	timeout := defaultActionTimeout
	if rd.TimeoutInMinutes != nil {
		timeout = time.Duration(*rd.TimeoutInMinutes) * time.Minute
	}
	rr.Deadline = s.now.Add(timeout)
	s.change.Jobs = append(s.change.Jobs, job)
	return nil, nil
}

// newRuleJob builds the job of a rule run: the rule's type, its resolved configuration and the
// locations of its input artifacts. A failure is a reason the rule cannot run.
func (s *step) newRuleJob(execID string, r *run, stage string, rd *model.RuleDeclaration, rule engine.Rule, config map[string]string) (job store.Job, failure string, err error) {
	id := rd.RuleTypeId
	typeID := &model.ActionTypeId{Category: new(model.ActionCategory("Rule")), Owner: new(model.ActionOwner(model.RuleOwnerAws)), Provider: id.Provider, Version: id.Version}
	data, failure := s.jobData(execID, r, stage, rule.Name, rule.ID, typeID, config, rd.InputArtifacts)
	if failure != "" {
		return job, failure, nil
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return job, "", err
	}
	return store.Job{
		ID: newID(), ActionExecutionID: rule.ID, ExecutionID: execID, Pipeline: r.Pipeline,
		TypeKey: RuleTypeKey(*id.Provider, *id.Version), Status: jobQueued, Data: raw, Created: s.now, Updated: s.now,
	}, "", nil
}

// findRuleRun returns a rule run of an active execution by its id.
func (s *step) findRuleRun(ruleID string) (execID string, rr *ruleRun) {
	for id, r := range s.st.Runs {
		if rr := r.Rules[ruleID]; rr != nil {
			return id, rr
		}
	}
	return "", nil
}

// settleRule records a rule run's end and returns what the engine makes of it.
func (s *step) settleRule(execID, ruleID string, status engine.Status, summary string, result *model.RuleExecutionResult) ([]engine.Event, error) {
	s.finishRule(execID, ruleID, status, summary, result)
	s.touched[execID] = true
	return s.st.Engine.RuleFinished(execID, ruleID, status == engine.Succeeded, newID)
}

// concludeRule settles a rule run and carries out what follows.
func (s *step) concludeRule(execID, ruleID string, status engine.Status, summary string, result *model.RuleExecutionResult) error {
	events, err := s.settleRule(execID, ruleID, status, summary, result)
	if err != nil {
		return err
	}
	return s.handle(events)
}

// abandonRule ends an abandoned rule run and its job.
func (s *step) abandonRule(execID string, rule engine.Rule) error {
	if _, rr := s.findRuleRun(rule.ID); rr != nil && rr.JobID != "" {
		if err := s.endJob(rr.JobID, jobAbandoned); err != nil {
			return err
		}
	}
	s.finishRule(execID, rule.ID, engine.Abandoned, "The rule was abandoned: its execution stopped, or its condition was overridden", nil)
	return nil
}

// finishRule records a rule run's end in its run and its record.
func (s *step) finishRule(execID, ruleID string, status engine.Status, summary string, result *model.RuleExecutionResult) {
	_, rr := s.findRuleRun(ruleID)
	if rr == nil {
		return
	}
	rr.Status, rr.Summary, rr.Changed = status, summary, s.now
	defer s.mirrorRule(execID, rr)
	detail, err := s.ruleDetail(ruleID)
	if err != nil {
		detail = &model.RuleExecutionDetail{RuleExecutionId: new(ruleID), PipelineExecutionId: new(execID), StageName: new(rr.Stage), RuleName: new(rr.Name)}
	}
	detail.Status = new(model.RuleExecutionStatus(status))
	detail.LastUpdateTime = model.NewTimestamp(s.now)
	if result == nil {
		result = &model.RuleExecutionResult{}
	}
	if summary != "" && result.ExternalExecutionSummary == nil {
		result.ExternalExecutionSummary = new(summary)
	}
	if rr.ExternalURL != "" && result.ExternalExecutionUrl == nil {
		result.ExternalExecutionUrl = new(rr.ExternalURL)
	}
	if status == engine.Failed && result.ErrorDetails == nil {
		result.ErrorDetails = &model.ErrorDetails{Code: new("RuleFailed"), Message: new(summary)}
	}
	detail.Output = &model.RuleExecutionOutput{ExecutionResult: result}
	s.putRuleDoc(execID, rr, detail)
}

// ruleDetail reads a rule run's record as this step last wrote it or, before that, as stored.
func (s *step) ruleDetail(ruleID string) (*model.RuleExecutionDetail, error) {
	return lastDoc[model.RuleExecutionDetail](s.change.Rules, func(r store.RuleExecution) (string, []byte) { return r.ID, r.Doc }, ruleID,
		func() ([]byte, error) { rec, err := s.cur.RuleExecution(ruleID); return rec.Doc, err })
}

// putRuleDoc writes a rule run's record.
func (s *step) putRuleDoc(execID string, rr *ruleRun, detail *model.RuleExecutionDetail) {
	doc, _ := json.Marshal(detail)
	s.change.Rules = append(s.change.Rules, store.RuleExecution{
		ID: rr.ID, ExecutionID: execID, Pipeline: s.pipeline, Stage: rr.Stage, Rule: rr.Name,
		Status: string(rr.Status), Doc: doc, Started: rr.Started, Updated: s.now,
	})
}

// mirrorRule copies a rule run into its stage's latest condition evaluation, if its execution is
// the stage's latest.
func (s *step) mirrorRule(execID string, rr *ruleRun) {
	l := s.st.Latest[rr.Stage]
	if l == nil || l.Execution != execID || l.Conditions[rr.Kind] == nil {
		return
	}
	copied := *rr
	l.Conditions[rr.Kind].Rules[rr.Name] = &copied
}

// conditionFinished records how a condition was decided in its stage's latest run.
func (s *step) conditionFinished(ev engine.ConditionFinished) {
	e := s.execution(ev.Execution, s.st.Engine.Forgotten)
	if e == nil {
		return
	}
	name := e.Plan[ev.Stage].Name
	l := s.st.Latest[name]
	if l == nil || l.Execution != ev.Execution {
		return
	}
	c := l.Conditions[ev.Kind]
	if c == nil {
		c = &conditionRun{Rules: map[string]*ruleRun{}}
		if l.Conditions == nil {
			l.Conditions = map[engine.Kind]*conditionRun{}
		}
		l.Conditions[ev.Kind] = c
	}
	c.Status, c.Changed = ev.Status, s.now
	switch ev.Status {
	case engine.Succeeded:
		c.Summary = "All rules succeeded"
	case engine.Overridden:
		c.Summary = "The condition was overridden"
	default:
		c.Summary = "A rule failed"
		for _, rr := range c.Rules {
			if rr.Status == engine.Failed {
				c.Summary = fmt.Sprintf("The rule %s failed: %s", rr.Name, rr.Summary)
			}
		}
	}
}

// stageRetried keeps a stage's retry counts in its latest run.
func (s *step) stageRetried(ev engine.StageRetried) {
	e := s.execution(ev.Execution, s.st.Engine.Forgotten)
	if e == nil {
		return
	}
	l := s.st.Latest[e.Plan[ev.Stage].Name]
	if l != nil && l.Execution == ev.Execution {
		retries := e.Retries[ev.Stage]
		l.Retries = &retries
	}
}
