package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestServeAnswersHealthAndShutsDownGracefully(t *testing.T) {
	srv, err := New(context.Background(), Config{DataDir: t.TempDir(), AccountID: "123456789012", Region: "eu-west-1"})
	if err == nil {
		defer srv.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/_sluice/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "{\"status\":\"ok\"}\n" {
		t.Fatalf("health: %d %q", resp.StatusCode, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v after shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/_sluice/health"); err == nil {
		t.Fatal("the server still answers after shutdown")
	}
}

func TestNewRejectsBadIdentity(t *testing.T) {
	for _, cfg := range []Config{
		{AccountID: "12345", Region: "us-east-1"},
		{AccountID: "000000000000", Region: ""},
		{AccountID: "000000000000", Region: "us-east-1", Database: "mysql://x"},
	} {
		if _, err := New(context.Background(), cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestOneServerPerDataDirectory(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, AccountID: "123456789012", Region: "eu-west-1"}
	first, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("another sluice server (pid %d) runs on the data directory %s", os.Getpid(), dir)) {
		t.Fatalf("a second server on the same data directory: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("a server after the first closed: %v", err)
	}
	second.Close()
}

// A replica on PostgreSQL with the defaults a newcomer gets (artifacts and repositories under
// --data) is refused, naming what to set; --data-shared, or S3 with a git bucket, lets it start.
func TestReplicaOnPostgresNeedsSharedStorage(t *testing.T) {
	database := "postgres://nobody@127.0.0.1:1/none"
	_, err := New(context.Background(), Config{DataDir: t.TempDir(), Database: database, AccountID: "000000000000", Region: "us-east-1"})
	for _, want := range []string{"--artifacts-s3-endpoint", "--git-s3-bucket", "--data-shared"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("a replica keeping artifacts on its own disk: %v, want a refusal naming %s", err, want)
		}
	}
	for _, cfg := range []Config{
		{DataShared: true},
		{Artifacts: ArtifactsConfig{S3Endpoint: "http://127.0.0.1:1", GitBucket: "git"}},
	} {
		cfg.Database, cfg.AccountID, cfg.Region = database, "000000000000", "us-east-1"
		if err := checkShared(cfg); err != nil {
			t.Errorf("checkShared(%+v): %v", cfg, err)
		}
	}
}
