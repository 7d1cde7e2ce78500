package s3server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sluicehq/sluice/internal/auth"
	sluicecreds "github.com/sluicehq/sluice/internal/credentials"
	"github.com/sluicehq/sluice/internal/objects"
	"github.com/sluicehq/sluice/internal/sdktest"
)

// The identities of the tests with authentication on: two accounts, the first the server's
// default; alice may do everything, reader only read and list, bob everything in his account.
const identitiesYAML = `
accounts:
  - id: "111111111111"
    users:
      - name: alice
        accessKeys: [{id: AKIAALICE0000001, secret: alice-secret}]
      - name: reader
        accessKeys: [{id: AKIAREADER000001, secret: reader-secret}]
        policy:
          - effect: Allow
            action: ["s3:Get*", "s3:List*"]
            resource: "*"
  - id: "222222222222"
    users:
      - name: bob
        accessKeys: [{id: AKIABOB000000001, secret: bob-secret}]
`

// user is a user's access key and secret.
type user struct{ key, secret string }

var (
	alice  = user{"AKIAALICE0000001", "alice-secret"}
	reader = user{"AKIAREADER000001", "reader-secret"}
	bob    = user{"AKIABOB000000001", "bob-secret"}
)

func (u user) creds() aws.Credentials {
	return aws.Credentials{AccessKeyID: u.key, SecretAccessKey: u.secret}
}

// authServer is an endpoint with authentication on.
type authServer struct {
	url    string
	objs   *objects.Store
	issuer *sluicecreds.Issuer
}

