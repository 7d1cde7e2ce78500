package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/netip"

	"github.com/sluicehq/sluice/internal/arn"
	"github.com/sluicehq/sluice/internal/catalog"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/webhooks/filter"
)

func (s *Service) webhookARN(name string) string {
	return arn.Webhook(s.cfg.Region, s.cfg.AccountID, name)
}

func (s *Service) PutWebhook(ctx context.Context, in *model.PutWebhookInput) (*model.PutWebhookOutput, error) {
	def := in.Webhook
	arn := s.webhookARN(*def.Name)
	if err := checkTags(in.Tags, s.cfg.Limits.TagsPerResource, arn); err != nil {
		return nil, err
	}
	if err := checkWebhookAuthentication(def); err != nil {
		return nil, err
	}
	rec, err := s.store.GetPipeline(ctx, *def.TargetPipeline, 0)
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.errPipelineNotFound(*def.TargetPipeline)
	}
	if err != nil {
		return nil, internal("put webhook", err)
	}
	decl, err := declaration(rec)
	if err != nil {
		return nil, err
	}
	var target *model.ActionDeclaration
	for i := range decl.Stages[0].Actions {
		if *decl.Stages[0].Actions[i].Name == *def.TargetAction {
			target = &decl.Stages[0].Actions[i]
		}
	}
	if target == nil {
		return nil, model.ErrActionNotFound("Action with name %s was not found in the first stage of the pipeline", *def.TargetAction)
	}
	for _, f := range def.Filters {
		if err := checkFilter(f, target); err != nil {
			return nil, err
		}
	}

	url := ""
	if existing, err := s.store.GetWebhook(ctx, *def.Name); err == nil {
		url = existing.URL
		if err := keepSecretToken(def, existing); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, internal("put webhook", err)
	} else {
		token := make([]byte, 16)
		if _, err := rand.Read(token); err != nil {
			return nil, internal("put webhook", err)
		}
		url = s.cfg.WebhookURL(hex.EncodeToString(token))
	}
	doc, err := json.Marshal(def)
	if err != nil {
		return nil, internal("encode webhook", err)
	}
	err = s.store.PutWebhook(ctx, store.Webhook{Name: *def.Name, Definition: doc, URL: url}, arn, storeTags(in.Tags), s.cfg.Limits.Webhooks, s.cfg.Limits.TagsPerResource)
	switch {
	case errors.Is(err, store.ErrLimitExceeded):
		return nil, model.ErrLimitExceeded("Account '%s' already has %d webhooks, the limit in this region", s.cfg.AccountID, s.cfg.Limits.Webhooks)
	case errors.Is(err, store.ErrTooManyTags):
		return nil, errTagLimit(arn)
	case err != nil:
		return nil, internal("put webhook", conflict(err, "The webhook"))
	}
	stored, err := s.store.GetWebhook(ctx, *def.Name)
	if err != nil {
		return nil, internal("put webhook", err)
	}
	item, err := s.webhookItem(ctx, stored)
	if err != nil {
		return nil, err
	}
	return &model.PutWebhookOutput{Webhook: &item}, nil
}

// keepSecretToken gives def the stored webhook's secret token when def sends back the mask that
// answers show in its place, as an update of a pipeline keeps its secret configuration.
func keepSecretToken(def *model.WebhookDefinition, stored store.Webhook) error {
	conf := def.AuthenticationConfiguration
	if conf == nil || conf.SecretToken == nil || *conf.SecretToken != catalog.SecretMask {
		return nil
	}
	var previous model.WebhookDefinition
	if err := json.Unmarshal(stored.Definition, &previous); err != nil {
		return internal("decode webhook "+stored.Name, err)
	}
	if p := previous.AuthenticationConfiguration; p != nil && p.SecretToken != nil {
		conf.SecretToken = p.SecretToken
	}
	return nil
}

func checkWebhookAuthentication(def *model.WebhookDefinition) error {
	conf := def.AuthenticationConfiguration
	switch *def.Authentication {
	case model.WebhookAuthenticationTypeGithubHmac:
		if conf.SecretToken == nil || *conf.SecretToken == "" {
			return model.ErrInvalidWebhookAuthenticationParameters("GITHUB_HMAC authentication needs a SecretToken in authenticationConfiguration")
		}
		if conf.AllowedIPRange != nil {
			return model.ErrInvalidWebhookAuthenticationParameters("GITHUB_HMAC authentication takes a SecretToken, not an AllowedIPRange")
		}
	case model.WebhookAuthenticationTypeIp:
		if conf.AllowedIPRange == nil {
			return model.ErrInvalidWebhookAuthenticationParameters("IP authentication needs an AllowedIPRange in CIDR notation in authenticationConfiguration")
		}
		if _, err := netip.ParsePrefix(*conf.AllowedIPRange); err != nil {
			return model.ErrInvalidWebhookAuthenticationParameters("AllowedIPRange '%s' is not an IP range in CIDR notation, such as 10.0.0.0/8", *conf.AllowedIPRange)
		}
		if conf.SecretToken != nil {
			return model.ErrInvalidWebhookAuthenticationParameters("IP authentication takes an AllowedIPRange, not a SecretToken")
		}
	case model.WebhookAuthenticationTypeUnauthenticated:
		if conf.SecretToken != nil || conf.AllowedIPRange != nil {
			return model.ErrInvalidWebhookAuthenticationParameters("UNAUTHENTICATED webhooks take no authentication parameters")
		}
	}
	return nil
}

