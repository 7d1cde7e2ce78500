package auth

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func FuzzParse(f *testing.F) {
	const cred = aliceKey1 + "/20261201/us-east-1/codepipeline/aws4_request"
	const sig = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	const date = "20261201T120000Z"
	for _, seed := range []struct{ authorization, query, date string }{
		{"AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + sig, "", date},
		{"AWS4-HMAC-SHA256 Credential=" + cred + ",SignedHeaders=host,Signature=" + sig, "a=b", date},
		{"AWS4-HMAC-SHA256 Credential=" + cred, "", date},
		{"AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=host, Signature=" + sig, "", ""},
		{"AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders, Signature=" + sig, "", date},
		{"AWS4-HMAC-SHA256 Credential=" + aliceKey1 + "///codepipeline/aws4_request, SignedHeaders=host, Signature=" + sig, "", date},
		{"AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=;, Signature==", "", "x"},
		{"AWS4-HMAC-SHA256", "", date},
		{"AWS4-HMAC-SHA256 ,,, =", "", date},
		{"AWS " + aliceKey1 + ":c2ln", "", date},
		{"AWS4-ECDSA-P256-SHA256 Credential=" + cred, "", date},
		{"Bearer xyz", "", ""},
		{" ", "", ""},
		{"", "", ""},
		{"", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + url.QueryEscape(cred) + "&X-Amz-Date=" + date +
			"&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=" + sig, ""},
		{"", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + url.QueryEscape(cred) + "&X-Amz-Date=" + date +
			"&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=" + sig + "&X-Amz-Security-Token=t", ""},
		{"", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2F%2F%2F%2Faws4_request&X-Amz-Date=x&X-Amz-Expires=-1&X-Amz-SignedHeaders=&X-Amz-Signature=s", ""},
		{"", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Algorithm=AWS4-HMAC-SHA256", ""},
		{"", "X-Amz-Signature=%zz;&&=", ""},
		{"", "AWSAccessKeyId=" + aliceKey1 + "&Signature=x&Expires=1", ""},
		{"", "a=b", date},
	} {
		f.Add(seed.authorization, seed.query, seed.date)
	}
	f.Fuzz(func(t *testing.T, authorization, query, date string) {
		r := &http.Request{Method: http.MethodGet, Host: "localhost", URL: &url.URL{Path: "/", RawQuery: query}, Header: http.Header{}}
		if authorization != "" {
			r.Header["Authorization"] = []string{authorization}
		}
		if date != "" {
			r.Header["X-Amz-Date"] = []string{date}
		}
		s, err := Parse(r)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind == "" || e.Message == "" {
				t.Fatalf("Parse error %#v is not an *Error with a kind and a message", err)
			}
			return
		}
		if s.AccessKeyID == "" || s.Date == "" || s.Region == "" || s.Service == "" || s.Signature == "" {
			t.Fatalf("Parse accepted a signature with an empty part: %+v", s)
		}
		if s.Algorithm != Algorithm {
			t.Fatalf("Parse accepted algorithm %q", s.Algorithm)
		}
		if s.Presigned != (authorization == "") {
			t.Fatalf("Presigned = %v with Authorization %q", s.Presigned, authorization)
		}
		// What follows a successful Parse must not panic either, and a made-up signature must
		// not verify.
		_ = s.CheckScope("us-east-1", "codepipeline")
		_ = s.CheckTime(testNow, 5*time.Minute)
		if err := s.Verify(r, aliceSecret, VerifyOptions{PayloadHash: sha256Hex("")}); err == nil {
			t.Fatalf("a fuzzed signature verified: %+v", s)
		}
	})
}

// wildcardRegexp is the reference wildcard: a regular expression.
func wildcardRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for _, c := range pattern {
		switch c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func FuzzWildcard(f *testing.F) {
	for _, seed := range [][2]string{
		{"", ""}, {"*", ""}, {"a*b*c", "aXbYc"}, {"a*", "a"}, {"abcdef", "abc"}, {"?", "a"},
		{"*a", "*ba"}, {"x*y", "x*z*y"}, {"*?*?", "ab"}, {"a**b", "ab"}, {"arn:aws:codepipeline:*:111111111111:*", "arn:aws:codepipeline:us-east-1:111111111111:p"},
		{"a\nb*", "a\nbc\n"}, {"[a]", "a"}, {"?*", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		got := wildcard(pattern, s)
		if !isASCII(pattern) || !isASCII(s) || len(pattern) > 256 || len(s) > 1024 {
			return
		}
		if want := wildcardRegexp(pattern).MatchString(s); got != want {
			t.Fatalf("wildcard(%q, %q) = %v, want %v", pattern, s, got, want)
		}
	})
}

// FuzzParseIdentities feeds identities files to the parser: it must never panic, and every key
// of a file it accepts must be found with its secret and a principal of a 12-digit account.
func FuzzParseIdentities(f *testing.F) {
	f.Add([]byte(`accounts: [{id: "111111111111", users: [{name: a, accessKeys: [{id: AKIAAAAAAAAAAAAAAAAA, secret: s}], policy: [{effect: Allow, action: "*", resource: "*"}]}]}]`))
	f.Add([]byte(`{"accounts":[{"id":"222222222222","users":[{"name":"b","accessKeys":[{"id":"AKIABBBBBBBBBBBBBBBB","secret":"t"}]}]}]}`))
	f.Add([]byte("accounts:\n  - id: 012345678901\n    users: []\n"))
	f.Add([]byte("accounts: [{id: *a}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ids, err := parseIdentities(data)
		if err != nil {
			return
		}
		for id, k := range ids.keys {
			if k.secret == "" || k.principal == nil || k.principal.AccessKeyID != id || !accountPattern.MatchString(k.principal.Account) {
				t.Fatalf("key %s accepted as %+v", id, k)
			}
		}
	})
}
