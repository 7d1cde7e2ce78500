package auth

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Algorithm is the one signing algorithm verified: AWS Signature Version 4.
const Algorithm = "AWS4-HMAC-SHA256"

// TimeFormat is X-Amz-Date's format.
const TimeFormat = "20060102T150405Z"

// EmptyPayloadHash is the hex SHA-256 of an empty body: the payload hash of a signed GET.
const EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// MaxPresignedExpiry is the longest a presigned URL may be valid for: a week, as in AWS.
const MaxPresignedExpiry = 7 * 24 * time.Hour

// Kinds of refusal, which each surface words as its protocol does.
const (
	// KindMissing: the request is not signed at all.
	KindMissing = "missing"
	// KindIncomplete: the Authorization header or the presigned query lacks a part, or a part is
	// not in its form.
	KindIncomplete = "incomplete"
	// KindUnsupported: the request is signed with another scheme than SigV4 (SigV2, SigV4a).
	KindUnsupported = "unsupported"
	// KindUnknownKey: no one has the access key the request names.
	KindUnknownKey = "unknown-key"
	// KindScope: the credential is scoped to another region or service.
	KindScope = "scope"
	// KindMismatch: the signature is not the one the key's secret gives.
	KindMismatch = "mismatch"
	// KindExpired: a signed request's time is too far in the past, or a presigned URL expired.
	KindExpired = "expired"
	// KindNotYetValid: a signed request's time is too far in the future.
	KindNotYetValid = "not-yet-valid"
	// KindUnsignedHeaders: the request carries x-amz-* headers, which change what it asks for,
	// that its signature does not cover, or does not sign its host.
	KindUnsignedHeaders = "unsigned-headers"
)

// Error is a refusal of a request's signature.
type Error struct {
	Kind string
	// Message says what is wrong, in AWS's words for the JSON protocols where they have some.
	Message string
}

func (e *Error) Error() string { return e.Message }

// Signature is what a request says of its signer and its signature, in its Authorization header
// or, for a presigned URL, in its query.
type Signature struct {
	Algorithm   string
	AccessKeyID string
	// Scope is the credential's scope: date, region and service.
	Date, Region, Service string
	SignedHeaders         []string
	// Signature is the signature as sent, in hex.
	Signature string
	// Time is when the request was signed, as X-Amz-Date writes it.
	Time string
	// SessionToken is X-Amz-Security-Token, for temporary credentials.
	SessionToken string
	// Presigned is true for a signature in the query; Expires is then X-Amz-Expires.
	Presigned bool
	Expires   string
}

// Scope is the credential scope a signature names, "<date>/<region>/<service>/aws4_request".
func (s Signature) Scope() string {
	return s.Date + "/" + s.Region + "/" + s.Service + "/aws4_request"
}

// SignedAt is when the request was signed.
func (s Signature) SignedAt() (time.Time, error) { return time.Parse(TimeFormat, s.Time) }

// Parse reads how r is signed. A request signed neither in its Authorization header nor in its
// query is refused with KindMissing; one signed in both ways keeps the header's.
func Parse(r *http.Request) (Signature, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		return parseHeader(h, r.Header)
	}
	q := r.URL.Query()
	if q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Credential") || q.Has("X-Amz-Signature") {
		return parseQuery(q)
	}
	if q.Has("AWSAccessKeyId") || q.Has("Signature") {
		return Signature{Algorithm: "AWS", AccessKeyID: q.Get("AWSAccessKeyId"), Presigned: true},
			&Error{KindUnsupported, "Signature Version 2 is not supported: sign requests with " + Algorithm + "."}
	}
	return Signature{}, &Error{KindMissing, "Missing Authentication Token"}
}

