package api

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/catalog"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
)

// startExecution starts an execution of the latest version of a pipeline.
func (s *Service) startExecution(ctx context.Context, name string, trigger model.ExecutionTrigger, vars []model.PipelineVariable, revisions []model.SourceRevisionOverride, token string) (string, error) {
	rec, err := s.store.GetPipeline(ctx, name, 0)
	if errors.Is(err, store.ErrNotFound) {
		// StartPipelineExecution words this otherwise than GetPipeline does.
		return "", model.ErrPipelineNotFound("Pipeline with name %s does not exist in account %s.", name, s.cfg.AccountID)
	}
	if err != nil {
		return "", internal("start execution", err)
	}
	if len(vars) > 0 && rec.PipelineType != string(model.PipelineTypeV2) {
		return "", model.ErrValidation("Pipeline variables can only be given to pipelines of type V2; pipeline '%s' is of type %s", name, rec.PipelineType)
	}
	if len(revisions) > 0 {
		decl, err := declaration(rec)
		if err != nil {
			return "", err
		}
		if err := checkSourceRevisions(decl, revisions); err != nil {
			return "", err
		}
	}
	id, err := s.exec.Start(ctx, executor.Start{Pipeline: name, Version: rec.Version, Generation: rec.Generation, Trigger: trigger, Variables: vars, SourceRevisions: revisions, ClientToken: token})
	switch err := errStart(err); {
	case errors.Is(err, store.ErrConflict):
		return "", errBusy(name)
	case err != nil:
		return "", internal("start execution", err)
	}
	return id, nil
}

// errStart answers the variables an execution cannot start with as ValidationException.
func errStart(err error) error {
	var varErr *executor.VariableError
	if errors.As(err, &varErr) {
		return model.ErrValidation("%s", varErr.Message)
	}
	return err
}

// revisionTypes are the source revision overrides each source provider takes.
var revisionTypes = map[string][]model.SourceRevisionType{
	"S3":                       {model.SourceRevisionTypeS3ObjectVersionId, model.SourceRevisionTypeS3ObjectKey},
	"CodeCommit":               {model.SourceRevisionTypeCommitId},
	"CodeStarSourceConnection": {model.SourceRevisionTypeCommitId},
	"GitHub":                   {model.SourceRevisionTypeCommitId},
	"ECR":                      {model.SourceRevisionTypeImageDigest},
}

// checkSourceRevisions checks overrides against the pipeline's source actions.
func checkSourceRevisions(decl *model.PipelineDeclaration, overrides []model.SourceRevisionOverride) error {
	// An action takes one override, but for an S3 source's key and version, which go together.
	seen := map[string][]model.SourceRevisionType{}
	for _, o := range overrides {
		name := *o.ActionName
		if prior := seen[name]; len(prior) > 0 && (len(prior) > 1 || prior[0] == *o.RevisionType ||
			!slices.Contains(revisionTypes["S3"], prior[0]) || !slices.Contains(revisionTypes["S3"], *o.RevisionType)) {
			return model.ErrValidation("sourceRevisions names source action '%s' more than once", name)
		}
		seen[name] = append(seen[name], *o.RevisionType)
		i := slices.IndexFunc(decl.Stages[0].Actions, func(a model.ActionDeclaration) bool { return *a.Name == name })
		if i < 0 {
			return model.ErrValidation("sourceRevisions names '%s', which is not a source action of pipeline '%s'", name, *decl.Name)
		}
		a := decl.Stages[0].Actions[i]
		provider := *a.ActionTypeId.Provider
		if !slices.Contains(revisionTypes[provider], *o.RevisionType) {
			return model.ErrValidation("Source action '%s' (provider %s) does not take a revision override of type %s", name, provider, *o.RevisionType)
		}
		if *o.RevisionType == model.SourceRevisionTypeS3ObjectKey && !strings.EqualFold(a.Configuration["AllowOverrideForS3ObjectKey"], "true") {
			return model.ErrValidation("Source action '%s' does not allow its object key to be overridden: set its configuration AllowOverrideForS3ObjectKey to true", name)
		}
	}
	return nil
}

