// Package webhooks serves the URLs that PutWebhook hands out: a POST to
// /_sluice/webhooks/trigger?t=<token>&v=1 is a delivery to the webhook whose URL carries the token.
// A delivery that passes the webhook's authentication (GITHUB_HMAC, IP or UNAUTHENTICATED) and
// all its filters is recorded as a source event, which starts the webhook's target pipeline
// (trigger Webhook, detail the webhook's ARN); any other starts nothing.
//
// Answers, all JSON {"message": "…"}:
//
//	200  accepted: the delivery is recorded and will start the pipeline
//	200  ignored: a filter did not match (AWS: "Otherwise, the request is ignored")
//	401  GITHUB_HMAC: X-Hub-Signature-256 (or X-Hub-Signature) missing or wrong
//	403  IP: the client address is outside AllowedIPRange
//	404  no webhook has this URL, or its target pipeline or action no longer exists
//	405  not a POST
//	413  the body is over MaxBodyBytes
//	500  the delivery could not be recorded: nothing starts, the sender may redeliver
package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/arn"
	"github.com/sluicehq/sluice/internal/delivery"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/sources"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/webhooks/filter"
)

// Path is where deliveries arrive; PutWebhook's URLs point here, under the public URL.
const Path = "/_sluice/webhooks/trigger"

// URL is the URL of a webhook of account whose deliveries carry token, under publicURL; account
// is empty for the server's own account.
func URL(publicURL, token, account string) string {
	u := strings.TrimSuffix(publicURL, "/") + Path + "?t=" + token + "&v=1"
	if account != "" {
		u += "&" + delivery.AccountParameter + "=" + account
	}
	return u
}

// MaxBodyBytes bounds a delivery's body unless Config says otherwise.
const MaxBodyBytes = delivery.MaxBodyBytes

// Recorder records a source event durably; the watcher starts what it calls for.
type Recorder interface {
	Record(ctx context.Context, e sources.Event) error
}

// Store is what deliveries read and write of the store.
type Store interface {
	ListWebhooks(ctx context.Context, page store.Page) ([]store.Webhook, error)
	GetPipeline(ctx context.Context, name string, version int) (store.Pipeline, error)
	SetWebhookTriggered(ctx context.Context, name string, at time.Time) error
}

// Config configures a Handler.
type Config struct {
	Store     Store
	Recorder  Recorder
	Region    string
	AccountID string
	// MaxBodyBytes bounds a delivery's body; 0 means MaxBodyBytes.
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Now is the clock for lastTriggered; nil means time.Now.
	Now func() time.Time
}

// Handler serves webhook deliveries.
type Handler struct{ cfg Config }

// New returns a handler of deliveries.
func New(cfg Config) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = MaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{cfg: cfg}
}

// pageSize is how many webhooks one read of the store brings when looking for a token.
const pageSize = 100

// find returns the webhook whose URL carries token, comparing every webhook's token in constant
// time; ok is false if none does.
func (h *Handler) find(ctx context.Context, token string) (hook store.Webhook, ok bool, err error) {
	if token == "" {
		return hook, false, nil
	}
	after := ""
	for {
		page, err := h.cfg.Store.ListWebhooks(ctx, store.Page{After: after, Limit: pageSize})
		if err != nil {
			return hook, false, err
		}
		for _, w := range page {
			if subtle.ConstantTimeCompare([]byte(urlToken(w.URL)), []byte(token)) == 1 && !ok {
				hook, ok = w, true
			}
		}
		if len(page) < pageSize {
			return hook, ok, nil
		}
		after = page[len(page)-1].Name
	}
}

