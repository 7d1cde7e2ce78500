package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

var _ store.Runtime = (*DB)(nil)

func (s *DB) Step(ctx context.Context, pipeline string, fn store.StepFunc) error {
	return s.tx(ctx, func(tx txn) error { return s.step(tx, pipeline, fn) })
}

// step runs a step of a pipeline's executions in a transaction.
func (s *DB) step(tx txn, pipeline string, fn store.StepFunc) error {
	if _, err := tx.exec(`INSERT INTO pipeline_runtime (name, state) VALUES (?, NULL) ON CONFLICT (name) DO NOTHING`, pipeline); err != nil {
		return err
	}
	var token string
	if err := tx.queryRow(`SELECT token FROM pipeline_runtime WHERE name = ?`+s.dialect.LockRows, pipeline).Scan(&token); err != nil {
		return err
	}
	change, err := fn(store.Current{
		Token:           token,
		Load:            func() (store.State, error) { return scanState(tx.query(stateQuery, pipeline, pipeline)) },
		Job:             func(id string) (store.Job, error) { return getJob(tx.queryRow, id) },
		ActionExecution: func(id string) (store.ActionExecution, error) { return getActionExecution(tx.queryRow, id) },
		RuleExecution:   func(id string) (store.RuleExecution, error) { return getRuleExecution(tx.queryRow, id) },
	})
	if err != nil {
		return err
	}
	active := 0
	if change.Active {
		active = 1
	}
	if _, err := tx.exec(`UPDATE pipeline_runtime SET state = ?, token = ?, active = ? WHERE name = ?`, string(change.State), change.Token, active, pipeline); err != nil {
		return err
	}
	for id, doc := range change.ExecutionStates {
		if doc == nil {
			_, err = tx.exec(`DELETE FROM execution_states WHERE pipeline = ? AND execution_id = ?`, pipeline, id)
		} else {
			_, err = tx.exec(`INSERT INTO execution_states (pipeline, execution_id, state) VALUES (?, ?, ?)
				ON CONFLICT (pipeline, execution_id) DO UPDATE SET state = excluded.state`, pipeline, id, string(doc))
		}
		if err != nil {
			return err
		}
	}
	for _, e := range change.Executions {
		if err := s.putExecution(tx, e); err != nil {
			return err
		}
	}
	for _, a := range change.Actions {
		if _, err := tx.exec(`INSERT INTO action_executions (id, execution_id, pipeline, stage, action, status, sort_key, doc, targets, started_ms, updated_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET status = excluded.status, doc = excluded.doc, targets = excluded.targets, updated_ms = excluded.updated_ms`,
			a.ID, a.ExecutionID, a.Pipeline, a.Stage, a.Action, a.Status, store.ActionKey(a), string(a.Doc), a.Targets, ms(a.Started), ms(a.Updated)); err != nil {
			return fmt.Errorf("write action execution %s: %w", a.ID, err)
		}
	}
	for _, r := range change.Rules {
		if _, err := tx.exec(`INSERT INTO rule_executions (id, execution_id, pipeline, stage, rule, status, sort_key, doc, started_ms, updated_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET status = excluded.status, doc = excluded.doc, updated_ms = excluded.updated_ms`,
			r.ID, r.ExecutionID, r.Pipeline, r.Stage, r.Rule, r.Status, store.RuleKey(r), string(r.Doc), ms(r.Started), ms(r.Updated)); err != nil {
			return fmt.Errorf("write rule execution %s: %w", r.ID, err)
		}
	}
	// Events go in the order given while the step holds the pipeline's lock, so that the ids the
	// database assigns follow the order they are committed in, for readers paging with ListEvents.
	// They go in one statement per batch: a step's events cost one round trip, not one each.
	for start := 0; start < len(change.Events); start += eventBatch {
		batch := change.Events[start:min(start+eventBatch, len(change.Events))]
		var values strings.Builder
		args := make([]any, 0, 5*len(batch))
		for i, e := range batch {
			if e.Pipeline != "" && e.Pipeline != pipeline {
				return fmt.Errorf("event %d (%s) is of pipeline %q, not of the step's %q", start+i, e.Kind, e.Pipeline, pipeline)
			}
			if i > 0 {
				values.WriteString(", ")
			}
			values.WriteString("(?, ?, ?, ?, ?)")
			args = append(args, pipeline, e.ExecutionID, e.Kind, string(e.Doc), ms(e.At))
		}
		if _, err := tx.exec(`INSERT INTO events (pipeline, execution_id, kind, doc, at_ms) VALUES `+values.String(), args...); err != nil {
			return fmt.Errorf("append events %d to %d: %w", start, start+len(batch)-1, err)
		}
	}
	for _, j := range change.Jobs {
		if _, err := tx.exec(`INSERT INTO jobs (id, action_execution_id, execution_id, pipeline, type_key, query_value, status, nonce, data, created_ms, updated_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET status = excluded.status, nonce = excluded.nonce, data = excluded.data, updated_ms = excluded.updated_ms`,
			j.ID, j.ActionExecutionID, j.ExecutionID, j.Pipeline, j.TypeKey, j.QueryValue, j.Status, j.Nonce, string(j.Data), ms(j.Created), ms(j.Updated)); err != nil {
			return err
		}
	}
	return nil
}

