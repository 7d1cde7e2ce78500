package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestMeasureRounds checks that a scenario with the ceiling runs every target in each round, in
// alternating order, and that one without a comparison runs each target once.
func TestMeasureRounds(t *testing.T) {
	var order []string
	starterOf := func(name, kind string) starter {
		return starter{name: name, kind: kind, start: func([]string) (*target, error) {
			return &target{name: name, kind: kind, stop: func() {}}, nil
		}}
	}
	sc := scenario{name: "test", unit: "requests/s", run: func(_ context.Context, tg *target, _ options) (result, error) {
		order = append(order, tg.name)
		return result{requests: 1, elapsed: time.Second}, nil
	}}
	o := options{rounds: 3}
	sluice, moto, ceiling := starterOf("Sluice (SQLite)", "sluice"), starterOf("moto", "moto"), starterOf("ceiling", "ceiling")

	ms, err := measureRounds(context.Background(), sc, []starter{sluice, moto, ceiling}, o)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Sluice (SQLite)", "moto", "ceiling", "ceiling", "moto", "Sluice (SQLite)", "Sluice (SQLite)", "moto", "ceiling"}
	if !slices.Equal(order, want) {
		t.Errorf("with the ceiling, ran %v, want %v", order, want)
	}
	if len(ms["ceiling"]) != 3 || len(ms["Sluice (SQLite)"]) != 3 {
		t.Errorf("with the ceiling, runs per target: %d, %d, want 3 each", len(ms["ceiling"]), len(ms["Sluice (SQLite)"]))
	}

	order = nil
	if _, err := measureRounds(context.Background(), sc, []starter{sluice, moto}, o); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Sluice (SQLite)", "moto"}; !slices.Equal(order, want) {
		t.Errorf("without a comparison, ran %v, want %v", order, want)
	}
}

// TestRatiosPaired checks that a ratio is the median of the rounds' ratios, not the ratio of the
// pooled rates: here the pooled rates would give 50%.
func TestRatiosPaired(t *testing.T) {
	run := func(requests int) measurement {
		return measurement{result: result{requests: requests, elapsed: time.Second}}
	}
	ms := map[string][]measurement{
		"Sluice (SQLite)": {run(100), run(900), run(50)},
		"ceiling":         {run(400), run(1000), run(200)},
	}
	got := strings.Join(ratios(ms), "; ")
	if want := "Sluice (SQLite) / ceiling = **25%** (median of 3 rounds' paired ratios: 25%, 90%, 25%)"; got != want {
		t.Errorf("ratios = %q, want %q", got, want)
	}
}

// TestReplicaSet checks that requests go round-robin over the replicas, one each in turn.
func TestReplicaSet(t *testing.T) {
	rs := &replicaSet{}
	var counts [3]atomic.Int64
	for i := range counts {
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { counts[i].Add(1) }))
		defer srv.Close()
		rs.clients = append(rs.clients, newClient(srv.URL, 1))
	}
	for range 7 {
		if err := expect(rs.call(context.Background(), "GetPipeline", `{}`)); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []int64{3, 2, 2} {
		if got := counts[i].Load(); got != want {
			t.Errorf("replica %d answered %d requests, want %d", i, got, want)
		}
	}
}

func TestParseCounts(t *testing.T) {
	if got, err := parseCounts("1, 2,3"); err != nil || !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("parseCounts(1, 2,3) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "2,1", "1,1", "x"} {
		if _, err := parseCounts(bad); err == nil {
			t.Errorf("parseCounts(%q) accepted it", bad)
		}
	}
}

func TestBusySince(t *testing.T) {
	then, now := cpuTimes{total: 1000, idle: 400}, cpuTimes{total: 1200, idle: 450}
	if got := now.busySince(then); got != 0.75 {
		t.Errorf("busy = %v, want 0.75", got)
	}
	if got := machineCPU(); got.total <= 0 || got.idle > got.total {
		t.Errorf("machineCPU() = %+v", got)
	}
}