func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "identities.yaml")
	if err := os.WriteFile(path, []byte(identitiesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	ids, err := auth.LoadIdentities(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := objects.Open(ctx, filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	issuer := sluicecreds.NewIssuer([]byte("k"))
	srv := httptest.NewServer(New(Config{Store: objs, Issuer: issuer, Jobs: oneJob{}, Logger: slog.New(slog.DiscardHandler),
		Auth: &auth.Authenticator{Identities: ids}, Region: "us-east-1", Account: "111111111111"}))
	t.Cleanup(func() { srv.Close(); objs.Close() })
	return &authServer{url: srv.URL, objs: objs, issuer: issuer}
}

// client returns an SDK client signing with creds for region (us-east-1 if "").
func (a *authServer) client(creds aws.Credentials, region string) *s3.Client {
	return s3.New(s3.Options{Region: cmpOr(region, "us-east-1"), BaseEndpoint: aws.String(a.url), UsePathStyle: true,
		Retryer: sdktest.ConnectionRetries(), DisableLogOutputChecksumValidationSkipped: true,
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)})
}

func (a *authServer) as(u user) *s3.Client { return a.client(u.creds(), "") }

func cmpOr(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

func bucketNames(t *testing.T, c *s3.Client) []string {
	t.Helper()
	out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range out.Buckets {
		names = append(names, aws.ToString(b.Name))
	}
	return names
}

func createBucket(t *testing.T, c *s3.Client, bucket string) {
	t.Helper()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
}

// TestAccountsAreIsolated checks that a user reaches only the buckets of its account, and that
// bucket names are one namespace.
func TestAccountsAreIsolated(t *testing.T) {
	a := newAuthServer(t)
	asAlice, asBob := a.as(alice), a.as(bob)
	createBucket(t, asAlice, "alice-bkt")
	put(t, asAlice, "alice-bkt", "k", "alice's")
	if got, err := get(t, asAlice, "alice-bkt", "k", ""); err != nil || got != "alice's" {
		t.Fatalf("alice reading her object: %.40q %v", got, err)
	}
	if b, err := a.objs.Bucket(ctx, "alice-bkt"); err != nil || b.Owner != "111111111111" {
		t.Fatalf("alice's bucket: %+v %v, want it owned by her account", b, err)
	}
	// A bucket from before owners were recorded is the default account's.
	if err := a.objs.CreateBucket(ctx, "legacy", ""); err != nil {
		t.Fatal(err)
	}
	createBucket(t, asBob, "bob-bkt")
	put(t, asBob, "bob-bkt", "k", "bob's")

	if got := bucketNames(t, asAlice); !slices.Equal(got, []string{"alice-bkt", "legacy"}) {
		t.Errorf("alice lists %v", got)
	}
	if got := bucketNames(t, asBob); !slices.Equal(got, []string{"bob-bkt"}) {
		t.Errorf("bob lists %v", got)
	}
	_, err := asBob.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alice-bkt")})
	wantCode(t, err, "BucketAlreadyExists")
	_, err = asAlice.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alice-bkt")})
	wantCode(t, err, "BucketAlreadyOwnedByYou")

	for what, call := range map[string]func(bucket string) error{
		"GetObject": func(b string) error { _, err := get(t, asBob, b, "k", ""); return err },
		"PutObject": func(b string) error {
			_, err := asBob.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("k"), Body: strings.NewReader("bob was here")})
			return err
		},
		"ListObjectsV2": func(b string) error {
			_, err := asBob.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b)})
			return err
		},
		"DeleteObject": func(b string) error {
			_, err := asBob.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String("k")})
			return err
		},
		"DeleteObjects": func(b string) error {
			_, err := asBob.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(b),
				Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("k")}}}})
			return err
		},
		"DeleteBucket": func(b string) error {
			_, err := asBob.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(b)})
			return err
		},
		"PutBucketVersioning": func(b string) error {
			_, err := asBob.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(b),
				VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
			return err
		},
		"CreateMultipartUpload": func(b string) error {
			_, err := asBob.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(b), Key: aws.String("k")})
			return err
		},
		"CopyObject from": func(b string) error {
			_, err := asBob.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bob-bkt"), Key: aws.String("stolen"), CopySource: aws.String(b + "/k")})
			return err
		},
	} {
		for _, b := range []string{"alice-bkt", "legacy"} {
			if err := call(b); err == nil {
				t.Errorf("bob's %s on %s succeeded", what, b)
			} else {
				wantCode(t, err, "AccessDenied")
			}
		}
	}
	if _, err := asBob.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("alice-bkt"), Key: aws.String("k")}); err == nil {
		t.Error("bob's HeadObject on alice's bucket succeeded")
	}
	if got, err := get(t, asAlice, "alice-bkt", "k", ""); err != nil || got != "alice's" {
		t.Fatalf("alice's object after bob's attempts: %.40q %v", got, err)
	}
	// Bob's own bucket is his to use, and alice may not.
	if got, err := get(t, asBob, "bob-bkt", "k", ""); err != nil || got != "bob's" {
		t.Fatalf("bob reading his object: %.40q %v", got, err)
	}
	_, err = get(t, asAlice, "bob-bkt", "k", "")
	wantCode(t, err, "AccessDenied")
	// A bucket that does not exist is reported as such, to anyone.
	_, err = get(t, asBob, "nobucket", "k", "")
	wantCode(t, err, "NoSuchBucket")
}

// TestPolicies checks that a user's policy is held to the IAM action of each operation.
func TestPolicies(t *testing.T) {
	a := newAuthServer(t)
	asAlice, asReader := a.as(alice), a.as(reader)
	createBucket(t, asAlice, "bkt")
	put(t, asAlice, "bkt", "k", "v")
	if got, err := get(t, asReader, "bkt", "k", ""); err != nil || got != "v" {
		t.Fatalf("reader's GetObject: %.40q %v", got, err)
	}
	if _, err := asReader.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")}); err != nil {
		t.Fatalf("reader's HeadObject: %v", err)
	}
	if out, err := asReader.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bkt")}); err != nil || len(out.Contents) != 1 {
		t.Fatalf("reader's ListObjectsV2: %+v %v", out, err)
	}
	if got := bucketNames(t, asReader); !slices.Equal(got, []string{"bkt"}) {
		t.Errorf("reader lists %v", got)
	}
	_, err := asReader.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"), Body: strings.NewReader("overwritten")})
	wantCode(t, err, "AccessDenied")
	_, err = asReader.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")})
	wantCode(t, err, "AccessDenied")
	_, err = asReader.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bkt"), Key: aws.String("copy"), CopySource: aws.String("bkt/k")})
	wantCode(t, err, "AccessDenied")
	_, err = asReader.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("readers")})
	wantCode(t, err, "AccessDenied")
	_, err = asReader.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("bkt"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
	wantCode(t, err, "AccessDenied")
	if got, err := get(t, asAlice, "bkt", "k", ""); err != nil || got != "v" {
		t.Fatalf("the object after the reader's refused writes: %.40q %v", got, err)
	}
	// Alice's policy allows everything: a copy, a versioned read, a multi-object delete.
	if _, err := asAlice.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bkt"), Key: aws.String("copy"), CopySource: aws.String("bkt/k")}); err != nil {
		t.Fatal(err)
	}
	if _, err := asAlice.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("bkt"),
		Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("copy")}}}}); err != nil {
		t.Fatal(err)
	}
	_, err = get(t, asAlice, "bkt", "copy", "")
	wantCode(t, err, "NoSuchKey")
}