// parseHeader reads "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…".
func parseHeader(h string, headers http.Header) (Signature, error) {
	var s Signature
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	s.Algorithm = scheme
	if scheme != Algorithm {
		if scheme == "AWS" { // SigV2: AWS <access key>:<signature>
			s.AccessKeyID, _, _ = strings.Cut(rest, ":")
		}
		if scheme == "AWS" || strings.HasPrefix(scheme, "AWS4-") {
			return s, &Error{KindUnsupported, fmt.Sprintf("The authorization mechanism %s is not supported: sign requests with %s.", scheme, Algorithm)}
		}
		// The header is not echoed: in another scheme (HTTP Basic, a bearer token) it is a secret.
		return s, &Error{KindIncomplete, fmt.Sprintf("Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=%s (the rest is not shown)", firstN(scheme, 32))}
	}
	var credential string
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return s, &Error{KindIncomplete, fmt.Sprintf("'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", part, h)}
		}
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			s.SignedHeaders = strings.Split(v, ";")
		case "Signature":
			s.Signature = v
		}
	}
	s.Time, s.SessionToken = headers.Get("X-Amz-Date"), headers.Get("X-Amz-Security-Token")
	var missing []string
	for _, p := range []struct{ name, value string }{{"Credential", credential}, {"Signature", s.Signature}, {"SignedHeaders", strings.Join(s.SignedHeaders, ";")}} {
		if p.value == "" {
			missing = append(missing, fmt.Sprintf("Authorization header requires '%s' parameter.", p.name))
		}
	}
	if s.Time == "" {
		missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if len(missing) > 0 {
		return s, &Error{KindIncomplete, strings.Join(missing, " ") + " Authorization=" + h}
	}
	if err := s.setCredential(credential); err != nil {
		return s, err
	}
	return s, nil
}

// parseQuery reads a presigned URL's X-Amz-* parameters, each of which it must carry once.
func parseQuery(q url.Values) (Signature, error) {
	s := Signature{Presigned: true}
	var missing []string
	one := func(name string) string {
		if len(q[name]) != 1 || q.Get(name) == "" {
			missing = append(missing, name)
		}
		return q.Get(name)
	}
	s.Algorithm = one("X-Amz-Algorithm")
	credential := one("X-Amz-Credential")
	s.Signature = one("X-Amz-Signature")
	s.Time = one("X-Amz-Date")
	s.SignedHeaders = strings.Split(one("X-Amz-SignedHeaders"), ";")
	s.Expires = one("X-Amz-Expires")
	s.SessionToken = q.Get("X-Amz-Security-Token")
	if len(missing) > 0 {
		return s, &Error{KindIncomplete, "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."}
	}
	if s.Algorithm != Algorithm {
		return s, &Error{KindUnsupported, fmt.Sprintf("X-Amz-Algorithm only supports \"%s\".", Algorithm)}
	}
	if err := s.setCredential(credential); err != nil {
		return s, err
	}
	return s, nil
}

// setCredential reads "<key>/<date>/<region>/<service>/aws4_request".
func (s *Signature) setCredential(credential string) error {
	fields := strings.Split(credential, "/")
	if len(fields) != 5 || fields[0] == "" || fields[1] == "" || fields[2] == "" || fields[3] == "" || fields[4] != "aws4_request" {
		return &Error{KindIncomplete, fmt.Sprintf("Credential should be of the form <access key>/<date>/<region>/<service>/aws4_request, not '%s'.", credential)}
	}
	s.AccessKeyID, s.Date, s.Region, s.Service = fields[0], fields[1], fields[2], fields[3]
	return nil
}