func (s *Service) StartPipelineExecution(ctx context.Context, in *model.StartPipelineExecutionInput) (*model.StartPipelineExecutionOutput, error) {
	token := ""
	if in.ClientRequestToken != nil {
		token = *in.ClientRequestToken
	}
	trigger := model.ExecutionTrigger{TriggerType: new(model.TriggerTypeStartPipelineExecution), TriggerDetail: new(s.caller(ctx))}
	id, err := s.startExecution(ctx, *in.Name, trigger, in.Variables, in.SourceRevisions, token)
	if err != nil {
		return nil, err
	}
	return &model.StartPipelineExecutionOutput{PipelineExecutionId: new(id)}, nil
}

// caller names who made a request, for trigger details and transition changes. Sluice does not
// authenticate callers yet, so every request is the account's root.
func (s *Service) caller(context.Context) string {
	return "arn:aws:iam::" + s.cfg.AccountID + ":root"
}

func (s *Service) executionDoc(ctx context.Context, pipeline, id string) (*executor.ExecutionDoc, error) {
	if _, err := s.store.GetPipeline(ctx, pipeline, 0); errors.Is(err, store.ErrNotFound) {
		return nil, s.errPipelineNotFound(pipeline)
	}
	rec, err := s.store.GetExecution(ctx, pipeline, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, model.ErrPipelineExecutionNotFound("Pipeline execution '%s' for pipeline '%s' was not found in account '%s'", id, pipeline, s.cfg.AccountID)
	}
	if err != nil {
		return nil, internal("get execution", err)
	}
	doc, err := executor.DecodeExecution(rec)
	if err != nil {
		return nil, internal("get execution", err)
	}
	return doc, nil
}

func (s *Service) GetPipelineExecution(ctx context.Context, in *model.GetPipelineExecutionInput) (*model.GetPipelineExecutionOutput, error) {
	doc, err := s.executionDoc(ctx, *in.PipelineName, *in.PipelineExecutionId)
	if err != nil {
		return nil, err
	}
	return &model.GetPipelineExecutionOutput{PipelineExecution: &doc.Execution}, nil
}

func (s *Service) ListPipelineExecutions(ctx context.Context, in *model.ListPipelineExecutionsInput) (*model.ListPipelineExecutionsOutput, error) {
	if _, err := s.store.GetPipeline(ctx, *in.PipelineName, 0); errors.Is(err, store.ErrNotFound) {
		return nil, s.errPipelineNotFound(*in.PipelineName)
	}
	size := 100
	if in.MaxResults != nil {
		size = *in.MaxResults
	}
	succeededIn := ""
	if in.Filter != nil && in.Filter.SucceededInStage != nil {
		succeededIn = *in.Filter.SucceededInStage.StageName
	}
	list := "ListPipelineExecutions:" + *in.PipelineName + ":" + succeededIn
	after, err := s.tokens.after(list, in.NextToken)
	if err != nil {
		return nil, err
	}
	before := int64(0)
	if after != "" {
		if before, err = strconv.ParseInt(after, 10, 64); err != nil {
			return nil, model.ErrInvalidNextToken("The nextToken is not valid; pass the nextToken of the previous page unchanged.")
		}
	}
	out := &model.ListPipelineExecutionsOutput{PipelineExecutionSummaries: []model.PipelineExecutionSummary{}}
	for {
		recs, err := s.store.ListExecutions(ctx, *in.PipelineName, before, size+1)
		if err != nil {
			return nil, internal("list executions", err)
		}
		for _, rec := range recs {
			doc, err := executor.DecodeExecution(rec)
			if err != nil {
				return nil, internal("list executions", err)
			}
			if succeededIn != "" && !slices.Contains(doc.Succeeded, succeededIn) {
				before = rec.Seq
				continue
			}
			if len(out.PipelineExecutionSummaries) == size {
				out.NextToken = s.tokens.next(list, strconv.FormatInt(before, 10))
				return out, nil
			}
			out.PipelineExecutionSummaries = append(out.PipelineExecutionSummaries, doc.Summary)
			before = rec.Seq
		}
		if len(recs) <= size {
			return out, nil
		}
	}
}

