package main

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for a fresh schema per run
)

// target is one endpoint the scenarios run against.
type target struct {
	name string
	// kind is sluice, moto or ceiling: what the target can answer.
	kind     string
	endpoint string
	roleARN  string
	// debug is the address of a Sluice target's profiler; dataDir and database are where it
	// keeps its state.
	debug, dataDir, database string
	// args are the flags a Sluice target was started with beyond the harness's own.
	args []string
	pid  int
	stop func()
}

// rssMB reads the target process's resident memory, 0 if it is not a process of its own.
func (t *target) rssMB() float64 {
	if t.pid == 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", t.pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}

// cpu is the CPU time (user and system) the target process has used so far, 0 if it is not a
// process of its own.
func (t *target) cpu() time.Duration {
	if t.pid == 0 {
		return 0
	}
	return processCPU(strconv.Itoa(t.pid))
}

// processCPU is the CPU time (user and system) a process (a pid, or "self") has used so far, 0
// if it cannot be read.
func processCPU(pid string) time.Duration {
	raw, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// After the command's name in parentheses: state is the 3rd field, utime the 14th and stime
	// the 15th, in clock ticks of 1/100 s (USER_HZ on Linux).
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(raw[i+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitUp waits for url to answer.
func waitUp(url string) error {
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
	}
	return fmt.Errorf("%s did not come up", url)
}

// startProcess runs a server and waits for healthURL (a path) to answer.
func startProcess(name, kind, addr, healthPath string, cmd *exec.Cmd) (*target, error) {
	logFile, err := os.CreateTemp("", "bench-"+name+"-*.log")
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	t := &target{name: name, kind: kind, endpoint: "http://" + addr, pid: cmd.Process.Pid, stop: func() {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
		os.Remove(logFile.Name())
	}}
	if err := waitUp(t.endpoint + healthPath); err != nil {
		t.stop()
		return nil, fmt.Errorf("%s: %w (log: %s)", name, err, logFile.Name())
	}
	return t, nil
}

// identitiesYAML names the bench's access key, in the account of the default --account-id (so
// that ARNs and the role are those of a target without authentication), with no policy: it may
// do everything in its account, as the root does with authentication off.
const identitiesYAML = `accounts:
  - id: "000000000000"
    users:
      - name: bench
        accessKeys: [{id: ` + benchAccessKeyID + `, secret: ` + benchSecret + `}]
`

// sluiceConfig is how a Sluice target runs.
type sluiceConfig struct {
	// name names the process in its log file's name.
	name string
	// database is a PostgreSQL URL, "" for the embedded store under the data directory.
	database string
	// sigv4 checks every request's signature against an identities file of the bench's key.
	sigv4 bool
	// s3 is the URL of an S3-compatible service (moto) for artifacts, and gitBucket the bucket
	// of it for hosted repositories, as replicas that do not share a disk run; "" keeps them
	// under the data directory, which a server on PostgreSQL is then told is shared
	// (--data-shared): it is the only replica, or dataDir is every replica's.
	s3, gitBucket string
	// dataDir is the --data directory, one the caller owns; "" for a fresh one, removed with
	// the target.
	dataDir string
	// args are more flags of `sluice serve`, after the harness's own, so that they win.
	args []string
}

// startSluice runs `sluice serve`.
func startSluice(bin string, c sluiceConfig) (*target, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, own := c.dataDir, c.dataDir == ""
	if own {
		if dir, err = os.MkdirTemp("", "bench-sluice-"); err != nil {
			return nil, err
		}
	}
	cleanup := func() {
		if own {
			os.RemoveAll(dir)
		}
	}
	debug, err := freePort()
	if err != nil {
		cleanup()
		return nil, err
	}
	args := []string{"serve", "--listen", addr, "--data", dir, "--log-level", "warn", "--max-pipelines", "10000000",
		"--start-on-create=false", "--source-poll-interval", "0", "--debug-listen", debug}
	if c.database != "" {
		args = append(args, "--database", c.database)
	}
	cmd := exec.Command(bin)
	if c.s3 != "" {
		args = append(args, "--artifacts-s3-endpoint", c.s3, "--git-s3-bucket", c.gitBucket)
		// moto takes any key; the server and its jobs sign with this one.
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench", "AWS_EC2_METADATA_DISABLED=true",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	} else if c.database != "" {
		args = append(args, "--data-shared")
	}
	if c.sigv4 {
		identities := filepath.Join(dir, "identities.yaml")
		if err := os.WriteFile(identities, []byte(identitiesYAML), 0o600); err != nil {
			cleanup()
			return nil, err
		}
		args = append(args, "--auth", "sigv4", "--identities", identities)
	}
	cmd.Args = append([]string{bin}, append(args, c.args...)...)
	t, err := startProcess(c.name, "sluice", addr, "/_sluice/health", cmd)
	if err != nil {
		cleanup()
		return nil, err
	}
	stop := t.stop
	t.stop = func() { stop(); cleanup() }
	t.roleARN = "arn:aws:iam::000000000000:role/bench"
	t.debug, t.dataDir, t.database, t.args = debug, dir, c.database, c.args
	return t, nil
}

// freshSchema creates an empty schema in the PostgreSQL database at base and returns a URL that
// uses it, and a function that drops it.
func freshSchema(base string) (string, func(), error) {
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	schema := "sluice_bench_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		return "", nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() { admin.Exec("DROP SCHEMA " + schema + " CASCADE"); admin.Close() }, nil
}

// startMoto runs moto's server with an IAM role that CodePipeline may assume, which moto checks.
func startMoto() (*target, error) {
	if _, err := exec.LookPath("moto_server"); err != nil {
		return nil, fmt.Errorf("moto_server is not installed")
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	t, err := startProcess("moto", "moto", addr, "/moto-api/", exec.Command("moto_server", "-H", host, "-p", port))
	if err != nil {
		return nil, err
	}
	trust, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
		"Effect": "Allow", "Principal": map[string]any{"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}}})
	form := url.Values{"Action": {"CreateRole"}, "Version": {"2010-05-08"}, "RoleName": {"bench"}, "AssumeRolePolicyDocument": {string(trust)}}
	c := newClient(t.endpoint, 1)
	status, body, err := c.send(context.Background(), "iam", "application/x-www-form-urlencoded", "", form.Encode())
	if err != nil || status != http.StatusOK {
		t.stop()
		return nil, fmt.Errorf("create moto's IAM role: %d %v %s", status, err, body)
	}
	t.roleARN = "arn:aws:iam::123456789012:role/bench"
	return t, nil
}

// startCeiling serves a fixed GetPipeline answer to every request from a minimal Go HTTP server
// in this process: the most this machine can serve to this client.
func startCeiling(doc []byte) (*target, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write(doc)
	})}
	go srv.Serve(ln)
	return &target{name: "ceiling", kind: "ceiling", endpoint: "http://" + ln.Addr().String(), stop: func() { srv.Close() }}, nil
}

// sluiceBinary builds the sluice command into dir.
func sluiceBinary(dir string) (string, error) {
	bin := filepath.Join(dir, "sluice")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/sluice")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build sluice: %w", err)
	}
	return bin, nil
}

// profileCPU records a CPU profile of a Sluice target for d into path, in the background; wait
// returns once it is written.
func (t *target) profileCPU(d time.Duration, path string) (wait func() error) {
	done := make(chan error, 1)
	go func() {
		seconds := max(1, int(d/time.Second))
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", t.debug, seconds))
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		done <- cmp.Or(err, f.Close())
	}()
	return func() error { return <-done }
}
