// Package connections serves the webhook endpoint of connections: the URL that a Git server
// (GitHub, Gitea, Forgejo, or anything that sends GitHub's webhook format) is pointed at, so that
// its pushes and pull requests start the pipelines whose CodeStarSourceConnection source names
// the connection and the repository.
//
//	POST /_sluice/connections/{id}/webhook   a delivery: push, pull_request or ping
//	GET  /_sluice/connections/{id}/secret    the secret the Git server signs deliveries with
//
// {id} is the connection's id, the last part of its ARN
// (arn:aws:codestar-connections:…:connection/{id}, or arn:aws:codeconnections:…). Sluice keeps no
// connections: every id has an endpoint, and a secret derived from it, HMAC-SHA256 of the id
// under the installation secret SecretName that the store keeps (and every server on one store
// shares), so that no secret is stored per connection.
//
// A delivery must be signed with the connection's secret: HMAC-SHA256 of the body, as GitHub
// sends it in X-Hub-Signature-256 ("sha256=<hex>") and Gitea, Forgejo and Gogs in
// X-Gitea-Signature, X-Forgejo-Signature and X-Gogs-Signature (bare hex); every one of those
// headers present must match, and one must be. Digests are compared in constant time. The event
// is named by X-GitHub-Event, X-Forgejo-Event, X-Gitea-Event or X-Gogs-Event. A push or pull
// request event that passes is recorded as a source event (sources.GitEvent) before it is
// answered, and the watcher starts from the record what it calls for.
//
// Answers, all JSON {"message": "…"}:
//
//	200  accepted: the event is recorded
//	200  ignored: ping, another event, a pull request action that is not opened, reopened,
//	     synchronize(d) or closed, a branch or tag deletion
//	400  no event header, or a payload that cannot be read
//	401  signature missing or wrong
//	404  the id cannot be a connection's
//	405  not a POST (a GET for the secret)
//	413  the body is over MaxBodyBytes
//	500  the secret could not be read, or the event could not be recorded: the sender may redeliver
package connections

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/internal/delivery"
	"github.com/sluicehq/sluice/internal/sources"
)

// The endpoints' patterns, for http.ServeMux; each handler answers its other methods 405.
const (
	WebhookPattern = "/_sluice/connections/{id}/webhook"
	SecretPattern  = "/_sluice/connections/{id}/secret"
)

// WebhookPath is the path of a connection's webhook endpoint.
func WebhookPath(id string) string { return "/_sluice/connections/" + id + "/webhook" }

// SecretName names the installation secret in the store that connections' secrets derive from.
const SecretName = "connection-webhooks"

// MaxBodyBytes bounds a delivery's body unless Config says otherwise.
const MaxBodyBytes = delivery.MaxBodyBytes

// Recorder records a source event durably; the watcher starts what it calls for.
type Recorder interface {
	Record(ctx context.Context, e sources.Event) error
}

// Secrets gives the installation secret that connections' secrets derive from.
type Secrets interface {
	Secret(ctx context.Context, name string) ([]byte, error)
}

// Config configures a Handler.
type Config struct {
	Secrets  Secrets
	Recorder Recorder
	// PublicURL is where Git servers reach Sluice, for the webhook URL the secret endpoint shows.
	PublicURL string
	// Account, if set, is added to that URL as its account parameter: the server routes
	// deliveries to the account it names, and to its own account without one.
	Account string
	// MaxBodyBytes bounds a delivery's body; 0 means MaxBodyBytes.
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// Handler serves connections' webhook and secret endpoints.
type Handler struct {
	cfg Config
	mu  sync.Mutex
	// installation is the installation secret, once read.
	installation []byte
}

// New returns a handler of connections' endpoints.
func New(cfg Config) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = MaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	return &Handler{cfg: cfg}
}

// validID matches the ids Sluice takes for connections: AWS's are UUIDs.
var validID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// ValidID reports whether id can be a connection's id.
func ValidID(id string) bool { return validID.MatchString(id) && id != "." && id != ".." }

// DeriveSecret is the secret of connection id under the installation secret: the hex
// HMAC-SHA256 of the id.
func DeriveSecret(installation []byte, id string) string {
	mac := hmac.New(sha256.New, installation)
	mac.Write([]byte(id))
	return hex.EncodeToString(mac.Sum(nil))
}

