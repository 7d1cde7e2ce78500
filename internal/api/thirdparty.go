package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/internal/catalog"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
)

func (s *Service) PollForThirdPartyJobs(ctx context.Context, in *model.PollForThirdPartyJobsInput) (*model.PollForThirdPartyJobsOutput, error) {
	id := in.ActionTypeId
	if _, ok := catalog.LookupActionType(*id.Category, *id.Owner, *id.Provider, *id.Version); !ok || *id.Owner != model.ActionOwnerThirdParty {
		return nil, errActionTypeNotFound(string(*id.Category), string(*id.Owner), *id.Provider, *id.Version)
	}
	batch := 1
	if in.MaxBatchSize != nil {
		batch = *in.MaxBatchSize
	}
	jobs, err := s.exec.Poll(ctx, executor.KeyOf(id), "", batch)
	if err != nil {
		return nil, internal("poll for third-party jobs", err)
	}
	out := &model.PollForThirdPartyJobsOutput{Jobs: make([]model.ThirdPartyJob, 0, len(jobs))}
	for _, j := range jobs {
		out.Jobs = append(out.Jobs, model.ThirdPartyJob{JobId: new(j.ID), ClientId: new(s.cfg.ClientID(j.ID))})
	}
	return out, nil
}

// thirdPartyJob returns a third-party job once its client token checks out.
func (s *Service) thirdPartyJob(ctx context.Context, jobID, clientToken string) (store.Job, error) {
	j, err := s.exec.Job(ctx, jobID)
	if err != nil {
		return j, s.errJob(err, jobID)
	}
	if !strings.Contains(j.TypeKey, "/"+string(model.ActionOwnerThirdParty)+"/") {
		return j, model.ErrInvalidJob("Job '%s' is not a job of a third-party action; use the job operations for custom actions", jobID)
	}
	if subtle.ConstantTimeCompare([]byte(clientToken), []byte(s.cfg.ClientID(jobID))) != 1 {
		return j, model.ErrInvalidClientToken("The client token does not match the client id job '%s' was handed out with", jobID)
	}
	return j, nil
}

func (s *Service) GetThirdPartyJobDetails(ctx context.Context, in *model.GetThirdPartyJobDetailsInput) (*model.GetThirdPartyJobDetailsOutput, error) {
	j, err := s.thirdPartyJob(ctx, *in.JobId, *in.ClientToken)
	if err != nil {
		return nil, err
	}
	data, err := s.exec.JobData(j)
	if err != nil {
		return nil, internal("job details", err)
	}
	details := &model.ThirdPartyJobDetails{Id: new(j.ID), Data: executor.ThirdPartyJobData(data)}
	if j.Nonce != "" {
		details.Nonce = new(j.Nonce)
	}
	return &model.GetThirdPartyJobDetailsOutput{JobDetails: details}, nil
}

func (s *Service) AcknowledgeThirdPartyJob(ctx context.Context, in *model.AcknowledgeThirdPartyJobInput) (*model.AcknowledgeThirdPartyJobOutput, error) {
	if _, err := s.thirdPartyJob(ctx, *in.JobId, *in.ClientToken); err != nil {
		return nil, err
	}
	status, err := s.exec.Acknowledge(ctx, *in.JobId, *in.Nonce)
	if err != nil {
		return nil, s.errJob(err, *in.JobId)
	}
	return &model.AcknowledgeThirdPartyJobOutput{Status: new(model.JobStatus(status))}, nil
}

func (s *Service) PutThirdPartyJobSuccessResult(ctx context.Context, in *model.PutThirdPartyJobSuccessResultInput) error {
	if _, err := s.thirdPartyJob(ctx, *in.JobId, *in.ClientToken); err != nil {
		return err
	}
	return s.putSuccess(ctx, *in.JobId, in.CurrentRevision, in.ContinuationToken, in.ExecutionDetails, nil)
}

func (s *Service) PutThirdPartyJobFailureResult(ctx context.Context, in *model.PutThirdPartyJobFailureResultInput) error {
	if _, err := s.thirdPartyJob(ctx, *in.JobId, *in.ClientToken); err != nil {
		return err
	}
	return s.putFailure(ctx, *in.JobId, in.FailureDetails)
}

func (s *Service) PutActionRevision(ctx context.Context, in *model.PutActionRevisionInput) (*model.PutActionRevisionOutput, error) {
	rec, err := s.store.GetPipeline(ctx, *in.PipelineName, 0)
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.errPipelineNotFound(*in.PipelineName)
	}
	if err != nil {
		return nil, internal("put action revision", err)
	}
	decl, err := declaration(rec)
	if err != nil {
		return nil, err
	}
	idx := slices.IndexFunc(decl.Stages, func(st model.StageDeclaration) bool { return *st.Name == *in.StageName })
	if idx < 0 {
		return nil, model.ErrStageNotFound("Pipeline '%s' has no stage named '%s'", *in.PipelineName, *in.StageName)
	}
	if !slices.ContainsFunc(decl.Stages[idx].Actions, func(a model.ActionDeclaration) bool { return *a.Name == *in.ActionName }) {
		return nil, model.ErrActionNotFound("Action '%s' was not found in stage '%s' of pipeline '%s'", *in.ActionName, *in.StageName, *in.PipelineName)
	}
	trigger := model.ExecutionTrigger{TriggerType: new(model.TriggerTypePutActionRevision), TriggerDetail: new(s.caller(ctx))}
	isNew, execID, err := s.exec.PutRevision(ctx, *in.PipelineName, rec.Version, rec.Generation, *in.StageName, *in.ActionName, *in.ActionRevision, trigger)
	if err != nil {
		return nil, internal("put action revision", conflict(err, "The pipeline's executions"))
	}
	out := &model.PutActionRevisionOutput{NewRevision: new(isNew)}
	if execID != "" {
		out.PipelineExecutionId = new(execID)
	}
	return out, nil
}
