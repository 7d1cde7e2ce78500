package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/logs"
)

// heapPeak samples the heap in use until stop is called, and returns the largest figure seen.
func heapPeak() (stop func() uint64) {
	var (
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		ticker := time.NewTicker(time.Millisecond)
		defer ticker.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-done:
				return
			case <-ticker.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// TestLargeInvalidRequestsKeepMemoryBounded floods a server with requests as large as it accepts
// whose long values fail validation, and checks that what a request costs is bounded by the size
// of its body, not by how often the answer would echo its values: each answer is short, and the
// heap stays within a few bodies per request in flight.
func TestLargeInvalidRequestsKeepMemoryBounded(t *testing.T) {
	const (
		clients  = 16
		rounds   = 2
		maxBody  = 1 << 20
		maxReply = 16 << 10
	)
	url := serveTB(t, Config{MaxRequestBytes: maxBody})
	long := strings.Repeat("!", maxBody-200)
	// A name that breaks its pattern and its length, and a region key that is no region, whose
	// value breaks three constraints more: each failure would echo the long value or key.
	bodies := [][]byte{
		fmt.Appendf(nil, `{"pipeline":{"name":%q}}`, long),
		fmt.Appendf(nil, `{"pipeline":{"name":"p","artifactStores":{%q:{"type":"X","location":"!"}}}}`, long),
	}
	for _, b := range bodies {
		if len(b) > maxBody {
			t.Fatalf("a body of %d bytes is over the limit", len(b))
		}
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := heapPeak()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			for r := range rounds {
				if err := postInvalid(url, bodies[(c+r)%len(bodies)], maxReply); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	peak := stop()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A request holds its body, read and decoded, and the garbage collector lets the heap grow to
	// about twice what is live: a few bodies per request in flight. When answers echoed the long
	// value in full, a request allocated 24 bodies, and the heap grew to twice this bound.
	grew := int64(peak) - int64(before.HeapInuse)
	bound := int64(clients * maxBody * 6)
	perRequest := (after.TotalAlloc - before.TotalAlloc) / (clients * rounds)
	t.Logf("heap in use: %d MiB before, peak %d MiB (+%d MiB; bound +%d MiB); %d KiB allocated per request",
		before.HeapInuse>>20, peak>>20, grew>>20, bound>>20, perRequest>>10)
	if grew > bound {
		t.Errorf("the heap grew by %d MiB under %d requests of %d KiB in flight; want at most %d MiB", grew>>20, clients, maxBody>>10, bound>>20)
	}
	if perRequest > 8*maxBody {
		t.Errorf("a request of %d KiB allocated %d KiB; want at most %d KiB", maxBody>>10, perRequest>>10, 8*maxBody>>10)
	}
}

// postInvalid sends a CreatePipeline request that must fail validation, and checks the answer.
func postInvalid(url string, body []byte, maxReply int) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Amz-Target", "CodePipeline_20150709.CreatePipeline")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(reply, &e); err != nil || e.Type != "ValidationException" {
		return fmt.Errorf("answer %d %.200s, want a ValidationException", resp.StatusCode, reply)
	}
	if len(reply) > maxReply {
		return fmt.Errorf("an answer of %d bytes, want at most %d: %.300s", len(reply), maxReply, reply)
	}
	return nil
}

// serveLimited runs a server configured by cfg on a loopback port until the test ends, and
// returns its address.
func serveLimited(t *testing.T, cfg Config) string {
	t.Helper()
	addr, srv, stop := start(t, cfg)
	t.Cleanup(func() { stop(); srv.Close() })
	return addr
}

// start runs a server configured by cfg on a loopback port until stop is called.
func start(t *testing.T, cfg Config) (addr string, srv *Server, stop func()) {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.AccountID, cfg.Region = "123456789012", "us-east-1"
	srv, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	return ln.Addr().String(), srv, func() { cancel(); <-done }
}

// trickle opens a connection, sends head, then a byte of the body every 50ms until the server
// answers or closes the connection, and returns how long that took; it fails the test if the
// server still waits after limit.
func trickle(t *testing.T, addr, head string, limit time.Duration) time.Duration {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		ticker := time.NewTicker(50 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ticker.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	conn.SetReadDeadline(start.Add(limit))
	_, err = io.Copy(io.Discard, conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server still waits for a trickled body after %v", limit)
	}
	return time.Since(start)
}

func TestSlowClientsAreCutOff(t *testing.T) {
	const timeout = 500 * time.Millisecond
	addr := serveLimited(t, Config{ReadTimeout: timeout, WriteTimeout: timeout, IdleTimeout: timeout})
	base := "http://" + addr

	t.Run("API request", func(t *testing.T) {
		took := trickle(t, addr, "POST / HTTP/1.1\r\nHost: sluice\r\nX-Amz-Target: CodePipeline_20150709.ListPipelines\r\n"+
			"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 1000\r\n\r\n", 5*timeout)
		t.Logf("cut off after %v", took)
	})
	t.Run("S3 upload", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, base+"/slow-bucket", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("create a bucket: %s", resp.Status)
		}
		took := trickle(t, addr, "PUT /slow-bucket/key HTTP/1.1\r\nHost: sluice\r\nContent-Length: 100000\r\n\r\n", 5*timeout)
		t.Logf("cut off after %v", took)
	})
	t.Run("idle connection", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /_sluice/health HTTP/1.1\r\nHost: sluice\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		conn.SetReadDeadline(time.Now().Add(5 * timeout))
		if _, err := conn.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the server keeps an idle connection open past its idle timeout")
		}
	})
}

