package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/artifacts"
	"github.com/sluicehq/sluice/internal/catalog"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
)

// defaultActionTimeout is how long an action that is not an approval may run, as in AWS.
const defaultActionTimeout = time.Hour

// reference matches a variable reference in a configuration value: #{Namespace.Variable}.
var reference = regexp.MustCompile(`#\{([A-Za-z0-9@\-_]+)\.([A-Za-z0-9@\-_.]+)\}`)

// actionDeclaration finds the declaration of an action run.
func (s *step) actionDeclaration(r *run, a engine.Action) (*model.PipelineDeclaration, *model.ActionDeclaration, error) {
	decl, err := s.declarationOf(r)
	if err != nil {
		return nil, nil, err
	}
	for i := range decl.Stages[a.Stage].Actions {
		if *decl.Stages[a.Stage].Actions[i].Name == a.Name {
			return decl, &decl.Stages[a.Stage].Actions[i], nil
		}
	}
	return nil, nil, fmt.Errorf("pipeline %s version %d has no action %s in stage %d", r.Pipeline, r.Version, a.Name, a.Stage)
}

// resolve replaces the variable references in an action's configuration.
func (s *step) resolve(execID string, r *run, config map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(config))
	for k, v := range config {
		var missing string
		out[k] = reference.ReplaceAllStringFunc(v, func(ref string) string {
			m := reference.FindStringSubmatch(ref)
			ns, name := m[1], m[2]
			switch ns {
			case "codepipeline":
				if name == "PipelineExecutionId" {
					return execID
				}
			case "variables":
				if val, ok := r.Variables[name]; ok {
					return val
				}
			default:
				if val, ok := r.Outputs[ns][name]; ok {
					return val
				}
			}
			if missing == "" {
				missing = ref
			}
			return ref
		})
		if missing != "" {
			return nil, fmt.Errorf("the variable %s in configuration %s cannot be resolved", missing, k)
		}
	}
	return out, nil
}

// startAction records the start of an action run and what it waits for: a job, an approval, or
// nothing, when it fails at once.
func (s *step) startAction(execID string, a engine.Action) ([]engine.Event, error) {
	r := s.st.Runs[execID]
	decl, ad, err := s.actionDeclaration(r, a)
	if err != nil {
		return nil, err
	}
	stageName := *decl.Stages[a.Stage].Name
	ar := &actionRun{ID: a.ID, Stage: stageName, Name: a.Name, Status: engine.InProgress, Changed: s.now, Started: s.now}
	if rev, ok := r.StartedBy[a.Name]; ok && a.Stage == 0 {
		ar.Revision = &rev
	}
	if r.Actions == nil {
		r.Actions = map[string]*actionRun{}
	}
	r.Actions[a.ID] = ar
	s.latest(stageName, execID)
	defer s.mirror(execID, ar)

	t, err := s.actionType(ad.ActionTypeId)
	if err != nil {
		return nil, err
	}
	input := &model.ActionExecutionInput{
		ActionTypeId:   ad.ActionTypeId,
		Configuration:  t.Mask(ad.Configuration),
		RoleArn:        ad.RoleArn,
		Region:         ad.Region,
		InputArtifacts: inputDetails(r, ad.InputArtifacts),
		Namespace:      ad.Namespace,
	}
	if input.Region == nil {
		input.Region = new(s.x.cfg.Region)
	}
	detail := &model.ActionExecutionDetail{
		PipelineExecutionId: new(execID),
		ActionExecutionId:   new(a.ID),
		PipelineVersion:     new(r.Version),
		StageName:           new(stageName),
		ActionName:          new(a.Name),
		StartTime:           model.NewTimestamp(s.now),
		LastUpdateTime:      model.NewTimestamp(s.now),
		Status:              new(model.ActionExecutionStatusInProgress),
		Input:               input,
		Output:              &model.ActionExecutionOutput{OutputArtifacts: []model.ArtifactDetail{}},
	}
	resolved, resolveErr := s.resolve(execID, r, ad.Configuration)
	if resolveErr == nil {
		input.ResolvedConfiguration = t.Mask(resolved)
	}
	s.putActionDoc(execID, stageName, a.Name, ar, detail)
	if resolveErr != nil {
		return s.fail(execID, a, resolveErr.Error())
	}

	id := ad.ActionTypeId
	switch {
	case t.Approval:
		ar.Token = newID()
		timeout := s.x.cfg.ApprovalTimeout
		if ad.TimeoutInMinutes != nil {
			timeout = time.Duration(*ad.TimeoutInMinutes) * time.Minute
		}
		ar.Deadline = s.now.Add(timeout)
		return nil, nil
	case s.x.runsAsJob(id):
		job, failure, err := s.newJob(execID, r, decl, stageName, ad, a, resolved)
		if err != nil {
			return nil, err
		}
		if failure != "" {
			return s.fail(execID, a, failure)
		}
		ar.JobID = job.ID
		if s.x.cfg.LogURL != nil && s.x.cfg.LocalProviders[job.TypeKey] {
			ar.ExternalURL = s.x.cfg.LogURL(a.ID)
			detail.Output.ExecutionResult = &model.ActionExecutionResult{ExternalExecutionUrl: new(ar.ExternalURL)}
			s.putActionDoc(execID, stageName, a.Name, ar, detail)
		}
		timeout := defaultActionTimeout
		if ad.TimeoutInMinutes != nil {
			timeout = time.Duration(*ad.TimeoutInMinutes) * time.Minute
		}
		ar.Deadline = s.now.Add(timeout)
		s.change.Jobs = append(s.change.Jobs, job)
		return nil, nil
	}
	return s.fail(execID, a, fmt.Sprintf("Sluice has no runner for the provider %s (owner %s, category %s); to have job workers serve it, start the server with --worker-providers %s and poll with owner %s",
		*id.Provider, *id.Owner, *id.Category, *id.Provider, *id.Owner))
}

