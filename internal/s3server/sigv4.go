package s3server

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	sigV2Algorithm = "AWS" // the scheme of a Signature Version 2 Authorization header
	amzDateFormat  = "20060102T150405Z"
	// maxPresignedExpiry is the longest a presigned URL may be valid for, a week, as in S3.
	maxPresignedExpiry = 7 * 24 * time.Hour
)

// signature is what a request says of its signer and signature, in its Authorization header or,
// for a presigned URL, in its query.
type signature struct {
	algorithm                    string
	accessKeyID, region, service string
	signedHeaders                []string
	signature                    string
	date, token                  string // X-Amz-Date and X-Amz-Security-Token

	presigned bool
	expires   string // X-Amz-Expires, in seconds
	malformed string // what is wrong with a presigned URL's parameters, if anything
}

// parseSignature reads how r is signed: by its Authorization header or its query. A request
// signed neither way yields the zero signature. One that names job credentials either way must
// use only one of them, as S3 requires; for others the header wins, as it always has here.
func (s *server) parseSignature(r *http.Request) (signature, *s3Error) {
	q := r.URL.Query()
	header := r.Header.Get("Authorization")
	var presigned signature
	if q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Credential") || q.Has("AWSAccessKeyId") {
		presigned = parsePresigned(q)
		if header == "" {
			return presigned, nil
		}
	}
	sig, err := parseAuthorization(header)
	if err != nil {
		return sig, &s3Error{http.StatusBadRequest, "AuthorizationHeaderMalformed", err.Error()}
	}
	if presigned.presigned && (s.isJob(sig.accessKeyID) || s.isJob(presigned.accessKeyID)) {
		return signature{}, &s3Error{http.StatusBadRequest, "InvalidArgument",
			"Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified"}
	}
	sig.date, sig.token = r.Header.Get("X-Amz-Date"), r.Header.Get("X-Amz-Security-Token")
	return sig, nil
}

func (s *server) isJob(accessKeyID string) bool {
	_, ok := s.issuer.JobOf(accessKeyID)
	return ok
}

// parseAuthorization reads a SigV4 "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…" header, and the access key of the other AWS schemes (SigV4a, SigV2) so that job
// credentials used with them can be refused; any other header yields the zero signature.
func parseAuthorization(h string) (signature, error) {
	var a signature
	scheme, rest, _ := strings.Cut(h, " ")
	if scheme == sigV2Algorithm { // AWS <access key>:<signature>
		a.algorithm = scheme
		a.accessKeyID, _, _ = strings.Cut(rest, ":")
		return a, nil
	}
	if !strings.HasPrefix(scheme, "AWS4-") {
		return a, nil
	}
	a.algorithm = scheme
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			fields := strings.Split(v, "/")
			if scheme != sigV4Algorithm {
				a.accessKeyID = fields[0]
				continue
			}
			if len(fields) != 5 {
				return a, fmt.Errorf("the Credential %q is not of the form <key>/<date>/<region>/<service>/aws4_request", v)
			}
			a.accessKeyID, a.region, a.service = fields[0], fields[2], fields[3]
		case "SignedHeaders":
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		}
	}
	return a, nil
}

// parsePresigned reads the signature of a presigned URL from its query: SigV4's X-Amz-*
// parameters, each exactly once, or a SigV2 AWSAccessKeyId.
func parsePresigned(q url.Values) signature {
	if q.Has("AWSAccessKeyId") && !q.Has("X-Amz-Credential") {
		return signature{presigned: true, algorithm: sigV2Algorithm, accessKeyID: q.Get("AWSAccessKeyId")}
	}
	sig := signature{presigned: true}
	one := func(name string) string {
		if len(q[name]) != 1 {
			sig.malformed = "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
		}
		return q.Get(name)
	}
	sig.algorithm, sig.date, sig.expires, sig.signature = one("X-Amz-Algorithm"), one("X-Amz-Date"), one("X-Amz-Expires"), one("X-Amz-Signature")
	sig.signedHeaders = strings.Split(one("X-Amz-SignedHeaders"), ";")
	credential := one("X-Amz-Credential")
	fields := strings.Split(credential, "/")
	sig.accessKeyID = fields[0]
	if len(fields) == 5 {
		sig.region, sig.service = fields[2], fields[3]
	} else if sig.malformed == "" && sig.algorithm == sigV4Algorithm {
		sig.malformed = fmt.Sprintf("the X-Amz-Credential %q is not of the form <key>/<date>/<region>/<service>/aws4_request", credential)
	}
	if len(q["X-Amz-Security-Token"]) == 1 {
		sig.token = q.Get("X-Amz-Security-Token")
	}
	return sig
}

