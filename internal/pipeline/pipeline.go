// Package pipeline owns the rules of a pipeline declaration beyond what the service model's
// constraints say: the defaults AWS fills in, and the structure a pipeline must have (stages,
// actions, artifacts, action types, V2-only features, quotas). The API applies it on
// CreatePipeline and UpdatePipeline; the engine relies on what it guarantees.
package pipeline

import (
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/internal/catalog"
	"github.com/sluicehq/sluice/internal/model"
)

// Limits are the quotas a declaration is held to. AWS's defaults are in DefaultLimits.
type Limits struct {
	StagesPerPipeline int
	ActionsPerStage   int
}

// DefaultLimits are CodePipeline's quotas.
var DefaultLimits = Limits{StagesPerPipeline: 50, ActionsPerStage: 50}

// ActionTypes resolves an action type identity to its definition: the catalog's for AWS and
// ThirdParty types, the store's for Custom ones.
type ActionTypes func(id model.ActionTypeId) (catalog.ActionType, bool, error)

// Normalize fills in what AWS fills in: pipeline type V1 and execution mode SUPERSEDED, for
// each action runOrder 1 and empty configuration and artifact lists, and a V2 pipeline's
// default triggers (DefaultTriggers).
func Normalize(p *model.PipelineDeclaration) {
	if p.PipelineType == nil {
		p.PipelineType = new(model.PipelineTypeV1)
	}
	if p.ExecutionMode == nil {
		p.ExecutionMode = new(model.ExecutionModeSuperseded)
	}
	for i := range p.Stages {
		stage := &p.Stages[i]
		if stage.Actions == nil {
			stage.Actions = []model.ActionDeclaration{}
		}
		for j := range stage.Actions {
			a := &stage.Actions[j]
			if a.RunOrder == nil {
				a.RunOrder = new(1)
			}
			if a.Configuration == nil {
				a.Configuration = map[string]string{}
			}
			if a.InputArtifacts == nil {
				a.InputArtifacts = []model.InputArtifact{}
			}
			if a.OutputArtifacts == nil {
				a.OutputArtifacts = []model.OutputArtifact{}
			}
		}
	}
	if len(p.Triggers) == 0 {
		p.Triggers = DefaultTriggers(p)
	}
}

// connectionProvider is the provider of the source actions that triggers can name.
const connectionProvider = "CodeStarSourceConnection"

// DefaultTriggers are the triggers AWS gives a V2 pipeline that declares none: one per source
// action of a connection that detects changes (DetectChanges is not false), on a push to the
// action's BranchName. GetPipeline shows them as declared triggers.
func DefaultTriggers(p *model.PipelineDeclaration) []model.PipelineTriggerDeclaration {
	if p.PipelineType == nil || *p.PipelineType != model.PipelineTypeV2 || len(p.Stages) == 0 {
		return nil
	}
	var out []model.PipelineTriggerDeclaration
	for _, a := range p.Stages[0].Actions {
		if a.ActionTypeId == nil || str(a.ActionTypeId.Provider) != connectionProvider || a.Name == nil {
			continue
		}
		branch := a.Configuration["BranchName"]
		if branch == "" || strings.EqualFold(a.Configuration["DetectChanges"], "false") {
			continue
		}
		out = append(out, model.PipelineTriggerDeclaration{
			ProviderType: new(model.PipelineTriggerProviderTypeCodeStarSourceConnection),
			GitConfiguration: &model.GitConfiguration{
				SourceActionName: new(*a.Name),
				Push:             []model.GitPushFilter{{Branches: &model.GitBranchFilterCriteria{Includes: []string{branch}}}},
			},
		})
	}
	return out
}

// Validate checks a normalized declaration, in the given region, and returns the first problem
// as the exception AWS raises for it.
func Validate(p *model.PipelineDeclaration, region string, limits Limits, types ActionTypes) error {
	v := validator{p: p, region: region, limits: limits, types: types}
	return v.run()
}

