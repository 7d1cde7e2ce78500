package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/sluicehq/sluice/internal/store/storetest"
)

// writeProjects writes CodeBuild project definitions with inline buildspecs, by project name,
// and returns their directory.
func writeProjects(t *testing.T, buildspecs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, spec := range buildspecs {
		var p struct {
			Source struct {
				Buildspec string `json:"buildspec"`
			} `json:"source"`
		}
		p.Source.Buildspec = spec
		raw, _ := json.Marshal(p)
		if err := os.WriteFile(filepath.Join(dir, name+".json"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// failureMessage returns the error message of the failed action of an execution.
func failureMessage(t *testing.T, srv *testServer, pipeline, execID string) string {
	t.Helper()
	for _, d := range actionDetails(t, srv.client, pipeline, execID) {
		if d.Status == types.ActionExecutionStatusFailed {
			return aws.ToString(d.Output.ExecutionResult.ErrorDetails.Message)
		}
	}
	t.Fatalf("no action of %s failed", pipeline)
	return ""
}

// sleeps tells the sleep commands of tests apart.
var sleeps atomic.Int64

// uniqueSleep returns a command that sleeps a little longer than seconds, which no other test,
// here or in another test process, runs: a name to find its process by.
func uniqueSleep(seconds int) string {
	return fmt.Sprintf("sleep %d.%d%d", seconds, os.Getpid(), sleeps.Add(1))
}

// processes returns the pids of the host's processes whose command line is cmdline.
func processes(cmdline string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Join(strings.FieldsFunc(string(raw), func(r rune) bool { return r == 0 }), " ") == cmdline {
			pid, _ := strconv.Atoi(e.Name())
			pids = append(pids, pid)
		}
	}
	return pids
}

// peakMemory returns the largest resident size the process pid has had, in bytes.
func peakMemory(t *testing.T, pid int) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// TestBuildSandbox runs buildspecs that reach for what a build must not: the server's environment
// and command line through /proc, its data directory up from the work directory and by its
// absolute path, its working directory and home; output artifacts with base-directory ../.., with a
// link to / under their files, and past the limits on files and bytes. Each is refused or
// confined, and the server's memory stays small.
func TestBuildSandbox(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	cwd, _ := os.Getwd()
	home, _ := os.UserHomeDir()
	probe := `version: 0.2
phases:
  build:
    commands:
      - |
        leaks=""
        cat /proc/[0-9]*/environ > .environs 2>/dev/null
        if tr '\0' '\n' < .environs | grep -q canary-4f1d; then leaks="$leaks environment"; fi
        cat /proc/$PPID/environ /proc/1/environ > .environs 2>/dev/null
        if tr '\0' '\n' < .environs | grep -q canary-4f1d; then leaks="$leaks parent-environment"; fi
        cat /proc/[0-9]*/cmdline > .cmdlines 2>/dev/null
        if tr '\0' '\n' < .cmdlines | grep -q -x serve; then leaks="$leaks server-process"; fi
        d=$PWD
        while [ "$d" != / ]; do if [ -e "$d/sluice.db" ]; then leaks="$leaks $d/sluice.db"; fi; d=$(dirname "$d"); done
        for f in '` + data + `/sluice.db' '` + cwd + `/main.go' '` + home + `'; do if [ -e "$f" ]; then leaks="$leaks $f"; fi; done
        if [ -n "$leaks" ]; then echo "the build sees:$leaks"; exit 1; fi
`
	artifactSpec := func(commands, artifacts string) string {
		return "version: 0.2\nphases:\n  build:\n    commands:\n      - " + commands + "\nartifacts:\n" + artifacts
	}
	projects := writeProjects(t, map[string]string{
		"probe":  probe,
		"escape": artifactSpec("echo built > built.txt", "  base-directory: ../..\n  files: ['**/*']\n"),
		"loop":   artifactSpec("mkdir out && echo real > out/real.txt && ln -s / out/self", "  files: ['out/**/*']\n"),
		"many":   artifactSpec("mkdir out && cd out && seq 1001 | xargs touch", "  files: ['out/**/*']\n"),
		"huge":   artifactSpec("mkdir out && truncate -s 11G out/huge", "  files: ['out/**/*']\n"),
	})
	srv := newTestServerEnv(t, bin, []string{"SLUICE_TEST_CANARY=canary-4f1d"}, "--data", data, "--source-poll-interval", "0", "--build-projects", projects,
		"--max-artifact-files", "1000") // creating 100,000 files takes a build seconds
	url := "http://" + srv.addr
	repo := newGitRepo(t)
	repo.commit("app", map[string]string{"README": "app\n"})
	repo.push(url+"/v1/repos/app", "main")

	// The builds run side by side, in one stage.
	var builds []string
	for _, project := range []string{"probe", "escape", "loop", "many", "huge"} {
		var outputs []string
		if project != "probe" {
			outputs = []string{"Out" + project}
		}
		builds = append(builds, action(project, "Build", "AWS", "CodeBuild", map[string]string{"ProjectName": project}, []string{"Src"}, outputs, ""))
	}
	createPipelineJSON(t, url, fmt.Sprintf(`{"name":"sandbox","roleArn":"arn:aws:iam::000000000000:role/cp","pipelineType":"V2","executionMode":"QUEUED",
		"artifactStore":{"type":"S3","location":"artifacts"},"stages":[{"name":"Source","actions":[%s]},{"name":"Build","actions":[%s]}]}`,
		action("Source", "Source", "AWS", "CodeCommit", map[string]string{"RepositoryName": "app", "BranchName": "main"}, nil, []string{"Src"}, ""),
		strings.Join(builds, ",")))
	execID := waitForExecution(t, srv.client, "sandbox", types.PipelineExecutionStatusFailed)
	details := actionDetails(t, srv.client, "sandbox", execID)
	for name, want := range map[string]string{
		"probe":  "",
		"loop":   "",
		"escape": `The base-directory "../.." of the output artifact Outescape leads out of the source directory`,
		"many":   "would hold more than 1000 files, the limit the server's --max-artifact-files sets",
		"huge":   "its files would add up to more than 10737418240 bytes, the limit the server's --max-artifact-bytes sets",
	} {
		d := details[name]
		var msg string
		if d.Output != nil && d.Output.ExecutionResult != nil && d.Output.ExecutionResult.ErrorDetails != nil {
			msg = aws.ToString(d.Output.ExecutionResult.ErrorDetails.Message)
		}
		switch {
		case want == "" && d.Status != types.ActionExecutionStatusSucceeded:
			t.Errorf("%s ended %s: %s", name, d.Status, msg)
		case want != "" && (d.Status != types.ActionExecutionStatusFailed || !strings.Contains(msg, want)):
			t.Errorf("%s ended %s, want Failed with %q: %s", name, d.Status, want, msg)
		}
	}
	if out := details["loop"].Output; out != nil && len(out.OutputArtifacts) == 1 {
		loc := out.OutputArtifacts[0].S3location
		zipPath := filepath.Join(t.TempDir(), "loop.zip")
		awsCLI(t, url, "s3", "cp", "s3://"+aws.ToString(loc.Bucket)+"/"+aws.ToString(loc.Key), zipPath)
		raw, _ := os.ReadFile(zipPath)
		if files := unzipOf(t, raw); len(files) != 1 || files["out/real.txt"] != "real\n" {
			t.Errorf("the artifact of a build with a link to / holds %d files, want out/real.txt only", len(files))
		}
	}
	peak := peakMemory(t, srv.cmd.Process.Pid)
	t.Logf("the server's peak resident memory: %d MiB", peak>>20)
	if peak > 256<<20 {
		t.Errorf("the server's peak resident memory is %d MiB", peak>>20)
	}
}

// deflatedZeros returns size zero bytes deflated, and their CRC-32.
func deflatedZeros(size int64) ([]byte, uint32) {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	zeros := make([]byte, 1<<20)
	crc := crc32.NewIEEE()
	for n := int64(0); n < size; n += int64(len(zeros)) {
		w.Write(zeros)
		crc.Write(zeros)
	}
	w.Close()
	return buf.Bytes(), crc.Sum32()
}

// zipBomb writes a zip archive of entries files, each size zero bytes.
func zipBomb(t *testing.T, path string, entries int, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	compressed, crc := deflatedZeros(size)
	for i := range entries {
		w, err := zw.CreateRaw(&zip.FileHeader{Name: fmt.Sprintf("f%d", i), Method: zip.Deflate,
			CRC32: crc, CompressedSize64: uint64(len(compressed)), UncompressedSize64: uint64(size)})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(compressed)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestZipBombInput feeds a build two zip bombs as its input artifact: 10 MB that unpack to more
// than 10 GiB, and 100,001 empty files. The action fails saying which limit, and the work
// directory holds nothing afterwards.
func TestZipBombInput(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	srv := newTestServer(t, bin, "--data", data, "--source-poll-interval", "0")
	url := "http://" + srv.addr
	awsCLI(t, url, "s3", "mb", "s3://sources")
	awsCLI(t, url, "s3api", "put-bucket-versioning", "--bucket", "sources", "--versioning-configuration", "Status=Enabled")
	dir := t.TempDir()
	zipBomb(t, filepath.Join(dir, "bytes.zip"), 161, 64<<20) // 10.06 GiB
	zipBomb(t, filepath.Join(dir, "files.zip"), 100_001, 0)
	for pipeline, want := range map[string]string{
		"bytes": "The input artifact Src was not extracted: the archive's files add up to 10804527104 bytes uncompressed, more than the limit of 10737418240 (the server's --max-artifact-bytes)",
		"files": "The input artifact Src was not extracted: the archive holds 100001 entries, more than the limit of 100000 (the server's --max-artifact-files)",
	} {
		awsCLI(t, url, "s3api", "put-object", "--bucket", "sources", "--key", pipeline+".zip", "--body", filepath.Join(dir, pipeline+".zip"))
		createPipelineJSON(t, url, pipelineJSON(pipeline, "QUEUED",
			action("Source", "Source", "AWS", "S3", map[string]string{"S3Bucket": "sources", "S3ObjectKey": pipeline + ".zip"}, nil, []string{"Src"}, ""),
			action("Check", "Compute", "AWS", "Commands", nil, []string{"Src"}, nil, `,"commands":["ls | wc -l"]`)))
		execID := waitForExecution(t, srv.client, pipeline, types.PipelineExecutionStatusFailed)
		if msg := failureMessage(t, srv, pipeline, execID); !strings.HasPrefix(msg, want) {
			t.Errorf("%s failed with %q, want %q", pipeline, msg, want)
		}
	}
	waitFor(t, "the work directory to be empty", func() bool {
		files := 0
		filepath.WalkDir(filepath.Join(data, "work"), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files++
			}
			return nil
		})
		return files == 0
	}, func() string { return "files are left under " + filepath.Join(data, "work") })
}

// TestBuildsDieWithTheServer kills the server with SIGKILL during a build, on each store. The
// build's processes die with it; after a restart the run is handed out again, in a directory of
// its own, and succeeds. An orphaned first attempt would, after a while, report in and record a
// failure in its work directory.
func TestBuildsDieWithTheServer(t *testing.T) {
	bin := buildBinary(t)
	t.Run("sqlite", func(t *testing.T) { testBuildsDieWithTheServer(t, bin, "--data", t.TempDir()) })
	t.Run("postgres", func(t *testing.T) {
		testBuildsDieWithTheServer(t, bin, "--data", t.TempDir(), "--data-shared", "--database", storetest.PostgresURL(t))
	})
}

func testBuildsDieWithTheServer(t *testing.T, bin string, storeArgs ...string) {
	var mu sync.Mutex
	var starts, orphans int
	calls := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/start":
			if starts++; starts == 1 {
				fmt.Fprint(w, "first")
			} else {
				fmt.Fprint(w, "retry")
			}
		case "/orphan":
			orphans++
		}
	}))
	defer calls.Close()
	called := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return starts, orphans
	}
	port := strings.TrimPrefix(calls.URL, "http://127.0.0.1:")
	get := func(path string) string {
		return "exec 3<>/dev/tcp/127.0.0.1/" + port + "; printf 'GET " + path + " HTTP/1.0\\r\\n\\r\\n' >&3"
	}
	// The first attempt waits 5 s and fails; the retry takes 4 s and succeeds.
	first := uniqueSleep(5)
	spec := `version: 0.2
phases:
  build:
    commands:
      - |
        ` + get("/start") + `; ATTEMPT=$(tail -n 1 <&3); exec 3<&-
      - |
        if [ "$ATTEMPT" = first ]; then
          ` + first + `
          ` + get("/orphan") + `; cat <&3 >/dev/null
          exit 1
        fi
      - sleep 4
`
	projects := writeProjects(t, map[string]string{"attempts": spec})
	srv := newTestServer(t, bin, append([]string{"--source-poll-interval", "0", "--job-ack-timeout", "1s", "--sweep-interval", "200ms", "--build-projects", projects}, storeArgs...)...)
	url := "http://" + srv.addr
	repo := newGitRepo(t)
	repo.commit("app", map[string]string{"README": "app\n"})
	repo.push(url+"/v1/repos/app", "main")
	createPipelineJSON(t, url, pipelineJSON("attempts", "QUEUED",
		action("Source", "Source", "AWS", "CodeCommit", map[string]string{"RepositoryName": "app", "BranchName": "main"}, nil, []string{"Src"}, ""),
		action("Build", "Build", "AWS", "CodeBuild", map[string]string{"ProjectName": "attempts"}, []string{"Src"}, nil, "")))
	waitFor(t, "the first attempt to start", func() bool { s, _ := called(); return s == 1 }, func() string { return describeActions(t, srv.client, "attempts") })
	waitFor(t, "the first attempt to sleep", func() bool { return len(processes(first)) == 1 }, func() string { return "no " + first })

	srv.stop(syscall.SIGKILL)
	// Well before the first attempt would end by itself.
	for deadline := time.Now().Add(2 * time.Second); len(processes(first)) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("the first attempt's processes %v outlive the server", processes(first))
			break
		}
	}
	srv.start()
	execID := waitForExecution(t, srv.client, "attempts", types.PipelineExecutionStatusSucceeded)
	if d := actionDetails(t, srv.client, "attempts", execID)["Build"]; d.Status != types.ActionExecutionStatusSucceeded {
		t.Fatalf("the retried build ended %s", d.Status)
	}
	if starts, orphans := called(); starts != 2 || orphans != 0 {
		t.Fatalf("%d attempts started, %d orphans reported in; want 2 and none", starts, orphans)
	}
}

