package s3server

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/johannesboyne/gofakes3"
)

// maxDeleteBody bounds the body of a multi-object delete signed with job credentials: S3 takes
// at most 1000 keys of at most 1024 bytes each.
const maxDeleteBody = 2 << 20

// scope is what a job's credentials reach: its inputs to read, its outputs to read and write.
type scope struct {
	jobID       string
	read, write []Location
}

func (sc scope) readable(l Location) bool { return sc.writable(l) || contains(sc.read, l) }
func (sc scope) writable(l Location) bool { return contains(sc.write, l) }

func contains(locs []Location, l Location) bool {
	for _, x := range locs {
		if x == l && l.Key != "" {
			return true
		}
	}
	return false
}

// access is what an operation needs of the job's scope.
type access int

const (
	refused       access = iota // not an operation on a job's own objects
	readObject                  // read the object the path names
	writeObject                 // write the object the path names
	copyObject                  // write the object the path names, read the copy source
	deleteObjects               // write every object the body names, in the path's bucket
)

// operation is an S3 operation, as its name in S3's API and what it needs.
type operation struct {
	name   string
	access access
}

// byMethod is the operation each method makes on a route; a method it does not list is refused.
type byMethod map[string]operation

// classify tells which operation r is, routing it as gofakes3 does (routeBase and the functions
// it calls, in the same order), so that what is checked is what runs.
func classify(r *http.Request, bucket, key string) operation {
	q := r.URL.Query()
	var ops byMethod
	switch {
	case q.Get("uploadId") != "":
		ops = byMethod{http.MethodGet: {"ListParts", writeObject}, http.MethodPut: {"UploadPart", writeObject},
			http.MethodDelete: {"AbortMultipartUpload", writeObject}, http.MethodPost: {"CompleteMultipartUpload", writeObject}}
	case q.Has("uploads"):
		ops = byMethod{http.MethodGet: {"ListMultipartUploads", refused}, http.MethodPost: {"CreateMultipartUpload", writeObject}}
	case q.Has("versioning"):
		ops = byMethod{http.MethodGet: {"GetBucketVersioning", refused}, http.MethodPut: {"PutBucketVersioning", refused}}
	case q.Has("versions"):
		ops = byMethod{http.MethodGet: {"ListObjectVersions", refused}}
	case versionQuery(q) != "":
		ops = byMethod{http.MethodGet: {"GetObject", readObject}, http.MethodHead: {"HeadObject", readObject},
			http.MethodDelete: {"DeleteObject", writeObject}}
	case bucket != "" && key != "":
		put := operation{"PutObject", writeObject}
		if _, ok := r.Header["X-Amz-Copy-Source"]; ok {
			put = operation{"CopyObject", copyObject}
		}
		ops = byMethod{http.MethodGet: {"GetObject", readObject}, http.MethodHead: {"HeadObject", readObject},
			http.MethodPut: put, http.MethodDelete: {"DeleteObject", writeObject}}
	case bucket != "":
		list, post := operation{"ListObjects", refused}, operation{"PostObject", refused}
		if q.Has("location") {
			list = operation{"GetBucketLocation", refused}
		}
		if q.Has("delete") {
			post = operation{"DeleteObjects", deleteObjects}
		}
		ops = byMethod{http.MethodGet: list, http.MethodPut: {"CreateBucket", refused}, http.MethodDelete: {"DeleteBucket", refused},
			http.MethodHead: {"HeadBucket", refused}, http.MethodPost: post}
	default:
		ops = byMethod{http.MethodGet: {"ListBuckets", refused}}
	}
	return ops[r.Method]
}

// versionQuery is the version a request names, as gofakes3 reads it: "null" names none.
func versionQuery(q url.Values) string {
	if v := q["versionId"]; len(v) > 0 && v[0] != "null" {
		return v[0]
	}
	return ""
}

// authorize checks a request against the job's scope: it must be an object operation on the
// job's objects, reading what the job reads and writing what it writes. The request is left as it
// was but for a copy's source, which it rewrites to the form gofakes3 reads as the source that was
// checked.
func (sc scope) authorize(r *http.Request) *s3Error {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	target := Location{Bucket: bucket, Key: key}
	op := classify(r, bucket, key)
	if _, ok := r.Header["X-Amz-Copy-Source"]; ok && op.access != copyObject {
		return sc.refuse(cmp.Or(op.name, r.Method) + " with a copy source")
	}
	switch op.access {
	case readObject:
		if !sc.readable(target) {
			return sc.unreachable(target)
		}
	case writeObject:
		if !sc.writable(target) {
			return sc.unwritable(target)
		}
	case copyObject:
		return sc.authorizeCopy(r, target)
	case deleteObjects:
		return sc.authorizeDeletes(r, bucket)
	default:
		return sc.refuse(cmp.Or(op.name, r.Method+" "+r.URL.Path))
	}
	return nil
}

