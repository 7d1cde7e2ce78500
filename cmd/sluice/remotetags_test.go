package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
)

// TestTagsAppearingOnARemoteStartPipelines: a polling connection source of a repository Sluice
// reaches through --git-remote starts its pipeline for a tag that appears on the remote, when
// the pipeline's push filters take the tag; tags that were there before, and tags the filters
// exclude, start nothing.
func TestTagsAppearingOnARemoteStartPipelines(t *testing.T) {
	bin := buildBinary(t)
	remote := filepath.Join(t.TempDir(), "widgets.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", remote).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	srv := newTestServer(t, bin, "--data", t.TempDir(), "--start-on-create=false", "--source-poll-interval", "200ms",
		"--git-remote", "acme/widgets=file://"+remote, "--log-level", "debug")
	url := "http://" + srv.addr
	widgets := newGitRepo(t)
	widgets.commit("first", map[string]string{"name.txt": "widgets\n"})
	widgets.git("tag", "v0")
	widgets.push(remote, "main")
	widgets.git("push", "-q", remote, "v0")

	connection := "arn:aws:codeconnections:us-east-1:000000000000:connection/abc"
	decl := pipelineJSON("tagged", "QUEUED",
		action("Source", "Source", "AWS", "CodeStarSourceConnection", map[string]string{"ConnectionArn": connection, "FullRepositoryId": "acme/widgets", "BranchName": "main"}, nil, []string{"Src"}, ""),
		action("Check", "Compute", "AWS", "Commands", nil, []string{"Src"}, nil, `,"commands":["grep -q widgets name.txt"]`))
	decl = strings.TrimSuffix(decl, "}") + `,"triggers":[{"providerType":"CodeStarSourceConnection","gitConfiguration":{"sourceActionName":"Source","push":[{"tags":{"includes":["v*"],"excludes":["*-rc"]}}]}}]}`
	createPipelineJSON(t, url, decl)
	// The first poll learns the tags already there, which start nothing.
	waitFor(t, "the source's tags to be learned", func() bool {
		log, _ := os.ReadFile(srv.logPath)
		return strings.Contains(string(log), "learned the tags of a remote source")
	}, func() string { return "no such line in the server's log" })

	release := widgets.commit("release", map[string]string{"name.txt": "widgets, released\n"})
	widgets.git("tag", "-a", "v1", "-m", "release 1")
	widgets.git("tag", "v2-rc")
	widgets.push(remote, "main")
	widgets.git("push", "-q", remote, "v1", "v2-rc")
	e := executionAt(t, srv.client, "tagged", release)
	if e.Status != types.PipelineExecutionStatusSucceeded || e.Trigger.TriggerType != types.TriggerTypePollForSourceChanges {
		t.Fatalf("execution of tag v1: %s, trigger %s", e.Status, e.Trigger.TriggerType)
	}
	time.Sleep(time.Second)
	if n := len(executions(t, srv.client, "tagged")); n != 1 {
		t.Fatalf("%d executions, want 1: v1's (v0 was there before, v2-rc is excluded, and the branch push is not a tag)", n)
	}

	// The tags seen are kept in the store: a tag that appears while no server polls starts its
	// pipeline when one polls again (another replica, or this one restarted).
	srv.stop(syscall.SIGKILL)
	later := widgets.commit("later", map[string]string{"name.txt": "widgets, later\n"})
	widgets.git("tag", "v3")
	widgets.push(remote, "main")
	widgets.git("push", "-q", remote, "v3")
	srv.start()
	if e := executionAt(t, srv.client, "tagged", later); e.Status != types.PipelineExecutionStatusSucceeded {
		t.Fatalf("execution of tag v3, pushed while the server was down: %s", e.Status)
	}
	time.Sleep(time.Second)
	if n := len(executions(t, srv.client, "tagged")); n != 2 {
		t.Fatalf("%d executions, want 2: v1's and v3's, each once", n)
	}
}
