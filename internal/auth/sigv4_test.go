package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// testNow is the clock of every test but the one against a real server.
var testNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

const (
	apiEndpoint     = "http://localhost:8080/"
	apiBody         = `{"name":"p"}`
	jsonContentType = "application/x-amz-json-1.1"
	getPipeline     = "CodePipeline_20150709.GetPipeline"
	mismatchMessage = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	unknownKeyMsg   = "The security token included in the request is invalid."
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// apiRequest is a CodePipeline call as the SDK sends it, not yet signed.
func apiRequest(t testing.TB, body string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, apiEndpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", jsonContentType)
	r.Header.Set("X-Amz-Target", getPipeline)
	return r
}

// signer are the signing parameters of a request; the zero value of a field means alice's first
// key, for CodePipeline in us-east-1, at testNow.
type signer struct {
	key, secret, token string
	service, region    string
	at                 time.Time
	payloadHash        string
	s3                 bool
}

func (s signer) fill(body string) signer {
	if s.key == "" {
		s.key, s.secret = aliceKey1, aliceSecret
	}
	if s.service == "" {
		s.service = "codepipeline"
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.at.IsZero() {
		s.at = testNow
	}
	if s.payloadHash == "" {
		s.payloadHash = sha256Hex(body)
	}
	return s
}

func (s signer) v4() *v4.Signer {
	return v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = s.s3 })
}

func (s signer) creds() aws.Credentials {
	return aws.Credentials{AccessKeyID: s.key, SecretAccessKey: s.secret, SessionToken: s.token}
}

// sign signs r in its Authorization header.
func (s signer) sign(t testing.TB, r *http.Request, body string) {
	t.Helper()
	s = s.fill(body)
	if err := s.v4().SignHTTP(context.Background(), s.creds(), r, s.payloadHash, s.service, s.region, s.at); err != nil {
		t.Fatal(err)
	}
}

// presign presigns r, valid for expires seconds, and returns the request a client makes with the
// presigned URL: r's method, body and the headers the signer says must be sent.
func (s signer) presign(t testing.TB, r *http.Request, body string, expires string) *http.Request {
	t.Helper()
	s = s.fill(body)
	q := r.URL.Query()
	q.Set("X-Amz-Expires", expires)
	r.URL.RawQuery = q.Encode()
	signedURL, headers, err := s.v4().PresignHTTP(context.Background(), s.creds(), r, s.payloadHash, s.service, s.region, s.at)
	if err != nil {
		t.Fatal(err)
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	out, err := http.NewRequest(r.Method, signedURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if k != "Host" {
			out.Header[k] = v
		}
	}
	return out
}

// overWire is r as a server reads it: written as HTTP/1.1 and read back, with its body read.
func overWire(t testing.TB, r *http.Request) (*http.Request, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	sr, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(sr.Body)
	if err != nil {
		t.Fatal(err)
	}
	return sr, string(body)
}

func fixedClock() time.Time { return testNow }

// apiSurface is the CodePipeline API's surface for a request whose body is body.
func apiSurface(body string) Surface {
	return Surface{Service: "codepipeline", Region: "us-east-1", Skew: 5 * time.Minute,
		VerifyOptions: VerifyOptions{PayloadHash: sha256Hex(body)}}
}

func s3Surface(payloadHash string) Surface {
	return Surface{Service: "s3", Region: "us-east-1", Skew: 15 * time.Minute,
		VerifyOptions: VerifyOptions{PayloadHash: payloadHash, S3: true}}
}

// asError returns err as a *Error, failing the test if it is not one.
func asError(t testing.TB, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *auth.Error", err, err)
	}
	return e
}

type want struct {
	kind string // empty: valid
	msg  string // checked when not empty
	// msgPrefix is checked when not empty.
	msgPrefix string
	user      string // checked for a valid request; "" means alice
	key       string // checked for a valid request; "" means aliceKey1
}

