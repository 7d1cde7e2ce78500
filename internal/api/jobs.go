package api

import (
	"context"
	"errors"

	"github.com/sluicehq/sluice/internal/catalog"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
)

// maxOutputVariablesBytes is CodePipeline's limit on the combined size of an action's output
// variables.
const maxOutputVariablesBytes = 122880

func (s *Service) PollForJobs(ctx context.Context, in *model.PollForJobsInput) (*model.PollForJobsOutput, error) {
	id := in.ActionTypeId
	key := executor.KeyOf(id)
	switch *id.Owner {
	case model.ActionOwnerCustom:
		if _, err := s.store.GetActionType(ctx, key); errors.Is(err, store.ErrNotFound) {
			return nil, errActionTypeNotFound(string(*id.Category), string(*id.Owner), *id.Provider, *id.Version)
		}
	case model.ActionOwnerAws:
		// Sluice's own extension: --worker-providers hands an AWS provider's runs to workers.
		if _, ok := catalog.LookupActionType(*id.Category, *id.Owner, *id.Provider, *id.Version); !ok {
			return nil, errActionTypeNotFound(string(*id.Category), string(*id.Owner), *id.Provider, *id.Version)
		}
		if !s.cfg.WorkerProviders[*id.Provider] && !s.cfg.WorkerProviders["*"] {
			return nil, model.ErrValidation("PollForJobs is valid only for action types with owner Custom; the provider %s is AWS's (Sluice hands its jobs to workers only when the server runs with --worker-providers %s)", *id.Provider, *id.Provider)
		}
	default:
		return nil, model.ErrValidation("PollForJobs is valid only for action types with owner Custom; use PollForThirdPartyJobs for owner %s", *id.Owner)
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
		data, err := s.exec.JobData(j)
		if err != nil {
			return nil, internal("poll for jobs", err)
		}
		out.Jobs = append(out.Jobs, model.Job{Id: new(j.ID), Data: data, Nonce: new(j.Nonce), AccountId: new(s.cfg.AccountID)})
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
	data, err := s.exec.JobData(j)
	if err != nil {
		return nil, internal("job details", err)
	}
	return &model.GetJobDetailsOutput{JobDetails: &model.JobDetails{Id: new(j.ID), Data: data, AccountId: new(s.cfg.AccountID)}}, nil
}

func (s *Service) PutJobSuccessResult(ctx context.Context, in *model.PutJobSuccessResultInput) error {
	return s.putSuccess(ctx, *in.JobId, in.CurrentRevision, in.ContinuationToken, in.ExecutionDetails, in.OutputVariables)
}

func (s *Service) PutJobFailureResult(ctx context.Context, in *model.PutJobFailureResultInput) error {
	return s.putFailure(ctx, *in.JobId, in.FailureDetails)
}

// putSuccess records a job's success, for custom and third-party jobs alike.
func (s *Service) putSuccess(ctx context.Context, jobID string, rev *model.CurrentRevision, continuation *string, details *model.ExecutionDetails, vars map[string]string) error {
	size := 0
	for k, v := range vars {
		size += len(k) + len(v)
	}
	if continuation != nil && len(vars) > 0 {
		return model.ErrValidation("outputVariables can be included only when there is no continuation token on the request")
	}
	if size > maxOutputVariablesBytes {
		return model.ErrOutputVariablesSizeExceeded("The output variables take %d bytes, more than the limit of %d", size, maxOutputVariablesBytes)
	}
	res := executor.Result{Succeeded: true, OutputVariables: vars, Revision: rev}
	if continuation != nil {
		res.ContinuationToken = *continuation
	}
	if details != nil {
		res.Percent = details.PercentComplete
		if details.Summary != nil {
			res.Summary = *details.Summary
		}
		if details.ExternalExecutionId != nil {
			res.ExternalID = *details.ExternalExecutionId
		}
	}
	if err := s.exec.Finish(ctx, jobID, res); err != nil {
		return s.errJob(err, jobID)
	}
	return nil
}

// putFailure records a job's failure, for custom and third-party jobs alike.
func (s *Service) putFailure(ctx context.Context, jobID string, failure *model.FailureDetails) error {
	res := executor.Result{Summary: *failure.Message, FailureType: string(*failure.Type)}
	if failure.ExternalExecutionId != nil {
		res.ExternalID = *failure.ExternalExecutionId
	}
	if err := s.exec.Finish(ctx, jobID, res); err != nil {
		return s.errJob(err, jobID)
	}
	return nil
}
