package storetest

import (
	"database/sql"
	"fmt"
	"io/fs"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

// OldDatabase prepares an empty database for one test, migrates it up to schema version (the
// migrations numbered up to it), runs statements on it as an earlier version would have written
// its records, and returns a function that opens the store on it, migrating it to the current
// schema.
type OldDatabase func(t *testing.T, version int, statements []string) (open func() store.Store)

// Seed checks that db's schema is at version and runs statements on it, for an OldDatabase.
func Seed(t *testing.T, db *sql.DB, version int, statements []string) {
	t.Helper()
	var applied int
	if err := db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&applied); err != nil || applied != version {
		t.Fatalf("schema version %d, %v; want %d", applied, err, version)
	}
	for _, stmt := range statements {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// MigrationsUpTo returns the migrations of schema numbered up to version.
func MigrationsUpTo(schema fs.FS, version int) (fs.FS, error) {
	names, err := fs.Glob(schema, "*.sql")
	if err != nil {
		return nil, err
	}
	old := fstest.MapFS{}
	for _, name := range names {
		n, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with its number", name)
		}
		if n > version {
			continue
		}
		script, err := fs.ReadFile(schema, name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		old[name] = &fstest.MapFile{Data: script}
	}
	return old, nil
}

// RunUpgrade checks that a database of schema version 6, from before rule executions, events
// and deploy targets were stored, keeps its action executions through the migration and then
// takes the new records.
func RunUpgrade(t *testing.T, oldDatabase OldDatabase) {
	at := time.UnixMilli(1700000000000).UTC()
	old := store.ActionExecution{ID: "a-old", ExecutionID: "e", Pipeline: "p", Stage: "S", Action: "Deploy", Status: "InProgress",
		Doc: []byte(`{"old":true}`), Started: at, Updated: at}
	open := oldDatabase(t, 6, []string{
		`INSERT INTO pipeline_runtime (name, state, token, active) VALUES ('p', '{}', 'old-token', 1)`,
		fmt.Sprintf(`INSERT INTO action_executions (id, execution_id, pipeline, stage, action, status, sort_key, doc, started_ms, updated_ms)
			VALUES ('%s', '%s', '%s', '%s', '%s', '%s', '%s', '%s', %d, %d)`,
			old.ID, old.ExecutionID, old.Pipeline, old.Stage, old.Action, old.Status, store.ActionKey(old), old.Doc, at.UnixMilli(), at.UnixMilli()),
	})
	s := openStore(t, open)
	if got, err := s.GetActionExecution(ctx, "a-old"); err != nil || !reflect.DeepEqual(got, old) {
		t.Fatalf("an action execution from before the upgrade = %+v, %v; want %+v", got, err, old)
	}

	old.Status, old.Targets = "Succeeded", []byte(`[{"targetId":"i-1"}]`)
	r := rule("p", "r", "e", 0)
	must(t, s.Step(ctx, "p", func(cur store.Current) (store.Change, error) {
		if cur.Token != "old-token" {
			t.Errorf("the first step after the upgrade found token %q", cur.Token)
		}
		return store.Change{Token: "new-token", State: []byte(`{}`), Actions: []store.ActionExecution{old}, Rules: []store.RuleExecution{r},
			Events: []store.Event{event("p", "ActionExecutionSucceeded", 0)}}, nil
	}))
	if got, err := s.GetActionExecution(ctx, "a-old"); err != nil || !reflect.DeepEqual(got, old) {
		t.Fatalf("the old action execution rewritten with targets = %+v, %v; want %+v", got, err, old)
	}
	if got, err := s.GetRuleExecution(ctx, "r"); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("a rule execution after the upgrade = %+v, %v; want %+v", got, err, r)
	}
	if events, err := s.ListEvents(ctx, "p", 0, 0); err != nil || len(events) != 1 || events[0].Kind != "ActionExecutionSucceeded" {
		t.Fatalf("events after the upgrade: %+v, %v", events, err)
	}
}