func checkFilter(f model.WebhookFilterRule, target *model.ActionDeclaration) error {
	path := *f.JsonPath
	if _, err := filter.Compile(path); errors.Is(err, filter.ErrNotAtRoot) {
		return model.ErrInvalidWebhookFilterPattern("JsonPath '%s' must start at the document root, '$'", path)
	} else if err != nil {
		return model.ErrInvalidWebhookFilterPattern("JsonPath '%s' is not a valid JSONPath expression: %v", path, err)
	}
	if f.MatchEquals == nil {
		return nil
	}
	for _, key := range filter.Placeholders(*f.MatchEquals) {
		if _, ok := target.Configuration[key]; !ok {
			return model.ErrInvalidWebhookFilterPattern("MatchEquals '%s' refers to {%s}, which is not a configuration property of action '%s'", *f.MatchEquals, key, *target.Name)
		}
	}
	return nil
}

func (s *Service) webhookItem(ctx context.Context, w store.Webhook) (model.ListWebhookItem, error) {
	var def model.WebhookDefinition
	if err := json.Unmarshal(w.Definition, &def); err != nil {
		return model.ListWebhookItem{}, internal("decode webhook "+w.Name, err)
	}
	arn := s.webhookARN(w.Name)
	tags, err := s.store.ListTags(ctx, arn, store.Page{Limit: s.cfg.Limits.TagsPerResource + 1})
	if err != nil {
		return model.ListWebhookItem{}, internal("list webhook tags", err)
	}
	// "If a secret token was provided, it will be redacted in the response" (the model).
	if conf := def.AuthenticationConfiguration; conf != nil && conf.SecretToken != nil {
		conf.SecretToken = new(catalog.SecretMask)
	}
	item := model.ListWebhookItem{Definition: &def, Url: new(w.URL), Arn: new(arn)}
	if len(tags) > 0 { // an untagged webhook has no tags member, as in AWS
		item.Tags = modelTags(tags)
	}
	if w.LastTriggered != nil {
		item.LastTriggered = model.NewTimestamp(*w.LastTriggered)
	}
	if w.ErrorMessage != "" {
		item.ErrorMessage, item.ErrorCode = new(w.ErrorMessage), new(w.ErrorCode)
	}
	return item, nil
}

func (s *Service) ListWebhooks(ctx context.Context, in *model.ListWebhooksInput) (*model.ListWebhooksOutput, error) {
	size := 100
	if in.MaxResults != nil {
		size = *in.MaxResults
	}
	hooks, next, err := page(s.tokens, "ListWebhooks", in.NextToken, size,
		func(w store.Webhook) string { return w.Name },
		func(after string, n int) ([]store.Webhook, error) {
			return s.store.ListWebhooks(ctx, store.Page{After: after, Limit: n})
		})
	if err != nil {
		return nil, err
	}
	out := &model.ListWebhooksOutput{Webhooks: make([]model.ListWebhookItem, len(hooks)), NextToken: next}
	for i, w := range hooks {
		if out.Webhooks[i], err = s.webhookItem(ctx, w); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Service) DeleteWebhook(ctx context.Context, in *model.DeleteWebhookInput) (*model.DeleteWebhookOutput, error) {
	if err := s.store.DeleteWebhook(ctx, *in.Name, s.webhookARN(*in.Name)); err != nil {
		return nil, internal("delete webhook", conflict(err, "The webhook"))
	}
	return &model.DeleteWebhookOutput{}, nil
}

func (s *Service) setRegistered(ctx context.Context, name *string, registered bool) error {
	if name == nil {
		return model.ErrNull("webhookName")
	}
	err := s.store.SetWebhookRegistered(ctx, *name, registered)
	if errors.Is(err, store.ErrNotFound) {
		return model.ErrWebhookNotFound("Account '%s' does not have a webhook with name '%s'", s.cfg.AccountID, *name)
	}
	if err != nil {
		return internal("register webhook", err)
	}
	return nil
}

func (s *Service) RegisterWebhookWithThirdParty(ctx context.Context, in *model.RegisterWebhookWithThirdPartyInput) (*model.RegisterWebhookWithThirdPartyOutput, error) {
	if err := s.setRegistered(ctx, in.WebhookName, true); err != nil {
		return nil, err
	}
	return &model.RegisterWebhookWithThirdPartyOutput{}, nil
}

func (s *Service) DeregisterWebhookWithThirdParty(ctx context.Context, in *model.DeregisterWebhookWithThirdPartyInput) (*model.DeregisterWebhookWithThirdPartyOutput, error) {
	if err := s.setRegistered(ctx, in.WebhookName, false); err != nil {
		return nil, err
	}
	return &model.DeregisterWebhookWithThirdPartyOutput{}, nil
}