// TestStreamsOutlastTheTimeouts checks that an upload slower than the read timeout and a log
// followed for longer than the write timeout, with pauses longer than it, go through as long as
// they keep moving.
func TestStreamsOutlastTheTimeouts(t *testing.T) {
	const timeout = 300 * time.Millisecond
	dataDir := t.TempDir()
	addr := serveLimited(t, Config{DataDir: dataDir, ReadTimeout: timeout, WriteTimeout: timeout})
	base := "http://" + addr

	t.Run("S3 upload", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, base+"/steady-bucket", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		piece := bytes.Repeat([]byte("x"), streamChunk)
		const pieces = 12
		body, w := io.Pipe()
		go func() {
			for range pieces {
				time.Sleep(timeout / 2)
				if _, err := w.Write(piece); err != nil {
					return
				}
			}
			w.Close()
		}()
		start := time.Now()
		req, _ = http.NewRequest(http.MethodPut, base+"/steady-bucket/key", body)
		req.ContentLength = pieces * streamChunk
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("an upload taking %v: %v", time.Since(start), err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("an upload taking %v: %s", time.Since(start), resp.Status)
		}
		resp, err = http.Get(base + "/steady-bucket/key")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || len(got) != pieces*streamChunk {
			t.Fatalf("read back %d bytes, %v", len(got), err)
		}
		t.Logf("uploaded in %v", time.Since(start))
	})

	t.Run("followed log", func(t *testing.T) {
		store, err := logs.Open(filepath.Join(dataDir, "logs"))
		if err != nil {
			t.Fatal(err)
		}
		const id = "0123abcd"
		w, err := store.Create(id)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(w, "one")
		go func() {
			for _, line := range []string{"two", "three"} {
				time.Sleep(2 * timeout)
				fmt.Fprintln(w, line)
			}
			w.Close()
		}()
		start := time.Now()
		resp, err := http.Get(base + "/_sluice/logs/" + id + "?follow=true")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(got) != "one\ntwo\nthree\n" {
			t.Fatalf("followed for %v: %q, %v", time.Since(start), got, err)
		}
	})
}

func TestConnectionsAreBounded(t *testing.T) {
	addr := serveLimited(t, Config{MaxConnections: 2})
	var held []net.Conn
	for range 2 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		held = append(held, conn)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /_sluice/health HTTP/1.1\r\nHost: sluice\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a third connection was served while two were open: %v", err)
	}
	held[0].Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("once a connection closed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("once a connection closed: %s", resp.Status)
	}
}

func TestReadyOnlyWhileTheStoreCanWrite(t *testing.T) {
	addr, srv, stop := start(t, Config{})
	defer stop()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, body := get("/_sluice/ready"); status != http.StatusOK || body != `{"status":"ready"}`+"\n" {
		t.Fatalf("ready: %d %s", status, body)
	}
	// The store goes away under the server, which keeps serving.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	status, body := get("/_sluice/ready")
	var answer struct{ Status, Reason string }
	if err := json.Unmarshal([]byte(body), &answer); err != nil || status != http.StatusServiceUnavailable ||
		answer.Status != "unavailable" || !strings.HasPrefix(answer.Reason, "The store cannot take writes: ") {
		t.Fatalf("ready without a store: %d %s", status, body)
	}
	if status, _ := get("/_sluice/health"); status != http.StatusOK {
		t.Fatalf("health without a store: %d", status)
	}
}

// throttle forwards connections to addr, passing at most 32 KiB every 50ms each way, until the
// test ends, and returns its own address.
func throttle(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	slowCopy := func(dst, src net.Conn) {
		defer dst.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil {
				return
			}
		}
	}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", addr)
			if err != nil {
				client.Close()
				continue
			}
			go slowCopy(server, client)
			go slowCopy(client, server)
		}
	}()
	return ln.Addr().String()
}

// TestGitOutlastsTheTimeouts pushes and clones, through a slow link, a repository that takes
// several read and write timeouts to go across: they go through as long as the data moves.
func TestGitOutlastsTheTimeouts(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not on the PATH")
	}
	const timeout = 500 * time.Millisecond
	url := "http://" + throttle(t, serveLimited(t, Config{ReadTimeout: timeout, WriteTimeout: timeout})) + "/v1/repos/slow"
	home, work := t.TempDir(), t.TempDir()
	git := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
			"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com")
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s after %v: %v\n%s", args[0], time.Since(start), err, out)
		}
		t.Logf("git %s took %v", args[0], time.Since(start))
	}
	// 2 MiB that do not compress: the push goes in chunks, and takes seconds at 640 KiB/s.
	data := make([]byte, 2<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(work, "data"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	git(work, "init", "-q", "-b", "main")
	git(work, "add", "data")
	git(work, "commit", "-q", "-m", "data")
	git(work, "push", "-q", url, "main")
	clone := filepath.Join(t.TempDir(), "clone")
	git(work, "clone", "-q", url, clone)
	if got, err := os.ReadFile(filepath.Join(clone, "data")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the clone's data differs: %v", err)
	}
}