type validator struct {
	p      *model.PipelineDeclaration
	region string
	limits Limits
	types  ActionTypes
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (v *validator) v2() bool { return *v.p.PipelineType == model.PipelineTypeV2 }

func (v *validator) run() error {
	p := v.p
	if err := v.artifactStores(); err != nil {
		return err
	}
	if !v.v2() {
		if *p.ExecutionMode != model.ExecutionModeSuperseded {
			return model.ErrInvalidStructure("Execution mode %s is only available for pipelines of type V2; this pipeline is of type V1.", *p.ExecutionMode)
		}
		if len(p.Variables) > 0 {
			return model.ErrInvalidStructure("Pipeline-level variables are only available for pipelines of type V2; this pipeline is of type V1.")
		}
		if len(p.Triggers) > 0 {
			if tagTriggers(p.Triggers) {
				return model.ErrInvalidStructure("Triggers on tag can only be used with V2 pipelines")
			}
			return model.ErrInvalidStructure("Triggers can only be used with V2 pipelines")
		}
	}
	if len(p.Stages) < 2 {
		return model.ErrInvalidStructure("Pipeline has only %d stage(s). There should be a minimum of 2 stages in a pipeline", len(p.Stages))
	}
	if len(p.Stages) > v.limits.StagesPerPipeline {
		return model.ErrLimitExceeded("Pipeline has %d stages, more than the limit of %d stages per pipeline", len(p.Stages), v.limits.StagesPerPipeline)
	}

	stageNames := map[string]bool{}
	namespaces := map[string]bool{}
	// produced holds the output artifacts of every action that runs before the current runOrder group.
	produced := map[string]bool{}
	outputs := map[string]string{}
	for i := range p.Stages {
		stage := &p.Stages[i]
		name := str(stage.Name)
		if stageNames[name] {
			return model.ErrInvalidStageDeclaration("Stage name '%s' is used by more than one stage; stage names must be unique in a pipeline", name)
		}
		stageNames[name] = true
		if err := v.stage(i, stage, namespaces, produced, outputs); err != nil {
			return err
		}
	}
	if err := v.variables(); err != nil {
		return err
	}
	return v.triggers()
}

// tagTriggers reports whether a trigger filters pushes by tag.
func tagTriggers(triggers []model.PipelineTriggerDeclaration) bool {
	for _, t := range triggers {
		if t.GitConfiguration == nil {
			continue
		}
		for _, push := range t.GitConfiguration.Push {
			if push.Tags != nil {
				return true
			}
		}
	}
	return false
}

// regionPattern is the shape of an AWS region's name: us-east-1, us-gov-west-1, ap-southeast-7.
var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

func (v *validator) artifactStores() error {
	p := v.p
	switch {
	case p.ArtifactStore != nil && len(p.ArtifactStores) > 0:
		return model.ErrInvalidStructure("Pipeline declares both artifactStore and artifactStores; use artifactStore for a single-region pipeline or artifactStores for a cross-region one, not both.")
	case p.ArtifactStore == nil && len(p.ArtifactStores) == 0:
		return model.ErrInvalidStructure("Pipeline declares neither artifactStore nor artifactStores; one of them is required.")
	case len(p.ArtifactStores) > 0:
		for _, region := range slices.Sorted(maps.Keys(p.ArtifactStores)) {
			if region != v.region && !regionPattern.MatchString(region) {
				return model.ErrValidation("The region %s specified in 'pipeline.artifactStores' is not a valid AWS Region.", region)
			}
		}
		if _, ok := p.ArtifactStores[v.region]; !ok {
			return model.ErrInvalidStructure("artifactStores must include an artifact store for the pipeline's region, %s.", v.region)
		}
	}
	return nil
}

func (v *validator) stage(index int, stage *model.StageDeclaration, namespaces, produced map[string]bool, outputs map[string]string) error {
	name := str(stage.Name)
	if len(stage.Actions) == 0 {
		return model.ErrInvalidStageDeclaration("Stage '%s' has no actions; every stage needs at least one action", name)
	}
	if len(stage.Actions) > v.limits.ActionsPerStage {
		return model.ErrLimitExceeded("Stage '%s' has %d actions, more than the limit of %d actions per stage", name, len(stage.Actions), v.limits.ActionsPerStage)
	}
	if err := v.blockers(stage); err != nil {
		return err
	}
	if err := v.conditions(index, stage); err != nil {
		return err
	}

	actionNames := map[string]bool{}
	for i := range stage.Actions {
		a := &stage.Actions[i]
		an := str(a.Name)
		if actionNames[an] {
			return model.ErrInvalidActionDeclaration("Action name '%s' is used by more than one action in stage '%s'; action names must be unique in a stage", an, name)
		}
		actionNames[an] = true
		source := *a.ActionTypeId.Category == model.ActionCategorySource
		if index == 0 && !source {
			return model.ErrInvalidStructure("Action '%s' in stage '%s' is not a source action; the first stage of a pipeline can contain source actions only", an, name)
		}
		if index > 0 && source {
			return model.ErrInvalidStructure("Source action '%s' is in stage '%s'; source actions can only be in the first stage of a pipeline", an, name)
		}
		if ns := str(a.Namespace); ns != "" {
			if namespaces[ns] {
				return model.ErrInvalidActionDeclaration("Namespaces must be unique across the pipeline definition. The following occur more than once in the pipeline. StageName=[%s], ActionName=[%s], Namespace=[%s]", name, an, ns)
			}
			namespaces[ns] = true
		}
		if err := v.action(name, a); err != nil {
			return err
		}
	}

	// Actions see the outputs of earlier stages and of lower runOrder groups of their own stage.
	orders := map[int][]*model.ActionDeclaration{}
	for i := range stage.Actions {
		a := &stage.Actions[i]
		orders[*a.RunOrder] = append(orders[*a.RunOrder], a)
	}
	for _, order := range slices.Sorted(maps.Keys(orders)) {
		group := orders[order]
		for _, a := range group {
			for _, in := range a.InputArtifacts {
				if !produced[str(in.Name)] {
					return model.ErrInvalidActionDeclaration("Input artifact '%s' of action '%s' in stage '%s' is not the output artifact of any action that runs before it", str(in.Name), str(a.Name), name)
				}
			}
		}
		for _, a := range group {
			for _, out := range a.OutputArtifacts {
				o := str(out.Name)
				if _, dup := outputs[o]; dup {
					return model.ErrInvalidStructure("Output Artifact Bundle name must be unique within the pipeline. %s has been used more than once.", o)
				}
				outputs[o] = str(a.Name)
			}
		}
		for _, a := range group {
			for _, out := range a.OutputArtifacts {
				produced[str(out.Name)] = true
			}
		}
	}
	return nil
}

func (v *validator) action(stageName string, a *model.ActionDeclaration) error {
	id := a.ActionTypeId
	name := str(a.Name)
	t, ok, err := v.types(*id)
	if err != nil {
		return err
	}
	if !ok || (t.V2Only && !v.v2()) {
		return model.ErrInvalidActionDeclaration("ActionType (Category: '%s', Provider: '%s', Owner: '%s', Version: '%s') in action '%s' is not available in region '%s'",
			*id.Category, str(id.Provider), *id.Owner, str(id.Version), name, regionConstant(v.region))
	}
	if r := str(a.Region); r != "" && r != v.region {
		if *id.Category == model.ActionCategorySource || *id.Owner != model.ActionOwnerAws {
			return model.ErrInvalidActionDeclaration("Action '%s' declares region %s, but source actions and actions of ThirdParty or Custom owners cannot be cross-region", name, r)
		}
		if _, ok := v.p.ArtifactStores[r]; !ok {
			return model.ErrInvalidStructure("Action '%s' runs in region %s, which needs an artifact store in artifactStores for that region", name, r)
		}
	}

	if n := len(a.InputArtifacts); n < t.MinInputs {
		return model.ErrInvalidActionDeclaration("Action %s declares %d input artifacts which is less than the minimum count (%d)", name, n, t.MinInputs)
	} else if n > t.MaxInputs {
		return model.ErrInvalidActionDeclaration("Action %s declares %d input artifacts which is more than the maximum count (%d)", name, n, t.MaxInputs)
	}
	if n := len(a.OutputArtifacts); n < t.MinOutputs {
		return model.ErrInvalidActionDeclaration("Action %s declares %d output artifacts which is less than the minimum count (%d)", name, n, t.MinOutputs)
	} else if n > t.MaxOutputs {
		return model.ErrInvalidActionDeclaration("Action %s declares %d output artifacts which is more than the maximum count (%d)", name, n, t.MaxOutputs)
	}
	seenInputs := map[string]bool{}
	for _, in := range a.InputArtifacts {
		if seenInputs[str(in.Name)] {
			return model.ErrInvalidActionDeclaration("Action %s declares input artifact '%s' more than once", name, str(in.Name))
		}
		seenInputs[str(in.Name)] = true
	}

	known := map[string]bool{}
	for _, prop := range t.Properties {
		known[prop.Name] = true
		if prop.Required {
			if val, ok := a.Configuration[prop.Name]; !ok || val == "" {
				return model.ErrInvalidActionDeclaration("Action configuration for action '%s' is missing required configuration '%s'", name, prop.Name)
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(a.Configuration)) {
		if !known[key] {
			return model.ErrInvalidActionDeclaration("Action configuration for action '%s' contains unknown configuration '%s'", name, key)
		}
	}

	commands := t.Commands
	switch {
	case commands && len(a.Commands) == 0:
		return model.ErrInvalidActionDeclaration("Action '%s' is a Commands action and must declare the commands it runs", name)
	case !commands && len(a.Commands) > 0:
		return model.ErrInvalidActionDeclaration("Action '%s' declares commands, which only Commands actions can", name)
	case !commands && len(a.OutputVariables) > 0:
		return model.ErrInvalidActionDeclaration("Action '%s' declares outputVariables, which only Commands actions can", name)
	}
	return nil
}

func (v *validator) blockers(stage *model.StageDeclaration) error {
	names := map[string]bool{}
	for _, b := range stage.Blockers {
		if names[str(b.Name)] {
			return model.ErrInvalidBlockerDeclaration("Blocker name '%s' is used more than once in stage '%s'", str(b.Name), str(stage.Name))
		}
		names[str(b.Name)] = true
	}
	return nil
}

// conditionKind is a kind of stage condition as the declaration names it, with the results it allows.
type conditionKind struct {
	name    string
	results []model.Result
}

var (
	beforeEntryKind = conditionKind{"beforeEntry", []model.Result{model.ResultFail, model.ResultSkip}}
	onSuccessKind   = conditionKind{"onSuccess", []model.Result{model.ResultRollback, model.ResultFail}}
	onFailureKind   = conditionKind{"onFailure", []model.Result{model.ResultRollback, model.ResultFail, model.ResultRetry, model.ResultSkip}}
)

func (v *validator) conditions(index int, stage *model.StageDeclaration) error {
	name := str(stage.Name)
	type declared struct {
		kind   conditionKind
		result *model.Result
		conds  []model.Condition
	}
	var all []declared
	if stage.BeforeEntry != nil {
		all = append(all, declared{beforeEntryKind, nil, stage.BeforeEntry.Conditions})
	}
	if stage.OnSuccess != nil {
		all = append(all, declared{onSuccessKind, nil, stage.OnSuccess.Conditions})
	}
	if f := stage.OnFailure; f != nil {
		all = append(all, declared{onFailureKind, f.Result, f.Conditions})
		if f.RetryConfiguration != nil && (f.Result == nil || *f.Result != model.ResultRetry) {
			return model.ErrInvalidStageDeclaration("Stage '%s' declares a retryConfiguration in onFailure, which needs the result RETRY", name)
		}
	}
	if len(all) > 0 && !v.v2() {
		return model.ErrInvalidStageDeclaration("Stage '%s' declares conditions, which are only available for pipelines of type V2", name)
	}
	if len(all) > 0 && index == 0 {
		return model.ErrInvalidStageDeclaration("Stage '%s' is the pipeline's source stage, which cannot declare conditions", name)
	}
	ruleNames := map[string]bool{}
	for _, d := range all {
		result := d.result
		for _, c := range d.conds {
			if result == nil {
				result = c.Result
			} else if c.Result != nil && *c.Result != *result {
				return model.ErrInvalidStageDeclaration("The %s condition of stage '%s' declares the result %s, which conflicts with the result %s declared for its %s", d.kind.name, name, *c.Result, *result, d.kind.name)
			}
		}
		if result == nil {
			return model.ErrInvalidStageDeclaration("The %s conditions of stage '%s' declare no result; the result must be one of %s", d.kind.name, name, joinResults(d.kind.results))
		}
		if !slices.Contains(d.kind.results, *result) {
			return model.ErrInvalidStageDeclaration("The result %s is not valid for %s in stage '%s'; it must be one of %s", *result, d.kind.name, name, joinResults(d.kind.results))
		}
		if *result == model.ResultRollback && *v.p.ExecutionMode == model.ExecutionModeParallel {
			return model.ErrInvalidStageDeclaration("Stage '%s' declares the result ROLLBACK, which is not available for pipelines in PARALLEL execution mode", name)
		}
		if d.kind.name != onFailureKind.name && len(d.conds) == 0 {
			return model.ErrInvalidStageDeclaration("The %s of stage '%s' declares no condition", d.kind.name, name)
		}
		for _, c := range d.conds {
			for i := range c.Rules {
				if err := v.rule(name, d.kind, &c.Rules[i], ruleNames); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func joinResults(results []model.Result) string {
	out := make([]string, len(results))
	for i, r := range results {
		out[i] = string(r)
	}
	return strings.Join(out, ", ")
}

// rule checks a rule declaration against its rule type.
func (v *validator) rule(stage string, kind conditionKind, r *model.RuleDeclaration, names map[string]bool) error {
	id := r.RuleTypeId
	name := str(r.Name)
	key := kind.name + "\x00" + name
	if names[key] {
		return model.ErrInvalidStageDeclaration("Rule name '%s' is used more than once in the %s condition of stage '%s'", name, kind.name, stage)
	}
	names[key] = true
	rt, ok := catalog.LookupRuleType(str(id.Provider), str(id.Version))
	if !ok || (id.Owner != nil && *id.Owner != model.RuleOwnerAws) {
		return model.ErrInvalidStageDeclaration("Rule '%s' in stage '%s' uses rule type (Category: 'Rule', Provider: '%s', Version: '%s'), which does not exist", name, stage, str(id.Provider), str(id.Version))
	}
	known := map[string]bool{}
	for _, prop := range rt.Properties {
		known[prop.Name] = true
		if prop.Required && r.Configuration[prop.Name] == "" {
			return model.ErrInvalidStageDeclaration("Rule configuration for rule '%s' is missing required configuration '%s'", name, prop.Name)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Configuration)) {
		if !known[k] {
			return model.ErrInvalidStageDeclaration("Rule configuration for rule '%s' contains unknown configuration '%s'", name, k)
		}
	}
	if n := len(r.InputArtifacts); n < rt.MinInputs || n > rt.MaxInputs {
		return model.ErrInvalidStageDeclaration("Rule '%s' in stage '%s' declares %d input artifacts; rules of provider %s take between %d and %d", name, stage, n, str(id.Provider), rt.MinInputs, rt.MaxInputs)
	}
	commands := rt.Commands
	switch {
	case commands && len(r.Commands) == 0:
		return model.ErrInvalidStageDeclaration("Rule '%s' in stage '%s' is a Commands rule and must declare the commands it runs", name, stage)
	case !commands && len(r.Commands) > 0:
		return model.ErrInvalidStageDeclaration("Rule '%s' in stage '%s' declares commands, which only Commands rules can", name, stage)
	}
	return nil
}

func (v *validator) variables() error {
	names := map[string]bool{}
	for _, variable := range v.p.Variables {
		if names[str(variable.Name)] {
			return model.ErrInvalidStructure("Pipeline variable '%s' is declared more than once", str(variable.Name))
		}
		names[str(variable.Name)] = true
	}
	return nil
}

// Trigger messages, in AWS's words.
const (
	// msgTriggerSource is CodePipeline's answer to a trigger that names no CodeStarSourceConnection
	// source action of the pipeline, or a second trigger for one.
	msgTriggerSource = "Triggers for connection must reference a CodeStarSourceConnection action. Note that when you specify a trigger, you cant specify more than one trigger per source action."
	// msgTriggerFilters is its answer to a trigger whose filters do not combine: a push filter
	// on both branches and tags, for one.
	msgTriggerFilters = "The trigger configuration for the source action is not valid. Make sure to choose valid filter combinations."
)

// triggers checks the pipeline's triggers: each names a source action of a connection
// (CodeStarSourceConnection: CodeCommit, S3 and the others start pipelines by their own change
// detection), at most one trigger names an action, and its filters are of a valid combination.
// The numbers of filters and patterns are the model's constraints (3 push and 3 pull request
// filters, 1 to 8 includes and excludes each, 50 triggers).
func (v *validator) triggers() error {
	sources := map[string]model.ActionDeclaration{}
	for _, a := range v.p.Stages[0].Actions {
		sources[str(a.Name)] = a
	}
	named := map[string]bool{}
	for _, t := range v.p.Triggers {
		gc := t.GitConfiguration
		name := str(gc.SourceActionName)
		a, ok := sources[name]
		if !ok || str(a.ActionTypeId.Provider) != connectionProvider || named[name] {
			return model.ErrInvalidStructure(msgTriggerSource)
		}
		named[name] = true
		if !validFilters(gc) {
			return model.ErrInvalidStructure(msgTriggerFilters)
		}
	}
	return nil
}

// validFilters reports whether a trigger's filters are of the combinations CodePipeline takes:
// push filters on tags, on branches, or on branches and file paths; pull request filters on
// branches, or on branches and file paths; and at least one filter.
func validFilters(gc *model.GitConfiguration) bool {
	if len(gc.Push) == 0 && len(gc.PullRequest) == 0 {
		return false
	}
	for _, f := range gc.Push {
		branches := f.Branches != nil && declares(f.Branches.Includes, f.Branches.Excludes)
		tags := f.Tags != nil && declares(f.Tags.Includes, f.Tags.Excludes)
		paths := f.FilePaths != nil && declares(f.FilePaths.Includes, f.FilePaths.Excludes)
		if branches == tags || (tags && paths) {
			return false
		}
	}
	for _, f := range gc.PullRequest {
		if f.Branches == nil || !declares(f.Branches.Includes, f.Branches.Excludes) {
			return false
		}
	}
	return true
}

// declares reports whether a filter criteria names any pattern.
func declares(includes, excludes []string) bool { return len(includes)+len(excludes) > 0 }

// MaskSecrets replaces the values of secret configuration properties with catalog.SecretMask.
func MaskSecrets(p *model.PipelineDeclaration, types ActionTypes) {
	eachSecret(p, types, func(a *model.ActionDeclaration, key string, _ string) {
		a.Configuration[key] = catalog.SecretMask
	})
}

// KeepSecrets puts back, in an updated declaration, the stored values of secret properties that
// the caller sent masked — the way AWS lets a declaration from GetPipeline be sent back as is.
func KeepSecrets(updated, previous *model.PipelineDeclaration, types ActionTypes) {
	stored := map[string]string{}
	eachSecret(previous, types, func(a *model.ActionDeclaration, key, stage string) {
		stored[stage+"\x00"+str(a.Name)+"\x00"+key] = a.Configuration[key]
	})
	eachSecret(updated, types, func(a *model.ActionDeclaration, key, stage string) {
		if a.Configuration[key] == catalog.SecretMask {
			if old, ok := stored[stage+"\x00"+str(a.Name)+"\x00"+key]; ok {
				a.Configuration[key] = old
			}
		}
	})
}

func eachSecret(p *model.PipelineDeclaration, types ActionTypes, fn func(a *model.ActionDeclaration, key, stage string)) {
	for i := range p.Stages {
		for j := range p.Stages[i].Actions {
			a := &p.Stages[i].Actions[j]
			if a.ActionTypeId == nil {
				continue
			}
			t, ok, err := types(*a.ActionTypeId)
			if err != nil || !ok {
				continue
			}
			for _, prop := range t.Properties {
				if _, set := a.Configuration[prop.Name]; prop.Secret && set {
					fn(a, prop.Name, str(p.Stages[i].Name))
				}
			}
		}
	}
}

// regionConstant writes a region the way CodePipeline's messages do: us-east-1 → US_EAST_1.
func regionConstant(region string) string {
	return strings.ToUpper(strings.ReplaceAll(region, "-", "_"))
}