func (w want) check(t *testing.T, p *Principal, sig Signature, err error) {
	t.Helper()
	if w.kind == "" {
		if err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
		user, key := w.user, w.key
		if user == "" {
			user = "alice"
		}
		if key == "" {
			key = aliceKey1
		}
		if p == nil {
			t.Fatal("Authenticate returned no principal and no error")
		}
		if p.Account != "111111111111" || p.User != user || p.AccessKeyID != key {
			t.Errorf("principal = %+v, want account 111111111111, user %s, key %s", *p, user, key)
		}
		if wantARN := "arn:aws:iam::111111111111:user/" + user; p.ARN() != wantARN {
			t.Errorf("ARN() = %q, want %q", p.ARN(), wantARN)
		}
		if sig.AccessKeyID != key {
			t.Errorf("sig.AccessKeyID = %q, want %q", sig.AccessKeyID, key)
		}
		return
	}
	if p != nil {
		t.Errorf("principal %+v returned with an error", *p)
	}
	e := asError(t, err)
	if e.Kind != w.kind {
		t.Errorf("kind = %q (%s), want %q", e.Kind, e.Message, w.kind)
	}
	if w.msg != "" && e.Message != w.msg {
		t.Errorf("message = %q\nwant        %q", e.Message, w.msg)
	}
	if w.msgPrefix != "" && !strings.HasPrefix(e.Message, w.msgPrefix) {
		t.Errorf("message = %q, want it to start with %q", e.Message, w.msgPrefix)
	}
	if e.Error() != e.Message {
		t.Errorf("Error() = %q, want the message %q", e.Error(), e.Message)
	}
}

func TestAuthenticateHeader(t *testing.T) {
	ids := loadTestIdentities(t)
	a := &Authenticator{Identities: ids, Now: fixedClock}
	minutes := func(n int) time.Time { return testNow.Add(time.Duration(n) * time.Minute) }
	cases := []struct {
		name   string
		signer signer
		// after changes the signed request before it is sent.
		after func(r *http.Request)
		want  want
	}{
		{name: "valid", want: want{}},
		{name: "second key of the same user", signer: signer{key: aliceKey2, secret: alice2Secret}, want: want{key: aliceKey2}},
		{name: "other user", signer: signer{key: bobKey, secret: bobSecret}, want: want{user: "bob", key: bobKey}},
		{name: "unsigned header added", after: func(r *http.Request) { r.Header.Set("X-Unsigned", "anything") }, want: want{}},
		{name: "user agent changed", after: func(r *http.Request) { r.Header.Set("User-Agent", "other") }, want: want{}},
		{name: "wrong secret", signer: signer{key: aliceKey1, secret: "not-alice"}, want: want{kind: KindMismatch, msg: mismatchMessage}},
		{name: "secret of the user's other key", signer: signer{key: aliceKey1, secret: alice2Secret}, want: want{kind: KindMismatch, msg: mismatchMessage}},
		{name: "body changed after signing", after: func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"name":"q"}`))
		}, want: want{kind: KindMismatch, msg: mismatchMessage}},
		{name: "signed header changed", after: func(r *http.Request) {
			r.Header.Set("X-Amz-Target", "CodePipeline_20150709.DeletePipeline")
		}, want: want{kind: KindMismatch, msg: mismatchMessage}},
		{name: "content type changed", after: func(r *http.Request) {
			r.Header.Set("Content-Type", "application/json")
		}, want: want{kind: KindMismatch, msg: mismatchMessage}},
		{name: "host changed", after: func(r *http.Request) { r.Host = "localhost:8081" }, want: want{kind: KindMismatch}},
		{name: "path changed", after: func(r *http.Request) { r.URL.Path = "/other" }, want: want{kind: KindMismatch}},
		{name: "query added", after: func(r *http.Request) { r.URL.RawQuery = "a=b" }, want: want{kind: KindMismatch}},
		{name: "method changed", after: func(r *http.Request) { r.Method = http.MethodPut }, want: want{kind: KindMismatch}},
		{name: "x-amz-date changed within skew", after: func(r *http.Request) {
			r.Header.Set("X-Amz-Date", minutes(1).Format(TimeFormat))
		}, want: want{kind: KindMismatch}},
		{name: "signature truncated", after: func(r *http.Request) {
			r.Header.Set("Authorization", r.Header.Get("Authorization")[:len(r.Header.Get("Authorization"))-2])
		}, want: want{kind: KindMismatch}},
		{name: "signature not hex", after: func(r *http.Request) {
			h := r.Header.Get("Authorization")
			r.Header.Set("Authorization", h[:len(h)-1]+"g")
		}, want: want{kind: KindMismatch}},
		{name: "the operation left out of the signed headers", after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), ";x-amz-target", "", 1))
		}, want: want{kind: KindUnsignedHeaders, msg: "There were headers present in the request which were not signed: x-amz-target"}},
		{name: "an unsigned x-amz header added", after: func(r *http.Request) {
			r.Header.Set("X-Amz-Copy-Source", "bucket/secret")
		}, want: want{kind: KindUnsignedHeaders, msg: "There were headers present in the request which were not signed: x-amz-copy-source"}},
		{name: "the host left out of the signed headers", after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=content-length;content-type;host;", "SignedHeaders=content-length;content-type;", 1))
		}, want: want{kind: KindUnsignedHeaders, msg: "The host header must be signed."}},
		{name: "unknown key", signer: signer{key: "AKIANOBODY00000001", secret: "x"}, want: want{kind: KindUnknownKey, msg: unknownKeyMsg}},
		{name: "session token on a user key", signer: signer{key: aliceKey1, secret: aliceSecret, token: "token"}, want: want{kind: KindUnknownKey, msg: unknownKeyMsg}},
		{name: "signed for s3", signer: signer{service: "s3"}, want: want{kind: KindScope, msg: "Credential should be scoped to correct service: 'codepipeline'. "}},
		{name: "signed for another region", signer: signer{region: "eu-west-1"}, want: want{kind: KindScope,
			msg: "Credential should be scoped to a valid region. The region 'eu-west-1' is wrong; expecting 'us-east-1'"}},
		{name: "credential date of another day", after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20261201/", "/20261130/", 1))
		}, want: want{kind: KindScope, msg: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261130' != '20261201', from '20261201T120000Z'."}},
		{name: "credential date a prefix of the signing day", after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20261201/", "/2026/", 1))
		}, want: want{kind: KindScope}},
		{name: "signed 6 minutes ago", signer: signer{at: minutes(-6)}, want: want{kind: KindExpired,
			msg: "Signature expired: 20261201T115400Z is now earlier than 20261201T115500Z (20261201T120000Z - 5 min.)"}},
		{name: "signed 6 minutes ahead", signer: signer{at: minutes(6)}, want: want{kind: KindNotYetValid,
			msg: "Signature not yet current: 20261201T120600Z is still later than 20261201T120500Z (20261201T120000Z + 5 min.)"}},
		{name: "signed 4 minutes ago", signer: signer{at: minutes(-4)}, want: want{}},
		{name: "signed 4 minutes ahead", signer: signer{at: minutes(4)}, want: want{}},
		{name: "signed exactly 5 minutes ago", signer: signer{at: minutes(-5)}, want: want{}},
		{name: "signed 5 minutes and a second ago", signer: signer{at: minutes(-5).Add(-time.Second)}, want: want{kind: KindExpired}},
		{name: "x-amz-date not in its format", after: func(r *http.Request) {
			r.Header.Set("X-Amz-Date", "20261201T120000")
		}, want: want{kind: KindIncomplete, msg: `X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'", not '20261201T120000'.`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := apiRequest(t, apiBody)
			tc.signer.sign(t, r, apiBody)
			if tc.after != nil {
				tc.after(r)
			}
			sr, body := overWire(t, r)
			p, sig, err := a.Authenticate(sr, apiSurface(body))
			tc.want.check(t, p, sig, err)
		})
	}
}

