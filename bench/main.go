// Command bench measures Sluice side by side with moto and with the machine's ceiling: each
// scenario drives a fresh endpoint with a closed-loop load of AWS JSON 1.1 requests and reports
// throughput and latency, and the ratios between the targets, as a markdown report.
//
//	go run ./bench [-short] [-duration 10s] [-concurrency 16] [-rounds 3] [-replicas 1,2,3] [-scenario NAME] [-out docs/BENCHMARKS.md]
//
// Targets: Sluice on the embedded store, Sluice on PostgreSQL ($SLUICE_TEST_POSTGRES, else the
// local server's test database; skipped if unreachable), moto_server (skipped if not
// installed) for what moto implements, and a minimal Go HTTP server in this process that answers
// a fixed GetPipeline document (the ceiling). Every request is signed (SigV4) whatever the
// target; Sluice on the embedded store with authentication on (--auth sigv4), which checks the
// signatures, is compared with the same server with it off. A scenario that compares targets
// with the ceiling or authentication on with off runs every target in each of -rounds rounds,
// in alternating order, and its ratios are medians of the rounds' paired ratios. The
// multi-replica scenario runs 1, 2 and 3 replicas of Sluice on one PostgreSQL database, with
// the load spread over them. The short mode runs each scenario for a moment, once: it checks
// that the harness works, not how fast anything is.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	short := flag.Bool("short", false, "run each scenario for two seconds, to check the harness")
	duration := flag.Duration("duration", 10*time.Second, "how long each scenario runs on each target")
	concurrency := flag.Int("concurrency", 16, "concurrent clients")
	rounds := flag.Int("rounds", 3, "rounds of a scenario that compares targets (with the ceiling, or authentication off and on) and of the multi-replica scenario, each running every target, in alternating order; 1 with -short unless given")
	out := flag.String("out", "", "write the markdown report to this file (default: stdout only)")
	only := flag.String("scenario", "", "run only scenarios whose name contains this")
	scalePipelines := flag.Int("scale-pipelines", 10000, "pipelines the scale scenario stores")
	scaleActions := flag.Int("scale-actions", 1000000, "action executions the scale scenario stores")
	profile := flag.String("profile", "", "write a CPU profile of each Sluice target, per scenario, into this directory")
	replicas := flag.String("replicas", "1,2,3", "replica counts of the multi-replica scenario, ascending; 1,2 with -short unless given")
	postgres := flag.String("postgres", envOr("SLUICE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL database for Sluice's shared store ('' to skip)")
	flag.Parse()
	counts, err := parseCounts(*replicas)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: -replicas:", err)
		os.Exit(2)
	}
	o := options{replicas: counts, duration: *duration, concurrency: *concurrency, rounds: max(1, *rounds), profileDir: *profile, scale: scaleSize{*scalePipelines, *scaleActions}}
	if *short {
		given := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
		if !given["rounds"] {
			o.rounds = 1
		}
		if !given["replicas"] {
			o.replicas = []int{1, 2}
		}
		// Long enough that a three-stage execution on PostgreSQL (a few hundred milliseconds
		// under load here) completes within it, so that the check is not a race.
		o.duration = 2 * time.Second
		o.scale = scaleSize{pipelines: 500, actions: 5000}
	}
	if err := run(o, *only, *postgres, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// parseCounts reads a comma-separated list of ascending positive counts.
func parseCounts(s string) ([]int, error) {
	var counts []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || (len(counts) > 0 && n <= counts[len(counts)-1]) {
			return nil, fmt.Errorf("%q is not a list of ascending counts", s)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// measurement is one scenario on one target.
type measurement struct {
	target string
	result result
	rssMB  float64
	// cpu is the CPU time the target's process used during the scenario (not its start-up; the
	// scenario's set-up included, which is small beside the load), 0 if it is not a process of
	// its own.
	cpu time.Duration
	// rounds is how many runs the measurement pools, 1 if it is one run's.
	rounds int
}

// cpuPerRequest is the target's CPU time per successful request.
func (m measurement) cpuPerRequest() time.Duration {
	if m.result.requests == 0 {
		return 0
	}
	return m.cpu / time.Duration(m.result.requests)
}

func run(o options, only, postgres, out string) error {
	dir, err := os.MkdirTemp("", "bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := sluiceBinary(dir)
	if err != nil {
		return err
	}
	if postgres != "" {
		if db, err := sql.Open("pgx", postgres); err != nil || db.Ping() != nil {
			fmt.Fprintln(os.Stderr, "bench: PostgreSQL is not reachable; skipping Sluice on PostgreSQL")
			postgres = ""
		} else {
			db.Close()
		}
	}
	_, motoErr := exec.LookPath("moto_server")
	starters := []starter{
		{name: "Sluice (SQLite)", kind: "sluice", start: func(args []string) (*target, error) {
			return startSluice(bin, sluiceConfig{name: "sluice-sqlite", args: args})
		}},
		{name: "Sluice (SQLite, auth)", kind: "sluice-auth", versus: "Sluice (SQLite)", comparison: "Authentication on",
			start: func(args []string) (*target, error) {
				return startSluice(bin, sluiceConfig{name: "sluice-sqlite-auth", sigv4: true, args: args})
			}},
		{name: "Sluice (PostgreSQL)", kind: "sluice", start: func(args []string) (*target, error) {
			url, drop, err := freshSchema(postgres)
			if err != nil {
				return nil, err
			}
			// The only replica: its --data is shared with nobody, and says so (--data-shared).
			t, err := startSluice(bin, sluiceConfig{name: "sluice-postgres", database: url, args: args})
			if err != nil {
				drop()
				return nil, err
			}
			stop := t.stop
			t.stop = func() { stop(); drop() }
			return t, nil
		}},
		{name: "moto", kind: "moto", start: func([]string) (*target, error) { return startMoto() }},
		{name: "ceiling", kind: "ceiling", start: func([]string) (*target, error) { return startCeiling(ceilingDoc) }},
	}
	runs := func(sc scenario, st starter) bool {
		return contains(sc.kinds, st.kind) && (st.name != "Sluice (PostgreSQL)" || postgres != "") && (st.kind != "moto" || motoErr == nil)
	}
	var report bytes.Buffer
	header(&report, o)
	ctx := context.Background()
	for _, sc := range scenarios {
		if only != "" && !strings.Contains(sc.name, only) {
			continue
		}
		var sts []starter
		for _, st := range starters {
			if runs(sc, st) {
				sts = append(sts, st)
			}
		}
		ms, err := measureRounds(ctx, sc, sts, o)
		if err != nil {
			return err
		}
		var rows []measurement
		var notes []string
		for _, st := range sts {
			rows = append(rows, pool(st.name, ms[st.name]))
			if st.versus != "" && len(ms[st.versus]) > 0 {
				notes = append(notes, comparisonNote(sc, st, ms[st.versus], ms[st.name]))
			}
		}
		table(&report, sc, rows, ratios(ms), append(drainNotes(rows), notes...))
	}
	if only == "" || strings.Contains(replicasName, only) {
		if err := runReplicas(ctx, &report, bin, postgres, motoErr == nil, o); err != nil {
			return err
		}
	}
	if only == "" || strings.Contains("Scale", only) {
		rows, err := runScale(ctx, starters, postgres, o)
		if err != nil {
			return err
		}
		scaleTable(&report, o.scale, rows)
	}
	os.Stdout.Write(report.Bytes())
	if out == "" {
		return nil
	}
	// The written analysis below the figures survives a new run.
	if old, err := os.ReadFile(out); err == nil {
		if i := bytes.Index(old, []byte(analysisMarker)); i >= 0 {
			report.Write(old[i:])
		}
	}
	return os.WriteFile(out, report.Bytes(), 0o644)
}

// measure runs a scenario on a fresh target once; round, if not 0, is which round of a
// comparison it is.
func measure(ctx context.Context, sc scenario, st starter, o options, round int) (measurement, error) {
	t, err := st.start(sc.serverArgs)
	if err != nil {
		return measurement{}, fmt.Errorf("%s: start %s: %w", sc.name, st.name, err)
	}
	label, file := st.name, profileName(sc.name, st.name)
	if round > 0 {
		label = fmt.Sprintf("%s #%d", st.name, round)
		file = strings.TrimSuffix(file, ".pprof") + fmt.Sprintf(".round%d.pprof", round)
	}
	waitProfile := func() error { return nil }
	if o.profileDir != "" && t.debug != "" {
		waitProfile = t.profileCPU(o.duration, filepath.Join(o.profileDir, file))
	}
	cpu0 := t.cpu()
	r, err := sc.run(ctx, t, o)
	rss, cpu := t.rssMB(), t.cpu()-cpu0
	if perr := waitProfile(); perr != nil {
		fmt.Fprintf(os.Stderr, "bench: profile of %s on %s: %v\n", sc.name, label, perr)
	}
	t.stop()
	if err != nil {
		return measurement{}, fmt.Errorf("%s on %s: %w", sc.name, label, err)
	}
	if r.requests == 0 {
		return measurement{}, fmt.Errorf("%s on %s: no request succeeded (%d failed: %s)", sc.name, label, r.errors, r.firstError)
	}
	m := measurement{target: st.name, result: r, rssMB: rss, cpu: cpu, rounds: 1}
	perRequest := ""
	if cpu > 0 {
		perRequest = fmt.Sprintf("  server CPU/request %v", m.cpuPerRequest().Round(100*time.Nanosecond))
	}
	fmt.Fprintf(os.Stderr, "%-55s %-24s %10.0f %s  p50 %v  p99 %v  errors %d%s\n", sc.name, label, r.perSecond(), sc.unit, r.p50, r.p99, r.errors, perRequest)
	return m, nil
}

// measureRounds runs a scenario on each of sts, each time on a fresh target, and returns each
// target's runs by name. A scenario that compares targets — the ceiling, or a target that is
// another with one setting changed (authentication on) — runs every target in each of o.rounds
// rounds, so that all of them meet the same moments of a noisy machine, and each round's runs
// are neighbours in time whose ratios are free of what changed on the machine between rounds:
// the order alternates (as listed in odd rounds, reversed in even ones), so that no target
// always runs first nor a drift favours one. Other scenarios run each target once.
func measureRounds(ctx context.Context, sc scenario, sts []starter, o options) (map[string][]measurement, error) {
	rounds := 0
	if slices.ContainsFunc(sts, func(st starter) bool { return st.kind == "ceiling" || st.versus != "" }) {
		rounds = o.rounds
	}
	ms := map[string][]measurement{}
	for round := 1; round <= max(1, rounds); round++ {
		order := slices.Clone(sts)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, st := range order {
			m, err := measure(ctx, sc, st, o, min(round, rounds))
			if err != nil {
				return nil, err
			}
			ms[st.name] = append(ms[st.name], m)
		}
	}
	return ms, nil
}

// comparisonNote compares other's rounds with base's (the same server with one setting
// changed, measured in the same rounds): the median of the rounds' ratios of other's rate to
// base's, the ratio of the medians, the servers' CPU time per request, and every round's rates.
func comparisonNote(sc scenario, other starter, bases, others []measurement) string {
	var each []string
	var rs, cpuBase, cpuOther []float64
	for i := range min(len(bases), len(others)) {
		b, x := bases[i].result.perSecond(), others[i].result.perSecond()
		each = append(each, fmt.Sprintf("%.0f / %.0f", b, x))
		rs = append(rs, x/b)
		cpuBase = append(cpuBase, float64(bases[i].cpuPerRequest()))
		cpuOther = append(cpuOther, float64(others[i].cpuPerRequest()))
	}
	how := fmt.Sprintf("median of the ratios of %d rounds, each running every target on fresh servers, in alternating order; ratio of the medians %.2f×",
		len(rs), medianRate(others)/medianRate(bases))
	if len(rs) == 1 {
		how = "1 round, on fresh servers"
	}
	if median(cpuBase) > 0 {
		how += fmt.Sprintf("; server CPU per request, median: off %v, on %v",
			time.Duration(median(cpuBase)).Round(100*time.Nanosecond), time.Duration(median(cpuOther)).Round(100*time.Nanosecond))
	}
	note := fmt.Sprintf("%s: **%.2f×** of off in %s (%s / %s: %s; off / on by round: %s)",
		other.comparison, median(rs), sc.unit, other.name, other.versus, how, strings.Join(each, ", "))
	fmt.Fprintf(os.Stderr, "%-55s %s\n", sc.name, strings.ReplaceAll(note, "**", ""))
	return note
}

// ratios are Sluice's rates over moto's and the ceiling's: with rounds, the median of the
// ratios of the runs of the same round, and each round's.
func ratios(ms map[string][]measurement) []string {
	var out []string
	for _, s := range []string{"Sluice (SQLite)", "Sluice (SQLite, auth)", "Sluice (PostgreSQL)"} {
		for _, x := range []string{"moto", "ceiling"} {
			a, b := ms[s], ms[x]
			if len(a) == 0 || len(b) == 0 {
				continue
			}
			var rs []float64
			var each []string
			for i := range min(len(a), len(b)) {
				r := a[i].result.perSecond() / b[i].result.perSecond()
				rs = append(rs, r)
				each = append(each, ratioText(x, r))
			}
			text := fmt.Sprintf("%s / %s = **%s**", s, x, ratioText(x, median(rs)))
			if len(rs) > 1 {
				text += fmt.Sprintf(" (median of %d rounds' paired ratios: %s)", len(rs), strings.Join(each, ", "))
			}
			out = append(out, text)
		}
	}
	return out
}

// ratioText writes a ratio to moto as a multiple and one to the ceiling as a percentage.
func ratioText(versus string, r float64) string {
	if versus == "ceiling" {
		return fmt.Sprintf("%.0f%%", 100*r)
	}
	return fmt.Sprintf("%.1f×", r)
}

// pool is one target's rounds taken together; its memory is the median of theirs.
func pool(target string, rounds []measurement) measurement {
	var rs []result
	var rss []float64
	for _, m := range rounds {
		rs = append(rs, m.result)
		rss = append(rss, m.rssMB)
	}
	var cpu time.Duration
	for _, m := range rounds {
		cpu += m.cpu
	}
	return measurement{target: target, result: pooled(rs), rssMB: median(rss), cpu: cpu, rounds: len(rounds)}
}

func medianRate(ms []measurement) float64 {
	var rates []float64
	for _, m := range ms {
		rates = append(rates, m.result.perSecond())
	}
	return median(rates)
}

// median is the middle value, or the mean of the two middle ones.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Sorted(slices.Values(xs))
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// analysisMarker starts the hand-written part of the report, which the harness keeps.
const analysisMarker = "<!-- analysis: kept when the harness rewrites the figures above -->"

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// header describes the run: the machine, the command and the settings.
func header(w *bytes.Buffer, o options) {
	cpu := "unknown CPU"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Fields(strings.SplitN(string(raw), "\n", 2)[0])[1] + " kB"
	}
	fmt.Fprintf(w, "# Benchmarks\n\nMade by `go run ./bench -duration %s -concurrency %d -rounds %d -out docs/BENCHMARKS.md` on %s.\n\n",
		o.duration, o.concurrency, o.rounds, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(w, "Machine: %d cores (%s), %s memory, %s, %s/%s. Every target runs on this machine in the same run, one at a time, each freshly started for each scenario and each round; the load generator shares the machine with it. Sluice runs with `--start-on-create=false` (no first execution when a pipeline is created) and without source polling, except where a scenario says otherwise.\n\n",
		runtime.NumCPU(), cpu, mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "Closed loop: %d clients, each sending its next request when the last one answered, over kept-alive HTTP/1.1 connections, every request signed with Signature Version 4 whether the target checks it or not. Rates count successful requests; latencies are per request. A scenario that compares targets — with the ceiling, or authentication on with off — runs every target in each of %d rounds, in alternating order (as listed, then reversed), so that all meet the same moments of the machine: a target's row pools its rounds, and a ratio is the median of the ratios of the runs of the same round.\n\n", o.concurrency, o.rounds)
}

// table writes a scenario's figures, the ratios of Sluice to moto and to the ceiling, and notes
// (the comparisons made in rounds).
func table(w *bytes.Buffer, sc scenario, ms []measurement, ratios, notes []string) {
	fmt.Fprintf(w, "## %s\n\n", sc.name)
	if sc.about != "" {
		fmt.Fprintf(w, "%s\n\n", sc.about)
	}
	fmt.Fprintf(w, "| target | %s | p50 | p99 | errors | server RSS |\n|---|---|---|---|---|---|\n", sc.unit)
	for _, m := range ms {
		rss := "—"
		if m.rssMB > 0 {
			rss = fmt.Sprintf("%.0f MB", m.rssMB)
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %d | %s |\n", m.target, m.result.perSecond(), round(m.result.p50), round(m.result.p99), m.result.errors, rss)
	}
	if len(ratios) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(ratios, "; "))
	}
	for _, n := range notes {
		fmt.Fprintf(w, "\n%s\n", n)
	}
	w.WriteString("\n")
}

// drainNotes say, for each target whose scenario left work running in the background when the
// load ended (first executions), how long it took to finish, which its rate counts.
func drainNotes(ms []measurement) []string {
	var out []string
	for _, m := range ms {
		if r := m.result; r.drain > 0 {
			each := ""
			if m.rounds > 1 {
				each = fmt.Sprintf(" (the mean of %d runs)", m.rounds)
			}
			out = append(out, fmt.Sprintf("%s: the work the requests started in the background ended %v after the load did%s; the rate counts that time (%.0f/s over the load alone).",
				m.target, round(r.drain/time.Duration(max(1, m.rounds))), each, float64(r.requests)/(r.elapsed-r.drain).Seconds()))
		}
	}
	return out
}

func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// profileName is a file name for the profile of a scenario on a target.
func profileName(scenario, target string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
				return r
			}
			return '-'
		}, s)
	}
	return clean(scenario) + "." + clean(target) + ".pprof"
}