// authorizeCopy checks a copy: the destination must be writable and the source readable.
func (sc scope) authorizeCopy(r *http.Request, dst Location) *s3Error {
	if !sc.writable(dst) {
		return sc.unwritable(dst)
	}
	src, version, err := parseCopySource(r.Header.Values("X-Amz-Copy-Source"))
	if err != nil {
		return &s3Error{http.StatusBadRequest, "InvalidArgument", err.Error()}
	}
	if !sc.readable(src) {
		return sc.unreachable(src)
	}
	r.Header.Set("X-Amz-Copy-Source", copySource(src, version))
	return nil
}

// parseCopySource reads an x-amz-copy-source header, "[/]bucket/key[?versionId=id]" URL-encoded
// as a whole or key alone. It decodes as gofakes3 does for every request ("+" is a space).
func parseCopySource(values []string) (src Location, version string, err error) {
	if len(values) != 1 {
		return Location{}, "", fmt.Errorf("a copy takes one x-amz-copy-source, not %d", len(values))
	}
	path, query, _ := strings.Cut(strings.TrimPrefix(values[0], "/"), "?")
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil || len(q) != 1 || len(q["versionId"]) != 1 {
			return Location{}, "", fmt.Errorf("the x-amz-copy-source %q may name a versionId and nothing else after the key", values[0])
		}
		version = q.Get("versionId")
	}
	path, err = url.QueryUnescape(path)
	if err != nil {
		return Location{}, "", fmt.Errorf("the x-amz-copy-source %q is not URL-encoded: %w", values[0], err)
	}
	bucket, key, _ := strings.Cut(path, "/")
	if bucket == "" || key == "" {
		return Location{}, "", fmt.Errorf("the x-amz-copy-source %q does not name a bucket and a key: it must be bucket/key", values[0])
	}
	return Location{Bucket: bucket, Key: key}, version, nil
}

// copySource is x-amz-copy-source for src in the one form that gofakes3 reads exactly: bucket
// as is, key escaped whole (no "/" or "?" left in it).
func copySource(src Location, version string) string {
	s := "/" + src.Bucket + "/" + url.QueryEscape(src.Key)
	if version != "" {
		s += "?versionId=" + url.QueryEscape(version)
	}
	return s
}

// authorizeDeletes checks a multi-object delete: every key it names must be writable, or nothing
// is deleted.
func (sc scope) authorizeDeletes(r *http.Request, bucket string) *s3Error {
	in, refused := readDeletes(r)
	if refused != nil {
		return refused
	}
	for _, o := range in.Objects {
		if l := (Location{Bucket: bucket, Key: o.Key}); !sc.writable(l) {
			return sc.unwritable(l)
		}
	}
	return nil
}

// readDeletes reads the body of a multi-object delete, bounded, and puts it back for gofakes3,
// which decodes it as here.
func readDeletes(r *http.Request) (gofakes3.DeleteRequest, *s3Error) {
	var in gofakes3.DeleteRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxDeleteBody+1))
	if refused := (*s3Error)(nil); errors.As(err, &refused) {
		return in, refused
	}
	if err != nil {
		return in, &s3Error{http.StatusBadRequest, "IncompleteBody", "The request body could not be read: " + err.Error()}
	}
	if len(body) > maxDeleteBody {
		return in, tooBig
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{bytes.NewReader(body), r.Body}
	if err := xml.NewDecoder(bytes.NewReader(body)).Decode(&in); err != nil {
		return in, &s3Error{http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema: " + err.Error()}
	}
	return in, nil
}

func (sc scope) unreachable(l Location) *s3Error {
	return sc.denied(fmt.Sprintf("reach only its own artifacts, not %s", l))
}

func (sc scope) unwritable(l Location) *s3Error {
	return sc.denied(fmt.Sprintf("write only its output artifacts, not %s", l))
}

func (sc scope) refuse(what string) *s3Error {
	return sc.denied("make only object operations on its own artifacts, not " + what)
}

func (sc scope) denied(what string) *s3Error {
	return &s3Error{http.StatusForbidden, "AccessDenied", fmt.Sprintf("Access Denied: the credentials of job %s %s.", sc.jobID, what)}
}
