package main

import (
	"fmt"
	"github.com/sluicehq/sluice/internal/sdktest"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
)

// binary is sluice built once for the tests of this package that run it as a real process, in
// a directory TestMain removes.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// buildBinary builds sluice, once, for tests that run it as a real process.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	binary.once.Do(func() {
		if binary.dir, binary.err = os.MkdirTemp("", "sluice-test-bin-"); binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "sluice")
		if out, err := exec.Command("go", "build", "-o", binary.path, ".").CombinedOutput(); err != nil {
			binary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// testServer is a `sluice serve` process on a fixed loopback address, which a test can stop,
// kill and start again on the same data; its log is shown if the test fails.
type testServer struct {
	t       *testing.T
	bin     string
	addr    string
	args    []string
	env     []string
	logPath string
	client  *cp.Client

	mu  sync.Mutex
	cmd *exec.Cmd
}

func newTestServer(t *testing.T, bin string, args ...string) *testServer {
	t.Helper()
	return newTestServerEnv(t, bin, nil, args...)
}

// newTestServerEnv is newTestServer with variables added to the server's environment.
func newTestServerEnv(t *testing.T, bin string, env []string, args ...string) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &testServer{t: t, bin: bin, addr: addr, args: args, env: env, logPath: filepath.Join(t.TempDir(), "server.log")}
	s.client = cp.New(cp.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""), Retryer: sdktest.ConnectionRetries(),
	})
	t.Cleanup(func() {
		s.stop(syscall.SIGKILL)
		if t.Failed() {
			log, _ := os.ReadFile(s.logPath)
			t.Logf("server log:\n%s", log)
		}
	})
	s.start()
	return s
}

// start runs the server and waits until it is healthy.
func (s *testServer) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, append([]string{"serve", "--listen", s.addr}, s.args...)...)
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), s.env...)
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + s.addr + "/_sluice/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the server on %s did not become healthy", s.addr)
		}
	}
}

// stop signals the server and waits for it to exit; after SIGTERM it must exit cleanly.
func (s *testServer) stop(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(sig)
	err := s.cmd.Wait()
	s.cmd = nil
	if sig == syscall.SIGTERM && err != nil {
		s.t.Errorf("the server did not exit cleanly on SIGTERM: %v", err)
	}
}