// starter starts a fresh target.
type starter struct {
	// kind says which scenarios run the target (those that list it).
	name, kind string
	// start starts a fresh one; args are a scenario's flags of `sluice serve`, which targets
	// other than Sluice ignore.
	start func(args []string) (*target, error)
	// versus, if set, names the target this one is the same server as but for one setting:
	// where a scenario runs both, they are measured in alternating rounds, and comparison
	// names what this one has on ("Authentication on").
	versus, comparison string
}

// runScale runs the scale scenario on each Sluice target.
func runScale(ctx context.Context, starters []starter, postgres string, o options) ([]scaleRow, error) {
	var rows []scaleRow
	for _, st := range starters {
		if st.kind != "sluice" || (st.name == "Sluice (PostgreSQL)" && postgres == "") {
			continue
		}
		t, err := st.start(nil)
		if err != nil {
			return nil, fmt.Errorf("scale: start %s: %w", st.name, err)
		}
		ms, err := scale(ctx, t, o, o.scale)
		t.stop()
		if err != nil {
			return nil, fmt.Errorf("scale on %s: %w", st.name, err)
		}
		for _, m := range ms {
			var p50s []string
			for i, r := range m.results {
				if r.requests == 0 {
					return nil, fmt.Errorf("scale on %s (%s): no %s succeeded (%s)", st.name, m.label, scaleOps[i], r.firstError)
				}
				p50s = append(p50s, fmt.Sprintf("%s p50 %v", scaleOps[i], r.p50))
			}
			fmt.Fprintf(os.Stderr, "%-55s %-20s %s: %s, RSS %.0f MB\n", "Scale", st.name, m.label, strings.Join(p50s, ", "), m.rssMB)
		}
		rows = append(rows, scaleRow{target: st.name, small: ms[0], large: ms[1]})
	}
	return rows, nil
}

