// Command bench measures Sluice side by side with moto and with the machine's ceiling: each
// scenario drives a fresh endpoint with a closed-loop load of AWS JSON 1.1 requests and reports
// throughput and latency, and the ratios between the targets, as a markdown report.
//
//	go run ./bench [-short] [-duration 10s] [-concurrency 16] [-out docs/BENCHMARKS.md]
//
// Targets: Sluice on the embedded store, Sluice on PostgreSQL ($SLUICE_TEST_POSTGRES, else the
// local server's test database; skipped if unreachable), moto_server (skipped if not
// installed) for what moto implements, and a minimal Go HTTP server in this process that answers
// a fixed GetPipeline document. The short mode runs each scenario for a moment: it checks that
// the harness works, not how fast anything is.
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
	"strings"
	"time"
)

func main() {
	short := flag.Bool("short", false, "run each scenario for two seconds, to check the harness")
	duration := flag.Duration("duration", 10*time.Second, "how long each scenario runs on each target")
	concurrency := flag.Int("concurrency", 16, "concurrent clients")
	out := flag.String("out", "", "write the markdown report to this file (default: stdout only)")
	only := flag.String("scenario", "", "run only scenarios whose name contains this")
	scalePipelines := flag.Int("scale-pipelines", 10000, "pipelines the scale scenario stores")
	scaleActions := flag.Int("scale-actions", 1000000, "action executions the scale scenario stores")
	profile := flag.String("profile", "", "write a CPU profile of each Sluice target, per scenario, into this directory")
	postgres := flag.String("postgres", envOr("SLUICE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL database for Sluice's shared store ('' to skip)")
	flag.Parse()
	o := options{duration: *duration, concurrency: *concurrency, profileDir: *profile, scale: scaleSize{*scalePipelines, *scaleActions}}
	if *short {
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
		{"Sluice (SQLite)", "sluice", func() (*target, error) { return startSluice(bin, "sluice-sqlite", "") }},
		{"Sluice (PostgreSQL)", "sluice", func() (*target, error) {
			url, drop, err := freshSchema(postgres)
			if err != nil {
				return nil, err
			}
			t, err := startSluice(bin, "sluice-postgres", url)
			if err != nil {
				drop()
				return nil, err
			}
			stop := t.stop
			t.stop = func() { stop(); drop() }
			return t, nil
		}},
		{"moto", "moto", startMoto},
		{"ceiling", "ceiling", func() (*target, error) { return startCeiling(ceilingDoc) }},
	}
	var report bytes.Buffer
	header(&report, o)
	ctx := context.Background()
	for _, sc := range scenarios {
		if only != "" && !strings.Contains(sc.name, only) {
			continue
		}
		var ms []measurement
		for _, st := range starters {
			if !contains(sc.kinds, st.kind) || (st.name == "Sluice (PostgreSQL)" && postgres == "") || (st.kind == "moto" && motoErr != nil) {
				continue
			}
			t, err := st.start()
			if err != nil {
				return fmt.Errorf("%s: start %s: %w", sc.name, st.name, err)
			}
			waitProfile := func() error { return nil }
			if o.profileDir != "" && t.debug != "" {
				waitProfile = t.profileCPU(o.duration, filepath.Join(o.profileDir, profileName(sc.name, st.name)))
			}
			r, err := sc.run(ctx, t, o)
			rss := t.rssMB()
			if perr := waitProfile(); perr != nil {
				fmt.Fprintf(os.Stderr, "bench: profile of %s on %s: %v\n", sc.name, st.name, perr)
			}
			t.stop()
			if err != nil {
				return fmt.Errorf("%s on %s: %w", sc.name, st.name, err)
			}
			if r.requests == 0 {
				return fmt.Errorf("%s on %s: no request succeeded (%d failed: %s)", sc.name, st.name, r.errors, r.firstError)
			}
			fmt.Fprintf(os.Stderr, "%-55s %-20s %10.0f %s  p50 %v  p99 %v  errors %d\n", sc.name, st.name, r.perSecond(), sc.unit, r.p50, r.p99, r.errors)
			ms = append(ms, measurement{target: st.name, result: r, rssMB: rss})
		}
		table(&report, sc, ms)
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
	fmt.Fprintf(w, "# Benchmarks\n\nMade by `go run ./bench -duration %s -concurrency %d -out docs/BENCHMARKS.md` on %s.\n\n",
		o.duration, o.concurrency, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(w, "Machine: %d cores (%s), %s memory, %s, %s/%s. Every target runs on this machine in the same run, one at a time, each freshly started for each scenario; the load generator shares the machine with it.\n\n",
		runtime.NumCPU(), cpu, mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "Closed loop: %d clients, each sending its next request when the last one answered, over kept-alive HTTP/1.1 connections. Rates count successful requests; latencies are per request.\n\n", o.concurrency)
}

// table writes a scenario's figures and the ratios of Sluice to moto and to the ceiling.
func table(w *bytes.Buffer, sc scenario, ms []measurement) {
	fmt.Fprintf(w, "## %s\n\n| target | %s | p50 | p99 | errors | server RSS |\n|---|---|---|---|---|---|\n", sc.name, sc.unit)
	by := map[string]float64{}
	for _, m := range ms {
		rss := "—"
		if m.rssMB > 0 {
			rss = fmt.Sprintf("%.0f MB", m.rssMB)
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %d | %s |\n", m.target, m.result.perSecond(), round(m.result.p50), round(m.result.p99), m.result.errors, rss)
		by[m.target] = m.result.perSecond()
	}
	var ratios []string
	for _, s := range []string{"Sluice (SQLite)", "Sluice (PostgreSQL)"} {
		if by[s] == 0 {
			continue
		}
		if by["moto"] > 0 {
			ratios = append(ratios, fmt.Sprintf("%s / moto = **%.1f×**", s, by[s]/by["moto"]))
		}
		if by["ceiling"] > 0 {
			ratios = append(ratios, fmt.Sprintf("%s / ceiling = **%.0f%%**", s, 100*by[s]/by["ceiling"]))
		}
	}
	if len(ratios) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(ratios, "; "))
	}
	w.WriteString("\n")
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
	name, kind string
	start      func() (*target, error)
}

// runScale runs the scale scenario on each Sluice target.
func runScale(ctx context.Context, starters []starter, postgres string, o options) ([]scaleRow, error) {
	var rows []scaleRow
	for _, st := range starters {
		if st.kind != "sluice" || (st.name == "Sluice (PostgreSQL)" && postgres == "") {
			continue
		}
		t, err := st.start()
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
