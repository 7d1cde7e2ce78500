package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/arn"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
)

// updateAttempts bounds how often UpdatePipeline re-reads and retries when a concurrent update
// takes the version it meant to write.
const updateAttempts = 20

func (s *Service) pipelineARN(name string) string {
	return arn.Pipeline(s.cfg.Region, s.cfg.AccountID, name)
}

func (s *Service) errPipelineNotFound(name string) error {
	return model.ErrPipelineNotFound("Account '%s' does not have a pipeline with name '%s'", s.cfg.AccountID, name)
}

// errNoSuchPipeline is how UpdatePipeline and the tagging operations say that a pipeline does
// not exist: another exception, and other words, than GetPipeline's.
func (s *Service) errNoSuchPipeline(name string) error {
	return model.ErrResourceNotFound("The account with id '%s' does not include a pipeline with the name '%s'", s.cfg.AccountID, name)
}

// checkDeclaration normalizes and validates a declaration as CreatePipeline and UpdatePipeline do.
func (s *Service) checkDeclaration(ctx context.Context, decl *model.PipelineDeclaration) error {
	pipeline.Normalize(decl)
	limits := pipeline.Limits{StagesPerPipeline: s.cfg.Limits.StagesPerPipeline, ActionsPerStage: s.cfg.Limits.ActionsPerStage}
	return pipeline.Validate(decl, s.cfg.Region, limits, s.actionTypes(ctx))
}

func (s *Service) CreatePipeline(ctx context.Context, in *model.CreatePipelineInput) (*model.CreatePipelineOutput, error) {
	decl := in.Pipeline
	if err := s.checkDeclaration(ctx, decl); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags, s.cfg.Limits.TagsPerResource, s.pipelineARN(*decl.Name)); err != nil {
		return nil, err
	}
	decl.Version = new(1)
	now := s.now()
	rec, err := record(decl, now, now)
	if err != nil {
		return nil, err
	}
	rec.Generation = uuid.NewString()
	// The first execution is stored with the pipeline, in one transaction.
	var first store.StepFunc
	done := func(bool) {}
	if s.cfg.StartOnCreate {
		trigger := model.ExecutionTrigger{TriggerType: new(model.TriggerTypeCreatePipeline), TriggerDetail: new(s.caller(ctx))}
		start := executor.Start{Pipeline: *decl.Name, Version: 1, Generation: rec.Generation, Trigger: trigger}
		if _, first, done, err = s.exec.First(ctx, start, decl); err != nil {
			return nil, errStart(err)
		}
	}
	err = s.store.CreatePipeline(ctx, rec, s.pipelineARN(*decl.Name), storeTags(in.Tags), s.cfg.Limits.Pipelines, first)
	done(err == nil)
	s.changed(err)
	switch {
	case errors.Is(err, store.ErrExists):
		return nil, model.ErrInvalidStructure("A pipeline with the name '%s' already exists in account '%s'", *decl.Name, s.cfg.AccountID)
	case errors.Is(err, store.ErrLimitExceeded):
		return nil, model.ErrLimitExceeded("Account '%s' already has %d pipelines, the limit in this region", s.cfg.AccountID, s.cfg.Limits.Pipelines)
	case err != nil:
		return nil, internal("create pipeline", conflict(err, "The pipeline"))
	}
	// The answer is masked in a copy: the executor keeps decl, secrets and all, to run.
	answer := *decl
	answer.Stages = cloneStages(decl.Stages)
	pipeline.MaskSecrets(&answer, s.actionTypes(ctx))
	return &model.CreatePipelineOutput{Pipeline: &answer, Tags: in.Tags}, nil
}

// record turns a checked declaration into the store's form.
func record(decl *model.PipelineDeclaration, created, updated time.Time) (store.Pipeline, error) {
	doc, err := json.Marshal(decl)
	if err != nil {
		return store.Pipeline{}, fmt.Errorf("encode pipeline declaration: %w", err)
	}
	return store.Pipeline{
		Name:          *decl.Name,
		Version:       *decl.Version,
		PipelineType:  string(*decl.PipelineType),
		ExecutionMode: string(*decl.ExecutionMode),
		Declaration:   doc,
		Created:       created,
		Updated:       updated,
	}, nil
}

func declaration(rec store.Pipeline) (*model.PipelineDeclaration, error) {
	var decl model.PipelineDeclaration
	if err := json.Unmarshal(rec.Declaration, &decl); err != nil {
		return nil, fmt.Errorf("decode stored declaration of pipeline %s version %d: %w", rec.Name, rec.Version, err)
	}
	return &decl, nil
}

