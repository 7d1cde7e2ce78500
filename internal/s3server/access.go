package s3server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"net/http"
	"strings"

	"github.com/johannesboyne/gofakes3"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/objects"
)

// target is what an IAM action acts on.
type target int

const (
	onAll     target = iota // the resource "*": ListBuckets, which names no bucket
	onBucket                // arn:aws:s3:::<bucket>
	onObject                // arn:aws:s3:::<bucket>/<key>
	onEachKey               // the object of every key a multi-object delete names
)

// permission is what an S3 operation needs of a user's policy: an IAM action on its target, or
// versioned instead when the request names a version.
type permission struct {
	action, versioned string
	on                target
}

// permissions are the IAM actions the S3 operations need, as classify names the operations and
// as S3 documents the actions. HEAD needs what GET does; a copy needs s3:PutObject on its
// target and s3:GetObject on its source. An operation missing here is refused.
var permissions = map[string]permission{
	"ListBuckets":             {"s3:ListAllMyBuckets", "", onAll},
	"CreateBucket":            {"s3:CreateBucket", "", onBucket},
	"DeleteBucket":            {"s3:DeleteBucket", "", onBucket},
	"HeadBucket":              {"s3:ListBucket", "", onBucket},
	"ListObjects":             {"s3:ListBucket", "", onBucket},
	"ListObjectVersions":      {"s3:ListBucketVersions", "", onBucket},
	"ListMultipartUploads":    {"s3:ListBucketMultipartUploads", "", onBucket},
	"GetBucketVersioning":     {"s3:GetBucketVersioning", "", onBucket},
	"PutBucketVersioning":     {"s3:PutBucketVersioning", "", onBucket},
	"GetBucketLocation":       {"s3:GetBucketLocation", "", onBucket},
	"GetObject":               {"s3:GetObject", "s3:GetObjectVersion", onObject},
	"HeadObject":              {"s3:GetObject", "s3:GetObjectVersion", onObject},
	"PutObject":               {"s3:PutObject", "", onObject},
	"CopyObject":              {"s3:PutObject", "", onObject},
	"DeleteObject":            {"s3:DeleteObject", "s3:DeleteObjectVersion", onObject},
	"DeleteObjects":           {"s3:DeleteObject", "s3:DeleteObjectVersion", onEachKey},
	"CreateMultipartUpload":   {"s3:PutObject", "", onObject},
	"UploadPart":              {"s3:PutObject", "", onObject},
	"CompleteMultipartUpload": {"s3:PutObject", "", onObject},
	"AbortMultipartUpload":    {"s3:AbortMultipartUpload", "", onObject},
	"ListParts":               {"s3:ListMultipartUploadParts", "", onObject},
}

// actionFor is the action a request needs: versioned if it names a version and that differs.
func (pm permission) actionFor(version string) string {
	if version != "" && pm.versioned != "" {
		return pm.versioned
	}
	return pm.action
}

func bucketARN(bucket string) string      { return "arn:aws:s3:::" + bucket }
func objectARN(bucket, key string) string { return "arn:aws:s3:::" + bucket + "/" + key }

// serveUser serves a request with authentication on: signed by a user of the identities, who
// may make it in the buckets of the user's account, as the user's policy allows.
func (s *server) serveUser(w http.ResponseWriter, r *http.Request, op operation) {
	p, by, refused := s.authenticateUser(r)
	if refused == nil {
		r = r.WithContext(auth.WithPrincipal(r.Context(), p))
		var body *checkedBody
		body, refused = checkBody(r, by, op)
		if refused == nil {
			refused = s.authorize(r, p, op)
		}
		if refused == nil {
			switch op.name {
			case "ListBuckets":
				s.listBuckets(w, r, p)
			case "CreateBucket":
				s.createBucket(w, r, p)
			default:
				s.serve(w, r, body)
			}
			return
		}
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "code", refused.code, "message", refused.message}
	if p != nil {
		attrs = append(attrs, "principal", p.ARN(), "accessKeyId", p.AccessKeyID)
	}
	s.logger.Info("S3 request refused", attrs...)
	refused.write(w)
}