// eventBatch is how many events one INSERT appends, well under both databases' limits on
// parameters.
const eventBatch = 100

func (s *DB) putExecution(tx txn, e store.Execution) error {
	token := sql.NullString{String: e.ClientToken, Valid: e.ClientToken != ""}
	_, err := tx.exec(`INSERT INTO executions (id, pipeline, seq, version, status, client_token, doc, started_ms, updated_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, doc = excluded.doc, updated_ms = excluded.updated_ms`,
		e.ID, e.Pipeline, e.Seq, e.Version, e.Status, token, string(e.Doc), ms(e.Started), ms(e.Updated))
	if s.dialect.IsUniqueViolation(err) {
		return store.ErrExists
	}
	return err
}

// stateQuery reads a pipeline's execution state in one statement, so that it is read as one
// step left it: the pipeline's document under the id "", then its executions'.
const stateQuery = `SELECT '', state FROM pipeline_runtime WHERE name = ? AND state IS NOT NULL
	UNION ALL SELECT execution_id, state FROM execution_states WHERE pipeline = ?`

func scanState(rows *sql.Rows, err error) (store.State, error) {
	var st store.State
	if err != nil {
		return st, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, doc string
		if err := rows.Scan(&id, &doc); err != nil {
			return st, err
		}
		if id == "" {
			st.Pipeline = []byte(doc)
			continue
		}
		if st.Executions == nil {
			st.Executions = map[string][]byte{}
		}
		st.Executions[id] = []byte(doc)
	}
	return st, rows.Err()
}

func (s *DB) State(ctx context.Context, pipeline string) (store.State, error) {
	return scanState(s.query(ctx, stateQuery, pipeline, pipeline))
}

const executionColumns = `id, pipeline, seq, version, status, client_token, doc, started_ms, updated_ms`

func scanExecution(row scanner) (store.Execution, error) {
	var e store.Execution
	var token sql.NullString
	var doc string
	var started, updated int64
	if err := row.Scan(&e.ID, &e.Pipeline, &e.Seq, &e.Version, &e.Status, &token, &doc, &started, &updated); err != nil {
		return e, err
	}
	e.ClientToken, e.Doc, e.Started, e.Updated = token.String, []byte(doc), fromMS(started), fromMS(updated)
	return e, nil
}

func (s *DB) GetExecution(ctx context.Context, pipeline, id string) (store.Execution, error) {
	e, err := scanExecution(s.queryRow(ctx, `SELECT `+executionColumns+` FROM executions WHERE id = ? AND pipeline = ?`, id, pipeline))
	if errors.Is(err, sql.ErrNoRows) {
		return e, store.ErrNotFound
	}
	return e, err
}

