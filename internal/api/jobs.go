package api

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
)

// maxOutputVariablesBytes is CodePipeline's limit on the combined size of an action's output
// variables.
const maxOutputVariablesBytes = 122880

func (s *Service) PollForJobs(ctx context.Context, in *model.PollForJobsInput) (*model.PollForJobsOutput, error) {
	id := in.ActionTypeId
	key := executor.TypeKey(string(*id.Category), string(*id.Owner), *id.Provider, *id.Version)
	if *id.Owner == model.ActionOwnerCustom {
		if _, err := s.store.GetActionType(ctx, key); errors.Is(err, store.ErrNotFound) {
			return nil, model.ErrActionTypeNotFound("Action type (Category: '%s', Owner: 'Custom', Provider: '%s', Version: '%s') does not exist", *id.Category, *id.Provider, *id.Version)
		}
	}
	query := ""
	for k, v := range in.QueryParam {
		query = executor.QueryValue(k, v)
	}
	batch := 1
	if in.MaxBatchSize != nil {
		batch = *in.MaxBatchSize
	}
	jobs, err := s.exec.Poll(ctx, key, query, batch)
	if err != nil {
		return nil, internal("poll for jobs", err)
	}
	out := &model.PollForJobsOutput{Jobs: make([]model.Job, 0, len(jobs))}
	for _, j := range jobs {
		var data model.JobData
		if err := json.Unmarshal(j.Data, &data); err != nil {
			return nil, internal("decode job "+j.ID, err)
		}
		out.Jobs = append(out.Jobs, model.Job{Id: new(j.ID), Data: &data, Nonce: new(j.Nonce), AccountId: new(s.cfg.AccountID)})
	}
	return out, nil
}

func (s *Service) errJob(err error, jobID string) error {
	switch {
	case errors.Is(err, executor.ErrJobNotFound):
		return model.ErrJobNotFound("Job '%s' was not found in account '%s'", jobID, s.cfg.AccountID)
	case errors.Is(err, executor.ErrInvalidNonce):
		return model.ErrInvalidNonce("The nonce does not match the one job '%s' was handed out with", jobID)
	case errors.Is(err, executor.ErrInvalidJobState):
		return model.ErrInvalidJobState("Job '%s' is not in progress: it already finished, or its action stopped", jobID)
	}
	return internal("job "+jobID, err)
}

func (s *Service) AcknowledgeJob(ctx context.Context, in *model.AcknowledgeJobInput) (*model.AcknowledgeJobOutput, error) {
	status, err := s.exec.Acknowledge(ctx, *in.JobId, *in.Nonce)
	if err != nil {
		return nil, s.errJob(err, *in.JobId)
	}
	return &model.AcknowledgeJobOutput{Status: new(model.JobStatus(status))}, nil
}

func (s *Service) GetJobDetails(ctx context.Context, in *model.GetJobDetailsInput) (*model.GetJobDetailsOutput, error) {
	j, err := s.exec.Job(ctx, *in.JobId)
	if err != nil {
		return nil, s.errJob(err, *in.JobId)
	}
	var data model.JobData
	if err := json.Unmarshal(j.Data, &data); err != nil {
		return nil, internal("decode job "+j.ID, err)
	}
	return &model.GetJobDetailsOutput{JobDetails: &model.JobDetails{Id: new(j.ID), Data: &data, AccountId: new(s.cfg.AccountID)}}, nil
}

func (s *Service) PutJobSuccessResult(ctx context.Context, in *model.PutJobSuccessResultInput) error {
	size := 0
	for k, v := range in.OutputVariables {
		size += len(k) + len(v)
	}
	if size > maxOutputVariablesBytes {
		return model.ErrOutputVariablesSizeExceeded("The output variables take %d bytes, more than the limit of %d", size, maxOutputVariablesBytes)
	}
	res := executor.Result{Succeeded: true, OutputVariables: in.OutputVariables, Revision: in.CurrentRevision}
	if in.ContinuationToken != nil {
		res.ContinuationToken = *in.ContinuationToken
	}
	if d := in.ExecutionDetails; d != nil {
		res.Percent = d.PercentComplete
		if d.Summary != nil {
			res.Summary = *d.Summary
		}
		if d.ExternalExecutionId != nil {
			res.ExternalID = *d.ExternalExecutionId
		}
	}
	if err := s.exec.Finish(ctx, *in.JobId, res); err != nil {
		return s.errJob(err, *in.JobId)
	}
	return nil
}

func (s *Service) PutJobFailureResult(ctx context.Context, in *model.PutJobFailureResultInput) error {
	res := executor.Result{Summary: *in.FailureDetails.Message, FailureType: string(*in.FailureDetails.Type)}
	if in.FailureDetails.ExternalExecutionId != nil {
		res.ExternalID = *in.FailureDetails.ExternalExecutionId
	}
	if err := s.exec.Finish(ctx, *in.JobId, res); err != nil {
		return s.errJob(err, *in.JobId)
	}
	return nil
}
