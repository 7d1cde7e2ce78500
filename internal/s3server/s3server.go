// Package s3server is Sluice's built-in S3-compatible endpoint: path-style S3 over the local
// object store, so that on one machine the AWS CLI, SDKs and job workers reach pipeline artifacts
// with no other service. gofakes3 speaks the S3 protocol; this package gives it the local store
// and decides who may do what.
//
// Authentication is off for ordinary credentials, as for the rest of the local API. Requests
// signed with a job's temporary credentials, in their Authorization header or in a presigned
// URL's query, are held to them: the signature must verify, a presigned URL must not have
// expired, the job must still be running, and only its own artifacts are reachable, by object
// operations — its inputs for reading, its outputs for reading and writing. Listings and bucket
// operations are refused to them, as are requests this package does not recognise.
package s3server

import (
	"context"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"

	"github.com/sluicehq/sluice/internal/credentials"
	"github.com/sluicehq/sluice/internal/objects"
)

// Location is an object in a bucket.
type Location struct {
	Bucket string
	Key    string
}

func (l Location) String() string { return "s3://" + l.Bucket + "/" + l.Key }

// JobAccess tells what a job's credentials reach.
type JobAccess interface {
	// JobObjects returns the artifacts a job reads and writes; running is false once the job has
	// ended (or never existed), and its credentials with it.
	JobObjects(ctx context.Context, jobID string) (read, write []Location, running bool, err error)
}

// maxClockSkew is how far a signed request's time may be from the server's.
const maxClockSkew = 15 * time.Minute

// Written hears of an object version written through the endpoint (a put, a copy, a completed
// multipart upload), before the write is answered: an error fails the answer, so that what a
// client sees acknowledged was heard of.
type Written func(ctx context.Context, bucket, key, version string) error

// New returns the endpoint's handler; written may be nil.
func New(store *objects.Store, issuer *credentials.Issuer, jobs JobAccess, written Written, logger *slog.Logger) http.Handler {
	fake := gofakes3.New(backend{store: store, written: written}, gofakes3.WithTimeSkewLimit(maxClockSkew))
	return &server{next: fake.Server(), store: store, issuer: issuer, jobs: jobs, logger: logger}
}

type server struct {
	next   http.Handler
	store  *objects.Store
	issuer *credentials.Issuer
	jobs   JobAccess
	logger *slog.Logger
}

// copyAnswer corrects CopyObject's answer: gofakes3 names the copy source's version in
// x-amz-version-id, where S3 names the version the copy wrote.
type copyAnswer struct {
	http.ResponseWriter
	s          *server
	bucket, at string
	done       bool
}

func (c *copyAnswer) WriteHeader(code int) {
	if !c.done {
		c.done = true
		if code == http.StatusOK {
			if o, err := c.s.store.Head(context.Background(), c.bucket, c.at, ""); err == nil {
				c.Header().Set("x-amz-version-id", string(versionID(o)))
			}
		}
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *copyAnswer) Write(b []byte) (int, error) {
	if !c.done {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(b)
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sig, refused := s.parseSignature(r)
	if refused != nil {
		refused.write(w)
		return
	}
	if jobID, isJob := s.issuer.JobOf(sig.accessKeyID); isJob {
		if refused := s.authorizeJob(r, sig, jobID); refused != nil {
			s.logger.Info("S3 request with job credentials refused", "job", jobID, "method", r.Method, "path", r.URL.Path,
				"code", refused.code, "message", refused.message)
			refused.write(w)
			return
		}
	}
	if r.Method == http.MethodPut && r.Header.Get("x-amz-copy-source") != "" {
		bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		w = &copyAnswer{ResponseWriter: w, s: s, bucket: bucket, at: key}
	}
	s.next.ServeHTTP(w, r)
}

// authorizeJob checks a request signed with job credentials; it returns nil when it may proceed.
func (s *server) authorizeJob(r *http.Request, sig signature, jobID string) *s3Error {
	if sig.malformed != "" {
		return &s3Error{http.StatusBadRequest, "AuthorizationQueryParametersError", sig.malformed}
	}
	if sig.algorithm != sigV4Algorithm {
		return &s3Error{http.StatusBadRequest, "InvalidRequest", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."}
	}
	if !s.issuer.ValidToken(sig.accessKeyID, sig.token) {
		return &s3Error{http.StatusForbidden, "InvalidToken", "The provided token is malformed or otherwise invalid."}
	}
	if !s.validSignature(r, sig) {
		return &s3Error{http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	}
	if sig.presigned {
		if refused := sig.checkValidity(time.Now()); refused != nil {
			return refused
		}
	}
	read, write, running, err := s.jobs.JobObjects(r.Context(), jobID)
	if err != nil {
		s.logger.Error("look up a job's artifacts", "job", jobID, "err", err)
		return &s3Error{http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again."}
	}
	if !running {
		return &s3Error{http.StatusBadRequest, "ExpiredToken", fmt.Sprintf("The provided token has expired: job %s is no longer in progress.", jobID)}
	}
	return scope{jobID: jobID, read: read, write: write}.authorize(r)
}

// IsS3Request tells requests for the S3 endpoint from CodePipeline's: CodePipeline's carry an
// X-Amz-Target header and an AWS JSON body, S3's never do.
func IsS3Request(r *http.Request) bool {
	return r.Header.Get("X-Amz-Target") == "" && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json")
}

// s3Error is a refusal, answered in S3's XML error format.
type s3Error struct {
	status        int
	code, message string
}

func (e *s3Error) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(e.status)
	xml.NewEncoder(w).Encode(struct {
		XMLName xml.Name `xml:"Error"`
		Code    string   `xml:"Code"`
		Message string   `xml:"Message"`
	}{Code: e.code, Message: e.message})
}
