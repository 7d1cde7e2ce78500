package api

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/internal/arn"
	"github.com/sluicehq/sluice/internal/catalog"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
)

// Custom action types are stored as the model.ActionType that ListActionTypes returns; AWS and
// ThirdParty types come from the catalog, and a ThirdParty type changed with UpdateActionType is
// stored as its model.ActionTypeDeclaration, which then takes the catalog's place.

func (s *Service) actionTypeARN(category, provider, version string) string {
	return arn.ActionType(s.cfg.Region, s.cfg.AccountID, category, provider, version)
}

// actionTypes resolves the action types a pipeline declaration uses.
func (s *Service) actionTypes(ctx context.Context) pipeline.ActionTypes {
	return func(id model.ActionTypeId) (catalog.ActionType, bool, error) {
		if *id.Owner != model.ActionOwnerCustom {
			t, ok := catalog.LookupActionType(*id.Category, *id.Owner, *id.Provider, *id.Version)
			return t, ok, nil
		}
		rec, err := s.store.GetActionType(ctx, executor.KeyOf(&id))
		if errors.Is(err, store.ErrNotFound) {
			return catalog.ActionType{}, false, nil
		}
		if err != nil {
			return catalog.ActionType{}, false, internal("look up action type", err)
		}
		var at model.ActionType
		if err := json.Unmarshal(rec.Declaration, &at); err != nil {
			return catalog.ActionType{}, false, internal("decode action type", err)
		}
		return catalog.Custom(at), true, nil
	}
}

func (s *Service) CreateCustomActionType(ctx context.Context, in *model.CreateCustomActionTypeInput) (*model.CreateCustomActionTypeOutput, error) {
	category, provider, version := string(*in.Category), *in.Provider, *in.Version
	if err := checkTags(in.Tags, s.cfg.Limits.TagsPerResource, s.actionTypeARN(category, provider, version)); err != nil {
		return nil, err
	}
	for _, d := range []*model.ArtifactDetails{in.InputArtifactDetails, in.OutputArtifactDetails} {
		if *d.MinimumCount > *d.MaximumCount {
			return nil, model.ErrValidation("An artifact details' minimumCount (%d) is greater than its maximumCount (%d)", *d.MinimumCount, *d.MaximumCount)
		}
	}
	queryable := 0
	for _, p := range in.ConfigurationProperties {
		if p.Queryable != nil && *p.Queryable {
			queryable++
			if !*p.Required || *p.Secret {
				return nil, model.ErrValidation("Configuration property '%s' is queryable, so it must be required and not secret", *p.Name)
			}
		}
	}
	if queryable > 1 {
		return nil, model.ErrValidation("An action type can have at most one queryable configuration property; this one has %d", queryable)
	}
	at := model.ActionType{
		Id:                            &model.ActionTypeId{Category: in.Category, Owner: new(model.ActionOwnerCustom), Provider: in.Provider, Version: in.Version},
		Settings:                      in.Settings,
		ActionConfigurationProperties: in.ConfigurationProperties,
		InputArtifactDetails:          in.InputArtifactDetails,
		OutputArtifactDetails:         in.OutputArtifactDetails,
	}
	if at.ActionConfigurationProperties == nil {
		at.ActionConfigurationProperties = []model.ActionConfigurationProperty{}
	}
	doc, err := json.Marshal(at)
	if err != nil {
		return nil, internal("encode action type", err)
	}
	err = s.store.CreateActionType(ctx, store.ActionType{
		ID: executor.TypeKey(category, "Custom", provider, version), Owner: "Custom", Declaration: doc, Created: s.now(),
	}, s.actionTypeARN(category, provider, version), storeTags(in.Tags), s.cfg.Limits.CustomActionTypes)
	switch {
	case errors.Is(err, store.ErrExists):
		return nil, model.ErrActionTypeAlreadyExists("Action type (Category: '%s', Owner: 'Custom', Provider: '%s', Version: '%s') already exists in account '%s', or existed with a different definition: a new definition needs a version that has never been used, and a deleted one is restored only by its identical definition", category, provider, version, s.cfg.AccountID)
	case errors.Is(err, store.ErrLimitExceeded):
		return nil, model.ErrLimitExceeded("Account '%s' already has %d custom action types, the limit in this region", s.cfg.AccountID, s.cfg.Limits.CustomActionTypes)
	case err != nil:
		return nil, internal("create custom action type", conflict(err, "The action type"))
	}
	return &model.CreateCustomActionTypeOutput{ActionType: &at, Tags: in.Tags}, nil
}

