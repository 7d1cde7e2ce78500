package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/connections"
	"github.com/sluicehq/sluice/internal/delivery"
	"github.com/sluicehq/sluice/internal/githost"
	"github.com/sluicehq/sluice/internal/iam"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/protocol"
	"github.com/sluicehq/sluice/internal/s3server"
	"github.com/sluicehq/sluice/internal/webhooks"
)

// Services whose requests the server verifies here, as signers name them in their credential
// scope: CodePipeline's, and Sluice's own endpoints under /_sluice/ (logs, connection secrets).
// The S3 endpoint verifies its own.
const (
	serviceCodePipeline = "codepipeline"
	// ServiceSluice is the service `sluice logs` and other clients of /_sluice/ sign for.
	ServiceSluice = "sluice"
)

// apiSkew is how far a signer's clock may be off, as AWS's JSON services allow.
const apiSkew = 5 * time.Minute

// routes is the server's handler. Every request goes one way: its route (CodePipeline, S3, git,
// webhook deliveries, logs, Sluice's own endpoints), then who sent it, then what they may do.
func (s *Server) routes() http.Handler {
	cfg := s.cfg
	mux := http.NewServeMux()
	// Deliveries authenticate themselves (a webhook's secret, a connection's HMAC) and say in
	// their URL whose they are; each handler answers its other methods 405.
	mux.Handle(webhooks.Path, s.delivered(func(t *tenant) http.Handler { return t.hooks }))
	mux.Handle(connections.WebhookPattern, s.delivered(func(t *tenant) http.Handler { return http.HandlerFunc(t.conns.ServeWebhook) }))
	mux.Handle(connections.SecretPattern, s.signedIn(func(t *tenant) http.Handler { return http.HandlerFunc(t.conns.ServeSecret) },
		func(r *http.Request, account string) (string, string) {
			return "codeconnections:GetConnection", fmt.Sprintf("arn:aws:codeconnections:%s:%s:connection/%s", cfg.Region, account, r.PathValue("id"))
		}))
	mux.HandleFunc("GET /_sluice/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.Handle("GET /_sluice/ready", ready(s.tenants[cfg.AccountID].store, cfg.Logger))
	mux.Handle("GET /_sluice/logs/{id}", s.signedIn(func(t *tenant) http.Handler { return t.logs },
		func(r *http.Request, account string) (string, string) {
			return "logs:GetLogEvents", fmt.Sprintf("arn:aws:logs:%s:%s:log-group:/sluice/actions:log-stream:%s", cfg.Region, account, r.PathValue("id"))
		}))
	var s3 http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "The built-in S3 endpoint is off: artifacts are kept in "+s.artifacts.Endpoint(), http.StatusNotFound)
	})
	if s.objects != nil {
		s3 = streaming(s3server.New(s3server.Config{Store: s.objects, Issuer: s.issuer, Jobs: s, Written: s.uploaded,
			Auth: s.authenticator, Region: cfg.Region, Account: cfg.AccountID, Logger: cfg.Logger}), cfg.ReadTimeout, cfg.WriteTimeout)
	}
	git := s.gitUsers()
	codepipeline := &protocol.Handler{Gate: s, MaxBodyBytes: cfg.MaxRequestBytes, Logger: cfg.Logger}
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, githost.Prefix) && r.Header.Get("X-Amz-Target") == "":
			git.ServeHTTP(w, r)
		case s3server.IsS3Request(r):
			s3.ServeHTTP(w, r)
		default:
			codepipeline.ServeHTTP(w, r)
		}
	}))
	return mux
}

// Authenticate tells who sent a CodePipeline request: the root of the server's account with
// authentication off, else the user whose access key signed it. The tenant of their account
// answers them.
func (s *Server) Authenticate(r *http.Request, body []byte) (context.Context, model.Service, error) {
	if s.authenticator == nil {
		t, err := s.tenant(r.Context(), s.cfg.AccountID)
		if err != nil {
			return nil, nil, err
		}
		return auth.WithPrincipal(r.Context(), auth.Root(t.account)), t.service, nil
	}
	sum := sha256.Sum256(body)
	p, sig, err := s.authenticator.Authenticate(r, auth.Surface{Service: serviceCodePipeline, Region: s.cfg.Region, Skew: apiSkew,
		VerifyOptions: auth.VerifyOptions{PayloadHash: hex.EncodeToString(sum[:])}})
	if err != nil {
		s.refused(r, "codepipeline", sig.AccessKeyID, err)
		return nil, nil, apiRefusal(err)
	}
	t, err := s.tenant(r.Context(), p.Account)
	if err != nil {
		return nil, nil, err
	}
	return auth.WithPrincipal(r.Context(), p), t.service, nil
}

// Authorize tells whether the principal of ctx may call op with in, as IAM would decide from
// their policy and the action and resources the operation is checked on.
func (s *Server) Authorize(ctx context.Context, op string, in any) error {
	p, ok := auth.PrincipalFrom(ctx)
	if !ok {
		return errors.New("no principal: the request was not authenticated")
	}
	req := iam.For(op, in, s.cfg.Region, p.Account)
	if err := p.Authorize(req.Action, req.Resources...); err != nil {
		return &model.Error{Code: "AccessDeniedException", Status: http.StatusBadRequest, Message: err.Error()}
	}
	return nil
}

// refused logs a request refused for who sent it: the surface, the access key it named (never
// its secret), why, and where it came from.
func (s *Server) refused(r *http.Request, surface, accessKeyID string, err error) {
	var refused *auth.Error
	reason := err.Error()
	if errors.As(err, &refused) {
		reason = refused.Kind
	}
	s.cfg.Logger.Info("request refused: authentication", "surface", surface, "access_key_id", accessKeyID,
		"reason", reason, "remote", r.RemoteAddr, "path", r.URL.Path)
}

