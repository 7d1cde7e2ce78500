package api_test

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/store/postgres"
	"github.com/sluicehq/sluice/internal/store/sqlite"
	"github.com/sluicehq/sluice/internal/store/storetest"
)

func startOnCreate(c *api.Config) { c.StartOnCreate = true }

func TestCreatePipelineStartsItsFirstExecution(t *testing.T) {
	eachStoreWith(t, startOnCreate, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryBuild, "Make", 1, 1)
		jobPipeline(e, t, "first", types.ExecutionModeSuperseded)
		list := must[*cp.ListPipelineExecutionsOutput](t)(e.client.ListPipelineExecutions(ctx, &cp.ListPipelineExecutionsInput{PipelineName: aws.String("first")}))
		if len(list.PipelineExecutionSummaries) != 1 || list.PipelineExecutionSummaries[0].Trigger.TriggerType != types.TriggerTypeCreatePipeline {
			t.Fatalf("executions after create: %+v", list.PipelineExecutionSummaries)
		}
		// Its first action is a job that a worker can take.
		work(t, e, types.ActionCategorySource, "Fetch", true, nil)
	})
}

// TestCreatePipelineFaultStoresNothing makes the database fail the first execution's step, with a
// trigger that refuses the pipeline's runtime row: the pipeline must not be stored either.
func TestCreatePipelineFaultStoresNothing(t *testing.T) {
	fault := func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryBuild, "Make", 1, 1)
		p := minimal("doomed")
		p.Stages[0].Actions[0] = types.ActionDeclaration{Name: aws.String("src"), ActionTypeId: typeID(types.ActionCategorySource, types.ActionOwnerCustom, "Fetch"),
			OutputArtifacts: []types.OutputArtifact{{Name: aws.String("code")}}}
		_, err := e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p})
		wantError(t, err, "InternalFailure", "")
		_, err = e.client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("doomed")})
		wantError(t, err, "PipelineNotFoundException", "'doomed'")
		list := must[*cp.ListPipelinesOutput](t)(e.client.ListPipelines(ctx, &cp.ListPipelinesInput{}))
		if len(list.Pipelines) != 0 {
			t.Fatalf("pipelines after the fault: %+v", list.Pipelines)
		}
		// Another name is unaffected, and starts.
		jobPipeline(e, t, "fine", types.ExecutionModeSuperseded)
		work(t, e, types.ActionCategorySource, "Fetch", true, nil)
	}
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sluice.db")
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		e := newEnvTB(t, st, startOnCreate)
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`CREATE TRIGGER fault BEFORE INSERT ON pipeline_runtime WHEN NEW.name = 'doomed'
			BEGIN SELECT RAISE(ABORT, 'injected fault'); END`); err != nil {
			t.Fatal(err)
		}
		fault(t, e)
	})
	t.Run("postgres", func(t *testing.T) {
		url := storetest.PostgresURL(t)
		st, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		e := newEnvTB(t, st, startOnCreate)
		db, err := sql.Open("pgx", url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, stmt := range []string{
			`CREATE FUNCTION fault() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER fault BEFORE INSERT ON pipeline_runtime FOR EACH ROW WHEN (NEW.name = 'doomed') EXECUTE FUNCTION fault()`,
		} {
			if _, err := db.Exec(stmt); err != nil {
				t.Fatal(err)
			}
		}
		fault(t, e)
	})
}

// TestFirstExecutionKeepsSecrets: the answer to CreatePipeline masks secret configuration, and
// the execution it starts still hands the real values to its jobs, in every stage.
func TestFirstExecutionKeepsSecrets(t *testing.T) {
	eachStoreWith(t, startOnCreate, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		createMake(e, t, "1")
		p := minimal("secret-run")
		p.Stages[0].Actions[0] = types.ActionDeclaration{Name: aws.String("src"), ActionTypeId: typeID(types.ActionCategorySource, types.ActionOwnerCustom, "Fetch"),
			OutputArtifacts: []types.OutputArtifact{{Name: aws.String("code")}}}
		p.Stages[1].Actions = []types.ActionDeclaration{{
			Name: aws.String("make"), ActionTypeId: typeID(types.ActionCategoryBuild, types.ActionOwnerCustom, "Make"),
			Configuration: map[string]string{"Target": "all", "Token": "s3cr3t"}, InputArtifacts: []types.InputArtifact{{Name: aws.String("code")}},
		}}
		out := must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}))
		if got := out.Pipeline.Stages[1].Actions[0].Configuration["Token"]; got != "****" {
			t.Fatalf("CreatePipeline answered the secret as %q", got)
		}
		work(t, e, types.ActionCategorySource, "Fetch", true, nil)
		id := typeID(types.ActionCategoryBuild, types.ActionOwnerCustom, "Make")
		var jobs []types.Job
		for deadline := time.Now().Add(5 * time.Second); len(jobs) == 0 && time.Now().Before(deadline); {
			jobs = must[*cp.PollForJobsOutput](t)(e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: id, QueryParam: map[string]string{"Target": "all"}})).Jobs
		}
		if len(jobs) != 1 {
			t.Fatal("no Make job")
		}
		if got := jobs[0].Data.ActionConfiguration.Configuration["Token"]; got != "s3cr3t" {
			t.Fatalf("the job got the secret as %q", got)
		}
	})
}
