package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// client sends AWS JSON 1.1 requests to one endpoint over kept-alive connections.
type client struct {
	endpoint string
	http     *http.Client
	// region goes into the credential scope, where moto reads which service is meant.
	region string
}

func newClient(endpoint string, conns int) *client {
	t := &http.Transport{MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, IdleConnTimeout: time.Minute}
	return &client{endpoint: endpoint, http: &http.Client{Transport: t, Timeout: 30 * time.Second}, region: "us-east-1"}
}

// call sends one operation with a JSON body and returns the HTTP status and response body.
func (c *client) call(ctx context.Context, op, body string) (int, []byte, error) {
	return c.send(ctx, "codepipeline", "application/x-amz-json-1.1", "CodePipeline_20150709."+op, body)
}

func (c *client) send(ctx context.Context, service, contentType, target, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+"/", bytes.NewBufferString(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	req.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=bench/20260101/%s/%s/aws4_request, SignedHeaders=host, Signature=00", c.region, service))
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// must calls an operation that has to succeed, for a scenario's set-up.
func (c *client) must(ctx context.Context, op, body string) []byte {
	status, out, err := c.call(ctx, op, body)
	if err != nil || status != http.StatusOK {
		panic(fmt.Sprintf("%s on %s: %d %v %s", op, c.endpoint, status, err, out))
	}
	return out
}

// result is what a closed-loop run measured.
type result struct {
	requests int
	errors   int
	elapsed  time.Duration
	p50, p99 time.Duration
	// firstError is a sample of what went wrong, to tell a broken harness from a slow server.
	firstError string
}

func (r result) perSecond() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// closedLoop runs op from workers goroutines, each sending its next request when the last one
// answered, for d; op gets the worker and a sequence number, and reports an error for a failed
// request.
func closedLoop(ctx context.Context, workers int, d time.Duration, op func(ctx context.Context, worker, seq int) error) result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errors    atomic.Int64
		firstErr  atomic.Value
		wg        sync.WaitGroup
	)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for seq := 0; ctx.Err() == nil; seq++ {
				t0 := time.Now()
				err := op(ctx, w, seq)
				if ctx.Err() != nil {
					break // a request cut off by the end of the run is not measured
				}
				if err != nil {
					errors.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := result{requests: len(latencies), errors: int(errors.Load()), elapsed: time.Since(start)}
	if e, ok := firstErr.Load().(string); ok {
		r.firstError = e
	}
	if len(latencies) > 0 {
		slices.Sort(latencies)
		r.p50 = latencies[len(latencies)*50/100]
		r.p99 = latencies[min(len(latencies)-1, len(latencies)*99/100)]
	}
	return r
}

// expect turns an answer other than 200 into an error.
func expect(status int, body []byte, err error) error {
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("HTTP %d: %.200s", status, body)
	}
	return nil
}