// CheckScope refuses a credential scoped to another region or service than the server's, or to
// a day other than the one it was signed on.
func (s Signature) CheckScope(region, service string) error {
	switch {
	case s.Service != service:
		return &Error{KindScope, fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", service)}
	case s.Region != region:
		return &Error{KindScope, fmt.Sprintf("Credential should be scoped to a valid region. The region '%s' is wrong; expecting '%s'", s.Region, region)}
	case firstN(s.Time, 8) != s.Date:
		return &Error{KindScope, fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", s.Date, firstN(s.Time, 8), s.Time)}
	}
	return nil
}

func firstN(s string, n int) string { return s[:min(n, len(s))] }

// CheckTime refuses a signature outside the time it is valid for. A header's signature is valid
// within skew of its signing time, either way; a presigned URL's from skew before its signing
// until it expires.
func (s Signature) CheckTime(now time.Time, skew time.Duration) error {
	signed, err := s.SignedAt()
	if err != nil {
		return &Error{KindIncomplete, fmt.Sprintf("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", not '%s'.", s.Time)}
	}
	now = now.UTC()
	minutes := int(skew / time.Minute)
	if now.Before(signed.Add(-skew)) {
		return &Error{KindNotYetValid, fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %d min.)",
			s.Time, now.Add(skew).Format(TimeFormat), now.Format(TimeFormat), minutes)}
	}
	if s.Presigned {
		seconds, err := strconv.ParseInt(s.Expires, 10, 64)
		switch {
		case err != nil || seconds < 0:
			return &Error{KindIncomplete, "X-Amz-Expires must be a non-negative number of seconds."}
		case seconds > int64(MaxPresignedExpiry/time.Second):
			return &Error{KindIncomplete, "X-Amz-Expires must be less than a week (in seconds) that is 604800"}
		case now.After(signed.Add(time.Duration(seconds) * time.Second)):
			return &Error{KindExpired, "Request has expired"}
		}
		return nil
	}
	if now.After(signed.Add(skew)) {
		return &Error{KindExpired, fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %d min.)",
			s.Time, now.Add(-skew).Format(TimeFormat), now.Format(TimeFormat), minutes)}
	}
	return nil
}

// VerifyOptions say how a surface's clients sign.
type VerifyOptions struct {
	// PayloadHash is the hex SHA-256 of the body, or what S3 clients declare instead
	// (UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, …). Presigned S3 URLs sign
	// UNSIGNED-PAYLOAD.
	PayloadHash string
	// S3 signs paths as they are, where other services escape them once more.
	S3 bool
}

// Verify signs r again with secret, as its client did, and compares the signatures in constant
// time: a *Error of KindMismatch when they differ.
func (s Signature) Verify(r *http.Request, secret string, opts VerifyOptions) error {
	return s.verify(r, secret, opts, newSigner(opts))
}

// newSigner is the signer that signs as a surface's clients do.
func newSigner(opts VerifyOptions) *v4.Signer {
	return v4.NewSigner(func(o *v4.SignerOptions) {
		o.DisableURIPathEscaping = opts.S3
		// Headers a presigned URL's client moved to the query are in the query already.
		o.DisableHeaderHoisting = true
	})
}

// verify is Verify with signer, which keeps the signing keys it derived: a signer used for one
// access key and secret only derives each day's key once.
func (s Signature) verify(r *http.Request, secret string, opts VerifyOptions, signer *v4.Signer) error {
	if err := s.checkSignedHeaders(r); err != nil {
		return err
	}
	mismatch := &Error{KindMismatch, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
	again, err := s.compute(r, secret, opts, signer)
	if err != nil {
		return mismatch
	}
	want, err1 := hex.DecodeString(again)
	got, err2 := hex.DecodeString(s.Signature)
	if err1 != nil || err2 != nil || len(got) == 0 || !hmac.Equal(want, got) {
		return mismatch
	}
	return nil
}

// checkSignedHeaders refuses a request whose signature does not cover its host, or every x-amz-*
// header it carries: those say what the request does (the operation, a copy's source, a
// payload's hash), so a signature that does not cover them could be replayed to do something
// else, as AWS refuses it.
func (s Signature) checkSignedHeaders(r *http.Request) error {
	signed := map[string]bool{}
	for _, h := range s.SignedHeaders {
		signed[strings.ToLower(h)] = true
	}
	if !signed["host"] {
		return &Error{KindUnsignedHeaders, "The host header must be signed."}
	}
	var unsigned []string
	for name := range r.Header {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "x-amz-") && !signed[lower] {
			unsigned = append(unsigned, lower)
		}
	}
	if len(unsigned) > 0 {
		slices.Sort(unsigned)
		return &Error{KindUnsignedHeaders, "There were headers present in the request which were not signed: " + strings.Join(unsigned, ", ")}
	}
	return nil
}