func (s *Service) StopPipelineExecution(ctx context.Context, in *model.StopPipelineExecutionInput) (*model.StopPipelineExecutionOutput, error) {
	doc, err := s.executionDoc(ctx, *in.PipelineName, *in.PipelineExecutionId)
	if err != nil {
		return nil, err
	}
	reason := ""
	if in.Reason != nil {
		reason = *in.Reason
	}
	abandon := in.Abandon != nil && *in.Abandon
	err = s.exec.Stop(ctx, *in.PipelineName, *in.PipelineExecutionId, abandon, reason)
	switch {
	case errors.Is(err, executor.ErrDuplicate):
		return nil, model.ErrDuplicatedStopRequest("Execution '%s' is already stopping; stop it with abandon to abandon its in-progress actions", *in.PipelineExecutionId)
	case errors.Is(err, executor.ErrNotStoppable):
		return nil, model.ErrPipelineExecutionNotStoppable("Execution '%s' is %s and cannot be stopped", *in.PipelineExecutionId, *doc.Execution.Status)
	case err != nil:
		return nil, internal("stop execution", err)
	}
	return &model.StopPipelineExecutionOutput{PipelineExecutionId: in.PipelineExecutionId}, nil
}

func (s *Service) RetryStageExecution(ctx context.Context, in *model.RetryStageExecutionInput) (*model.RetryStageExecutionOutput, error) {
	doc, err := s.executionDoc(ctx, *in.PipelineName, *in.PipelineExecutionId)
	if err != nil {
		return nil, err
	}
	version := 0
	if doc.Execution.PipelineVersion != nil {
		version = *doc.Execution.PipelineVersion
	}
	if err := s.stageExists(ctx, *in.PipelineName, version, *in.StageName); err != nil {
		return nil, err
	}
	failedOnly := *in.RetryMode == model.StageRetryModeFailedActions
	err = s.exec.Retry(ctx, *in.PipelineName, *in.PipelineExecutionId, *in.StageName, failedOnly)
	status := engine.Status(*doc.Execution.Status)
	switch {
	case errors.Is(err, executor.ErrNotLatest) && (status == engine.Failed || status == engine.Stopped):
		return nil, model.ErrNotLatestPipelineExecution("Execution '%s' is not the latest execution of stage '%s': a later execution has run the stage since", *in.PipelineExecutionId, *in.StageName)
	case errors.Is(err, executor.ErrNotLatest), errors.Is(err, executor.ErrNotRetryable):
		if !status.Done() {
			return nil, model.ErrStageNotRetryable("Stage '%s' of execution '%s' cannot be retried while the execution is %s", *in.StageName, *in.PipelineExecutionId, status)
		}
		return nil, model.ErrStageNotRetryable("Stage '%s' of execution '%s' cannot be retried: it contains no failed actions", *in.StageName, *in.PipelineExecutionId)
	case errors.Is(err, store.ErrConflict):
		return nil, errBusy(*in.PipelineName)
	case err != nil:
		return nil, internal("retry stage", err)
	}
	return &model.RetryStageExecutionOutput{PipelineExecutionId: in.PipelineExecutionId}, nil
}

// errBusy is ConflictException: the pipeline's executions changed under the request too often.
func errBusy(pipeline string) error {
	return model.ErrConflict("Pipeline '%s' is busy with other changes to its executions; try again", pipeline)
}