// scaleRow is one target's figures in the scale scenario.
type scaleRow struct {
	target       string
	small, large scaleMeasure
}

// scaleTable writes the scale scenario's figures and how much slower the large store answers.
func scaleTable(w *bytes.Buffer, size scaleSize, rows []scaleRow) {
	fmt.Fprintf(w, "## Scale: %d pipelines, %d action executions\n\n", size.pipelines, size.actions)
	w.WriteString("| target | stored |")
	for _, op := range scaleOps {
		fmt.Fprintf(w, " %s p50 | p99 |", op)
	}
	w.WriteString(" server RSS |\n|---|---|" + strings.Repeat("---|---|", len(scaleOps)) + "---|\n")
	for _, r := range rows {
		for _, m := range []scaleMeasure{r.small, r.large} {
			fmt.Fprintf(w, "| %s | %s |", r.target, m.label)
			for _, res := range m.results {
				fmt.Fprintf(w, " %s | %s |", round(res.p50), round(res.p99))
			}
			fmt.Fprintf(w, " %.0f MB |\n", m.rssMB)
		}
	}
	var ratios []string
	for _, r := range rows {
		var each []string
		for i, op := range scaleOps {
			each = append(each, fmt.Sprintf("**%.2f×** (%s)", float64(r.large.results[i].p50)/float64(r.small.results[i].p50), op))
		}
		ratios = append(ratios, fmt.Sprintf("%s: large / small p50 = %s", r.target, strings.Join(each, ", ")))
	}
	fmt.Fprintf(w, "\n%s\n\n", strings.Join(ratios, "; "))
}