// TestAuthenticateInProcess checks a request a handler is given in-process, as
// httptest.NewRequest makes it: with a ContentLength but no Content-Length header.
func TestAuthenticateInProcess(t *testing.T) {
	a := &Authenticator{Identities: loadTestIdentities(t), Now: fixedClock}
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(apiBody))
	r.Header.Set("Content-Type", jsonContentType)
	r.Header.Set("X-Amz-Target", getPipeline)
	signer{}.sign(t, r, apiBody)
	if !strings.Contains(r.Header.Get("Authorization"), "content-length") {
		t.Fatalf("the signer did not sign content-length: %s", r.Header.Get("Authorization"))
	}
	p, sig, err := a.Authenticate(r, apiSurface(apiBody))
	want{}.check(t, p, sig, err)
}

// TestAuthenticateServer sends signed requests to a real server, with the real clock.
func TestAuthenticateServer(t *testing.T) {
	a := &Authenticator{Identities: loadTestIdentities(t)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p, _, err := a.Authenticate(r, apiSurface(string(body)))
		if err != nil {
			var e *Error
			errors.As(err, &e)
			http.Error(w, e.Kind, http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, p.ARN())
	}))
	defer srv.Close()
	send := func(r *http.Request) (int, string) {
		t.Helper()
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	newRequest := func(body string) *http.Request {
		r, err := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", jsonContentType)
		r.Header.Set("X-Amz-Target", getPipeline)
		return r
	}

	r := newRequest(apiBody)
	signer{at: time.Now()}.sign(t, r, apiBody)
	if code, got := send(r); code != http.StatusOK || got != "arn:aws:iam::111111111111:user/alice" {
		t.Errorf("valid request: %d %q", code, got)
	}

	r = newRequest(apiBody)
	signer{at: time.Now(), secret: "wrong", key: aliceKey1}.sign(t, r, apiBody)
	if code, got := send(r); code != http.StatusForbidden || got != KindMismatch {
		t.Errorf("wrong secret: %d %q", code, got)
	}

	r = newRequest(apiBody)
	signer{at: time.Now().Add(-time.Hour)}.sign(t, r, apiBody)
	if code, got := send(r); code != http.StatusForbidden || got != KindExpired {
		t.Errorf("signed an hour ago: %d %q", code, got)
	}
}

