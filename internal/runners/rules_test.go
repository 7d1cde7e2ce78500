package runners

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/internal/catalog"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
)

// syncBuffer is a run's log that a test may read while the run writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ruleJob makes the job of a rule's run as the executor hands it to the runners: job data with
// the rule's type, resolved configuration, input artifacts and pipeline context, and a LocalRun
// with the rule's declaration and no action.
func ruleJob(t *testing.T, provider string, rule model.RuleDeclaration, inputs ...model.Artifact) (*job, *syncBuffer) {
	t.Helper()
	if rule.Name == nil {
		rule.Name = new("MyRule")
	}
	rule.RuleTypeId = &model.RuleTypeId{Category: new(model.RuleCategoryRule), Owner: new(model.RuleOwnerAws), Provider: new(provider), Version: new("1")}
	for _, in := range inputs {
		rule.InputArtifacts = append(rule.InputArtifacts, model.InputArtifact{Name: in.Name})
	}
	dir := t.TempDir()
	work := filepath.Join(dir, "build")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	data := &model.JobData{
		ActionTypeId:        &model.ActionTypeId{Category: new(model.ActionCategory("Rule")), Owner: new(model.ActionOwnerAws), Provider: new(provider), Version: new("1")},
		ActionConfiguration: &model.ActionConfiguration{Configuration: rule.Configuration},
		PipelineContext: &model.PipelineContext{
			PipelineName: new("my-pipeline"), Stage: &model.StageContext{Name: new("Deploy")},
			Action:              &model.ActionContext{Name: rule.Name, ActionExecutionId: new("rule-execution-1")},
			PipelineExecutionId: new("execution-1"),
		},
		InputArtifacts: inputs,
	}
	return &job{id: "job-1", data: data, run: executor.LocalRun{Rule: &rule}, dir: dir, work: work, log: log}, log
}

// wantResult checks a run's outcome and that its summary says what it should.
func wantResult(t *testing.T, res executor.Result, succeeded bool, summary ...string) {
	t.Helper()
	if res.Succeeded != succeeded {
		t.Fatalf("succeeded = %v, want %v: %s", res.Succeeded, succeeded, res.Summary)
	}
	for _, s := range summary {
		if !strings.Contains(res.Summary, s) {
			t.Errorf("the summary %q does not say %q", res.Summary, s)
		}
	}
	if !succeeded && res.FailureType != string(model.FailureTypeJobFailed) {
		t.Errorf("failure type %q", res.FailureType)
	}
}

// TestEveryRuleHasARunner checks that the executor is told to hand every rule type to the
// runners (Providers), and that the runners poll for each of them: the two lists are the same.
func TestEveryRuleHasARunner(t *testing.T) {
	keys := Providers()
	for _, rt := range catalog.RuleTypes() {
		if !keys[executor.TypeKey("Rule", "AWS", rt.Provider, rt.Version)] {
			t.Errorf("Providers() lacks the %s rule", rt.Provider)
		}
	}
	// Every registered provider serves a type the catalog describes.
	for _, reg := range registry {
		_, action := catalog.LookupActionType(model.ActionCategory(reg.category), model.ActionOwner(reg.owner), reg.provider, "1")
		_, rule := catalog.LookupRuleType(reg.provider, "1")
		if !action && !(reg.category == "Rule" && rule) {
			t.Errorf("the runner for %s serves a type the catalog does not describe", reg.key())
		}
	}
	r, err := New(context.Background(), Config{WorkDir: t.TempDir(), Isolation: IsolationNone, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.work.close()
	for key := range keys {
		if r.providers[key] == nil {
			t.Errorf("Providers() lists %s, which no runner polls for", key)
		}
	}
	if len(r.providers) != len(keys) {
		t.Errorf("the runners poll for %d types, Providers() lists %d", len(r.providers), len(keys))
	}
	for _, bad := range []Config{{CloudWatchEndpoint: "localhost:5000"}, {LambdaEndpoint: "ftp://x"}} {
		bad.WorkDir, bad.Isolation, bad.Logger = t.TempDir(), IsolationNone, slog.New(slog.DiscardHandler)
		if r, err := New(context.Background(), bad); err == nil {
			r.work.close()
			t.Errorf("New took the endpoints %q and %q", bad.CloudWatchEndpoint, bad.LambdaEndpoint)
		}
	}
}