// secret returns the secret of connection id, reading the installation secret the first time.
func (h *Handler) secret(ctx context.Context, id string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.installation == nil {
		s, err := h.cfg.Secrets.Secret(ctx, SecretName)
		if err != nil {
			return "", fmt.Errorf("read the installation secret %s: %w", SecretName, err)
		}
		if len(s) == 0 {
			return "", fmt.Errorf("the installation secret %s is empty", SecretName)
		}
		h.installation = s
	}
	return DeriveSecret(h.installation, id), nil
}

// SecretAnswer is what GET /_sluice/connections/{id}/secret answers: what to set a Git
// server's webhook to.
type SecretAnswer struct {
	ConnectionID string   `json:"connectionId"`
	Secret       string   `json:"secret"`
	WebhookURL   string   `json:"webhookUrl"`
	ContentType  string   `json:"contentType"`
	Events       []string `json:"events"`
}

// ServeSecret answers a connection's secret, with the webhook URL, content type and events to
// configure the Git server with.
func (h *Handler) ServeSecret(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		delivery.WriteMessage(w, http.StatusMethodNotAllowed, "A connection's secret is read with GET")
		return
	}
	if !ValidID(id) {
		delivery.WriteMessage(w, http.StatusNotFound, fmt.Sprintf("%q is not a connection id: the last part of the connection's ARN, of letters, digits, '.', '_' and '-'", id))
		return
	}
	secret, err := h.secret(r.Context(), id)
	if err != nil {
		h.cfg.Logger.Error("connection secret", "connection", id, "err", err)
		delivery.WriteMessage(w, http.StatusInternalServerError, "The secret could not be read")
		return
	}
	h.cfg.Logger.Info("connection secret read", "connection", id, "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(SecretAnswer{ConnectionID: id, Secret: secret, WebhookURL: h.webhookURL(id),
		ContentType: "application/json", Events: []string{"push", "pull_request"}})
}

// firstHeader is the first of names that header has, and its value.
func firstHeader(header http.Header, names ...string) (name, value string) {
	for _, n := range names {
		if v := header.Get(n); v != "" {
			return n, v
		}
	}
	return "", ""
}