// runsAsJob reports whether runs of an action type are jobs: those of custom and third-party
// types, and of AWS types that a local runner serves or that are routed to job workers.
func (x *Executor) runsAsJob(id *model.ActionTypeId) bool {
	switch *id.Owner {
	case model.ActionOwnerCustom, model.ActionOwnerThirdParty:
		return true
	}
	key := KeyOf(id)
	return x.cfg.LocalProviders[key] || x.cfg.WorkerProviders[*id.Provider] || x.cfg.WorkerProviders["*"]
}

func (s *step) fail(execID string, a engine.Action, message string) ([]engine.Event, error) {
	return s.settle(execID, a.ID, engine.Failed, message, nil)
}

// settle records an action run's end and returns what the engine makes of it.
func (s *step) settle(execID, actionID string, status engine.Status, summary string, output *model.ActionExecutionOutput) ([]engine.Event, error) {
	s.finishAction(execID, actionID, status, summary, output)
	s.touched[execID] = true
	return s.st.Engine.ActionFinished(execID, actionID, status == engine.Succeeded, newID)
}

// conclude settles an action run and carries out what follows.
func (s *step) conclude(execID, actionID string, status engine.Status, summary string, output *model.ActionExecutionOutput) error {
	events, err := s.settle(execID, actionID, status, summary, output)
	if err != nil {
		return err
	}
	return s.handle(events)
}

// latest returns the stage's latest-run record, starting a new one when another execution enters.
func (s *step) latest(stage, execID string) *stageRun {
	l := s.st.Latest[stage]
	if l == nil || l.Execution != execID {
		l = &stageRun{Execution: execID, Actions: map[string]*actionRun{}}
		if r := s.st.Runs[execID]; r != nil && r.RollbackOf != "" {
			l.Rollback = true
		}
		if old := s.st.Latest[stage]; old != nil {
			maps.Copy(l.Actions, old.Actions)
		}
		s.st.Latest[stage] = l
	}
	l.Status = engine.InProgress
	return l
}

// mirror copies an action run into its stage's latest-run record, if its execution is the
// stage's latest.
func (s *step) mirror(execID string, ar *actionRun) {
	if l := s.st.Latest[ar.Stage]; l != nil && l.Execution == execID {
		copied := *ar
		l.Actions[ar.Name] = &copied
	}
}

// findAction returns an action run of an active execution by its id.
func (s *step) findAction(actionID string) (execID string, ar *actionRun) {
	for id, r := range s.st.Runs {
		if a := r.Actions[actionID]; a != nil {
			return id, a
		}
	}
	return "", nil
}

