package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// replicasName names the multi-replica scenario; -scenario matches it.
const replicasName = "Replicas on one PostgreSQL: engine executions and reads"

// The buckets the replicas keep artifacts (the pipeline's artifact store) and hosted
// repositories in, in moto.
const (
	replicaArtifactBucket = "bench-artifacts"
	replicaGitBucket      = "bench-git"
)

// replicaSet spreads requests over the replicas of one store, round-robin per request: an
// execution started on one replica has its jobs polled, acknowledged and completed on others.
type replicaSet struct {
	clients []*client
	next    atomic.Uint64
}

func (s *replicaSet) call(ctx context.Context, op, body string) (int, []byte, error) {
	c := s.clients[(s.next.Add(1)-1)%uint64(len(s.clients))]
	return c.call(ctx, op, body)
}

// replicaRun is one run of the scenario on n replicas.
type replicaRun struct {
	n                 int
	executions, reads result
	// cpu is the replicas' CPU time together during the load, pg PostgreSQL's (if it runs on
	// this machine) and bench the load generator's; busy is the share of the machine's CPU
	// time that was not idle then (all of them, moto and whatever else runs).
	cpu, pg, bench time.Duration
	busy           float64
	// rssMB is the largest replica's resident memory.
	rssMB float64
	// What the replicas read back after the load: executions succeeded and still in progress
	// (their jobs cut off by the end of the load).
	succeeded, inProgress int
}

