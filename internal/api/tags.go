package api

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"github.com/sluicehq/sluice/internal/arn"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
)

func storeTags(tags []model.Tag) []store.Tag {
	out := make([]store.Tag, len(tags))
	for i, t := range tags {
		out[i] = store.Tag{Key: *t.Key, Value: *t.Value}
	}
	return out
}

// checkTags applies AWS's tagging rules to the tags one request gives the resource arn.
func checkTags(tags []model.Tag, limit int, arn string) error {
	seen := map[string]bool{}
	for _, t := range tags {
		if systemTag(*t.Key) {
			return errSystemTags()
		}
		if seen[*t.Key] {
			return model.ErrInvalidTags("Tag key '%s' is given more than once", *t.Key)
		}
		seen[*t.Key] = true
	}
	if len(tags) > limit {
		return errTagLimit(arn)
	}
	return nil
}

// systemTag reports whether a tag key is one of AWS's own, which callers may not change.
func systemTag(key string) bool { return strings.HasPrefix(strings.ToLower(key), "aws:") }

func errSystemTags() error {
	return model.ErrInvalidTags("Not allowed to modify system tags. System tags start with 'aws:'. msg=[Caller is an end user and not allowed to mutate system tags]")
}

func errTagLimit(arn string) error {
	return model.ErrTooManyTags("Tag limit exceeded for resource [%s].", arn)
}

var pipelineNamePattern = regexp.MustCompile(`^[A-Za-z0-9.@\-_]{1,100}$`)

// taggable checks that resourceARN names a resource of this account and region that exists.
func (s *Service) taggable(ctx context.Context, resourceARN string) error {
	r, err := arn.Parse(resourceARN)
	if err != nil {
		return model.ErrInvalidArn("The ARN '%s' is not a CodePipeline resource ARN", resourceARN)
	}
	notFound := model.ErrResourceNotFound("The resource '%s' does not exist", resourceARN)
	if r.Region != s.cfg.Region || r.Account != s.cfg.AccountID {
		return notFound
	}
	switch {
	case r.Kind == arn.KindWebhook && r.Name != "":
		_, err = s.store.GetWebhook(ctx, r.Name)
	case r.Kind == arn.KindActionType && r.Name != "":
		fields := strings.Split(r.Name, "/")
		if len(fields) != 4 || fields[0] != string(model.ActionOwnerCustom) {
			return model.ErrInvalidArn("The ARN '%s' does not name an action type as Custom/<category>/<provider>/<version>", resourceARN)
		}
		_, err = s.store.GetActionType(ctx, executor.TypeKey(fields[1], fields[0], fields[2], fields[3]))
	case r.Kind == arn.KindPipeline && pipelineNamePattern.MatchString(r.Name):
		if _, err = s.store.GetPipeline(ctx, r.Name, 0); errors.Is(err, store.ErrNotFound) {
			return s.errNoSuchPipeline(r.Name)
		}
	default:
		return model.ErrInvalidArn("The ARN '%s' does not name a pipeline, webhook or custom action type", resourceARN)
	}
	if errors.Is(err, store.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return internal("look up tagged resource", err)
	}
	return nil
}

func (s *Service) TagResource(ctx context.Context, in *model.TagResourceInput) (*model.TagResourceOutput, error) {
	if err := s.taggable(ctx, *in.ResourceArn); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags, s.cfg.Limits.TagsPerResource, *in.ResourceArn); err != nil {
		return nil, err
	}
	err := s.store.TagResource(ctx, *in.ResourceArn, storeTags(in.Tags), s.cfg.Limits.TagsPerResource)
	if errors.Is(err, store.ErrTooManyTags) {
		return nil, errTagLimit(*in.ResourceArn)
	}
	if err != nil {
		return nil, internal("tag resource", conflict(err, "The resource's tags"))
	}
	return &model.TagResourceOutput{}, nil
}

func (s *Service) UntagResource(ctx context.Context, in *model.UntagResourceInput) (*model.UntagResourceOutput, error) {
	if err := s.taggable(ctx, *in.ResourceArn); err != nil {
		return nil, err
	}
	for _, k := range in.TagKeys {
		if systemTag(k) {
			return nil, errSystemTags()
		}
	}
	if err := s.store.UntagResource(ctx, *in.ResourceArn, in.TagKeys); err != nil {
		return nil, internal("untag resource", conflict(err, "The resource's tags"))
	}
	return &model.UntagResourceOutput{}, nil
}

func (s *Service) ListTagsForResource(ctx context.Context, in *model.ListTagsForResourceInput) (*model.ListTagsForResourceOutput, error) {
	if err := s.taggable(ctx, *in.ResourceArn); err != nil {
		return nil, err
	}
	size := 50
	if in.MaxResults != nil {
		size = *in.MaxResults
	}
	tags, next, err := page(s.tokens, "ListTagsForResource:"+*in.ResourceArn, in.NextToken, size,
		func(t store.Tag) string { return t.Key },
		func(after string, n int) ([]store.Tag, error) {
			return s.store.ListTags(ctx, *in.ResourceArn, store.Page{After: after, Limit: n})
		})
	if err != nil {
		return nil, err
	}
	return &model.ListTagsForResourceOutput{Tags: modelTags(tags), NextToken: next}, nil
}

func modelTags(tags []store.Tag) []model.Tag {
	out := make([]model.Tag, len(tags))
	for i, t := range tags {
		out[i] = model.Tag{Key: new(t.Key), Value: new(t.Value)}
	}
	return out
}