func TestAuthenticateS3Header(t *testing.T) {
	a := &Authenticator{Identities: loadTestIdentities(t), Now: fixedClock}
	const body = "some object\n"
	for _, tc := range []struct {
		name        string
		payloadHash string
		extra       map[string]string
	}{
		{name: "unsigned payload", payloadHash: "UNSIGNED-PAYLOAD"},
		{name: "streaming payload", payloadHash: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", extra: map[string]string{
			"Content-Encoding":             "aws-chunked",
			"X-Amz-Decoded-Content-Length": strconv.Itoa(len(body)),
		}},
		{name: "signed payload", payloadHash: sha256Hex(body)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newRequest := func() *http.Request {
				r, err := http.NewRequest(http.MethodPut, "http://localhost:9000/bucket/some%20key+x", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				r.Header.Set("X-Amz-Content-Sha256", tc.payloadHash)
				for k, v := range tc.extra {
					r.Header.Set(k, v)
				}
				return r
			}
			s := signer{service: "s3", s3: true, payloadHash: tc.payloadHash}

			r := newRequest()
			s.sign(t, r, body)
			sr, _ := overWire(t, r)
			p, sig, err := a.Authenticate(sr, s3Surface(sr.Header.Get("X-Amz-Content-Sha256")))
			want{}.check(t, p, sig, err)

			// The path is signed as it is: the non-S3 way of escaping it once more does not
			// give the same signature.
			notS3 := s3Surface(sr.Header.Get("X-Amz-Content-Sha256"))
			notS3.S3 = false
			p, sig, err = a.Authenticate(sr, notS3)
			want{kind: KindMismatch}.check(t, p, sig, err)

			// A payload hash other than the one signed.
			p, sig, err = a.Authenticate(sr, s3Surface(sha256Hex("other")))
			want{kind: KindMismatch}.check(t, p, sig, err)

			// The declared payload hash is a signed header.
			r = newRequest()
			s.sign(t, r, body)
			r.Header.Set("X-Amz-Content-Sha256", sha256Hex("tampered"))
			sr, _ = overWire(t, r)
			p, sig, err = a.Authenticate(sr, s3Surface(tc.payloadHash))
			want{kind: KindMismatch}.check(t, p, sig, err)
		})
	}
}

