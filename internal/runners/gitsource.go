package runners

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/artifacts"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/gitrepo"
	"github.com/sluicehq/sluice/internal/model"
)

// gitSource is the CodeCommit, CodeStarSourceConnection and GitHub (version 1) source action:
// a commit of a branch, its tree (or, with OutputArtifactFormat CODEBUILD_CLONE_REF, a clone)
// zipped into the output artifact; the commit id is the revision.
type gitSource struct {
	arts      artifacts.Store
	remotes   *gitrepo.Remotes
	publicURL string
}

// GitSource is what a Git source action's configuration names.
type GitSource struct {
	Repository, Branch string
}

// WatchedRepository reads which repository and branch a Git source action watches.
func WatchedRepository(provider string, config map[string]string) (GitSource, bool) {
	switch provider {
	case "CodeCommit":
		return GitSource{Repository: config["RepositoryName"], Branch: config["BranchName"]}, true
	case "CodeStarSourceConnection":
		return GitSource{Repository: config["FullRepositoryId"], Branch: config["BranchName"]}, true
	case "GitHub":
		return GitSource{Repository: config["Owner"] + "/" + config["Repo"], Branch: config["Branch"]}, true
	}
	return GitSource{}, false
}

func (g gitSource) run(ctx context.Context, j *job) executor.Result {
	config := j.data.ActionConfiguration.Configuration
	provider := *j.data.ActionTypeId.Provider
	src, _ := WatchedRepository(provider, config)
	commit := ""
	for _, pin := range j.run.Pins {
		commit = *pin.RevisionValue
	}
	rm, err := g.remotes.Resolve(src.Repository)
	if err != nil {
		return g.sourceFailed(src, err)
	}
	j.logf("Fetching %s, branch %s %s", rm.Describe(), src.Branch, commit)
	zipPath := filepath.Join(j.dir, "source.zip")
	clone := config["OutputArtifactFormat"] == "CODEBUILD_CLONE_REF"
	c, err := g.remotes.Archive(ctx, rm, src.Branch, commit, zipPath, clone)
	if err != nil {
		return g.sourceFailed(src, err)
	}
	if err := storeOutput(ctx, g.arts, j, j.data.OutputArtifacts[0], zipPath); err != nil {
		return failedErr(err)
	}
	vars := map[string]string{
		"AuthorDate":    c.AuthorAt.UTC().Format(time.RFC3339),
		"BranchName":    src.Branch,
		"CommitId":      c.ID,
		"CommitMessage": c.Message,
	}
	switch provider {
	case "CodeCommit":
		vars["CommitterDate"] = c.Committed.UTC().Format(time.RFC3339)
		vars["RepositoryName"] = src.Repository
	case "CodeStarSourceConnection":
		vars["ConnectionArn"] = config["ConnectionArn"]
		vars["FullRepositoryName"] = src.Repository
	case "GitHub":
		vars["CommitterDate"] = c.Committed.UTC().Format(time.RFC3339)
		vars["RepositoryName"] = config["Repo"]
		vars["CommitUrl"] = "https://github.com/" + src.Repository + "/commit/" + c.ID
	}
	summary := strings.TrimSpace(c.Message)
	if len(summary) > 2048 {
		summary = summary[:2048]
	}
	// As AWS shows a source run: the commit as its external id, the commit message as its summary.
	return executor.Result{
		Succeeded:  true,
		ExternalID: c.ID,
		Summary:    summary,
		Revision: &model.CurrentRevision{Revision: new(c.ID), ChangeIdentifier: new(c.ID),
			Created: model.NewTimestamp(c.Committed), RevisionSummary: new(summary)},
		OutputVariables: vars,
	}
}

func (g gitSource) sourceFailed(src GitSource, err error) executor.Result {
	switch {
	case errors.Is(err, gitrepo.ErrNoRepository) && g.remotes.Hosted(src.Repository):
		return failed(fmt.Sprintf("The repository %s does not exist: push to %s/v1/repos/%s to create it, or map it to a remote with --git-remote", src.Repository, g.publicURL, src.Repository))
	case errors.Is(err, gitrepo.ErrNoRepository):
		return failed(fmt.Sprintf("The repository %s does not exist: %v", src.Repository, err))
	case errors.Is(err, gitrepo.ErrNoBranch):
		return failed(fmt.Sprintf("The branch %s does not exist in the repository %s", src.Branch, src.Repository))
	}
	return failedErr(err)
}