// runReplicas runs the multi-replica scenario for each replica count of o.replicas, in o.rounds
// rounds alternating the order of the counts, and writes its table.
func runReplicas(ctx context.Context, w *bytes.Buffer, bin, postgres string, moto bool, o options) error {
	fmt.Fprintf(w, "## %s\n\n", replicasName)
	if postgres == "" {
		fmt.Fprintf(os.Stderr, "%-55s skipped: no PostgreSQL\n", replicasName)
		w.WriteString("Skipped: PostgreSQL is not reachable.\n\n")
		return nil
	}
	counts := o.replicas
	storage := "its own `--data` directory, `--artifacts-s3-endpoint` moto and `--git-s3-bucket` " + replicaGitBucket +
		" (buckets made in moto first): what replicas that share no disk run, the configuration the server asks of them; the workload writes no artifact, so moto stays idle"
	motoURL := ""
	if moto {
		m, err := startMoto()
		if err != nil {
			return fmt.Errorf("%s: start moto: %w", replicasName, err)
		}
		defer m.stop()
		c := newClient(m.endpoint, 1)
		for _, b := range []string{replicaArtifactBucket, replicaGitBucket} {
			if err := c.s3(ctx, http.MethodPut, "/"+b, nil); err != nil {
				return fmt.Errorf("%s: create moto's bucket %s: %w", replicasName, b, err)
			}
		}
		motoURL = m.endpoint
	} else {
		storage = "one `--data` directory shared by every replica, with `--data-shared` (moto_server is not installed, so there is no S3-compatible service to keep artifacts in; the workload writes no artifact)"
	}
	runs := map[int][]replicaRun{}
	for round := 1; round <= o.rounds; round++ {
		order := slices.Clone(counts)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, n := range order {
			r, err := replicasOnce(ctx, bin, postgres, motoURL, n, o)
			if err != nil {
				return fmt.Errorf("%s, %d replicas, round %d: %w", replicasName, n, round, err)
			}
			runs[n] = append(runs[n], r)
			fmt.Fprintf(os.Stderr, "%-55s %d replicas #%d  %6.0f executions/s  p50 %v  p99 %v  %6.0f GetPipeline/s  p50 %v  p99 %v  errors %d  CPU: replicas %.2f, PostgreSQL %.2f, load generator %.2f cores, whole machine %.2f; read back %d succeeded, %d in progress\n",
				"Replicas", n, round, r.executions.perSecond(), r.executions.p50, r.executions.p99, r.reads.perSecond(), r.reads.p50, r.reads.p99,
				r.executions.errors+r.reads.errors, cores(r.cpu, r.executions.elapsed), cores(r.pg, r.executions.elapsed), cores(r.bench, r.executions.elapsed), r.busy*float64(runtime.NumCPU()), r.succeeded, r.inProgress)
		}
	}

	execWorkers, readers := replicaClients(o.concurrency)
	howMany := fmt.Sprint(counts[0])
	if len(counts) > 1 {
		howMany = fmt.Sprintf("%d to %d", counts[0], counts[len(counts)-1])
	}
	rounds := "once"
	if o.rounds > 1 {
		rounds = fmt.Sprintf("in %d rounds, each running every replica count once in alternating order; ratios are medians of the rounds' paired ratios", o.rounds)
	}
	fmt.Fprintf(w, "%s `sluice serve` replicas on one fresh PostgreSQL schema per run, started together, each with %s. "+
		"The load goes round-robin per request over the replicas: %d clients run three-stage PARALLEL executions of custom actions, each of a pipeline of its own "+
		"(StartPipelineExecution, then PollForJobs, AcknowledgeJob and PutJobSuccessResult for each stage, each request to the next replica, so that "+
		"an execution started on one replica is worked through the others; a client takes whichever job of the stage's type comes, of any pipeline), %d read GetPipeline of the pipelines in turn. It runs %s. "+
		"Checked in every run, else the harness fails: no job was handed out twice, every execution the harness completed reads back Succeeded "+
		"(listed page by page through the replicas in turn), none failed. **This machine has %d cores**: the replicas, PostgreSQL, "+
		"the load generator (and moto) share them, so more replicas add no CPU: the figures show that sharing works and what it costs, not a speed-up.\n\n",
		howMany, storage, execWorkers, readers, rounds, runtime.NumCPU())
	fmt.Fprintf(w, "| replicas | executions/s | p50 | p99 | GetPipeline/s | p50 | p99 | errors | executions/s ÷ %d | GetPipeline/s ÷ %d | CPU: replicas | PostgreSQL | load generator | whole machine | RSS, largest replica |\n", counts[0], counts[0])
	w.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	base := runs[counts[0]]
	var succeeded, inProgress int
	for _, n := range counts {
		rs := runs[n]
		var execs, reads []result
		var cpu, pg, bench, elapsed time.Duration
		var busy, rss []float64
		var execRatios, readRatios []float64
		for i, r := range rs {
			execs, reads = append(execs, r.executions), append(reads, r.reads)
			cpu, pg, bench, elapsed = cpu+r.cpu, pg+r.pg, bench+r.bench, elapsed+r.executions.elapsed
			busy, rss = append(busy, r.busy), append(rss, r.rssMB)
			execRatios = append(execRatios, r.executions.perSecond()/base[i].executions.perSecond())
			readRatios = append(readRatios, r.reads.perSecond()/base[i].reads.perSecond())
			succeeded, inProgress = succeeded+r.succeeded, inProgress+r.inProgress
		}
		e, rd := pooled(execs), pooled(reads)
		fmt.Fprintf(w, "| %d | %.0f | %s | %s | %.0f | %s | %s | %d | %s | %s | %.2f | %.2f | %.2f | %.2f of %d | %.0f MB |\n",
			n, e.perSecond(), round(e.p50), round(e.p99), rd.perSecond(), round(rd.p50), round(rd.p99), e.errors+rd.errors,
			pairedRatio(execRatios), pairedRatio(readRatios), cores(cpu, elapsed), cores(pg, elapsed), cores(bench, elapsed), median(busy)*float64(runtime.NumCPU()), runtime.NumCPU(), median(rss))
	}
	fmt.Fprintf(w, "\nRead back after the runs: %d executions succeeded, %d left in progress when the load stopped (their jobs cut off); none failed, no job handed out twice. "+
		"CPU is in cores: CPU time over the load's time, of the replicas together, of PostgreSQL's processes (0 if it runs elsewhere) and of the load generator; "+
		"the whole machine's is its cores' time not idle (nor waiting for I/O) during the load, which also counts moto, PostgreSQL's processes that ended during it, the kernel, and anything else running.\n\n", succeeded, inProgress)
	return nil
}

