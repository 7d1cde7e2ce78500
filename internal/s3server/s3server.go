// Package s3server is Sluice's built-in S3-compatible endpoint: path-style S3 over the local
// object store, so that on one machine the AWS CLI, SDKs and job workers reach pipeline artifacts
// with no other service. gofakes3 speaks the S3 protocol; this package gives it the local store
// and decides who may do what.
//
// Authentication is off for ordinary credentials, as for the rest of the local API. Requests
// signed with a job's temporary credentials are held to them: the signature must verify, the job
// must still be running, and only its own artifacts are reachable — its inputs for reading, its
// outputs for reading and writing.
package s3server

import (
	"context"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/johannesboyne/gofakes3"

	"github.com/sluicehq/sluice/internal/credentials"
	"github.com/sluicehq/sluice/internal/objects"
)

// Location is an object in a bucket.
type Location struct {
	Bucket string
	Key    string
}

// JobAccess tells what a job's credentials reach.
type JobAccess interface {
	// JobObjects returns the artifacts a job reads and writes; running is false once the job has
	// ended (or never existed), and its credentials with it.
	JobObjects(ctx context.Context, jobID string) (read, write []Location, running bool, err error)
}

// New returns the endpoint's handler.
func New(store *objects.Store, issuer *credentials.Issuer, jobs JobAccess, logger *slog.Logger) http.Handler {
	fake := gofakes3.New(backend{store: store}, gofakes3.WithTimeSkewLimit(15*time.Minute))
	return &server{next: fake.Server(), issuer: issuer, jobs: jobs, logger: logger}
}

type server struct {
	next   http.Handler
	issuer *credentials.Issuer
	jobs   JobAccess
	logger *slog.Logger
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "AuthorizationHeaderMalformed", err.Error())
		return
	}
	if jobID, isJob := s.issuer.JobOf(auth.accessKeyID); isJob {
		if status, code, msg := s.authorizeJob(r, auth, jobID); status != 0 {
			writeError(w, status, code, msg)
			return
		}
	}
	s.next.ServeHTTP(w, r)
}

// authorizeJob checks a request signed with job credentials; it returns 0 when it may proceed.
func (s *server) authorizeJob(r *http.Request, auth authorization, jobID string) (int, string, string) {
	if !s.issuer.ValidToken(auth.accessKeyID, r.Header.Get("X-Amz-Security-Token")) {
		return http.StatusForbidden, "InvalidToken", "The provided token is malformed or otherwise invalid."
	}
	if !s.validSignature(r, auth) {
		return http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method."
	}
	read, write, running, err := s.jobs.JobObjects(r.Context(), jobID)
	if err != nil {
		s.logger.Error("look up a job's artifacts", "job", jobID, "err", err)
		return http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again."
	}
	if !running {
		return http.StatusBadRequest, "ExpiredToken", fmt.Sprintf("The provided token has expired: job %s is no longer in progress.", jobID)
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	target := Location{Bucket: bucket, Key: key}
	allowed := contains(write, target)
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		allowed = allowed || contains(read, target)
	}
	if !allowed {
		return http.StatusForbidden, "AccessDenied", fmt.Sprintf("Access Denied: the credentials of job %s reach only its own artifacts, not s3://%s/%s.", jobID, bucket, key)
	}
	return 0, "", ""
}

func contains(locs []Location, l Location) bool {
	for _, x := range locs {
		if x == l && l.Key != "" {
			return true
		}
	}
	return false
}

// validSignature signs the request again with the job's secret key, as the client did, and
// compares the signatures.
func (s *server) validSignature(r *http.Request, auth authorization) bool {
	signed, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return false
	}
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	clone := &http.Request{Method: r.Method, URL: &u, Host: r.Host, Header: http.Header{}}
	for _, h := range auth.signedHeaders {
		switch h {
		case "host":
		case "content-length":
			clone.ContentLength, _ = strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64)
		default:
			clone.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		return false
	}
	creds := aws.Credentials{AccessKeyID: auth.accessKeyID, SecretAccessKey: s.issuer.SecretKey(auth.accessKeyID), SessionToken: r.Header.Get("X-Amz-Security-Token")}
	err = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
		SignHTTP(context.Background(), creds, clone, payload, auth.service, auth.region, signed)
	if err != nil {
		return false
	}
	again, err := parseAuthorization(clone.Header.Get("Authorization"))
	if err != nil {
		return false
	}
	want, err1 := hex.DecodeString(again.signature)
	got, err2 := hex.DecodeString(auth.signature)
	return err1 == nil && err2 == nil && len(got) > 0 && string(want) == string(got)
}

// authorization is what a SigV4 Authorization header says.
type authorization struct {
	accessKeyID, region, service string
	signedHeaders                []string
	signature                    string
}

// parseAuthorization reads an "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…"
// header; an absent or other kind of header yields the zero authorization.
func parseAuthorization(h string) (authorization, error) {
	var a authorization
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return a, nil
	}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			fields := strings.Split(v, "/")
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

// IsS3Request tells requests for the S3 endpoint from CodePipeline's: CodePipeline's carry an
// X-Amz-Target header and an AWS JSON body, S3's never do.
func IsS3Request(r *http.Request) bool {
	return r.Header.Get("X-Amz-Target") == "" && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json")
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	xml.NewEncoder(w).Encode(struct {
		XMLName xml.Name `xml:"Error"`
		Code    string   `xml:"Code"`
		Message string   `xml:"Message"`
	}{Code: code, Message: message})
}
