package runners

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// newTestSandbox makes a sandbox and a work directory for it, deep in a data directory as the
// server's are.
func newTestSandbox(t *testing.T, isolation string) (*sandbox, string) {
	t.Helper()
	work := filepath.Join(t.TempDir(), "work", "server-1", "job-1", "build")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := newSandbox(context.Background(), isolation, work)
	if err != nil {
		t.Fatal(err)
	}
	return s, work
}

// runScript runs a shell script in the sandbox, in its work directory, and returns its output.
func runScript(t *testing.T, ctx context.Context, s *sandbox, work, script string) (string, error) {
	t.Helper()
	vars, err := s.environment(work)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	cmd := s.command(ctx, work, work, env, "/bin/sh", "-c", script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = runLocked(cmd)
	return out.String(), err
}

// TestSandboxSeesOnlyItsWorkDirectory runs a script that looks for what a build must not see:
// the server's processes, the data directory around its work directory, the host's secrets, its
// /tmp; and what it must: its work directory, writable, and the host's tools. Without isolation,
// the same script sees them all. (That it does not see the server's environment is tested with
// a real server: cmd/sluice's TestBuildSandbox.)
func TestSandboxSeesOnlyItsWorkDirectory(t *testing.T) {
	isolated := probe(t, IsolationSandbox)
	want := map[string]string{
		"server": "0", "db": "0", "data": "work", "hosttmp": "0", "shadow": "0",
		"usr": "read-only", "root": "read-only", "home": isolated["work"] + "/home", "tools": "yes", "made": "yes",
	}
	for k, v := range want {
		if isolated[k] != v {
			t.Errorf("in a sandbox, %s=%q, want %q", k, isolated[k], v)
		}
	}
	// bwrap's init, the shell, and the commands of the line that counts them: five at most, where
	// the host has a hundred or more.
	if n, err := strconv.Atoi(isolated["pids"]); err != nil || n > 5 {
		t.Errorf("the sandbox sees %q processes", isolated["pids"])
	}
	open := probe(t, IsolationNone)
	for _, k := range []string{"server", "db", "hosttmp"} {
		if open[k] == "0" {
			t.Errorf("without isolation, %s=0: the probe sees nothing", k)
		}
	}
}

// probe runs the probing script with isolation, and returns what it saw.
func probe(t *testing.T, isolation string) map[string]string {
	t.Helper()
	s, work := newTestSandbox(t, isolation)
	data := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(work))))
	if err := os.WriteFile(filepath.Join(data, "sluice.db"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	hostTmp, err := os.CreateTemp("", "sluice-host-tmp-")
	if err != nil {
		t.Fatal(err)
	}
	hostTmp.Close()
	defer os.Remove(hostTmp.Name())
	self, _ := os.Executable()
	// The script does not hold the name it looks for: it would find itself.
	selfPattern := strings.Replace(filepath.Base(self), ".", "'.'", 1)
	out, err := runScript(t, context.Background(), s, work, `
cat /proc/[0-9]*/cmdline > cmdlines 2>/dev/null
echo "server=$(tr '\0' '\n' < cmdlines | grep -c -F '`+selfPattern+`')"
echo "pids=$(ls -d /proc/[0-9]* | wc -l)"
echo "db=$(cat '`+filepath.Join(data, "sluice.db")+`' ../../../../sluice.db 2>/dev/null | wc -c)"
echo "data=$(ls '`+data+`' 2>/dev/null | tr '\n' ' ')"
echo "hosttmp=$(ls /tmp | grep -c sluice-host-tmp)"
echo "shadow=$(cat /etc/shadow 2>/dev/null | wc -c)"
echo "usr=$(touch /usr/sluice-test 2>/dev/null && echo writable || echo read-only)"
echo "root=$(touch /sluice-test 2>/dev/null && echo writable || echo read-only)"
echo "home=$HOME"
echo "tools=$(git --version >/dev/null && sed --version >/dev/null && echo yes)"
echo "work=$PWD"
echo yes > made
`)
	if err != nil {
		t.Fatalf("the script failed: %v\n%s", err, out)
	}
	seen := map[string]string{}
	for line := range strings.Lines(out) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			seen[k] = v
		}
	}
	if made, err := os.ReadFile(filepath.Join(work, "made")); err == nil {
		seen["made"] = strings.TrimSpace(string(made))
	}
	t.Logf("with isolation %s the script saw %v", isolation, seen)
	return seen
}

// TestSandboxEndsWholeWithItsContext starts background processes that leave the build's process
// group and session, and checks that ending the build ends them: none escapes the sandbox.
func TestSandboxEndsWholeWithItsContext(t *testing.T) {
	s, work := newTestSandbox(t, IsolationSandbox)
	// A name no other process has, to find the build's by.
	sleep := fmt.Sprintf("sleep 30.%d", os.Getpid())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := runScript(t, ctx, s, work, "setsid "+sleep+" & nohup "+sleep+" >/dev/null 2>&1 & "+sleep+" & wait")
		done <- err
	}()
	waitUntil(t, "the build's processes to start", func() bool { return len(processes(sleep)) == 3 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a killed build succeeded")
	}
	waitUntil(t, "every process of the build to end", func() bool { return len(processes(sleep)) == 0 })
}

// TestNewSandboxRefusesWhatCannotIsolate checks the start-up check's messages: no bwrap, a bwrap
// that cannot make a sandbox, an unknown isolation.
func TestNewSandboxRefusesWhatCannotIsolate(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	_, err := newSandbox(context.Background(), IsolationSandbox, dir)
	if err == nil || !strings.Contains(err.Error(), "bubblewrap package") || !strings.Contains(err.Error(), "--build-isolation none") {
		t.Fatalf("without bwrap: %v", err)
	}
	fake := "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "bwrap"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = newSandbox(context.Background(), IsolationSandbox, dir)
	if err == nil || !strings.Contains(err.Error(), "No permissions to create new namespace") || !strings.Contains(err.Error(), "--build-isolation none") {
		t.Fatalf("with a bwrap that cannot make a sandbox: %v", err)
	}
	if s, err := newSandbox(context.Background(), IsolationNone, dir); err != nil || s.bwrap != "" {
		t.Fatalf("isolation none: %v", err)
	}
	if _, err := newSandbox(context.Background(), "chroot", dir); err == nil {
		t.Fatal("an unknown isolation was taken")
	}
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
	slices.Sort(pids)
	return pids
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited in vain for %s", what)
		}
	}
}