// stageExists answers StageNotFoundException unless the version of the pipeline (0: the latest)
// has the stage.
func (s *Service) stageExists(ctx context.Context, pipeline string, version int, stage string) error {
	rec, err := s.store.GetPipeline(ctx, pipeline, version)
	if errors.Is(err, store.ErrNotFound) {
		return s.errPipelineNotFound(pipeline)
	}
	if err != nil {
		return internal("look up stage", err)
	}
	decl, err := declaration(rec)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(decl.Stages, func(st model.StageDeclaration) bool { return *st.Name == stage }) {
		return errStageNotFound(pipeline, stage)
	}
	return nil
}

func errStageNotFound(pipeline, stage string) error {
	return model.ErrStageNotFound("Pipeline '%s' has no stage named '%s'", pipeline, stage)
}

func (s *Service) GetPipelineState(ctx context.Context, in *model.GetPipelineStateInput) (*model.GetPipelineStateOutput, error) {
	rec, err := s.store.GetPipeline(ctx, *in.Name, 0)
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.errPipelineNotFound(*in.Name)
	}
	if err != nil {
		return nil, internal("get pipeline state", err)
	}
	decl, err := declaration(rec)
	if err != nil {
		return nil, err
	}
	stages, err := s.exec.StageStates(ctx, *in.Name, decl)
	if err != nil {
		return nil, internal("get pipeline state", err)
	}
	if err := s.linkActions(ctx, decl, stages); err != nil {
		return nil, err
	}
	return &model.GetPipelineStateOutput{
		PipelineName: in.Name, PipelineVersion: new(rec.Version), StageStates: stages,
		Created: model.NewTimestamp(rec.Created), Updated: model.NewTimestamp(rec.Updated),
	}, nil
}

// linkActions gives each action state the links its type shows: the entity the action works on
// and, once it has one, its current revision.
func (s *Service) linkActions(ctx context.Context, decl *model.PipelineDeclaration, stages []model.StageState) error {
	for i, stage := range decl.Stages {
		for j, a := range stage.Actions {
			t, ok, err := s.exec.ActionType(ctx, a.ActionTypeId)
			if err != nil {
				return err
			}
			if !ok { // a custom type deleted since the pipeline was declared
				continue
			}
			region := s.cfg.Region
			if a.Region != nil {
				region = *a.Region
			}
			state := &stages[i].ActionStates[j]
			config := t.Mask(a.Configuration) // a link must not carry a secret
			if u := catalog.ExpandURL(t.EntityURL, region, config, ""); u != "" {
				state.EntityUrl = new(u)
			}
			if rev := state.CurrentRevision; rev != nil && rev.RevisionId != nil {
				if u := catalog.ExpandURL(t.RevisionURL, region, config, *rev.RevisionId); u != "" {
					state.RevisionUrl = new(u)
				}
			}
		}
	}
	return nil
}

func (s *Service) setTransition(ctx context.Context, pipeline, stage string, kind model.StageTransitionType, enabled bool, reason string) error {
	rec, err := s.store.GetPipeline(ctx, pipeline, 0)
	if errors.Is(err, store.ErrNotFound) {
		return s.errPipelineNotFound(pipeline)
	}
	if err != nil {
		return internal("change transition", err)
	}
	decl, err := declaration(rec)
	if err != nil {
		return err
	}
	idx := slices.IndexFunc(decl.Stages, func(st model.StageDeclaration) bool { return *st.Name == stage })
	if idx < 0 {
		return errStageNotFound(pipeline, stage)
	}
	if kind == model.StageTransitionTypeInbound && idx == 0 {
		return model.ErrValidation("Stage '%s' is the first stage of pipeline '%s' and has no inbound transition", stage, pipeline)
	}
	// A stage's outbound transition is the next stage's inbound one.
	if kind == model.StageTransitionTypeOutbound {
		if idx+1 == len(decl.Stages) {
			return model.ErrValidation("Stage '%s' is the last stage of pipeline '%s' and has no outbound transition", stage, pipeline)
		}
		stage = *decl.Stages[idx+1].Name
	}
	if err := s.exec.SetTransition(ctx, pipeline, stage, enabled, reason, s.caller(ctx)); err != nil {
		return internal("change transition", err)
	}
	return nil
}

