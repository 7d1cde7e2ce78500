package connections

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/sources"
)

// This file reads the payloads of GitHub's push and pull_request webhooks, which Gitea and
// Forgejo send in the same shape (their "Gitea" webhook type).

// repository is the part of a payload that names its repository.
type repository struct {
	FullName string `json:"full_name"`
}

// commitFiles is what a push payload's commit says it changed.
type commitFiles struct {
	Added    []string `json:"added"`
	Removed  []string `json:"removed"`
	Modified []string `json:"modified"`
}

// pushPayload is the part of a push event's payload Sluice reads.
type pushPayload struct {
	Ref        string        `json:"ref"`
	Before     string        `json:"before"`
	After      string        `json:"after"`
	Deleted    bool          `json:"deleted"`
	Commits    []commitFiles `json:"commits"`
	Repository repository    `json:"repository"`
	// TotalCommits is Gitea's and Forgejo's count of the pushed commits, of which commits may
	// list only the latest few.
	TotalCommits *int `json:"total_commits"`
}

// maxPayloadCommits is the most commits GitHub lists in a push payload ("The array includes a
// maximum of 2048 commits"): a payload that lists as many may not list them all.
const maxPayloadCommits = 2048

// maxPayloadFiles bounds the files an event keeps from its payload; past it they count as
// unknown.
const maxPayloadFiles = 5000

// commitID matches a full commit id: SHA-1, or SHA-256 for repositories in that format.
var commitID = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// zeroCommit reports whether id is the null commit id that stands for a ref that did not, or no
// longer does, exist.
func zeroCommit(id string) bool { return id != "" && strings.Trim(id, "0") == "" }

// pushEvent reads a push event: nil, and why, for a push that starts nothing (a deleted branch or
// tag, a ref of neither kind).
func pushEvent(doc []byte) (*sources.GitEvent, string, error) {
	var p pushPayload
	if err := json.Unmarshal(doc, &p); err != nil {
		return nil, "", errors.New("the payload is not a JSON push event")
	}
	if p.Repository.FullName == "" {
		return nil, "", errors.New("the payload has no repository.full_name")
	}
	push := &sources.GitPush{}
	switch {
	case strings.HasPrefix(p.Ref, "refs/heads/"):
		push.Branch = strings.TrimPrefix(p.Ref, "refs/heads/")
	case strings.HasPrefix(p.Ref, "refs/tags/"):
		push.Tag = strings.TrimPrefix(p.Ref, "refs/tags/")
	case p.Ref == "":
		return nil, "", errors.New("the payload has no ref")
	default:
		return nil, fmt.Sprintf("ref %s is neither a branch nor a tag", p.Ref), nil
	}
	if p.Deleted || zeroCommit(p.After) {
		return nil, fmt.Sprintf("%s was deleted: a deletion starts nothing", p.Ref), nil
	}
	after := strings.ToLower(p.After)
	if !commitID.MatchString(after) {
		return nil, "", fmt.Errorf("after %q is not a commit id", p.After)
	}
	push.After = after
	if before := strings.ToLower(p.Before); commitID.MatchString(before) && !zeroCommit(before) {
		push.Before = before
	}
	push.Files, push.FilesListed = payloadFiles(p)
	return &sources.GitEvent{Repository: p.Repository.FullName, Push: push}, "", nil
}

// payloadFiles lists the files a push payload's commits changed, and whether it lists them all.
func payloadFiles(p pushPayload) ([]string, bool) {
	n := len(p.Commits)
	if n == 0 || n >= maxPayloadCommits || (p.TotalCommits != nil && *p.TotalCommits != n) {
		return nil, false
	}
	seen := map[string]bool{}
	var files []string
	for _, c := range p.Commits {
		for _, list := range [][]string{c.Added, c.Removed, c.Modified} {
			for _, f := range list {
				if !seen[f] {
					seen[f] = true
					files = append(files, f)
				}
			}
		}
		if len(files) > maxPayloadFiles {
			return nil, false
		}
	}
	return files, true
}

// branchInfo is a side of a pull request: its branch and the commit there.
type branchInfo struct {
	Ref  string     `json:"ref"`
	SHA  string     `json:"sha"`
	Repo repository `json:"repo"`
}

// pullRequestPayload is the part of a pull_request event's payload Sluice reads.
type pullRequestPayload struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	PullRequest *struct {
		Number int        `json:"number"`
		Base   branchInfo `json:"base"`
		Head   branchInfo `json:"head"`
	} `json:"pull_request"`
	Repository repository `json:"repository"`
}

// pullRequestEvents maps the actions of pull_request events to the events of CodePipeline's pull
// request filters: GitHub's opened, reopened, synchronize and closed, and Gitea's and Forgejo's
// synchronized. Other actions (edited, labeled, assigned, …) start nothing.
var pullRequestEvents = map[string]model.GitPullRequestEventType{
	"opened":       model.GitPullRequestEventTypeOpen,
	"reopened":     model.GitPullRequestEventTypeOpen,
	"synchronize":  model.GitPullRequestEventTypeUpdated,
	"synchronized": model.GitPullRequestEventTypeUpdated,
	"closed":       model.GitPullRequestEventTypeClosed,
}

// pullRequestEvent reads a pull_request event: nil, and why, for an action that starts nothing.
func pullRequestEvent(doc []byte) (*sources.GitEvent, string, error) {
	var p pullRequestPayload
	if err := json.Unmarshal(doc, &p); err != nil {
		return nil, "", errors.New("the payload is not a JSON pull_request event")
	}
	if p.Repository.FullName == "" {
		return nil, "", errors.New("the payload has no repository.full_name")
	}
	if p.PullRequest == nil {
		return nil, "", errors.New("the payload has no pull_request")
	}
	event, ok := pullRequestEvents[p.Action]
	if !ok {
		return nil, fmt.Sprintf("pull request action %q starts nothing: only opened, reopened, synchronize and closed do", p.Action), nil
	}
	number := p.Number
	if number == 0 {
		number = p.PullRequest.Number
	}
	base, head := p.PullRequest.Base, p.PullRequest.Head
	target := strings.TrimPrefix(base.Ref, "refs/heads/")
	if target == "" {
		return nil, "", errors.New("the payload has no pull_request.base.ref")
	}
	headCommit := strings.ToLower(head.SHA)
	if !commitID.MatchString(headCommit) {
		return nil, "", fmt.Errorf("pull_request.head.sha %q is not a commit id", head.SHA)
	}
	baseCommit := strings.ToLower(base.SHA)
	if !commitID.MatchString(baseCommit) || zeroCommit(baseCommit) {
		baseCommit = ""
	}
	return &sources.GitEvent{Repository: p.Repository.FullName, PullRequest: &sources.GitPullRequest{
		Number: number, Event: string(event), BaseBranch: target, BaseCommit: baseCommit,
		HeadBranch: strings.TrimPrefix(head.Ref, "refs/heads/"), HeadCommit: headCommit, HeadRepository: head.Repo.FullName,
	}}, "", nil
}