// finishAction records an action run's end; output, when not nil, holds what its worker reported.
func (s *step) finishAction(execID, actionID string, status engine.Status, summary string, output *model.ActionExecutionOutput) {
	_, ar := s.findAction(actionID)
	if ar == nil {
		return
	}
	stage, name := ar.Stage, ar.Name
	ar.Status, ar.Summary, ar.Changed = status, summary, s.now
	defer s.mirror(execID, ar)
	detail, err := s.actionDetail(actionID)
	if err != nil {
		detail = &model.ActionExecutionDetail{ActionExecutionId: new(actionID), PipelineExecutionId: new(execID), StageName: new(stage), ActionName: new(name)}
	}
	detail.Status = new(model.ActionExecutionStatus(status))
	detail.LastUpdateTime = model.NewTimestamp(s.now)
	if output != nil {
		detail.Output = output
	}
	if detail.Output == nil {
		detail.Output = &model.ActionExecutionOutput{}
	}
	if detail.Output.ExecutionResult == nil {
		detail.Output.ExecutionResult = &model.ActionExecutionResult{}
	}
	if summary != "" && detail.Output.ExecutionResult.ExternalExecutionSummary == nil {
		detail.Output.ExecutionResult.ExternalExecutionSummary = new(summary)
	}
	if status == engine.Failed && detail.Output.ExecutionResult.ErrorDetails == nil {
		detail.Output.ExecutionResult.ErrorDetails = &model.ErrorDetails{Code: new("JobFailed"), Message: new(summary)}
	}
	s.putActionDoc(execID, stage, name, ar, detail)
}

// actionDetail reads an action run's record as this step last wrote it or, before that, as stored.
func (s *step) actionDetail(actionID string) (*model.ActionExecutionDetail, error) {
	return lastDoc[model.ActionExecutionDetail](s.change.Actions, func(a store.ActionExecution) (string, []byte) { return a.ID, a.Doc }, actionID,
		func() ([]byte, error) { rec, err := s.cur.ActionExecution(actionID); return rec.Doc, err })
}

