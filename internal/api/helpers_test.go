package api_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/smithy-go"

	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/artifacts"
	sluicecreds "github.com/sluicehq/sluice/internal/credentials"
	"github.com/sluicehq/sluice/internal/objects"
	"github.com/sluicehq/sluice/internal/protocol"
	"github.com/sluicehq/sluice/internal/sdktest"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/postgres"
	"github.com/sluicehq/sluice/internal/store/sqlite"
	"github.com/sluicehq/sluice/internal/store/storetest"
	"github.com/sluicehq/sluice/internal/webhooks"
)

const account = "123456789012"

var ctx = context.Background()

// env is a Sluice API served over loopback HTTP, and an aws-sdk-go-v2 client for it.
type env struct {
	client *cp.Client
	url    string
	store  store.Store
	svc    *api.Service
	clock  *clock
}

// clock is a test's clock: real time plus whatever the test skipped ahead.
type clock struct {
	mu   sync.Mutex
	skew time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.skew)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.skew += d
}

// eachStore runs test once on the embedded SQLite store and once on PostgreSQL.
func eachStore(t *testing.T, limits api.Limits, test func(t *testing.T, e *env)) {
	eachStoreWith(t, func(c *api.Config) { c.Limits = limits }, test)
}

// eachStoreWith is eachStore with a service configured by configure.
func eachStoreWith(t *testing.T, configure func(*api.Config), test func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sluice.db"))
		if err != nil {
			t.Fatal(err)
		}
		test(t, newEnvTB(t, st, configure))
	})
	t.Run("postgres", func(t *testing.T) {
		st, err := postgres.Open(ctx, storetest.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		test(t, newEnvTB(t, st, configure))
	})
}

// checkStateCache: tests check every cached execution state against the store; benchmarks
// measure the server as it runs.
func checkStateCache(t testing.TB) bool {
	_, benchmark := t.(*testing.B)
	return !benchmark
}

func newEnvTB(t testing.TB, st store.Store, configure func(*api.Config)) *env {
	t.Helper()
	t.Cleanup(func() { st.Close() })
	clk := &clock{}
	objs, err := objects.Open(ctx, filepath.Join(t.TempDir(), "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	issuer := sluicecreds.NewIssuer([]byte("test key"))
	cfg := api.Config{AccountID: account, Region: "us-east-1", PublicURL: "http://sluice.test", Now: clk.now,
		WebhookURL: func(token string) string { return webhooks.URL("http://sluice.test", token, "") },
		Artifacts:  artifacts.NewLocal(objs, issuer, "http://sluice.test", account, account), ClientID: issuer.ClientID,
		WorkerProviders: map[string]bool{"CloudFormation": true}, CheckStateCache: checkStateCache(t)}
	configure(&cfg)
	if cfg.Limits == (api.Limits{}) {
		cfg.Limits = api.DefaultLimits
	}
	svc, err := api.New(ctx, cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&protocol.Handler{Service: svc})
	t.Cleanup(srv.Close)
	client := cp.New(cp.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		Retryer:      sdktest.ConnectionRetries(),
	})
	return &env{client: client, url: srv.URL, store: st, svc: svc, clock: clk}
}

// wantError fails unless err is the AWS error code whose message contains fragment.
func wantError(t *testing.T, err error, code, fragment string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("got %v, want %s", err, code)
	}
	if apiErr.ErrorCode() != code || !strings.Contains(apiErr.ErrorMessage(), fragment) {
		t.Fatalf("got %s: %s\nwant %s containing %q", apiErr.ErrorCode(), apiErr.ErrorMessage(), code, fragment)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func typeID(category types.ActionCategory, owner types.ActionOwner, provider string) *types.ActionTypeId {
	return &types.ActionTypeId{Category: category, Owner: owner, Provider: aws.String(provider), Version: aws.String("1")}
}

func sourceAction() types.ActionDeclaration {
	return types.ActionDeclaration{
		Name:            aws.String("src"),
		ActionTypeId:    typeID(types.ActionCategorySource, types.ActionOwnerAws, "S3"),
		Configuration:   map[string]string{"S3Bucket": "bucket", "S3ObjectKey": "app.zip"},
		OutputArtifacts: []types.OutputArtifact{{Name: aws.String("code")}},
	}
}

func approval(name string) types.ActionDeclaration {
	return types.ActionDeclaration{Name: aws.String(name), ActionTypeId: typeID(types.ActionCategoryApproval, types.ActionOwnerAws, "Manual")}
}

// minimal is the smallest valid pipeline: an S3 source and a manual approval.
func minimal(name string) *types.PipelineDeclaration {
	return &types.PipelineDeclaration{
		Name:          aws.String(name),
		RoleArn:       aws.String("arn:aws:iam::" + account + ":role/cp"),
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")},
		Stages: []types.StageDeclaration{
			{Name: aws.String("Source"), Actions: []types.ActionDeclaration{sourceAction()}},
			{Name: aws.String("Approve"), Actions: []types.ActionDeclaration{approval("ok")}},
		},
	}
}