func (s *Service) DeleteCustomActionType(ctx context.Context, in *model.DeleteCustomActionTypeInput) error {
	category, provider, version := string(*in.Category), *in.Provider, *in.Version
	err := s.store.DeleteActionType(ctx, executor.TypeKey(category, "Custom", provider, version), s.actionTypeARN(category, provider, version))
	if err != nil {
		return internal("delete custom action type", conflict(err, "The action type"))
	}
	return nil
}

func (s *Service) ListActionTypes(ctx context.Context, in *model.ListActionTypesInput) (*model.ListActionTypesOutput, error) {
	var owner model.ActionOwner
	if in.ActionOwnerFilter != nil {
		owner = *in.ActionOwnerFilter
	}
	all, err := s.allActionTypes(ctx, owner)
	if err != nil {
		return nil, err
	}
	types, next, err := page(s.tokens, "ListActionTypes", in.NextToken, 100, typeKey, func(after string, n int) ([]model.ActionType, error) {
		i, _ := slices.BinarySearchFunc(all, after, func(t model.ActionType, k string) int { return strings.Compare(typeKey(t), k) })
		for i < len(all) && typeKey(all[i]) <= after {
			i++
		}
		return all[i:min(len(all), i+n)], nil
	})
	if err != nil {
		return nil, err
	}
	return &model.ListActionTypesOutput{ActionTypes: types, NextToken: next}, nil
}

func typeKey(t model.ActionType) string {
	return executor.KeyOf(t.Id)
}

// allActionTypes lists the catalog's action types and the stored ones, of one owner or all, by key.
func (s *Service) allActionTypes(ctx context.Context, owner model.ActionOwner) ([]model.ActionType, error) {
	byKey := map[string]model.ActionType{}
	for _, t := range catalog.ActionTypes() {
		if owner == "" || t.Owner == owner {
			m := t.Model()
			byKey[typeKey(m)] = m
		}
	}
	for after := ""; ; {
		recs, err := s.store.ListActionTypes(ctx, string(owner), store.Page{After: after, Limit: 500})
		if err != nil {
			return nil, internal("list action types", err)
		}
		for _, rec := range recs {
			m, err := storedActionType(rec)
			if err != nil {
				return nil, err
			}
			byKey[rec.ID] = m
		}
		if len(recs) < 500 {
			break
		}
		after = recs[len(recs)-1].ID
	}
	out := make([]model.ActionType, 0, len(byKey))
	for _, t := range byKey {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b model.ActionType) int { return strings.Compare(typeKey(a), typeKey(b)) })
	return out, nil
}

// storedActionType reads a stored action type as ListActionTypes describes it.
func storedActionType(rec store.ActionType) (model.ActionType, error) {
	if rec.Owner == string(model.ActionOwnerCustom) {
		var at model.ActionType
		if err := json.Unmarshal(rec.Declaration, &at); err != nil {
			return at, internal("decode action type "+rec.ID, err)
		}
		return at, nil
	}
	var decl model.ActionTypeDeclaration
	if err := json.Unmarshal(rec.Declaration, &decl); err != nil {
		return model.ActionType{}, internal("decode action type "+rec.ID, err)
	}
	return summary(&decl), nil
}

// summary turns a full declaration into the ActionType form of ListActionTypes.
func summary(d *model.ActionTypeDeclaration) model.ActionType {
	owner := model.ActionOwner(*d.Id.Owner)
	at := model.ActionType{
		Id:                            &model.ActionTypeId{Category: d.Id.Category, Owner: &owner, Provider: d.Id.Provider, Version: d.Id.Version},
		InputArtifactDetails:          &model.ArtifactDetails{MinimumCount: d.InputArtifactDetails.MinimumCount, MaximumCount: d.InputArtifactDetails.MaximumCount},
		OutputArtifactDetails:         &model.ArtifactDetails{MinimumCount: d.OutputArtifactDetails.MinimumCount, MaximumCount: d.OutputArtifactDetails.MaximumCount},
		ActionConfigurationProperties: []model.ActionConfigurationProperty{},
	}
	if u := d.Urls; u != nil {
		at.Settings = &model.ActionTypeSettings{ThirdPartyConfigurationUrl: u.ConfigurationUrl, EntityUrlTemplate: u.EntityUrlTemplate,
			ExecutionUrlTemplate: u.ExecutionUrlTemplate, RevisionUrlTemplate: u.RevisionUrlTemplate}
	}
	for _, p := range d.Properties {
		at.ActionConfigurationProperties = append(at.ActionConfigurationProperties, model.ActionConfigurationProperty{
			Name: p.Name, Required: new(!*p.Optional), Key: p.Key, Secret: p.NoEcho, Queryable: p.Queryable, Description: p.Description,
		})
	}
	return at
}