// lastDoc decodes the document of the record id: as the step last wrote it among written, else
// as read finds it stored.
func lastDoc[D, R any](written []R, doc func(R) (id string, doc []byte), id string, read func() ([]byte, error)) (*D, error) {
	var raw []byte
	for i := len(written) - 1; i >= 0 && raw == nil; i-- {
		if rid, d := doc(written[i]); rid == id {
			raw = d
		}
	}
	if raw == nil {
		var err error
		if raw, err = read(); err != nil {
			return nil, err
		}
	}
	var out D
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// putActionDoc writes an action run's record.
func (s *step) putActionDoc(execID, stage, name string, ar *actionRun, detail *model.ActionExecutionDetail) {
	doc, _ := json.Marshal(detail)
	s.change.Actions = append(s.change.Actions, store.ActionExecution{
		ID: ar.ID, ExecutionID: execID, Pipeline: s.pipeline, Stage: stage, Action: name,
		Status: string(ar.Status), Doc: doc, Targets: s.targets[ar.ID], Started: ar.Started, Updated: s.now,
	})
}

// newJob builds the job of an action run, with the locations of its artifacts: those its inputs
// were stored at, and fresh ones in the artifact store for its outputs. A failure is a reason the
// action cannot run, for it to fail with.
func (s *step) newJob(execID string, r *run, decl *model.PipelineDeclaration, stage string, ad *model.ActionDeclaration, a engine.Action, config map[string]string) (job store.Job, failure string, err error) {
	id := ad.ActionTypeId
	data, failure := s.jobData(execID, r, stage, a.Name, a.ID, id, config, ad.InputArtifacts)
	if failure != "" {
		return job, failure, nil
	}
	if len(ad.OutputArtifacts) > 0 {
		bucket, encryption := artifactStore(decl, ad, s.x.cfg.Region)
		if failure, err := s.bucket(bucket); err != nil || failure != "" {
			return job, failure, err
		}
		data.EncryptionKey = encryption
		for _, out := range ad.OutputArtifacts {
			data.OutputArtifacts = append(data.OutputArtifacts, model.Artifact{Name: out.Name, Location: s3Location(bucket, artifacts.Key(r.Pipeline, *out.Name))})
		}
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return job, "", err
	}
	query, err := s.queryValue(id, config)
	if err != nil {
		return job, "", err
	}
	return store.Job{
		ID: newID(), ActionExecutionID: a.ID, ExecutionID: execID, Pipeline: r.Pipeline,
		TypeKey:    KeyOf(id),
		QueryValue: query, Status: jobQueued, Data: raw, Created: s.now, Updated: s.now,
	}, "", nil
}

// jobData is the job data of a run (an action's, or a rule's under its name and run id) of a
// type: its configuration, its pipeline context, and where its input artifacts are. A failure is
// a reason it cannot run: an input artifact that no earlier action produced.
func (s *step) jobData(execID string, r *run, stage, name, runID string, typeID *model.ActionTypeId, config map[string]string, inputs []model.InputArtifact) (model.JobData, string) {
	data := model.JobData{
		ActionTypeId:        typeID,
		ActionConfiguration: &model.ActionConfiguration{Configuration: config},
		PipelineContext: &model.PipelineContext{
			PipelineName:        new(r.Pipeline),
			Stage:               &model.StageContext{Name: new(stage)},
			Action:              &model.ActionContext{Name: new(name), ActionExecutionId: new(runID)},
			PipelineArn:         new(s.x.pipelineARN(r.Pipeline)),
			PipelineExecutionId: new(execID),
		},
		InputArtifacts:  []model.Artifact{},
		OutputArtifacts: []model.Artifact{},
	}
	for _, in := range inputs {
		ref, ok := r.Artifacts[*in.Name]
		if !ok {
			return data, fmt.Sprintf("The input artifact %s was not produced by an earlier action of this execution", *in.Name)
		}
		art := model.Artifact{Name: in.Name, Location: s3Location(ref.Bucket, ref.Key)}
		if ref.Revision != "" {
			art.Revision = new(ref.Revision)
		}
		data.InputArtifacts = append(data.InputArtifacts, art)
	}
	return data, ""
}

// inputDetails describes where a run's input artifacts are, for its record.
func inputDetails(r *run, inputs []model.InputArtifact) []model.ArtifactDetail {
	out := []model.ArtifactDetail{}
	for _, in := range inputs {
		d := model.ArtifactDetail{Name: in.Name}
		if ref, ok := r.Artifacts[*in.Name]; ok {
			d.S3location = &model.S3Location{Bucket: new(ref.Bucket), Key: new(ref.Key)}
		}
		out = append(out, d)
	}
	return out
}

// TypeKey identifies an action type among jobs.
func TypeKey(category, owner, provider, version string) string {
	return strings.Join([]string{category, owner, provider, version}, "/")
}

// KeyOf is the TypeKey of an action type's identity.
func KeyOf(id *model.ActionTypeId) string {
	return TypeKey(string(*id.Category), string(*id.Owner), *id.Provider, *id.Version)
}

// QueryValue is what PollForJobs' queryParam {key: value} matches a job by.
func QueryValue(key, value string) string {
	return key + "=" + value
}

// queryValue is the job's QueryValue: its value of the action type's queryable property, if the
// type has one.
func (s *step) queryValue(id *model.ActionTypeId, config map[string]string) (string, error) {
	if *id.Owner != model.ActionOwnerCustom {
		return "", nil
	}
	t, err := s.actionType(id)
	if err != nil {
		return "", err
	}
	for _, p := range t.Properties {
		if p.Queryable {
			return QueryValue(p.Name, config[p.Name]), nil
		}
	}
	return "", nil
}

// ActionType describes an action type as its runs and their records need it: the catalog's, or
// a custom type's from the store, cached, since a custom type keeps its definition for life (a
// deleted one is restored only by the same definition). ok is false for a type that does not
// exist. Validating a declaration must not use it: a cached type may have been deleted since.
func (x *Executor) ActionType(ctx context.Context, id *model.ActionTypeId) (t catalog.ActionType, ok bool, err error) {
	if *id.Owner != model.ActionOwnerCustom {
		t, ok = catalog.LookupActionType(*id.Category, *id.Owner, *id.Provider, *id.Version)
		return t, ok, nil
	}
	key := KeyOf(id)
	if t, ok := x.customTypes.Load(key); ok {
		return t.(catalog.ActionType), true, nil
	}
	rec, err := x.store.GetActionType(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return catalog.ActionType{}, false, nil
	}
	if err != nil {
		return catalog.ActionType{}, false, fmt.Errorf("look up action type %s: %w", key, err)
	}
	var at model.ActionType
	if err := json.Unmarshal(rec.Declaration, &at); err != nil {
		return catalog.ActionType{}, false, fmt.Errorf("decode action type %s: %w", rec.ID, err)
	}
	t = catalog.Custom(at)
	x.customTypes.Store(key, t)
	return t, true, nil
}