func (s *DB) ExecutionByToken(ctx context.Context, pipeline, token string) (store.Execution, error) {
	e, err := scanExecution(s.queryRow(ctx, `SELECT `+executionColumns+` FROM executions WHERE pipeline = ? AND client_token = ?`, pipeline, token))
	if errors.Is(err, sql.ErrNoRows) {
		return e, store.ErrNotFound
	}
	return e, err
}

func (s *DB) ListExecutions(ctx context.Context, pipeline string, before int64, limit int) ([]store.Execution, error) {
	if before <= 0 {
		before = 1 << 62
	}
	return scanAll(scanExecution)(s.query(ctx, `SELECT `+executionColumns+` FROM executions WHERE pipeline = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, pipeline, before, limit))
}

const actionColumns = `id, execution_id, pipeline, stage, action, status, doc, targets, started_ms, updated_ms`

func scanAction(row scanner) (store.ActionExecution, error) {
	var a store.ActionExecution
	var doc string
	var started, updated int64
	if err := row.Scan(&a.ID, &a.ExecutionID, &a.Pipeline, &a.Stage, &a.Action, &a.Status, &doc, &a.Targets, &started, &updated); err != nil {
		return a, err
	}
	a.Doc, a.Started, a.Updated = []byte(doc), fromMS(started), fromMS(updated)
	return a, nil
}

func (s *DB) ListActionExecutions(ctx context.Context, pipeline, executionID string, page store.Page) ([]store.ActionExecution, error) {
	query, args := historyPage("action_executions", actionColumns, pipeline, executionID, page)
	return scanAll(scanAction)(s.query(ctx, query, args...))
}

// historyPage is the query of a page of a history table (action or rule runs): a pipeline's
// runs, or one execution's, newest first, after the run keyed page.After.
func historyPage(table, columns, pipeline, executionID string, page store.Page) (string, []any) {
	before := page.After
	if before == "" {
		before = "~"
	}
	args := []any{pipeline, before, limit(page)}
	where := "pipeline = ?"
	if executionID != "" {
		where = "execution_id = ? AND pipeline = ?"
		args = append([]any{executionID}, args...)
	}
	return `SELECT ` + columns + ` FROM ` + table + ` WHERE ` + where + ` AND sort_key < ? ORDER BY sort_key DESC LIMIT ?`, args
}

func (s *DB) GetActionExecution(ctx context.Context, id string) (store.ActionExecution, error) {
	return getActionExecution(s.reader(ctx), id)
}

// rowReader runs a query for one row: on the pool (DB.reader) or in a transaction (txn.queryRow).
type rowReader func(query string, args ...any) scanner

func (s *DB) reader(ctx context.Context) rowReader {
	return func(query string, args ...any) scanner { return s.queryRow(ctx, query, args...) }
}

func getActionExecution(read rowReader, id string) (store.ActionExecution, error) {
	a, err := scanAction(read(`SELECT `+actionColumns+` FROM action_executions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, store.ErrNotFound
	}
	return a, err
}

const ruleColumns = `id, execution_id, pipeline, stage, rule, status, doc, started_ms, updated_ms`

func scanRule(row scanner) (store.RuleExecution, error) {
	var r store.RuleExecution
	var doc string
	var started, updated int64
	if err := row.Scan(&r.ID, &r.ExecutionID, &r.Pipeline, &r.Stage, &r.Rule, &r.Status, &doc, &started, &updated); err != nil {
		return r, err
	}
	r.Doc, r.Started, r.Updated = []byte(doc), fromMS(started), fromMS(updated)
	return r, nil
}

func (s *DB) ListRuleExecutions(ctx context.Context, pipeline, executionID string, page store.Page) ([]store.RuleExecution, error) {
	query, args := historyPage("rule_executions", ruleColumns, pipeline, executionID, page)
	rules, err := scanAll(scanRule)(s.query(ctx, query, args...))
	if err != nil {
		return nil, fmt.Errorf("list rule executions of %s: %w", pipeline, err)
	}
	return rules, nil
}

func (s *DB) GetRuleExecution(ctx context.Context, id string) (store.RuleExecution, error) {
	return getRuleExecution(s.reader(ctx), id)
}

func getRuleExecution(read rowReader, id string) (store.RuleExecution, error) {
	r, err := scanRule(read(`SELECT `+ruleColumns+` FROM rule_executions WHERE id = ?`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return r, store.ErrNotFound
	case err != nil:
		return r, fmt.Errorf("read rule execution %s: %w", id, err)
	}
	return r, nil
}

const eventColumns = `id, pipeline, execution_id, kind, doc, at_ms`

func scanEvent(row scanner) (store.Event, error) {
	var e store.Event
	var doc string
	var at int64
	if err := row.Scan(&e.ID, &e.Pipeline, &e.ExecutionID, &e.Kind, &doc, &at); err != nil {
		return e, err
	}
	e.Doc, e.At = []byte(doc), fromMS(at)
	return e, nil
}

func (s *DB) AddSourceEvent(ctx context.Context, e store.SourceEvent) error {
	return s.tx(ctx, func(tx txn) error {
		if _, err := tx.exec(`INSERT INTO source_events (id, doc, created_ms) VALUES (?, ?, ?)`, e.ID, string(e.Doc), ms(e.Created)); err != nil {
			return fmt.Errorf("record source event %s: %w", e.ID, err)
		}
		return nil
	})
}

func (s *DB) SourceTags(ctx context.Context, source string) ([]byte, bool, error) {
	var doc string
	err := s.queryRow(ctx, `SELECT doc FROM source_tags WHERE source = ?`, source).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the tags of source %s: %w", source, err)
	}
	return []byte(doc), true, nil
}

func (s *DB) SetSourceTags(ctx context.Context, source string, doc []byte) error {
	return s.tx(ctx, func(tx txn) error {
		if _, err := tx.exec(`INSERT INTO source_tags (source, doc) VALUES (?, ?) ON CONFLICT (source) DO UPDATE SET doc = excluded.doc`, source, string(doc)); err != nil {
			return fmt.Errorf("keep the tags of source %s: %w", source, err)
		}
		return nil
	})
}

func (s *DB) SourceEvents(ctx context.Context, limit int) ([]store.SourceEvent, error) {
	events, err := scanAll(func(row scanner) (store.SourceEvent, error) {
		var e store.SourceEvent
		var doc string
		var created int64
		err := row.Scan(&e.ID, &doc, &created)
		e.Doc, e.Created = []byte(doc), fromMS(created)
		return e, err
	})(s.query(ctx, `SELECT id, doc, created_ms FROM source_events ORDER BY created_ms, id LIMIT ?`, limit))
	if err != nil {
		return nil, fmt.Errorf("list source events: %w", err)
	}
	return events, nil
}

func (s *DB) DeleteSourceEvent(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx txn) error {
		_, err := tx.exec(`DELETE FROM source_events WHERE id = ?`, id)
		return err
	})
}