func (s *Service) DisableStageTransition(ctx context.Context, in *model.DisableStageTransitionInput) error {
	return s.setTransition(ctx, *in.PipelineName, *in.StageName, *in.TransitionType, false, *in.Reason)
}

func (s *Service) EnableStageTransition(ctx context.Context, in *model.EnableStageTransitionInput) error {
	return s.setTransition(ctx, *in.PipelineName, *in.StageName, *in.TransitionType, true, "")
}

func (s *Service) PutApprovalResult(ctx context.Context, in *model.PutApprovalResultInput) (*model.PutApprovalResultOutput, error) {
	if _, err := s.store.GetPipeline(ctx, *in.PipelineName, 0); errors.Is(err, store.ErrNotFound) {
		return nil, s.errPipelineNotFound(*in.PipelineName)
	}
	summary := ""
	if in.Result.Summary != nil {
		summary = *in.Result.Summary
	}
	at, err := s.exec.Approve(ctx, *in.PipelineName, *in.StageName, *in.ActionName, *in.Token, *in.Result.Status == model.ApprovalStatusApproved, summary)
	switch {
	case errors.Is(err, executor.ErrStageNotFound):
		return nil, errStageNotFound(*in.PipelineName, *in.StageName)
	case errors.Is(err, executor.ErrActionNotFound):
		return nil, model.ErrActionNotFound("Stage '%s' of pipeline '%s' has no running action named '%s'", *in.StageName, *in.PipelineName, *in.ActionName)
	case errors.Is(err, executor.ErrInvalidApprovalToken):
		return nil, model.ErrInvalidApprovalToken("The token is not the approval token of action '%s' in stage '%s'", *in.ActionName, *in.StageName)
	case errors.Is(err, executor.ErrApprovalCompleted):
		return nil, model.ErrApprovalAlreadyCompleted("The approval of action '%s' in stage '%s' has already been answered", *in.ActionName, *in.StageName)
	case err != nil:
		return nil, internal("put approval result", err)
	}
	return &model.PutApprovalResultOutput{ApprovedAt: model.NewTimestamp(at)}, nil
}

func (s *Service) ListActionExecutions(ctx context.Context, in *model.ListActionExecutionsInput) (*model.ListActionExecutionsOutput, error) {
	if _, err := s.store.GetPipeline(ctx, *in.PipelineName, 0); errors.Is(err, store.ErrNotFound) {
		return nil, s.errPipelineNotFound(*in.PipelineName)
	}
	execID := ""
	if in.Filter != nil && in.Filter.PipelineExecutionId != nil {
		execID = *in.Filter.PipelineExecutionId
	}
	size := 100
	if in.MaxResults != nil {
		size = *in.MaxResults
	}
	recs, next, err := page(s.tokens, "ListActionExecutions:"+*in.PipelineName+":"+execID, in.NextToken, size, store.ActionKey,
		func(after string, n int) ([]store.ActionExecution, error) {
			return s.store.ListActionExecutions(ctx, *in.PipelineName, execID, store.Page{After: after, Limit: n})
		})
	if err != nil {
		return nil, err
	}
	out := &model.ListActionExecutionsOutput{ActionExecutionDetails: make([]model.ActionExecutionDetail, len(recs)), NextToken: next}
	for i, rec := range recs {
		d := &out.ActionExecutionDetails[i]
		if err := json.Unmarshal(rec.Doc, d); err != nil {
			return nil, internal("decode action execution "+rec.ID, err)
		}
		// Records are written masked; those written before that are masked here.
		if in := d.Input; in != nil && in.ActionTypeId != nil {
			t, _, err := s.exec.ActionType(ctx, in.ActionTypeId)
			if err != nil {
				return nil, err
			}
			in.Configuration, in.ResolvedConfiguration = t.Mask(in.Configuration), t.Mask(in.ResolvedConfiguration)
		}
	}
	return out, nil
}