// TestPrincipalInContext checks the principal requests are served as, with authentication on
// and off.
func TestPrincipalInContext(t *testing.T) {
	a := newAuthServer(t)
	createBucket(t, a.as(alice), "bkt")
	for _, on := range []bool{true, false} {
		cfg := Config{Store: a.objs, Issuer: a.issuer, Region: "us-east-1", Account: "111111111111"}
		if on {
			ids, err := auth.LoadIdentities(writeIdentities(t))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Auth = &auth.Authenticator{Identities: ids}
		}
		srv := New(cfg).(*server)
		var seen *auth.Principal
		srv.next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen, _ = auth.PrincipalFrom(r.Context()) })
		r := signedRequest(t, http.MethodGet, "http://sluice.test/bkt/k", nil, alice.creds(), time.Now(), "")
		srv.ServeHTTP(httptest.NewRecorder(), r)
		want := "arn:aws:iam::111111111111:user/alice"
		if !on {
			want = "arn:aws:iam::111111111111:root"
		}
		if seen == nil || seen.ARN() != want {
			t.Errorf("authentication on %v: served as %+v, want %s", on, seen, want)
		}
	}
}

func writeIdentities(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "identities.yaml")
	if err := os.WriteFile(path, []byte(identitiesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// signedRequest returns a request signed in its header with creds at the time at, its payload
// declared as payloadHash (the body's SHA-256 if "").
func signedRequest(t *testing.T, method, url string, body []byte, creds aws.Credentials, at time.Time, payloadHash string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if payloadHash == "" {
		sum := sha256.Sum256(body)
		payloadHash = hex.EncodeToString(sum[:])
	}
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
		SignHTTP(ctx, creds, r, payloadHash, "s3", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	return r
}

// s3Answer makes a request and returns its status and the S3 error it answers, if any.
func s3Answer(t *testing.T, r *http.Request) (status int, code, message string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Code, Message string }
	if raw, _ := io.ReadAll(resp.Body); resp.StatusCode >= 300 {
		xml.Unmarshal(raw, &e)
	}
	return resp.StatusCode, e.Code, e.Message
}

// TestSignatureRefusals checks how requests that are not signed right are refused: with S3's
// codes and messages.
func TestSignatureRefusals(t *testing.T) {
	a := newAuthServer(t)
	createBucket(t, a.as(alice), "bkt")
	put(t, a.as(alice), "bkt", "k", "v")
	url := a.url + "/bkt/k"

	_, err := get(t, a.as(user{"AKIANOBODY000001", "x"}), "bkt", "k", "")
	wantCode(t, err, "InvalidAccessKeyId")
	_, err = get(t, a.as(user{alice.key, "not-alice-secret"}), "bkt", "k", "")
	wantCode(t, err, "SignatureDoesNotMatch")
	_, err = get(t, a.client(alice.creds(), "eu-west-1"), "bkt", "k", "")
	wantCode(t, err, "AuthorizationHeaderMalformed")

	plain, _ := http.NewRequest(http.MethodGet, url, nil)
	sigV2, _ := http.NewRequest(http.MethodGet, url, nil)
	sigV2.Header.Set("Authorization", "AWS "+alice.key+":c2lnbmF0dXJl")
	noPayloadHash := signedRequest(t, http.MethodGet, url, nil, alice.creds(), time.Now(), "")
	noPayloadHash.Header.Del("X-Amz-Content-Sha256")
	twice := signedRequest(t, http.MethodGet, url+"?X-Amz-Algorithm=AWS4-HMAC-SHA256", nil, alice.creds(), time.Now(), "")
	eu := signedRequest(t, http.MethodGet, url, nil, alice.creds(), time.Now(), "")
	eu.Header.Set("Authorization", strings.Replace(eu.Header.Get("Authorization"), "/us-east-1/", "/eu-west-1/", 1))
	for _, c := range []struct {
		name          string
		r             *http.Request
		status        int
		code, message string
	}{
		{"unsigned", plain, 403, "AccessDenied", "Access Denied"},
		{"signed 20 minutes ago", signedRequest(t, http.MethodGet, url, nil, alice.creds(), time.Now().Add(-20*time.Minute), ""),
			403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large."},
		{"signed 20 minutes ahead", signedRequest(t, http.MethodGet, url, nil, alice.creds(), time.Now().Add(20*time.Minute), ""),
			403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large."},
		{"unknown key", signedRequest(t, http.MethodGet, url, nil, aws.Credentials{AccessKeyID: "AKIANOBODY000001", SecretAccessKey: "x"}, time.Now(), ""),
			403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."},
		{"wrong secret", signedRequest(t, http.MethodGet, url, nil, user{alice.key, "x"}.creds(), time.Now(), ""),
			403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method."},
		{"session token with a user's key", signedRequest(t, http.MethodGet, url, nil, aws.Credentials{AccessKeyID: alice.key, SecretAccessKey: alice.secret, SessionToken: "t"}, time.Now(), ""),
			400, "InvalidToken", "The provided token is malformed or otherwise invalid."},
		{"another region", eu, 400, "AuthorizationHeaderMalformed", "The authorization header is malformed; the region 'eu-west-1' is wrong; expecting 'us-east-1'"},
		{"SigV2", sigV2, 400, "InvalidRequest", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."},
		{"no x-amz-content-sha256", noPayloadHash, 400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"},
		{"header and query", twice, 400, "InvalidArgument", ""},
	} {
		status, code, message := s3Answer(t, c.r)
		if status != c.status || code != c.code || c.message != "" && message != c.message {
			t.Errorf("%s: %d %s %q, want %d %s %q", c.name, status, code, message, c.status, c.code, c.message)
		}
	}
}

// pastPresigner presigns URLs as signed ago in the past.
type pastPresigner struct {
	ago time.Duration
}

func (p pastPresigner) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	signingTime time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return v4.NewSigner().PresignHTTP(ctx, creds, r, payloadHash, service, region, signingTime.Add(-p.ago), optFns...)
}

// TestPresignedURLs checks URLs presigned by users: they work with any HTTP client until they
// expire, and only as signed.
func TestPresignedURLs(t *testing.T) {
	a := newAuthServer(t)
	createBucket(t, a.as(alice), "bkt")
	put(t, a.as(alice), "bkt", "dir/a b+c", "presigned")
	presign := func(u user, ago time.Duration) string {
		t.Helper()
		req, err := s3.NewPresignClient(a.as(u), func(o *s3.PresignOptions) {
			o.Expires = time.Minute
			if ago != 0 {
				o.Presigner = pastPresigner{ago}
			}
		}).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/a b+c")})
		if err != nil {
			t.Fatal(err)
		}
		return req.URL
	}
	valid := presign(alice, 0)
	resp, err := http.Get(valid)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "presigned" {
		t.Fatalf("GET %s: %d %q", valid, resp.StatusCode, body)
	}
	i := strings.Index(valid, "X-Amz-Signature=") + len("X-Amz-Signature=")
	tampered := valid[:i] + map[bool]string{true: "1", false: "0"}[valid[i] == '0'] + valid[i+1:]
	for _, c := range []struct {
		name, url     string
		status        int
		code, message string
	}{
		{"expired", presign(alice, 2*time.Minute), 403, "AccessDenied", "Request has expired"},
		{"tampered", tampered, 403, "SignatureDoesNotMatch", ""},
		{"of another account", presign(bob, 0), 403, "AccessDenied", "Access Denied"},
		{"of a reader", presign(reader, 0), 200, "", ""},
	} {
		r, _ := http.NewRequest(http.MethodGet, c.url, nil)
		status, code, message := s3Answer(t, r)
		if status != c.status || code != c.code || c.message != "" && message != c.message {
			t.Errorf("%s: %d %s %q, want %d %s %q", c.name, status, code, message, c.status, c.code, c.message)
		}
	}
}

// TestPayloadHashes checks that a body must hash to what a signed request declares.
func TestPayloadHashes(t *testing.T) {
	a := newAuthServer(t)
	asAlice := a.as(alice)
	createBucket(t, asAlice, "bkt")
	put(t, asAlice, "bkt", "k", "old")
	url := a.url + "/bkt/k"

	declared := sha256.Sum256([]byte("good"))
	r := signedRequest(t, http.MethodPut, url, []byte("evil"), alice.creds(), time.Now(), hex.EncodeToString(declared[:]))
	if status, code, message := s3Answer(t, r); status != 400 || code != "XAmzContentSHA256Mismatch" ||
		message != "The provided 'x-amz-content-sha256' header does not match what was computed." {
		t.Errorf("a PUT whose body is not what it declares: %d %s %q", status, code, message)
	}
	// Big enough to be read in many parts.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	bigSum := sha256.Sum256(big)
	tamperedBig := slices.Clone(big)
	tamperedBig[len(big)-1] = 'X'
	r = signedRequest(t, http.MethodPut, url, tamperedBig, alice.creds(), time.Now(), hex.EncodeToString(bigSum[:]))
	if status, code, _ := s3Answer(t, r); status != 400 || code != "XAmzContentSHA256Mismatch" {
		t.Errorf("a big PUT whose last byte is not what it declares: %d %s", status, code)
	}
	r = signedRequest(t, http.MethodPut, url, []byte("x"), alice.creds(), time.Now(), "SOMETHING-ELSE")
	if status, code, _ := s3Answer(t, r); status != 400 || code != "InvalidArgument" {
		t.Errorf("a PUT declaring neither a hash nor a known payload: %d %s", status, code)
	}
	if got, err := get(t, asAlice, "bkt", "k", ""); err != nil || got != "old" {
		t.Fatalf("the object after refused PUTs: %.20q (%d bytes) %v", got, len(got), err)
	}
	// A multi-object delete, read whole before it runs, is checked before it runs.
	deletes := []byte("<Delete><Object><Key>k</Key></Object></Delete>")
	other := sha256.Sum256([]byte("<Delete><Object><Key>z</Key></Object></Delete>"))
	r = signedRequest(t, http.MethodPost, a.url+"/bkt?delete", deletes, alice.creds(), time.Now(), hex.EncodeToString(other[:]))
	if status, code, _ := s3Answer(t, r); status != 400 || code != "XAmzContentSHA256Mismatch" {
		t.Errorf("a delete whose body is not what it declares: %d %s", status, code)
	}
	if got, err := get(t, asAlice, "bkt", "k", ""); err != nil || got != "old" {
		t.Fatalf("the object after a refused delete: %.40q %v", got, err)
	}
	for _, payload := range []string{"", unsignedPayload} {
		r = signedRequest(t, http.MethodPut, url, big, alice.creds(), time.Now(), payload)
		if status, code, _ := s3Answer(t, r); status != 200 {
			t.Fatalf("a PUT declaring %q: %d %s", payload, status, code)
		}
		if got, err := get(t, asAlice, "bkt", "k", ""); err != nil || got != string(big) {
			t.Fatalf("the object PUT declaring %q: %d bytes %v", payload, len(got), err)
		}
	}
}

// chunked is an aws-chunked upload built by hand.
type chunked struct {
	// declared is its x-amz-content-sha256.
	declared string
	// chunkSize is the size of its chunks but the last.
	chunkSize int
	// corrupt, if not negative, is the chunk whose signature is wrong (len(chunks) for the last,
	// empty one, len(chunks)+1 for the trailer's).
	corrupt int
	// trailer adds an x-amz-checksum-crc32 trailer.
	trailer bool
}

// request returns a PUT of body to url in c's encoding, signed with creds.
func (c chunked) request(t *testing.T, url string, body []byte, creds aws.Credentials) *http.Request {
	t.Helper()
	at := time.Now().UTC()
	var parts [][]byte
	for rest := body; len(rest) > 0; {
		n := min(c.chunkSize, len(rest))
		parts, rest = append(parts, rest[:n]), rest[n:]
	}
	signed := c.declared != streamingUnsignedTrailer
	r, err := http.NewRequest(http.MethodPut, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("X-Amz-Content-Sha256", c.declared)
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(len(body)))
	trailer := ""
	if c.trailer {
		r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		sum := crc32.ChecksumIEEE(body)
		trailer = "x-amz-checksum-crc32:" + base64.StdEncoding.EncodeToString([]byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	}
	if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
		SignHTTP(ctx, creds, r, c.declared, "s3", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	_, seedHex, _ := strings.Cut(r.Header.Get("Authorization"), "Signature=")
	seed, _ := hex.DecodeString(seedHex)
	stream := v4.NewStreamSigner(creds, "s3", "us-east-1", seed)
	var wire bytes.Buffer
	var last []byte // the last chunk's signature, to which the trailer's is chained
	for i, part := range append(parts, nil) {
		if !signed {
			fmt.Fprintf(&wire, "%x\r\n", len(part))
		} else {
			sig, err := stream.GetSignature(ctx, nil, part, at)
			if err != nil {
				t.Fatal(err)
			}
			last = slices.Clone(sig)
			if i == c.corrupt {
				sig[0] ^= 1
			}
			fmt.Fprintf(&wire, "%x;chunk-signature=%x\r\n", len(part), sig)
		}
		if part != nil {
			wire.Write(part)
			wire.WriteString("\r\n")
		}
	}
	if trailer != "" {
		wire.WriteString(trailer + "\r\n")
		if signed {
			// The trailer's signature chains to the last chunk's, as the chunks' do; it signs the
			// trailing headers as "name:value\n" each.
			sts := strings.Join([]string{"AWS4-HMAC-SHA256-TRAILER", at.Format("20060102T150405Z"), at.Format("20060102") + "/us-east-1/s3/aws4_request",
				fmt.Sprintf("%x", last), fmt.Sprintf("%x", sha256.Sum256([]byte(trailer+"\n")))}, "\n")
			sig := hmacSHA256(signingKey(creds.SecretAccessKey, at), sts)
			if c.corrupt == len(parts)+1 {
				sig[0] ^= 1
			}
			fmt.Fprintf(&wire, "x-amz-trailer-signature:%x\r\n", sig)
		}
	}
	wire.WriteString("\r\n")
	r.Body = io.NopCloser(bytes.NewReader(wire.Bytes()))
	r.ContentLength = int64(wire.Len())
	return r
}

func signingKey(secret string, at time.Time) []byte {
	key := []byte("AWS4" + secret)
	for _, part := range []string{at.Format("20060102"), "us-east-1", "s3", "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	return key
}

// TestChunkedUploads checks aws-chunked uploads: every chunk's signature, the last, empty one's
// too, and the trailer's, must verify, or nothing is stored.
func TestChunkedUploads(t *testing.T) {
	a := newAuthServer(t)
	asAlice := a.as(alice)
	createBucket(t, asAlice, "bkt")
	body := make([]byte, 150_000)
	for i := range body {
		body[i] = byte(i * 7)
	}
	for _, c := range []chunked{
		{declared: streamingSigned, chunkSize: 64 << 10, corrupt: -1},
		{declared: streamingSigned, chunkSize: 8 << 10, corrupt: -1},
		{declared: streamingSignedTrailer, chunkSize: 64 << 10, corrupt: -1, trailer: true},
		{declared: streamingUnsignedTrailer, chunkSize: 64 << 10, corrupt: -1, trailer: true},
	} {
		key := fmt.Sprintf("%s-%d", c.declared, c.chunkSize)
		if status, code, message := s3Answer(t, c.request(t, a.url+"/bkt/"+key, body, alice.creds())); status != 200 {
			t.Fatalf("%s in chunks of %d: %d %s %s", c.declared, c.chunkSize, status, code, message)
		}
		out, err := asAlice.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, body) || aws.ToString(out.ContentEncoding) != "" {
			t.Fatalf("%s in chunks of %d stored %d bytes, content encoding %q; want the %d sent, none", c.declared, c.chunkSize, len(got),
				aws.ToString(out.ContentEncoding), len(body))
		}
	}
	put(t, asAlice, "bkt", "k", "old")
	for _, c := range []chunked{
		{declared: streamingSigned, chunkSize: 64 << 10, corrupt: 0},
		{declared: streamingSigned, chunkSize: 64 << 10, corrupt: 1},
		{declared: streamingSigned, chunkSize: 64 << 10, corrupt: 3}, // the last, empty chunk
		{declared: streamingSignedTrailer, chunkSize: 64 << 10, corrupt: 4, trailer: true},
	} {
		status, code, _ := s3Answer(t, c.request(t, a.url+"/bkt/k", body, alice.creds()))
		if status != 403 || code != "SignatureDoesNotMatch" {
			t.Errorf("%s with chunk %d's signature corrupt: %d %s", c.declared, c.corrupt, status, code)
		}
	}
	// Chunks whose data is not what was signed.
	r := chunked{declared: streamingSigned, chunkSize: 64 << 10, corrupt: -1}.request(t, a.url+"/bkt/k", body, alice.creds())
	wire, _ := io.ReadAll(r.Body)
	wire[len(wire)/2] ^= 1
	r.Body = io.NopCloser(bytes.NewReader(wire))
	if status, code, _ := s3Answer(t, r); status != 403 || code != "SignatureDoesNotMatch" {
		t.Errorf("chunks with a byte changed: %d %s", status, code)
	}
	// Chunks cut short.
	r = chunked{declared: streamingSigned, chunkSize: 64 << 10, corrupt: -1}.request(t, a.url+"/bkt/k", body, alice.creds())
	wire, _ = io.ReadAll(r.Body)
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(wire[:len(wire)-100])), int64(len(wire)-100)
	if status, code, _ := s3Answer(t, r); status != 400 || code != "IncompleteBody" {
		t.Errorf("chunks cut short: %d %s", status, code)
	}
	if got, err := get(t, asAlice, "bkt", "k", ""); err != nil || got != "old" {
		t.Fatalf("the object after refused chunked PUTs: %.40q %v", got, err)
	}
	// A part of a multipart upload, in chunks.
	up, err := asAlice.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("parts")})
	if err != nil {
		t.Fatal(err)
	}
	partURL := a.url + "/bkt/parts?partNumber=1&uploadId=" + aws.ToString(up.UploadId)
	r = chunked{declared: streamingSigned, chunkSize: 64 << 10, corrupt: 1}.request(t, partURL, body, alice.creds())
	if status, code, _ := s3Answer(t, r); status != 403 || code != "SignatureDoesNotMatch" {
		t.Errorf("a part with a chunk signature corrupt: %d %s", status, code)
	}
	r = chunked{declared: streamingSigned, chunkSize: 64 << 10, corrupt: -1}.request(t, partURL, body, alice.creds())
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("a part in chunks: %d", resp.StatusCode)
	}
	if _, err := asAlice.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("parts"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: aws.String(resp.Header.Get("ETag")), PartNumber: aws.Int32(1)}}}}); err != nil {
		t.Fatal(err)
	}
	if got, err := get(t, asAlice, "bkt", "parts", ""); err != nil || got != string(body) {
		t.Fatalf("the object uploaded in a chunked part: %d bytes %v", len(got), err)
	}
	// Bob's signatures, chunks included, are his, and the bucket is not.
	if status, code, _ := s3Answer(t, chunked{declared: streamingSigned, chunkSize: 64 << 10, corrupt: -1}.request(t, a.url+"/bkt/k", body, bob.creds())); status != 403 || code != "AccessDenied" {
		t.Errorf("bob's chunked PUT to alice's bucket: %d %s", status, code)
	}
}

// TestChunkedUploadsWithAuthenticationOff checks that aws-chunked bodies are decoded, their
// signatures unchecked, when requests are not authenticated.
func TestChunkedUploadsWithAuthenticationOff(t *testing.T) {
	c := newClient(t)
	createBucket(t, c, "bkt")
	// The client's base endpoint is the server's URL.
	url := aws.ToString(c.Options().BaseEndpoint)
	for _, declared := range []string{streamingSigned, streamingUnsignedTrailer} {
		r := chunked{declared: declared, chunkSize: 10, corrupt: 1, trailer: declared == streamingUnsignedTrailer}.
			request(t, url+"/bkt/k", []byte("contents in chunks of ten bytes"), aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"})
		if status, code, message := s3Answer(t, r); status != 200 {
			t.Fatalf("%s: %d %s %s", declared, status, code, message)
		}
		if got, err := get(t, c, "bkt", "k", ""); err != nil || got != "contents in chunks of ten bytes" {
			t.Fatalf("%s stored %.40q %v", declared, got, err)
		}
	}
}

// TestJobCredentialsWithAuthenticationOn checks that jobs' credentials work as they do with
// authentication off, aws-chunked uploads included.
func TestJobCredentialsWithAuthenticationOn(t *testing.T) {
	a := newAuthServer(t)
	asAlice := a.as(alice)
	createBucket(t, asAlice, "bkt")
	for _, k := range []string{"in", "secret"} {
		put(t, asAlice, "bkt", k, k)
	}
	jc := a.issuer.ForJob(jobID)
	creds := aws.Credentials{AccessKeyID: jc.AccessKeyID, SecretAccessKey: jc.SecretAccessKey, SessionToken: jc.SessionToken}
	job := a.client(creds, "")
	if got, err := get(t, job, "bkt", "in", ""); err != nil || got != "in" {
		t.Fatalf("the job reading its input: %.40q %v", got, err)
	}
	put(t, job, "bkt", "out", "out")
	_, err := get(t, job, "bkt", "secret", "")
	wantCode(t, err, "AccessDenied")
	_, err = job.ListBuckets(ctx, &s3.ListBucketsInput{})
	wantCode(t, err, "AccessDenied")

	body := bytes.Repeat([]byte("job output "), 10_000)
	r := chunked{declared: streamingSigned, chunkSize: 64 << 10, corrupt: -1}.request(t, a.url+"/bkt/out", body, creds)
	if status, code, message := s3Answer(t, r); status != 200 {
		t.Fatalf("the job's chunked PUT: %d %s %s", status, code, message)
	}
	if got, err := get(t, asAlice, "bkt", "out", ""); err != nil || got != string(body) {
		t.Fatalf("the job's chunked output: %d bytes %v", len(got), err)
	}
	r = chunked{declared: streamingSigned, chunkSize: 64 << 10, corrupt: 1}.request(t, a.url+"/bkt/out", []byte(strings.Repeat("x", 100_000)), creds)
	if status, code, _ := s3Answer(t, r); status != 403 || code != "SignatureDoesNotMatch" {
		t.Errorf("the job's chunked PUT with a chunk signature corrupt: %d %s", status, code)
	}
	if got, err := get(t, asAlice, "bkt", "out", ""); err != nil || got != string(body) {
		t.Fatalf("the job's output after a refused PUT: %d bytes %v", len(got), err)
	}
	// Job credentials are no user's.
	r = signedRequest(t, http.MethodGet, a.url+"/bkt/secret", nil, aws.Credentials{AccessKeyID: jc.AccessKeyID, SecretAccessKey: "guess", SessionToken: jc.SessionToken}, time.Now(), "")
	if status, code, _ := s3Answer(t, r); status != 403 || code != "SignatureDoesNotMatch" {
		t.Errorf("job credentials with a wrong secret: %d %s", status, code)
	}
}