// compute signs a copy of r that carries only the headers s signed, with aws-sdk-go-v2's signer,
// and returns the signature it gives.
func (s Signature) compute(r *http.Request, secret string, opts VerifyOptions, signer *v4.Signer) (string, error) {
	signed, err := s.SignedAt()
	if err != nil {
		return "", err
	}
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	clone := &http.Request{Method: r.Method, URL: &u, Host: r.Host, Header: http.Header{}}
	for _, h := range s.SignedHeaders {
		switch h {
		case "host", "x-amz-date", "x-amz-security-token":
			// The signer writes these itself.
		case "content-length":
			// A request made in-process (httptest.NewRequest) has its length but no header.
			clone.ContentLength = r.ContentLength
			if v := r.Header.Get("Content-Length"); v != "" {
				clone.ContentLength, _ = strconv.ParseInt(v, 10, 64)
			}
		default:
			clone.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	creds := aws.Credentials{AccessKeyID: s.AccessKeyID, SecretAccessKey: secret, SessionToken: s.SessionToken}
	if s.Presigned {
		q := u.Query()
		q.Del("X-Amz-Signature")
		u.RawQuery = q.Encode()
		payload := opts.PayloadHash
		if opts.S3 {
			payload = "UNSIGNED-PAYLOAD"
		}
		signedURL, _, err := signer.PresignHTTP(context.Background(), creds, clone, payload, s.Service, s.Region, signed)
		if err != nil {
			return "", err
		}
		parsed, err := url.Parse(signedURL)
		if err != nil {
			return "", err
		}
		return parsed.Query().Get("X-Amz-Signature"), nil
	}
	if err := signer.SignHTTP(context.Background(), creds, clone, opts.PayloadHash, s.Service, s.Region, signed); err != nil {
		return "", err
	}
	_, after, _ := strings.Cut(clone.Header.Get("Authorization"), "Signature=")
	return after, nil
}

// Authenticator tells who signed a request, from the identities.
type Authenticator struct {
	Identities *Identities
	// Now is the clock signatures' times are checked against; nil means time.Now.
	Now func() time.Time
	// signers holds a signer per access key, secret and kind of surface.
	signers sync.Map
}

// Surface says how one surface's clients sign: for which service and region, how far their
// clocks may be off, and how the payload is hashed.
type Surface struct {
	Service, Region string
	Skew            time.Duration
	VerifyOptions
}

// Authenticate returns the principal whose access key signed r, after checking the signature's
// form, its key, its scope, its time and the signature itself, in that order. A refusal is a
// *Error; sig is what could be read of the signature, even when refused.
func (a *Authenticator) Authenticate(r *http.Request, on Surface) (p *Principal, sig Signature, err error) {
	sig, err = Parse(r)
	if err != nil {
		return nil, sig, err
	}
	secret, p, ok := a.Identities.Lookup(sig.AccessKeyID)
	if !ok || sig.SessionToken != "" {
		// Users' keys are long-term: none comes with a session token.
		return nil, sig, &Error{KindUnknownKey, "The security token included in the request is invalid."}
	}
	if err := sig.CheckScope(on.Region, on.Service); err != nil {
		return nil, sig, err
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	if err := sig.CheckTime(now(), on.Skew); err != nil {
		return nil, sig, err
	}
	if err := sig.verify(r, secret, on.VerifyOptions, a.signer(sig.AccessKeyID, secret, on.S3)); err != nil {
		return nil, sig, err
	}
	return p, sig, nil
}

// signer returns the signer kept for an access key and its secret, for S3's requests or
// others'. The SDK's signer caches the keys it derives by region and service, checking the
// access key id and the day but not the secret, so each key and secret has its own: a secret
// changed by a reload gets a new signer, never the old secret's keys.
func (a *Authenticator) signer(accessKeyID, secret string, s3 bool) *v4.Signer {
	key := signerKey{accessKeyID, secret, s3}
	if cached, ok := a.signers.Load(key); ok {
		return cached.(*v4.Signer)
	}
	signer, _ := a.signers.LoadOrStore(key, newSigner(VerifyOptions{S3: s3}))
	return signer.(*v4.Signer)
}

type signerKey struct {
	accessKeyID, secret string
	s3                  bool
}