// checkValidity refuses a presigned URL outside the time it is valid for: from its signing,
// give or take the clock skew allowed, to its expiry.
func (sig signature) checkValidity(now time.Time) *s3Error {
	malformed := func(msg string) *s3Error {
		return &s3Error{http.StatusBadRequest, "AuthorizationQueryParametersError", msg}
	}
	signed, err := time.Parse(amzDateFormat, sig.date)
	if err != nil {
		return malformed(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`)
	}
	seconds, err := strconv.ParseInt(sig.expires, 10, 64)
	switch {
	case err != nil:
		return malformed("X-Amz-Expires should be a number")
	case seconds < 0:
		return malformed("X-Amz-Expires must be non-negative")
	case seconds > int64(maxPresignedExpiry/time.Second):
		return malformed("X-Amz-Expires must be less than a week (in seconds) that is 604800")
	case now.Before(signed.Add(-maxClockSkew)):
		return &s3Error{http.StatusForbidden, "AccessDenied", "Request is not valid yet"}
	case now.After(signed.Add(time.Duration(seconds) * time.Second)):
		return &s3Error{http.StatusForbidden, "AccessDenied", "Request has expired"}
	}
	return nil
}

// validSignature signs the request again with the job's secret key, as the client did, and
// compares the signatures.
func (s *server) validSignature(r *http.Request, sig signature) bool {
	signed, err := time.Parse(amzDateFormat, sig.date)
	if err != nil {
		return false
	}
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	clone := &http.Request{Method: r.Method, URL: &u, Host: r.Host, Header: http.Header{}}
	for _, h := range sig.signedHeaders {
		switch h {
		case "host":
		case "content-length":
			clone.ContentLength, _ = strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64)
		default:
			clone.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	creds := aws.Credentials{AccessKeyID: sig.accessKeyID, SecretAccessKey: s.issuer.SecretKey(sig.accessKeyID), SessionToken: sig.token}
	// Headers a presigned URL's client moved to the query are in the query already.
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping, o.DisableHeaderHoisting = true, true })
	var again string
	if sig.presigned {
		q := u.Query()
		q.Del("X-Amz-Signature")
		u.RawQuery = q.Encode()
		// S3 signs no payload in presigned URLs.
		signedURL, _, err := signer.PresignHTTP(context.Background(), creds, clone, "UNSIGNED-PAYLOAD", sig.service, sig.region, signed)
		if err != nil {
			return false
		}
		parsed, err := url.Parse(signedURL)
		if err != nil {
			return false
		}
		again = parsed.Query().Get("X-Amz-Signature")
	} else {
		payload := r.Header.Get("X-Amz-Content-Sha256")
		if payload == "" {
			return false
		}
		if err := signer.SignHTTP(context.Background(), creds, clone, payload, sig.service, sig.region, signed); err != nil {
			return false
		}
		a, err := parseAuthorization(clone.Header.Get("Authorization"))
		if err != nil {
			return false
		}
		again = a.signature
	}
	want, err1 := hex.DecodeString(again)
	got, err2 := hex.DecodeString(sig.signature)
	return err1 == nil && err2 == nil && len(got) > 0 && hmac.Equal(want, got)
}