// TestServeChecksBuildIsolation starts the server where bwrap is missing, and where it cannot
// make a sandbox: it refuses to start, saying how to fix it. With --build-isolation none it starts
// and warns.
func TestServeChecksBuildIsolation(t *testing.T) {
	bin := buildBinary(t)
	noBwrap := t.TempDir()
	failing := t.TempDir()
	fake := "#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(failing, "bwrap"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	for path, wants := range map[string][]string{
		noBwrap: {"bwrap is not installed", "install the bubblewrap package", "--build-isolation none"},
		failing: {"cannot make one here", "setting up uid map: Permission denied", "--build-isolation none"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir())
		cmd.Env = append(os.Environ(), "PATH="+path)
		out, err := cmd.CombinedOutput()
		if err == nil || ctx.Err() != nil {
			t.Fatalf("the server started with PATH=%s:\n%s", path, out)
		}
		for _, want := range wants {
			if !strings.Contains(string(out), want) {
				t.Errorf("with PATH=%s the server said %q, want %q", path, out, want)
			}
		}
	}
	srv := newTestServer(t, bin, "--data", t.TempDir(), "--build-isolation", "none")
	srv.stop(syscall.SIGTERM)
	log, _ := os.ReadFile(srv.logPath)
	if !strings.Contains(string(log), "level=WARN msg=\"builds are not isolated") {
		t.Errorf("with --build-isolation none the server logged no warning:\n%s", log)
	}
}