// apiRefusal words a refused signature as AWS's JSON services do.
func apiRefusal(err error) error {
	var refused *auth.Error
	if !errors.As(err, &refused) {
		return err
	}
	code := "InvalidSignatureException"
	switch refused.Kind {
	case auth.KindMissing:
		code = "MissingAuthenticationTokenException"
	case auth.KindIncomplete, auth.KindUnsupported:
		code = "IncompleteSignatureException"
	case auth.KindUnknownKey:
		code = "UnrecognizedClientException"
	}
	status := http.StatusBadRequest
	if refused.Kind == auth.KindMissing {
		status = http.StatusForbidden
	}
	return &model.Error{Code: code, Status: status, Message: refused.Message}
}

// principal tells who sent a request to one of Sluice's own endpoints: signed with SigV4 for
// the "sluice" service (as `sluice logs` signs), or, for a browser or git, with an access key id
// and its secret as HTTP Basic user and password.
func (s *Server) principal(r *http.Request) (*auth.Principal, error) {
	if s.authenticator == nil {
		return auth.Root(s.cfg.AccountID), nil
	}
	if id, secret, ok := r.BasicAuth(); ok {
		p, ok := s.authenticator.Identities.CheckPassword(id, secret)
		if !ok {
			return nil, &auth.Error{Kind: auth.KindUnknownKey, Message: "The access key id and secret given are not valid."}
		}
		return p, nil
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = auth.EmptyPayloadHash
	}
	p, _, err := s.authenticator.Authenticate(r, auth.Surface{Service: ServiceSluice, Region: s.cfg.Region, Skew: apiSkew,
		VerifyOptions: auth.VerifyOptions{PayloadHash: payload}})
	return p, err
}

// signedIn serves a request to one of Sluice's own endpoints with the tenant of its sender's
// account, or refuses it: 401 asking for Basic credentials when it carries none, 403 else, and
// 403 when authorize, if set, names an action on a resource the sender may not perform.
func (s *Server) signedIn(handler func(*tenant) http.Handler, authorize func(r *http.Request, account string) (action, resource string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.principal(r)
		if err != nil {
			s.refused(r, "sluice", "", err)
			refuse(w, err)
			return
		}
		if authorize != nil {
			if err := p.Authorize(authorize(r, p.Account)); err != nil {
				refuse(w, err)
				return
			}
		}
		t, err := s.tenant(r.Context(), p.Account)
		if err != nil {
			s.cfg.Logger.Error("open an account", "account_id", p.Account, "err", err)
			http.Error(w, "The account's store cannot be opened", http.StatusInternalServerError)
			return
		}
		handler(t).ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}

// refuse answers a request to Sluice's own endpoints whose sender is not known.
func refuse(w http.ResponseWriter, err error) {
	var refused *auth.Error
	code, message := "AccessDeniedException", err.Error()
	status := http.StatusForbidden
	if errors.As(err, &refused) {
		var apiErr *model.Error
		errors.As(apiRefusal(refused), &apiErr)
		code = apiErr.Code
		if refused.Kind == auth.KindMissing {
			status = http.StatusUnauthorized
			w.Header().Set("WWW-Authenticate", `Basic realm="sluice", charset="UTF-8"`)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{code, message})
}

// delivered serves a delivery with the tenant of the account its URL names, or of the server's
// own account when it names none. An account the server does not know has no webhooks, and is
// answered as a webhook that does not exist is, so that the answer does not tell which accounts
// exist.
func (s *Server) delivered(handler func(*tenant) http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		account := r.URL.Query().Get(delivery.AccountParameter)
		if account == "" {
			account = s.cfg.AccountID
		}
		if !s.known(account) {
			delivery.WriteMessage(w, http.StatusNotFound, "No webhook has this URL")
			return
		}
		t, err := s.tenant(r.Context(), account)
		if err != nil {
			s.cfg.Logger.Error("open an account", "account_id", account, "err", err)
			delivery.WriteMessage(w, http.StatusServiceUnavailable, "The account's store cannot be opened now")
			return
		}
		handler(t).ServeHTTP(w, r)
	})
}

// known tells whether account is the server's own or one of the identities'.
func (s *Server) known(account string) bool {
	return account == s.cfg.AccountID || (s.cfg.Identities != nil && slices.Contains(s.cfg.Identities.Accounts(), account))
}

// gitUsers serves hosted git: with authentication on, git presents an access key id and its
// secret as HTTP Basic user and password, as it does CodeCommit's HTTPS Git credentials, and the
// repositories are those of their account.
func (s *Server) gitUsers() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.authenticator != nil {
			if _, _, ok := r.BasicAuth(); !ok {
				// git asks its credential helpers, or the user, and tries again.
				w.Header().Set("WWW-Authenticate", `Basic realm="sluice git"`)
				http.Error(w, "Authentication required: use an access key id and its secret as user name and password", http.StatusUnauthorized)
				return
			}
		}
		s.signedIn(func(t *tenant) http.Handler { return t.git }, nil).ServeHTTP(w, r)
	})
}

// authorizeGit tells whether the caller may perform action on a hosted repository of account.
func (s *Server) authorizeGit(account string) func(ctx context.Context, action, repository string) error {
	return func(ctx context.Context, action, repository string) error {
		p, ok := auth.PrincipalFrom(ctx)
		if !ok {
			return errors.New("no principal: the request was not authenticated")
		}
		return p.Authorize(action, fmt.Sprintf("arn:aws:codecommit:%s:%s:%s", s.cfg.Region, account, repository))
	}
}
