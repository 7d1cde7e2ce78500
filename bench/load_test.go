package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/auth"
)

// TestSigned checks that the load client signs as Sluice verifies with authentication on: its
// CodePipeline requests with the body's hash, its S3 requests with an unsigned payload, both
// with the key of the identities file a Sluice target with authentication on reads.
func TestSigned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identities.yaml")
	if err := os.WriteFile(path, []byte(identitiesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	ids, err := auth.LoadIdentities(path)
	if err != nil {
		t.Fatal(err)
	}
	a := &auth.Authenticator{Identities: ids}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		surface := auth.Surface{Service: "s3", Region: "us-east-1", Skew: time.Minute,
			VerifyOptions: auth.VerifyOptions{PayloadHash: "UNSIGNED-PAYLOAD", S3: true}}
		if r.Header.Get("X-Amz-Target") != "" {
			sum := sha256.Sum256(body)
			surface = auth.Surface{Service: "codepipeline", Region: "us-east-1", Skew: time.Minute,
				VerifyOptions: auth.VerifyOptions{PayloadHash: hex.EncodeToString(sum[:])}}
		}
		p, _, err := a.Authenticate(r, surface)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		if p.Account != "000000000000" || p.User != "bench" {
			http.Error(w, "signed by "+p.ARN(), http.StatusForbidden)
		}
	}))
	defer srv.Close()
	c := newClient(srv.URL, 1)
	ctx := context.Background()
	if err := expect(c.call(ctx, "GetPipeline", `{"name":"bench-get"}`)); err != nil {
		t.Errorf("GetPipeline: %v", err)
	}
	if err := c.s3(ctx, http.MethodPut, "/bench-upload?versioning", []byte("<VersioningConfiguration/>")); err != nil {
		t.Errorf("S3: %v", err)
	}
}