func TestAuthenticatePresigned(t *testing.T) {
	a := &Authenticator{Identities: loadTestIdentities(t), Now: fixedClock}

	t.Run("api call with its payload hash", func(t *testing.T) {
		r := apiRequest(t, apiBody)
		client := signer{}.presign(t, r, apiBody, "300")
		q := client.URL.Query()
		if q.Get("X-Amz-Target") != getPipeline || client.Header.Get("X-Amz-Target") != "" {
			t.Fatalf("the signer did not hoist X-Amz-Target into the query: %s, %v", client.URL, client.Header)
		}
		sr, body := overWire(t, client)
		p, sig, err := a.Authenticate(sr, apiSurface(body))
		want{}.check(t, p, sig, err)
		if !sig.Presigned || sig.Expires != "300" {
			t.Errorf("sig = %+v, want presigned, expiring in 300", sig)
		}

		// Another body than the one signed.
		sr, _ = overWire(t, signer{}.presign(t, apiRequest(t, apiBody), apiBody, "300"))
		p, sig, err = a.Authenticate(sr, apiSurface(`{"name":"q"}`))
		want{kind: KindMismatch, msg: mismatchMessage}.check(t, p, sig, err)
	})

	t.Run("get with an empty body", func(t *testing.T) {
		r, _ := http.NewRequest(http.MethodGet, apiEndpoint+"logs/p?limit=10", nil)
		sr, body := overWire(t, signer{key: bobKey, secret: bobSecret}.presign(t, r, "", "60"))
		p, sig, err := a.Authenticate(sr, apiSurface(body))
		want{user: "bob", key: bobKey}.check(t, p, sig, err)
	})

	s3Object := func(t *testing.T) *http.Request {
		r, err := http.NewRequest(http.MethodGet, "http://localhost:9000/bucket/some%20key+x", nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.URL.Path != "/bucket/some key+x" {
			t.Fatalf("path %q", r.URL.Path)
		}
		return r
	}
	s3 := signer{service: "s3", s3: true, payloadHash: "UNSIGNED-PAYLOAD"}

	t.Run("s3 object", func(t *testing.T) {
		sr, _ := overWire(t, s3.presign(t, s3Object(t), "", "900"))
		// Presigned S3 URLs sign UNSIGNED-PAYLOAD, whatever the surface says of the payload.
		p, sig, err := a.Authenticate(sr, s3Surface(sha256Hex("")))
		want{}.check(t, p, sig, err)

		notS3 := s3Surface("UNSIGNED-PAYLOAD")
		notS3.S3 = false
		p, sig, err = a.Authenticate(sr, notS3)
		want{kind: KindMismatch}.check(t, p, sig, err)
	})

	tamper := func(t *testing.T, f func(q url.Values)) *http.Request {
		client := s3.presign(t, s3Object(t), "", "900")
		q := client.URL.Query()
		f(q)
		client.URL.RawQuery = q.Encode()
		sr, _ := overWire(t, client)
		return sr
	}
	for _, tc := range []struct {
		name   string
		change func(q url.Values)
		want   want
	}{
		{"query parameter added", func(q url.Values) { q.Set("versionId", "1") }, want{kind: KindMismatch, msg: mismatchMessage}},
		{"expiry lengthened", func(q url.Values) { q.Set("X-Amz-Expires", "1000") }, want{kind: KindMismatch}},
		{"signature of another", func(q url.Values) { q.Set("X-Amz-Signature", strings.Repeat("0", 64)) }, want{kind: KindMismatch}},
		{"signature empty", func(q url.Values) { q.Set("X-Amz-Signature", "") }, want{kind: KindIncomplete}},
		{"date missing", func(q url.Values) { q.Del("X-Amz-Date") }, want{kind: KindIncomplete,
			msg: "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."}},
		{"expires missing", func(q url.Values) { q.Del("X-Amz-Expires") }, want{kind: KindIncomplete}},
		{"signature twice", func(q url.Values) { q.Add("X-Amz-Signature", q.Get("X-Amz-Signature")) }, want{kind: KindIncomplete}},
		{"another algorithm", func(q url.Values) { q.Set("X-Amz-Algorithm", "AWS4-ECDSA-P256-SHA256") }, want{kind: KindUnsupported,
			msg: `X-Amz-Algorithm only supports "AWS4-HMAC-SHA256".`}},
		{"credential without its terminator", func(q url.Values) {
			q.Set("X-Amz-Credential", strings.TrimSuffix(q.Get("X-Amz-Credential"), "/aws4_request"))
		}, want{kind: KindIncomplete, msgPrefix: "Credential should be of the form"}},
		{"unknown key", func(q url.Values) {
			q.Set("X-Amz-Credential", strings.Replace(q.Get("X-Amz-Credential"), aliceKey1, "AKIANOBODY00000001", 1))
		}, want{kind: KindUnknownKey, msg: unknownKeyMsg}},
		{"session token", func(q url.Values) { q.Set("X-Amz-Security-Token", "token") }, want{kind: KindUnknownKey, msg: unknownKeyMsg}},
		{"negative expiry", func(q url.Values) { q.Set("X-Amz-Expires", "-1") }, want{kind: KindIncomplete}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, sig, err := a.Authenticate(tamper(t, tc.change), s3Surface(""))
			tc.want.check(t, p, sig, err)
		})
	}

	for _, tc := range []struct {
		name    string
		at      time.Time
		expires string
		want    want
	}{
		{"signed two hours ago, valid for one", testNow.Add(-2 * time.Hour), "3600", want{kind: KindExpired, msg: "Request has expired"}},
		{"signed an hour ago, valid for one", testNow.Add(-time.Hour), "3600", want{}},
		{"signed a week ago, valid for a week", testNow.Add(-MaxPresignedExpiry), "604800", want{}},
		{"valid for more than a week", testNow, "604801", want{kind: KindIncomplete, msg: "X-Amz-Expires must be less than a week (in seconds) that is 604800"}},
		{"expiry not a number", testNow, "soon", want{kind: KindIncomplete, msg: "X-Amz-Expires must be a non-negative number of seconds."}},
		{"signed 20 minutes ahead", testNow.Add(20 * time.Minute), "3600", want{kind: KindNotYetValid}},
		{"signed 10 minutes ahead", testNow.Add(10 * time.Minute), "3600", want{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := s3
			s.at = tc.at
			sr, _ := overWire(t, s.presign(t, s3Object(t), "", tc.expires))
			p, sig, err := a.Authenticate(sr, s3Surface(""))
			tc.want.check(t, p, sig, err)
		})
	}
}

