// Package artifacts stores what pipeline actions hand each other: zip files in the bucket of a
// pipeline's artifact store. One interface, two places: the local object store under the data
// directory (the embedded default, also served by the built-in S3 endpoint) and any
// S3-compatible service.
package artifacts

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"time"
	"unicode/utf8"
)

// Errors, matched with errors.Is; the stores wrap them with the name of what is missing.
var (
	ErrNoSuchBucket  = errors.New("the bucket does not exist")
	ErrNoSuchKey     = errors.New("the object does not exist")
	ErrNoSuchVersion = errors.New("the object version does not exist")
)

// Info describes one version of an object.
type Info struct {
	Version  string
	ETag     string
	Size     int64
	Modified time.Time
}

// Metadata is what an object carries besides its contents; empty fields are left unset.
type Metadata struct {
	ContentType  string
	CacheControl string
	// ACL is a canned ACL; the local store, which has no ACLs, ignores it.
	ACL string
}

// Credentials are what a job receives to reach its artifacts.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// Store keeps objects in buckets.
type Store interface {
	// EnsureBucket readies a bucket of a pipeline's artifact store: the local store creates it;
	// an external one must already have it.
	EnsureBucket(ctx context.Context, bucket string) error
	// Put writes an object of size bytes and returns its version ("" in an unversioned bucket).
	Put(ctx context.Context, bucket, key string, r io.Reader, size int64, meta Metadata) (Info, error)
	// Get opens a version of an object ("" for the latest).
	Get(ctx context.Context, bucket, key, version string) (io.ReadCloser, Info, error)
	// Head describes a version of an object ("" for the latest).
	Head(ctx context.Context, bucket, key, version string) (Info, error)
	// JobCredentials are the credentials handed to a job to read its inputs and write its outputs.
	JobCredentials(jobID string) Credentials
	// Endpoint describes the store for messages: where it is.
	Endpoint() string
}

// Key returns a fresh object key for an artifact, laid out as CodePipeline lays them out: the
// pipeline's name cut to 20 characters, the artifact's cut to 10, and a random suffix.
func Key(pipeline, artifact string) string {
	return truncate(pipeline, 20) + "/" + truncate(artifact, 10) + "/" + randomSuffix()
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

const suffixAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomSuffix() string {
	b := make([]byte, 7)
	rand.Read(b)
	for i := range b {
		b[i] = suffixAlphabet[int(b[i])%len(suffixAlphabet)]
	}
	return string(b)
}