// ServeWebhook serves a delivery to a connection's webhook endpoint.
func (h *Handler) ServeWebhook(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	d := &delivery.Outcome{W: w, Logger: h.cfg.Logger, Name: "connection webhook", Attrs: []any{"connection", id, "remote", r.RemoteAddr}}
	_, deliveryID := firstHeader(r.Header, "X-GitHub-Delivery", "X-Forgejo-Delivery", "X-Gitea-Delivery", "X-Gogs-Delivery")
	if deliveryID != "" {
		d.Attrs = append(d.Attrs, "delivery", deliveryID)
	}
	_, event := firstHeader(r.Header, "X-GitHub-Event", "X-Forgejo-Event", "X-Gitea-Event", "X-Gogs-Event")
	if event != "" {
		d.Attrs = append(d.Attrs, "event", event)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		d.Refuse(http.StatusMethodNotAllowed, "method "+r.Method, "Webhook deliveries are POST requests")
		return
	}
	if !ValidID(id) {
		d.Refuse(http.StatusNotFound, "not a connection id", fmt.Sprintf("%q is not a connection id: the last part of the connection's ARN", id))
		return
	}
	body, ok := d.ReadBody(r, h.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	secret, err := h.secret(r.Context(), id)
	if err != nil {
		d.Fail(err, "The connection's secret could not be read: nothing was started")
		return
	}
	doc, form, err := delivery.Document(body, r.Header.Get("Content-Type"))
	if err != nil {
		// Checked before the signature: the Gitea form's signature is over its payload field.
		d.Refuse(http.StatusBadRequest, err.Error(), "The body is not a form with a payload field")
		return
	}
	if reason := checkSignature(r.Header, body, doc, form, secret); reason != "" {
		d.Refuse(http.StatusUnauthorized, reason, "The delivery's signature does not match the connection's secret")
		return
	}
	var (
		git    *sources.GitEvent
		reason string
	)
	switch event {
	case "":
		d.Refuse(http.StatusBadRequest, "no event header", "The delivery names no event: X-GitHub-Event, X-Gitea-Event or X-Forgejo-Event")
		return
	case "ping":
		d.Answer(http.StatusOK, slog.LevelInfo, "ping", "", "Pong: the connection's webhook is set up")
		return
	case "push":
		git, reason, err = pushEvent(doc)
	case "pull_request":
		git, reason, err = pullRequestEvent(doc)
	default:
		d.Ignore(fmt.Sprintf("event %s starts nothing: only push and pull_request do", event), "Ignored: "+fmt.Sprintf("event %s starts nothing: only push and pull_request do", event))
		return
	}
	if err != nil {
		d.Refuse(http.StatusBadRequest, err.Error(), fmt.Sprintf("The %s payload cannot be read: %v", event, err))
		return
	}
	if git == nil {
		d.Ignore(reason, "Ignored: "+reason)
		return
	}
	h.record(r.Context(), d, id, deliveryID, git)
}

// record records an event and answers the delivery.
func (h *Handler) record(ctx context.Context, d *delivery.Outcome, id, deliveryID string, git *sources.GitEvent) {
	git.Connection, git.Delivery = id, deliveryID
	d.Attrs = append(d.Attrs, "repository", git.Repository)
	what := ""
	switch {
	case git.Push != nil && git.Push.Tag != "":
		what = "tag " + git.Push.Tag
		d.Attrs = append(d.Attrs, "tag", git.Push.Tag, "commit", git.Push.After)
	case git.Push != nil:
		what = "branch " + git.Push.Branch
		d.Attrs = append(d.Attrs, "branch", git.Push.Branch, "commit", git.Push.After)
	case git.PullRequest != nil:
		pr := git.PullRequest
		what = fmt.Sprintf("pull request #%d %s", pr.Number, pr.Event)
		d.Attrs = append(d.Attrs, "pull_request", pr.Number, "pr_event", pr.Event, "commit", pr.HeadCommit)
	}
	if err := h.cfg.Recorder.Record(ctx, sources.Event{Git: git}); err != nil {
		d.Fail(fmt.Errorf("record the event: %w", err), "The event could not be recorded: nothing was started")
		return
	}
	d.Answer(http.StatusOK, slog.LevelInfo, "accepted", "",
		fmt.Sprintf("Accepted: %s of %s starts the pipelines whose filters match it", what, git.Repository))
}

// signatureHeaders are the headers that carry a delivery's HMAC-SHA256, and the prefix of each.
var signatureHeaders = []struct{ name, prefix string }{
	{"X-Hub-Signature-256", "sha256="},
	{"X-Forgejo-Signature", ""},
	{"X-Gitea-Signature", ""},
	{"X-Gogs-Signature", ""},
}

// checkSignature says why a delivery is not signed with secret, or "" if it is: every signature
// header present holds the hex HMAC-SHA256 of the body (or, for a form, of the body or of its
// payload field: GitHub signs the body it sends, Gitea and Forgejo the payload), and one is
// present. X-Hub-Signature (SHA-1) is not taken.
func checkSignature(header http.Header, body, doc []byte, form bool, secret string) string {
	want := delivery.Sign(sha256.New, secret, body)
	var wantDoc []byte
	if form {
		wantDoc = delivery.Sign(sha256.New, secret, doc)
	}
	checked := 0
	for _, s := range signatureHeaders {
		value := header.Get(s.name)
		if value == "" {
			continue
		}
		hexDigest, ok := strings.CutPrefix(value, s.prefix)
		if !ok {
			return fmt.Sprintf("%s does not start with %q", s.name, s.prefix)
		}
		got, err := hex.DecodeString(hexDigest)
		if err != nil {
			return fmt.Sprintf("%s is not a hex digest", s.name)
		}
		if !hmac.Equal(got, want) && (wantDoc == nil || !hmac.Equal(got, wantDoc)) {
			return fmt.Sprintf("%s does not match the body signed with the connection's secret", s.name)
		}
		checked++
	}
	if checked == 0 {
		if header.Get("X-Hub-Signature") != "" {
			return "only X-Hub-Signature (SHA-1), which is not taken: set a secret so that X-Hub-Signature-256 is sent"
		}
		return "no X-Hub-Signature-256, X-Gitea-Signature or X-Forgejo-Signature header (is the webhook's secret set?)"
	}
	return ""
}

// webhookURL is where a Git server delivers the events of connection id.
func (h *Handler) webhookURL(id string) string {
	u := h.cfg.PublicURL + WebhookPath(id)
	if h.cfg.Account != "" {
		u += "?" + delivery.AccountParameter + "=" + url.QueryEscape(h.cfg.Account)
	}
	return u
}