func TestAuthenticateMalformed(t *testing.T) {
	a := &Authenticator{Identities: loadTestIdentities(t), Now: fixedClock}
	const credential = "Credential=" + aliceKey1 + "/20261201/us-east-1/codepipeline/aws4_request"
	const date = "20261201T120000Z"
	cases := []struct {
		name          string
		authorization string
		date          string
		query         string
		want          want
	}{
		{name: "not signed", want: want{kind: KindMissing, msg: "Missing Authentication Token"}},
		{name: "not signed, with an ordinary query", query: "a=b&X-Amz-Date=" + date, want: want{kind: KindMissing, msg: "Missing Authentication Token"}},
		{name: "credential only", authorization: "AWS4-HMAC-SHA256 " + credential, date: date, want: want{kind: KindIncomplete,
			msg: "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 " + credential}},
		{name: "algorithm only", authorization: "AWS4-HMAC-SHA256", date: date, want: want{kind: KindIncomplete,
			msg: "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256"}},
		{name: "no x-amz-date", authorization: "AWS4-HMAC-SHA256 " + credential + ", SignedHeaders=host;x-amz-date, Signature=abcd", want: want{kind: KindIncomplete,
			msg: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 " + credential + ", SignedHeaders=host;x-amz-date, Signature=abcd"}},
		{name: "part without an equal sign", authorization: "AWS4-HMAC-SHA256 " + credential + ", SignedHeaders, Signature=abcd", date: date, want: want{kind: KindIncomplete,
			msg: "'SignedHeaders' not a valid key=value pair (missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 " + credential + ", SignedHeaders, Signature=abcd'."}},
		{name: "bearer token", authorization: "Bearer xyz", date: date, want: want{kind: KindIncomplete,
			msg: "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=Bearer (the rest is not shown)"}},
		{name: "credential of four parts", authorization: "AWS4-HMAC-SHA256 Credential=" + aliceKey1 + "/20261201/us-east-1/aws4_request, SignedHeaders=host, Signature=abcd", date: date,
			want: want{kind: KindIncomplete, msg: "Credential should be of the form <access key>/<date>/<region>/<service>/aws4_request, not '" + aliceKey1 + "/20261201/us-east-1/aws4_request'."}},
		{name: "credential without a key", authorization: "AWS4-HMAC-SHA256 Credential=/20261201/us-east-1/codepipeline/aws4_request, SignedHeaders=host, Signature=abcd", date: date,
			want: want{kind: KindIncomplete, msgPrefix: "Credential should be of the form"}},
		{name: "credential without a region", authorization: "AWS4-HMAC-SHA256 Credential=" + aliceKey1 + "/20261201//codepipeline/aws4_request, SignedHeaders=host, Signature=abcd", date: date,
			want: want{kind: KindIncomplete, msgPrefix: "Credential should be of the form"}},
		{name: "sigv2 header", authorization: "AWS " + aliceKey1 + ":c2lnbmF0dXJl", date: date, want: want{kind: KindUnsupported,
			msg: "The authorization mechanism AWS is not supported: sign requests with AWS4-HMAC-SHA256."}},
		{name: "sigv4a header", authorization: "AWS4-ECDSA-P256-SHA256 Credential=" + aliceKey1 + "/20261201/codepipeline/aws4_request, SignedHeaders=host;x-amz-date;x-amz-region-set, Signature=3045", date: date,
			want: want{kind: KindUnsupported, msg: "The authorization mechanism AWS4-ECDSA-P256-SHA256 is not supported: sign requests with AWS4-HMAC-SHA256."}},
		{name: "sigv2 query", query: "AWSAccessKeyId=" + aliceKey1 + "&Expires=1700000000&Signature=c2ln", want: want{kind: KindUnsupported,
			msg: "Signature Version 2 is not supported: sign requests with AWS4-HMAC-SHA256."}},
		{name: "presigned query incomplete", query: "X-Amz-Algorithm=AWS4-HMAC-SHA256", want: want{kind: KindIncomplete}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/?"+tc.query, strings.NewReader(apiBody))
			if tc.authorization != "" {
				r.Header.Set("Authorization", tc.authorization)
			}
			if tc.date != "" {
				r.Header.Set("X-Amz-Date", tc.date)
			}
			p, sig, err := a.Authenticate(r, apiSurface(apiBody))
			tc.want.check(t, p, sig, err)
		})
	}

	// What can be read of a refused signature is returned with the refusal.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "AWS "+aliceKey1+":c2lnbmF0dXJl")
	if _, sig, _ := a.Authenticate(r, apiSurface("")); sig.Algorithm != "AWS" || sig.AccessKeyID != aliceKey1 {
		t.Errorf("sigv2 header read as %+v", sig)
	}
}

func TestParseHeaderPreferred(t *testing.T) {
	r := apiRequest(t, apiBody)
	signer{}.sign(t, r, apiBody)
	r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256"
	sig, err := Parse(r)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if sig.Presigned || sig.AccessKeyID != aliceKey1 || sig.Date != "20261201" || sig.Region != "us-east-1" || sig.Service != "codepipeline" ||
		sig.Time != "20261201T120000Z" || strings.Join(sig.SignedHeaders, ";") != "content-length;content-type;host;x-amz-date;x-amz-target" ||
		len(sig.Signature) != 64 {
		t.Errorf("Parse = %+v", sig)
	}
	if got, want := sig.Scope(), "20261201/us-east-1/codepipeline/aws4_request"; got != want {
		t.Errorf("Scope() = %q, want %q", got, want)
	}
}

func TestPrincipalsOfOneUser(t *testing.T) {
	ids := loadTestIdentities(t)
	a := &Authenticator{Identities: ids, Now: fixedClock}
	var ps []*Principal
	for _, s := range []signer{{key: aliceKey1, secret: aliceSecret}, {key: aliceKey2, secret: alice2Secret}, {key: aliceKey1, secret: aliceSecret}} {
		r := apiRequest(t, apiBody)
		s.sign(t, r, apiBody)
		sr, body := overWire(t, r)
		p, _, err := a.Authenticate(sr, apiSurface(body))
		if err != nil {
			t.Fatalf("%s: %v", s.key, err)
		}
		ps = append(ps, p)
	}
	if ps[0] == ps[1] || ps[0].AccessKeyID != aliceKey1 || ps[1].AccessKeyID != aliceKey2 {
		t.Errorf("the two keys' principals: %p %+v, %p %+v", ps[0], *ps[0], ps[1], *ps[1])
	}
	if ps[0].ARN() != ps[1].ARN() || ps[0].ARN() != "arn:aws:iam::111111111111:user/alice" {
		t.Errorf("ARNs %q and %q", ps[0].ARN(), ps[1].ARN())
	}
	if ps[0] != ps[2] {
		t.Errorf("one key gave two principals")
	}
}

func TestPrincipalContext(t *testing.T) {
	if _, ok := PrincipalFrom(context.Background()); ok {
		t.Error("PrincipalFrom found a principal in an empty context")
	}
	p := Root("123456789012")
	got, ok := PrincipalFrom(WithPrincipal(context.Background(), p))
	if !ok || got != p {
		t.Errorf("PrincipalFrom = %v, %v", got, ok)
	}
	if p.ARN() != "arn:aws:iam::123456789012:root" {
		t.Errorf("root ARN %q", p.ARN())
	}
}