func (s *DB) ListEvents(ctx context.Context, pipeline string, after int64, limit int) ([]store.Event, error) {
	query := `SELECT ` + eventColumns + ` FROM events WHERE pipeline = ? AND id > ? ORDER BY id`
	args := []any{pipeline, after}
	if limit > 0 {
		query += ` LIMIT ?`
		args = append(args, limit)
	}
	events, err := scanAll(scanEvent)(s.query(ctx, query, args...))
	if err != nil {
		return nil, fmt.Errorf("list events of %s: %w", pipeline, err)
	}
	return events, nil
}

const jobColumns = `id, action_execution_id, execution_id, pipeline, type_key, query_value, status, nonce, dispatches, data, created_ms, updated_ms`

func scanJob(row scanner) (store.Job, error) {
	var j store.Job
	var data string
	var created, updated int64
	if err := row.Scan(&j.ID, &j.ActionExecutionID, &j.ExecutionID, &j.Pipeline, &j.TypeKey, &j.QueryValue, &j.Status, &j.Nonce, &j.Dispatches, &data, &created, &updated); err != nil {
		return j, err
	}
	j.Data, j.Created, j.Updated = []byte(data), fromMS(created), fromMS(updated)
	return j, nil
}

func (s *DB) DispatchJobs(ctx context.Context, typeKey, queryValue string, max int, nonce func() string) ([]store.Job, error) {
	var out []store.Job
	err := s.tx(ctx, func(tx txn) error {
		var err error
		out, err = scanAll(scanJob)(tx.query(`SELECT `+jobColumns+` FROM jobs WHERE type_key = ? AND status = 'Queued' AND (? = '' OR query_value = ?)
			ORDER BY created_ms, id LIMIT ?`+s.dialect.SkipLockedRows, typeKey, queryValue, queryValue, max))
		if err != nil {
			return err
		}
		now := time.Now()
		for i := range out {
			out[i].Status, out[i].Nonce, out[i].Updated = "Dispatched", nonce(), now
			out[i].Dispatches++
			if _, err := tx.exec(`UPDATE jobs SET status = ?, nonce = ?, dispatches = ?, updated_ms = ? WHERE id = ?`,
				out[i].Status, out[i].Nonce, out[i].Dispatches, ms(now), out[i].ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

func (s *DB) GetJob(ctx context.Context, id string) (store.Job, error) {
	return getJob(s.reader(ctx), id)
}

func getJob(read rowReader, id string) (store.Job, error) {
	j, err := scanJob(read(`SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, store.ErrNotFound
	}
	return j, err
}

func (s *DB) SetJobStatus(ctx context.Context, id, from, to string, updated time.Time) error {
	err := s.execOne(ctx, `UPDATE jobs SET status = ?, updated_ms = ? WHERE id = ? AND status = ?`, to, ms(updated), id, from)
	if errors.Is(err, store.ErrNotFound) {
		return store.ErrConflict
	}
	return err
}

func (s *DB) TouchJob(ctx context.Context, id string, now time.Time) (bool, error) {
	err := s.execOne(ctx, `UPDATE jobs SET updated_ms = ?, dispatches = 0 WHERE id = ? AND status IN ('Dispatched', 'InProgress')`, ms(now), id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (s *DB) ActivePipelines(ctx context.Context) ([]string, error) {
	return scanAll(func(row scanner) (string, error) {
		var name string
		err := row.Scan(&name)
		return name, err
	})(s.query(ctx, `SELECT name FROM pipeline_runtime WHERE active = 1 ORDER BY name`))
}

func (s *DB) RequeueJobs(ctx context.Context, dispatchedBefore time.Time, maxDispatches int, unlimited []string) ([]string, []store.Job, error) {
	// Jobs of the unlimited types go back to the queue however often they were handed out.
	counted, args := "dispatches < ?", []any{ms(dispatchedBefore), maxDispatches}
	exhausted := "dispatches >= ?"
	if len(unlimited) > 0 {
		in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(unlimited)), ", ") + ")"
		counted = "(" + counted + " OR type_key IN " + in + ")"
		exhausted += " AND type_key NOT IN " + in
		for _, key := range unlimited {
			args = append(args, key)
		}
	}
	var (
		requeued []string
		out      []store.Job
	)
	err := s.tx(ctx, func(tx txn) error {
		var err error
		requeued, err = scanAll(func(row scanner) (string, error) {
			var key string
			return key, row.Scan(&key)
		})(tx.query(`UPDATE jobs SET status = 'Queued', nonce = '' WHERE status = 'Dispatched' AND updated_ms < ? AND `+counted+` RETURNING type_key`, args...))
		if err != nil {
			return err
		}
		out, err = scanAll(scanJob)(tx.query(`SELECT `+jobColumns+` FROM jobs WHERE status = 'Dispatched' AND updated_ms < ? AND `+exhausted, args...))
		return err
	})
	return requeued, out, err
}
