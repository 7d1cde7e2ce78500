package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The access key every request is signed with, which the identities file of a Sluice target
// with authentication on names (its account is the default --account-id); targets that do not
// check signatures ignore it.
const (
	benchAccessKeyID = "AKIABENCH00000000001"
	benchSecret      = "bench-secret"
)

var (
	benchCredentials = aws.Credentials{AccessKeyID: benchAccessKeyID, SecretAccessKey: benchSecret, Source: "bench"}
	// One signer for every client, as an SDK client keeps one: it caches the signing key of the
	// day, region and service, and is safe for concurrent use. S3 signs paths as they are.
	apiSigner = v4.NewSigner()
	s3Signer  = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
)

// client sends AWS JSON 1.1 requests to one endpoint over kept-alive connections, each signed
// with Signature Version 4 as an SDK signs it, whatever the target: the client does the same
// work for a target that checks signatures as for one that does not.
type client struct {
	endpoint string
	http     *http.Client
	// region goes into the credential scope, where moto reads which service is meant, and is
	// the one a Sluice target checks signatures for (its default, us-east-1).
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

// send posts body to service, signed for it with the bench's access key, the payload hash being
// the body's SHA-256 as the SDK's JSON and query protocols sign it.
func (c *client) send(ctx context.Context, service, contentType, target, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+"/", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	sum := sha256.Sum256([]byte(body))
	if err := apiSigner.SignHTTP(ctx, benchCredentials, req, hex.EncodeToString(sum[:]), service, c.region, time.Now()); err != nil {
		return 0, nil, err
	}
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
	// latencies are every request's, sorted, where the run kept them (closedLoop does), so
	// that rounds can be pooled.
	latencies []time.Duration
	// drain is how long, after the load, the work its requests started in the background took
	// to finish; elapsed includes it, so that the rate is one the target sustains.
	drain time.Duration
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
	slices.Sort(latencies)
	r.latencies = latencies
	r.percentiles()
	return r
}

// percentiles sets p50 and p99 from the sorted latencies.
func (r *result) percentiles() {
	if n := len(r.latencies); n > 0 {
		r.p50 = r.latencies[n*50/100]
		r.p99 = r.latencies[min(n-1, n*99/100)]
	}
}

// pooled is the result of rounds of one run taken together: their requests over their time,
// and the percentiles of all their latencies.
func pooled(rounds []result) result {
	var r result
	for _, x := range rounds {
		r.requests += x.requests
		r.errors += x.errors
		r.elapsed += x.elapsed
		r.drain += x.drain
		r.latencies = append(r.latencies, x.latencies...)
		if r.firstError == "" {
			r.firstError = x.firstError
		}
	}
	slices.Sort(r.latencies)
	r.percentiles()
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