// urlToken is the t parameter of a webhook URL.
func urlToken(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Query().Get("t")
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := &delivery.Outcome{W: w, Logger: h.cfg.Logger, Name: "webhook delivery", Attrs: []any{"remote", r.RemoteAddr}}
	if id := r.Header.Get("X-GitHub-Delivery"); id != "" {
		d.Attrs = append(d.Attrs, "delivery", id)
	}
	if event := r.Header.Get("X-GitHub-Event"); event != "" {
		d.Attrs = append(d.Attrs, "event", event)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		d.Refuse(http.StatusMethodNotAllowed, "method "+r.Method, "Webhook deliveries are POST requests")
		return
	}
	hook, ok, err := h.find(r.Context(), r.URL.Query().Get("t"))
	if err != nil {
		d.Fail(fmt.Errorf("find the webhook: %w", err), "The webhook could not be read")
		return
	}
	if !ok {
		d.Refuse(http.StatusNotFound, "no webhook has this URL's token", "No webhook has this URL")
		return
	}
	d.Attrs = append(d.Attrs, "webhook", hook.Name)
	var def model.WebhookDefinition
	if err := json.Unmarshal(hook.Definition, &def); err != nil {
		d.Fail(fmt.Errorf("decode webhook %s: %w", hook.Name, err), "The webhook could not be read")
		return
	}
	if def.TargetPipeline == nil || def.TargetAction == nil || def.Authentication == nil {
		d.Fail(fmt.Errorf("webhook %s has no target or authentication", hook.Name), "The webhook could not be read")
		return
	}
	d.Attrs = append(d.Attrs, "pipeline", *def.TargetPipeline)
	conf := def.AuthenticationConfiguration
	if conf == nil {
		conf = &model.WebhookAuthConfiguration{}
	}

	// IP is checked before the body is read: a refused client's body is not worth reading.
	if *def.Authentication == model.WebhookAuthenticationTypeIp {
		if reason := checkIP(r.RemoteAddr, conf.AllowedIPRange); reason != "" {
			d.Refuse(http.StatusForbidden, reason, "The client address is not in the webhook's allowed IP range")
			return
		}
	}
	body, ok := d.ReadBody(r, h.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	switch *def.Authentication {
	case model.WebhookAuthenticationTypeGithubHmac:
		secret := ""
		if conf.SecretToken != nil {
			secret = *conf.SecretToken
		}
		if reason := checkSignature(r.Header, body, secret); reason != "" {
			d.Refuse(http.StatusUnauthorized, reason, "The delivery's signature does not match the webhook's secret")
			return
		}
	case model.WebhookAuthenticationTypeIp, model.WebhookAuthenticationTypeUnauthenticated:
	default:
		d.Refuse(http.StatusForbidden, fmt.Sprintf("unknown authentication %q", *def.Authentication), "The webhook's authentication is not supported")
		return
	}

	configuration, reason, err := h.targetConfiguration(r.Context(), *def.TargetPipeline, *def.TargetAction)
	if err != nil {
		d.Fail(err, "The webhook's target pipeline could not be read")
		return
	}
	if reason != "" {
		d.Refuse(http.StatusNotFound, reason, "The webhook's target pipeline or action does not exist")
		return
	}
	if len(def.Filters) > 0 {
		if reason := applyFilters(def.Filters, body, r.Header.Get("Content-Type"), configuration); reason != "" {
			d.Ignore(reason, "The delivery does not match the webhook's filters: no pipeline was started")
			return
		}
	}

	webhookARN := arn.Webhook(h.cfg.Region, h.cfg.AccountID, hook.Name)
	event := sources.Event{Webhook: &sources.WebhookEvent{Name: hook.Name, ARN: webhookARN, Pipeline: *def.TargetPipeline, Action: *def.TargetAction}}
	if err := h.cfg.Recorder.Record(r.Context(), event); err != nil {
		d.Fail(fmt.Errorf("record the delivery: %w", err), "The delivery could not be recorded: no pipeline was started")
		return
	}
	if err := h.cfg.Store.SetWebhookTriggered(r.Context(), hook.Name, h.cfg.Now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		// The delivery is recorded and will start the pipeline: only lastTriggered is stale.
		h.cfg.Logger.Warn("record when a webhook was triggered", append(slices.Clip(d.Attrs), "err", err)...)
	}
	d.Answer(http.StatusOK, slog.LevelInfo, "accepted", "",
		fmt.Sprintf("The delivery starts pipeline %s", *def.TargetPipeline))
}

// checkIP says why the client at remoteAddr (the TCP peer: X-Forwarded-For is not trusted) is
// not in allowed, or "" if it is.
func checkIP(remoteAddr string, allowed *string) string {
	if allowed == nil {
		return "the webhook has no AllowedIPRange"
	}
	prefix, err := netip.ParsePrefix(*allowed)
	if err != nil {
		return fmt.Sprintf("AllowedIPRange %q is not a CIDR range", *allowed)
	}
	peer, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return fmt.Sprintf("the client address %q cannot be read", remoteAddr)
	}
	addr := peer.Addr().Unmap()
	if !prefix.Masked().Contains(addr) {
		return fmt.Sprintf("client address %s is not in AllowedIPRange %s", addr, *allowed)
	}
	return ""
}