func (s *Service) GetPipeline(ctx context.Context, in *model.GetPipelineInput) (*model.GetPipelineOutput, error) {
	version := 0
	if in.Version != nil {
		version = *in.Version
	}
	rec, err := s.store.GetPipeline(ctx, *in.Name, version)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, s.errPipelineNotFound(*in.Name)
	case errors.Is(err, store.ErrVersionNotFound):
		return nil, model.ErrPipelineVersionNotFound("Pipeline '%s' does not have version %d", *in.Name, version)
	case err != nil:
		return nil, internal("get pipeline", err)
	}
	decl := s.answers.get(rec.Declaration)
	if decl == nil {
		if decl, err = declaration(rec); err != nil {
			return nil, err
		}
		pipeline.MaskSecrets(decl, s.actionTypes(ctx))
		s.answers.put(rec.Declaration, decl)
	}
	meta := &model.PipelineMetadata{
		PipelineArn: new(s.pipelineARN(rec.Name)),
		Created:     model.NewTimestamp(rec.Created),
		Updated:     model.NewTimestamp(rec.Updated),
	}
	if rec.PollingDisabledAt != nil {
		meta.PollingDisabledAt = model.NewTimestamp(*rec.PollingDisabledAt)
	}
	return &model.GetPipelineOutput{Pipeline: decl, Metadata: meta}, nil
}

func (s *Service) UpdatePipeline(ctx context.Context, in *model.UpdatePipelineInput) (*model.UpdatePipelineOutput, error) {
	decl := in.Pipeline
	if err := s.checkDeclaration(ctx, decl); err != nil {
		return nil, err
	}
	for range updateAttempts {
		cur, err := s.store.GetPipeline(ctx, *decl.Name, 0)
		if errors.Is(err, store.ErrNotFound) {
			return nil, s.errNoSuchPipeline(*decl.Name)
		}
		if err != nil {
			return nil, internal("update pipeline", err)
		}
		previous, err := declaration(cur)
		if err != nil {
			return nil, err
		}
		next := *decl
		next.Stages = cloneStages(decl.Stages)
		pipeline.KeepSecrets(&next, previous, s.actionTypes(ctx))
		next.Version = new(cur.Version + 1)
		rec, err := record(&next, cur.Created, s.now())
		if err != nil {
			return nil, err
		}
		rec.Generation, rec.PollingDisabledAt = cur.Generation, cur.PollingDisabledAt
		err = s.store.UpdatePipeline(ctx, rec)
		s.changed(err)
		switch {
		case errors.Is(err, store.ErrConflict):
			continue
		case errors.Is(err, store.ErrNotFound):
			return nil, s.errNoSuchPipeline(*decl.Name)
		case err != nil:
			return nil, internal("update pipeline", err)
		}
		pipeline.MaskSecrets(&next, s.actionTypes(ctx))
		return &model.UpdatePipelineOutput{Pipeline: &next}, nil
	}
	return nil, model.ErrConcurrentModification("Pipeline '%s' is being updated by other requests; try again", *decl.Name)
}

// cloneStages copies stages deeply enough that secrets restored into the copy do not leak into
// the caller's declaration.
func cloneStages(stages []model.StageDeclaration) []model.StageDeclaration {
	out := make([]model.StageDeclaration, len(stages))
	for i, st := range stages {
		out[i] = st
		out[i].Actions = make([]model.ActionDeclaration, len(st.Actions))
		for j, a := range st.Actions {
			out[i].Actions[j] = a
			out[i].Actions[j].Configuration = maps.Clone(a.Configuration)
		}
	}
	return out
}

func (s *Service) DeletePipeline(ctx context.Context, in *model.DeletePipelineInput) error {
	if err := s.store.DeletePipeline(ctx, *in.Name, s.pipelineARN(*in.Name)); err != nil {
		return internal("delete pipeline", conflict(err, "The pipeline"))
	}
	s.exec.Forget(*in.Name)
	s.changed(nil)
	return nil
}

// changed tells Config.PipelinesChanged that a write of pipelines committed, if err says it did.
func (s *Service) changed(err error) {
	if err == nil && s.cfg.PipelinesChanged != nil {
		s.cfg.PipelinesChanged()
	}
}

func (s *Service) ListPipelines(ctx context.Context, in *model.ListPipelinesInput) (*model.ListPipelinesOutput, error) {
	size := 100
	if in.MaxResults != nil {
		size = *in.MaxResults
	}
	recs, next, err := page(s.tokens, "ListPipelines", in.NextToken, size,
		func(p store.Pipeline) string { return p.Name },
		func(after string, n int) ([]store.Pipeline, error) {
			return s.store.ListPipelines(ctx, store.Page{After: after, Limit: n})
		})
	if err != nil {
		return nil, err
	}
	out := &model.ListPipelinesOutput{Pipelines: make([]model.PipelineSummary, len(recs)), NextToken: next}
	for i, p := range recs {
		out.Pipelines[i] = model.PipelineSummary{
			Name:          new(p.Name),
			Version:       new(p.Version),
			PipelineType:  new(model.PipelineType(p.PipelineType)),
			ExecutionMode: new(model.ExecutionMode(p.ExecutionMode)),
			Created:       model.NewTimestamp(p.Created),
			Updated:       model.NewTimestamp(p.Updated),
		}
	}
	return out, nil
}