// declarationOf describes a catalog action type as GetActionType does.
func declarationOf(t catalog.ActionType) *model.ActionTypeDeclaration {
	d := &model.ActionTypeDeclaration{
		Id: &model.ActionTypeIdentifier{Category: new(t.Category), Owner: new(string(t.Owner)), Provider: new(t.Provider), Version: new(t.Version)},
		Executor: &model.ActionTypeExecutor{Type: new(model.ExecutorTypeJobWorker),
			Configuration: &model.ExecutorConfiguration{JobWorkerExecutorConfiguration: &model.JobWorkerExecutorConfiguration{}}},
		InputArtifactDetails:  &model.ActionTypeArtifactDetails{MinimumCount: new(t.MinInputs), MaximumCount: new(t.MaxInputs)},
		OutputArtifactDetails: &model.ActionTypeArtifactDetails{MinimumCount: new(t.MinOutputs), MaximumCount: new(t.MaxOutputs)},
		Properties:            []model.ActionTypeProperty{},
	}
	for _, p := range t.Properties {
		d.Properties = append(d.Properties, model.ActionTypeProperty{
			Name: new(p.Name), Optional: new(!p.Required), Key: new(p.Key), NoEcho: new(p.Secret), Queryable: new(p.Queryable),
		})
	}
	return d
}

func (s *Service) GetActionType(ctx context.Context, in *model.GetActionTypeInput) (*model.GetActionTypeOutput, error) {
	key := executor.TypeKey(string(*in.Category), *in.Owner, *in.Provider, *in.Version)
	rec, err := s.store.GetActionType(ctx, key)
	if err == nil {
		var decl model.ActionTypeDeclaration
		if err := json.Unmarshal(rec.Declaration, &decl); err != nil {
			return nil, internal("decode action type "+key, err)
		}
		return &model.GetActionTypeOutput{ActionType: &decl}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, internal("get action type", err)
	}
	t, ok := catalog.LookupActionType(*in.Category, model.ActionOwner(*in.Owner), *in.Provider, *in.Version)
	if !ok {
		return nil, errActionTypeNotFound(string(*in.Category), *in.Owner, *in.Provider, *in.Version)
	}
	return &model.GetActionTypeOutput{ActionType: declarationOf(t)}, nil
}

func errActionTypeNotFound(category, owner, provider, version string) error {
	return model.ErrActionTypeNotFound("ActionType (Category: '%s', Owner: '%s', Provider: '%s', Version: '%s') is not available", category, owner, provider, version)
}

func (s *Service) UpdateActionType(ctx context.Context, in *model.UpdateActionTypeInput) error {
	d := in.ActionType
	id := d.Id
	if _, ok := catalog.LookupActionType(*id.Category, model.ActionOwner(*id.Owner), *id.Provider, *id.Version); !ok {
		return errActionTypeNotFound(string(*id.Category), *id.Owner, *id.Provider, *id.Version)
	}
	if *id.Owner == string(model.ActionOwnerAws) {
		return model.ErrRequestFailed("Action types owned by AWS cannot be updated; only ThirdParty action types can")
	}
	doc, err := json.Marshal(d)
	if err != nil {
		return internal("encode action type", err)
	}
	key := executor.TypeKey(string(*id.Category), *id.Owner, *id.Provider, *id.Version)
	rec := store.ActionType{ID: key, Owner: *id.Owner, Declaration: doc, Created: s.now()}
	err = s.store.UpdateActionType(ctx, rec)
	if errors.Is(err, store.ErrNotFound) {
		err = s.store.CreateActionType(ctx, rec, "", nil, 0)
	}
	if errors.Is(err, store.ErrExists) {
		err = s.store.UpdateActionType(ctx, rec)
	}
	if err != nil {
		return internal("update action type", err)
	}
	return nil
}

func (s *Service) ListRuleTypes(ctx context.Context, in *model.ListRuleTypesInput) (*model.ListRuleTypesOutput, error) {
	out := &model.ListRuleTypesOutput{RuleTypes: []model.RuleType{}}
	for _, t := range catalog.RuleTypes() {
		out.RuleTypes = append(out.RuleTypes, t.Model())
	}
	return out, nil
}