// cores is CPU time over elapsed time.
func cores(cpu, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return cpu.Seconds() / elapsed.Seconds()
}

// replicaClients splits the clients: three quarters run executions, the rest read.
func replicaClients(concurrency int) (executions, readers int) {
	executions = max(1, concurrency*3/4)
	return executions, max(1, concurrency-executions)
}

// pairedRatio writes the median of the rounds' ratios, and each round's if there are several.
func pairedRatio(rs []float64) string {
	text := fmt.Sprintf("**%.2f×**", median(rs))
	if len(rs) > 1 {
		var each []string
		for _, r := range rs {
			each = append(each, fmt.Sprintf("%.2f", r))
		}
		text += " (" + strings.Join(each, ", ") + ")"
	}
	return text
}

// replicasOnce starts n replicas on a fresh schema together, runs the load over them and checks
// what they read back.
func replicasOnce(ctx context.Context, bin, postgres, motoURL string, n int, o options) (replicaRun, error) {
	run := replicaRun{n: n}
	url, drop, err := freshSchema(postgres)
	if err != nil {
		return run, err
	}
	defer drop()
	dir := ""
	if motoURL == "" {
		if dir, err = os.MkdirTemp("", "bench-shared-"); err != nil {
			return run, err
		}
		defer os.RemoveAll(dir)
	}
	ts := make([]*target, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ts[i], errs[i] = startSluice(bin, sluiceConfig{name: fmt.Sprintf("sluice-replica-%d", i+1), database: url,
				s3: motoURL, gitBucket: replicaGitBucket, dataDir: dir})
		})
	}
	wg.Wait()
	defer func() {
		for _, t := range ts {
			if t != nil {
				t.stop()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return run, err
	}

	rs := &replicaSet{}
	for _, t := range ts {
		rs.clients = append(rs.clients, newClient(t.endpoint, o.concurrency))
	}
	execWorkers, readers := replicaClients(o.concurrency)
	// One pipeline per execution client, each client starting executions of its own; the jobs
	// of all of them are polled by type, whichever pipeline they are of.
	pipelines := make([]string, execWorkers)
	for i := range pipelines {
		pipelines[i] = fmt.Sprintf("bench-replicas-%d", i)
		enginePipeline(ctx, rs.clients[0], pipelines[i], ts[0].roleARN, i == 0)
	}
	var taken sync.Map
	var started, twice atomic.Int64
	cpu0, pg0, bench0, machine0 := replicasCPU(ts), postgresCPU(), processCPU("self"), machineCPU()
	var load sync.WaitGroup
	load.Go(func() {
		run.executions = closedLoop(ctx, execWorkers, o.duration, func(ctx context.Context, w, _ int) error {
			if err := expect(rs.call(ctx, "StartPipelineExecution", fmt.Sprintf(`{"name":%q}`, pipelines[w%len(pipelines)]))); err != nil {
				return err
			}
			started.Add(1)
			for i := range engineTypes {
				id, err := takeJob(ctx, rs, i)
				if err != nil {
					return err
				}
				if _, dup := taken.LoadOrStore(id, true); dup {
					twice.Add(1)
					return fmt.Errorf("job %s was handed out twice", id)
				}
				if err := expect(rs.call(ctx, "PutJobSuccessResult", fmt.Sprintf(`{"jobId":%q}`, id))); err != nil {
					return err
				}
			}
			return nil
		})
	})
	load.Go(func() {
		run.reads = closedLoop(ctx, readers, o.duration, func(ctx context.Context, w, seq int) error {
			return expect(rs.call(ctx, "GetPipeline", fmt.Sprintf(`{"name":%q}`, pipelines[(w+seq)%len(pipelines)])))
		})
	})
	load.Wait()
	run.cpu, run.pg, run.bench = replicasCPU(ts)-cpu0, postgresCPU()-pg0, processCPU("self")-bench0
	run.busy = machineCPU().busySince(machine0)
	for _, t := range ts {
		run.rssMB = max(run.rssMB, t.rssMB())
	}
	for _, r := range []result{run.executions, run.reads} {
		if r.requests == 0 {
			return run, fmt.Errorf("no request succeeded (%d failed: %s)", r.errors, r.firstError)
		}
	}
	if twice.Load() > 0 {
		return run, fmt.Errorf("%d jobs were handed out twice", twice.Load())
	}

	// Every execution the harness completed (its last job's result accepted) has succeeded,
	// read through the replicas in turn; allow the replicas a moment to record the last ones.
	deadline := time.Now().Add(10 * time.Second)
	for {
		statuses := map[string]int{}
		for _, p := range pipelines {
			if err := executionStatuses(ctx, rs, p, statuses); err != nil {
				return run, fmt.Errorf("read the executions of %s back: %w", p, err)
			}
		}
		run.succeeded, run.inProgress = statuses["Succeeded"], statuses["InProgress"]
		total := 0
		for _, k := range statuses {
			total += k
		}
		others := total - run.succeeded - run.inProgress
		ok := run.succeeded >= run.executions.requests && total >= int(started.Load()) && others == 0
		if ok {
			return run, nil
		}
		if time.Now().After(deadline) {
			return run, fmt.Errorf("the replicas read back %v (%d executions in all), but the harness started %d and completed %d",
				statuses, total, started.Load(), run.executions.requests)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// executionStatuses counts a pipeline's executions by status into statuses, listing them page
// by page, each page from the next replica.
func executionStatuses(ctx context.Context, c caller, pipeline string, statuses map[string]int) error {
	token := ""
	for {
		in := fmt.Sprintf(`{"pipelineName":%q,"maxResults":100}`, pipeline)
		if token != "" {
			in = fmt.Sprintf(`{"pipelineName":%q,"maxResults":100,"nextToken":%q}`, pipeline, token)
		}
		status, body, err := c.call(ctx, "ListPipelineExecutions", in)
		if err := expect(status, body, err); err != nil {
			return err
		}
		var out struct {
			Summaries []struct{ Status string } `json:"pipelineExecutionSummaries"`
			NextToken string                    `json:"nextToken"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return err
		}
		for _, s := range out.Summaries {
			statuses[s.Status]++
		}
		if out.NextToken == "" {
			return nil
		}
		token = out.NextToken
	}
}

// postgresCPU is the CPU time PostgreSQL's processes on this machine have used so far (those
// alive now), 0 if there are none to see (a server elsewhere).
func postgresCPU() time.Duration {
	dirs, _ := os.ReadDir("/proc")
	var cpu time.Duration
	for _, d := range dirs {
		if comm, err := os.ReadFile("/proc/" + d.Name() + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			cpu += processCPU(d.Name())
		}
	}
	return cpu
}

func replicasCPU(ts []*target) time.Duration {
	var cpu time.Duration
	for _, t := range ts {
		cpu += t.cpu()
	}
	return cpu
}

// cpuTimes are the machine's CPU times from /proc/stat, in clock ticks: all, and idle (with
// waiting for I/O).
type cpuTimes struct{ total, idle int64 }

func machineCPU() cpuTimes {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fields := strings.Fields(line)
	var t cpuTimes
	// cpu user nice system idle iowait irq softirq steal guest guest_nice: guest time is
	// counted in user's already.
	for i, f := range fields[1:min(len(fields), 9)] {
		v, _ := strconv.ParseInt(f, 10, 64)
		t.total += v
		if i == 3 || i == 4 {
			t.idle += v
		}
	}
	return t
}

// busySince is the share of the CPU time since then that was not idle.
func (t cpuTimes) busySince(then cpuTimes) float64 {
	total := t.total - then.total
	if total <= 0 {
		return 0
	}
	return 1 - float64(t.idle-then.idle)/float64(total)
}
