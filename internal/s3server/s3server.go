// Package s3server is Sluice's built-in S3-compatible endpoint: path-style S3 over the local
// object store, so that on one machine the AWS CLI, SDKs and job workers reach pipeline artifacts
// with no other service. gofakes3 speaks the S3 protocol; this package gives it the local store
// and decides who may do what.
//
// Requests signed with a job's temporary credentials, in their Authorization header or in a
// presigned URL's query, are held to them: the signature must verify, a presigned URL must not
// have expired, the job must still be running, and only its own artifacts are reachable, by
// object operations — its inputs for reading, its outputs for reading and writing. Listings and
// bucket operations are refused to them, as are requests this package does not recognise.
//
// Other requests are authenticated as the server is configured. With authentication off, they
// are served as the default account's root, whoever signed them. With it on, they must be signed
// with SigV4 by a user of the identities file, as S3 itself authenticates, and a user reaches
// only the buckets of its account and only what its policy allows, by the IAM action each S3
// operation needs. Bucket names are one namespace across accounts, as in S3.
//
// Whoever signs, a body declared as aws-chunked is decoded here, its chunk signatures checked
// when the request's signature was, and a signed request's body must hash to what its
// x-amz-content-sha256 header says; both are checked as the body streams, and a body that fails
// is answered with the refusal and stored nowhere.
package s3server

import (
	"context"
	"encoding/xml"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"

	"github.com/sluicehq/sluice/internal/auth"
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

// Config is what the endpoint serves and how it authenticates.
type Config struct {
	// Store holds the buckets served.
	Store *objects.Store
	// Issuer recognises jobs' temporary credentials, and Jobs tells what they reach.
	Issuer *credentials.Issuer
	Jobs   JobAccess
	// Written, if set, hears of every object version written.
	Written Written
	Logger  *slog.Logger
	// Auth authenticates requests not signed with job credentials; nil turns authentication off.
	Auth *auth.Authenticator
	// Region is the server's region, to which SigV4 credentials must be scoped:
	// <date>/<Region>/s3/aws4_request. It is required with Auth.
	Region string
	// Account is the server's default account: the owner of the buckets created with
	// authentication off and of those created before owners were recorded.
	Account string
}

// New returns the endpoint's handler.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Jobs == nil {
		cfg.Jobs = withoutJobs{}
	}
	b := backend{store: cfg.Store, written: cfg.Written, account: cfg.Account, listAll: cfg.Auth == nil}
	fake := gofakes3.New(b, gofakes3.WithTimeSkewLimit(maxClockSkew))
	return &server{next: fake.Server(), store: cfg.Store, issuer: cfg.Issuer, jobs: cfg.Jobs, logger: cfg.Logger,
		auth: cfg.Auth, region: cfg.Region, account: cfg.Account}
}

type server struct {
	next   http.Handler
	store  *objects.Store
	issuer *credentials.Issuer
	jobs   JobAccess
	logger *slog.Logger
	auth   *auth.Authenticator
	// region is the server's region; account its default account.
	region, account string
}

// withoutJobs answers for a server that hands out no job credentials.
type withoutJobs struct{}

func (withoutJobs) JobObjects(context.Context, string) ([]Location, []Location, bool, error) {
	return nil, nil, false, nil
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
	header, query, both, refused := readClaims(r)
	if refused != nil {
		refused.write(w)
		return
	}
	jobID, isJob := s.issuer.JobOf(header.accessKeyID)
	if !isJob && header.accessKeyID == "" {
		jobID, isJob = s.issuer.JobOf(query.accessKeyID)
	}
	if both && !isJob {
		_, isJob = s.issuer.JobOf(query.accessKeyID)
	}
	if both && (isJob || s.auth != nil) {
		(&s3Error{http.StatusBadRequest, "InvalidArgument",
			"Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified"}).write(w)
		return
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	op := classify(r, bucket, key)
	if isJob {
		s.serveJob(w, r, jobID, op)
		return
	}
	if s.auth == nil {
		r = r.WithContext(auth.WithPrincipal(r.Context(), auth.Root(s.account)))
		body, refused := checkBody(r, nil, op)
		if refused != nil {
			refused.write(w)
			return
		}
		s.serve(w, r, body)
		return
	}
	s.serveUser(w, r, op)
}

// serveJob serves a request signed with the credentials of job jobID, if they reach what it
// asks for.
func (s *server) serveJob(w http.ResponseWriter, r *http.Request, jobID string, op operation) {
	refuse := func(refused *s3Error) {
		s.logger.Info("S3 request with job credentials refused", "job", jobID, "method", r.Method, "path", r.URL.Path,
			"code", refused.code, "message", refused.message)
		refused.write(w)
	}
	signer, sc, refused := s.authenticateJob(r, jobID)
	if refused != nil {
		refuse(refused)
		return
	}
	body, refused := checkBody(r, signer, op)
	if refused == nil {
		refused = sc.authorize(r)
	}
	if refused != nil {
		refuse(refused)
		return
	}
	s.serve(w, r, body)
}

// serve hands a request that may proceed to gofakes3; body is its body as checked, if it is.
func (s *server) serve(w http.ResponseWriter, r *http.Request, body *checkedBody) {
	var a *answer
	if body != nil {
		a = &answer{ResponseWriter: w, body: body}
		w = a
	}
	if r.Method == http.MethodPut && r.Header.Get("x-amz-copy-source") != "" {
		bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		w = &copyAnswer{ResponseWriter: w, s: s, bucket: bucket, at: key}
	}
	s.next.ServeHTTP(w, r)
	if a != nil && !a.started {
		a.WriteHeader(http.StatusOK) // the refusal, if the body was refused
	}
}

// IsS3Request tells requests for the S3 endpoint from CodePipeline's: CodePipeline's carry an
// X-Amz-Target header and an AWS JSON body, S3's never do.
func IsS3Request(r *http.Request) bool {
	return r.Header.Get("X-Amz-Target") == "" && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json")
}

// s3Error is a refusal, answered in S3's XML error format. It is an error too, which the
// readers of a checked body return.
type s3Error struct {
	status        int
	code, message string
}

func (e *s3Error) Error() string { return e.code + ": " + e.message }

// accessDenied is S3's answer to a request its signer may not make.
var accessDenied = &s3Error{http.StatusForbidden, "AccessDenied", "Access Denied"}

func (e *s3Error) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(e.status)
	xml.NewEncoder(w).Encode(struct {
		XMLName xml.Name `xml:"Error"`
		Code    string   `xml:"Code"`
		Message string   `xml:"Message"`
	}{Code: e.code, Message: e.message})
}