// authorize checks that p's policy allows the request, and that what it names (a bucket, a
// copy's source) belongs to p's account; a bucket that does not exist is left for the operation
// to report, but for CreateBucket, which createBucket checks.
func (s *server) authorize(r *http.Request, p *auth.Principal, op operation) *s3Error {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	pm, ok := permissions[op.name]
	if !ok {
		return s.deny(p, errors.New("the request is no operation known here: "+cmp.Or(op.name, r.Method+" "+r.URL.Path)))
	}
	version := r.URL.Query().Get("versionId")
	var err error
	switch pm.on {
	case onAll:
		err = p.Authorize(pm.action, "*")
	case onBucket:
		err = p.Authorize(pm.action, bucketARN(bucket))
	case onObject:
		err = p.Authorize(pm.actionFor(version), objectARN(bucket, key))
	case onEachKey:
		in, refused := readDeletes(r)
		if refused != nil {
			return refused
		}
		for _, o := range in.Objects {
			if err = p.Authorize(pm.actionFor(o.VersionID), objectARN(bucket, o.Key)); err != nil {
				break
			}
		}
	}
	if err != nil {
		return s.deny(p, err)
	}
	if op.name == "CopyObject" {
		src, srcVersion, err := parseCopySource(r.Header.Values("X-Amz-Copy-Source"))
		if err != nil {
			return &s3Error{http.StatusBadRequest, "InvalidArgument", err.Error()}
		}
		if err := p.Authorize(permissions["GetObject"].actionFor(srcVersion), objectARN(src.Bucket, src.Key)); err != nil {
			return s.deny(p, err)
		}
		if refused := s.reach(r.Context(), p, src.Bucket); refused != nil {
			return refused
		}
		// gofakes3 reads this form exactly as it was checked.
		r.Header.Set("X-Amz-Copy-Source", copySource(src, srcVersion))
	}
	if bucket == "" || op.name == "CreateBucket" {
		return nil
	}
	return s.reach(r.Context(), p, bucket)
}

// deny refuses a request p's policy does not allow, as S3 does, saying why only in the log.
func (s *server) deny(p *auth.Principal, why error) *s3Error {
	s.logger.Info("S3 request denied by policy", "principal", p.ARN(), "why", why.Error())
	return accessDenied
}

// owner is the account that owns b.
func (s *server) owner(b objects.Bucket) string { return cmp.Or(b.Owner, s.account) }

// reach refuses a bucket of another account than p's, as S3 does; a bucket that does not exist
// is left for the operation to report.
func (s *server) reach(ctx context.Context, p *auth.Principal, bucket string) *s3Error {
	b, err := s.store.Bucket(ctx, bucket)
	switch {
	case errors.Is(err, objects.ErrNoSuchBucket):
		return nil
	case err != nil:
		return s.internal("read a bucket's owner", err)
	case s.owner(b) != p.Account:
		s.logger.Info("S3 request for another account's bucket", "principal", p.ARN(), "bucket", bucket)
		return accessDenied
	}
	return nil
}

func (s *server) internal(what string, err error) *s3Error {
	s.logger.Error(what, "err", err)
	return &s3Error{http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again."}
}

// listBuckets answers ListBuckets with the buckets of p's account.
func (s *server) listBuckets(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	owners := []string{p.Account}
	if p.Account == s.account {
		owners = append(owners, "") // buckets from before owners were recorded
	}
	buckets, err := s.store.Buckets(r.Context(), owners...)
	if err != nil {
		s.internal("list buckets", err).write(w)
		return
	}
	id := sha256.Sum256([]byte("sluice account " + p.Account))
	out := gofakes3.Storage{Xmlns: "http://s3.amazonaws.com/doc/2006-03-01/", Buckets: gofakes3.Buckets{},
		Owner: &gofakes3.UserInfo{ID: hex.EncodeToString(id[:]), DisplayName: p.Account}}
	for _, b := range buckets {
		out.Buckets = append(out.Buckets, gofakes3.BucketInfo{Name: b.Name, CreationDate: gofakes3.NewContentTime(b.Created)})
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Write([]byte(xml.Header))
	xml.NewEncoder(w).Encode(out)
}

// createBucket answers CreateBucket: the bucket is p's account's, unless its name is taken.
func (s *server) createBucket(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	bucket, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if err := gofakes3.ValidateBucketName(bucket); err != nil {
		var invalid *gofakes3.ErrorResponse
		if errors.As(err, &invalid) {
			(&s3Error{invalid.Code.Status(), string(invalid.Code), invalid.Message}).write(w)
			return
		}
		(&s3Error{http.StatusBadRequest, string(gofakes3.ErrInvalidBucketName), err.Error()}).write(w)
		return
	}
	err := s.store.CreateBucket(r.Context(), bucket, p.Account)
	if errors.Is(err, objects.ErrBucketExists) {
		b, err := s.store.Bucket(r.Context(), bucket)
		switch {
		case err != nil && !errors.Is(err, objects.ErrNoSuchBucket):
			s.internal("read a bucket's owner", err).write(w)
		case err == nil && s.owner(b) == p.Account:
			(&s3Error{http.StatusConflict, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it."}).write(w)
		default:
			(&s3Error{http.StatusConflict, "BucketAlreadyExists",
				"The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."}).write(w)
		}
		return
	}
	if err != nil {
		s.internal("create a bucket", err).write(w)
		return
	}
	w.Header().Set("Location", "/"+bucket)
	w.WriteHeader(http.StatusOK)
}