// checkSignature says why body is not signed with secret as GitHub signs it, or "" if it is:
// X-Hub-Signature-256 "sha256=<hex HMAC-SHA256>", or, when that header is absent,
// X-Hub-Signature "sha1=<hex HMAC-SHA1>". Digests are compared in constant time.
func checkSignature(header http.Header, body []byte, secret string) string {
	if secret == "" {
		return "the webhook has no SecretToken"
	}
	name, prefix, newHash := "X-Hub-Signature-256", "sha256=", sha256.New
	value := header.Get(name)
	if value == "" {
		name, prefix, newHash = "X-Hub-Signature", "sha1=", sha1.New
		value = header.Get(name)
	}
	if value == "" {
		return "no X-Hub-Signature-256 or X-Hub-Signature header"
	}
	hexDigest, ok := strings.CutPrefix(value, prefix)
	if !ok {
		return fmt.Sprintf("%s does not start with %q", name, prefix)
	}
	got, err := hex.DecodeString(hexDigest)
	if err != nil {
		return fmt.Sprintf("%s is not a hex digest", name)
	}
	if !hmac.Equal(got, delivery.Sign(newHash, secret, body)) {
		return fmt.Sprintf("%s does not match the body signed with the webhook's secret", name)
	}
	return ""
}

// targetConfiguration returns the configuration of the webhook's target action in the latest
// version of its pipeline, or, if there is none, reason says why.
func (h *Handler) targetConfiguration(ctx context.Context, pipeline, action string) (configuration map[string]string, reason string, err error) {
	rec, err := h.cfg.Store.GetPipeline(ctx, pipeline, 0)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Sprintf("target pipeline %s does not exist", pipeline), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read pipeline %s: %w", pipeline, err)
	}
	var decl model.PipelineDeclaration
	if err := json.Unmarshal(rec.Declaration, &decl); err != nil {
		return nil, "", fmt.Errorf("decode pipeline %s version %d: %w", pipeline, rec.Version, err)
	}
	if len(decl.Stages) > 0 {
		for _, a := range decl.Stages[0].Actions {
			if a.Name != nil && *a.Name == action {
				if a.Configuration == nil {
					return map[string]string{}, "", nil
				}
				return a.Configuration, "", nil
			}
		}
	}
	return nil, fmt.Sprintf("target action %s is not in the first stage of pipeline %s version %d", action, pipeline, rec.Version), nil
}

// applyFilters says why a delivery fails its webhook's filters, or "" if it passes them all. The
// body is the JSON document, or, for a form (GitHub's content type
// application/x-www-form-urlencoded), its payload field.
func applyFilters(filters []model.WebhookFilterRule, body []byte, contentType string, configuration map[string]string) string {
	doc, _, err := delivery.Document(body, contentType)
	if err != nil {
		return err.Error()
	}
	parsed, err := filter.Parse(doc)
	if err != nil {
		return "the body is not a JSON document"
	}
	for i, f := range filters {
		if f.JsonPath == nil {
			return fmt.Sprintf("filter %d has no jsonPath", i+1)
		}
		ok, reason, err := filter.Match(parsed, filter.Rule{JSONPath: *f.JsonPath, MatchEquals: f.MatchEquals}, configuration)
		if err != nil {
			return fmt.Sprintf("filter %d: %v", i+1, err)
		}
		if !ok {
			return fmt.Sprintf("filter %d: %s", i+1, reason)
		}
	}
	return ""
}
