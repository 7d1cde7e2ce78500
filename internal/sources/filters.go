package sources

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/internal/model"
)

// This file holds the filters of V2 pipelines' triggers: which pushes, of a branch or of a tag,
// start a source action, as CodePipeline's push filters decide it.
//
// A push filter names either branches (optionally with file paths) or tags, each as lists of
// glob patterns to include and to exclude. A name matches a list pair when it matches an
// include (or no include is given) and no exclude: excludes win. A push of a branch matches a
// filter with branches when the branch matches them and, if the filter has file paths, at least
// one file the push changed matches those; a push of a tag matches a filter with tags when the
// tag matches them. A source action whose pipeline declares a trigger for it starts on the
// pushes that match one of the trigger's push filters, and on no other push.
//
// A pull request filter names branches (optionally with file paths) and the pull request events
// it takes (OPEN, UPDATED, CLOSED): an event of a pull request matches it when the filter takes
// the event, its branches include the pull request's target branch, and, if it has file paths,
// one file the pull request changes matches those. A pull request starts only the source actions
// whose trigger has a pull request filter it matches.

// changedFiles lists the files a push changed; known is false when they could not be read, and
// a filter on file paths then lets the push through rather than lose a run.
type changedFiles func() (files []string, known bool)

// unknownFiles stands for a push whose changed files are not looked at.
func unknownFiles() ([]string, bool) { return nil, false }

// pushFilters returns the push filters of the trigger a pipeline declares for a source action,
// and whether it declares one at all (a trigger with pull request filters only starts nothing
// on a push).
func pushFilters(triggers []model.PipelineTriggerDeclaration, action string) (filters []model.GitPushFilter, declared bool) {
	for _, t := range triggers {
		gc := t.GitConfiguration
		if gc == nil || gc.SourceActionName == nil || *gc.SourceActionName != action {
			continue
		}
		declared = true
		filters = append(filters, gc.Push...)
	}
	return filters, declared
}

// pushMatches reports whether a push of a branch, or of a tag, matches one of filters.
func pushMatches(filters []model.GitPushFilter, branch, tag string, files changedFiles) bool {
	for _, f := range filters {
		if pushFilterMatches(f, branch, tag, files) {
			return true
		}
	}
	return false
}

// pushFilterMatches reports whether a push of a branch, or of a tag, matches a push filter.
func pushFilterMatches(f model.GitPushFilter, branch, tag string, files changedFiles) bool {
	switch {
	case tag != "":
		return f.Tags != nil && declares(f.Tags.Includes, f.Tags.Excludes) && tagMatches(f.Tags, tag)
	case branch != "":
		if f.Branches == nil || !declares(f.Branches.Includes, f.Branches.Excludes) || !branchMatches(f.Branches, branch) {
			return false
		}
		if f.FilePaths == nil || !declares(f.FilePaths.Includes, f.FilePaths.Excludes) {
			return true
		}
		changed, known := files()
		return !known || filePathsMatch(f.FilePaths, changed)
	}
	return false
}

// pullRequestFilters returns the pull request filters of the trigger a pipeline declares for a
// source action: none when it declares no trigger, or one with push filters only, and then a
// pull request starts nothing.
func pullRequestFilters(triggers []model.PipelineTriggerDeclaration, action string) []model.GitPullRequestFilter {
	var filters []model.GitPullRequestFilter
	for _, t := range triggers {
		gc := t.GitConfiguration
		if gc != nil && gc.SourceActionName != nil && *gc.SourceActionName == action {
			filters = append(filters, gc.PullRequest...)
		}
	}
	return filters
}

// pullRequestMatches reports whether a pull request event (OPEN, UPDATED or CLOSED) of a pull
// request into the branch target matches one of filters.
func pullRequestMatches(filters []model.GitPullRequestFilter, event model.GitPullRequestEventType, target string, files changedFiles) bool {
	for _, f := range filters {
		if pullRequestFilterMatches(f, event, target, files) {
			return true
		}
	}
	return false
}

// pullRequestFilterMatches reports whether a pull request event matches a pull request filter:
// the filter lists the event (a filter that lists none takes all three), its branches include
// the pull request's target branch, and, if it has file paths, one of the files the pull request
// changes matches them.
func pullRequestFilterMatches(f model.GitPullRequestFilter, event model.GitPullRequestEventType, target string, files changedFiles) bool {
	if len(f.Events) > 0 && !slices.Contains(f.Events, event) {
		return false
	}
	if f.Branches == nil || !declares(f.Branches.Includes, f.Branches.Excludes) || !branchMatches(f.Branches, target) {
		return false
	}
	if f.FilePaths == nil || !declares(f.FilePaths.Includes, f.FilePaths.Excludes) {
		return true
	}
	changed, known := files()
	return !known || filePathsMatch(f.FilePaths, changed)
}

// declares reports whether a filter criteria names any pattern.
func declares(includes, excludes []string) bool { return len(includes)+len(excludes) > 0 }

// branchMatches reports whether a branch passes a branch filter.
func branchMatches(c *model.GitBranchFilterCriteria, branch string) bool {
	return c != nil && included(c.Includes, c.Excludes, branch)
}

// tagMatches reports whether a tag passes a tag filter.
func tagMatches(c *model.GitTagFilterCriteria, tag string) bool {
	return c != nil && included(c.Includes, c.Excludes, tag)
}

// filePathsMatch reports whether one of the changed files passes a file path filter: a change
// to excluded files only, or to no file, does not.
func filePathsMatch(c *model.GitFilePathFilterCriteria, files []string) bool {
	if c == nil {
		return false
	}
	for _, f := range files {
		if included(c.Includes, c.Excludes, f) {
			return true
		}
	}
	return false
}

// included reports whether name matches one of includes (or includes is empty) and none of
// excludes.
func included(includes, excludes []string, name string) bool {
	if len(includes) > 0 && !matchAny(includes, name) {
		return false
	}
	return !matchAny(excludes, name)
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if globMatch(p, name) {
			return true
		}
	}
	return false
}

// globs caches compiled patterns: pattern → *regexp.Regexp, nil for a pattern that is no glob.
var globs sync.Map

// globMatch reports whether name matches a glob pattern the way CodePipeline's trigger filters
// match it, in the syntax of Java's "glob:" path matcher ("Working with glob patterns in syntax"
// in the CodePipeline User Guide): '*' matches any characters but '/', '**' any characters at
// all, '?' one character but '/', '[abc]', '[a-z]' and '[!a-z]' one character of (or not of) a
// set, never '/', '{a,b}' either of its comma-separated subpatterns (groups do not nest), and
// '\' quotes the character after it. A pattern matches the whole name. A pattern also matches
// its own text, so that a name holding glob characters (a default trigger's branch "a{b") is
// matched by itself; a pattern that is not a valid glob matches nothing else.
func globMatch(pattern, name string) bool {
	if pattern == name {
		return true
	}
	re, ok := globs.Load(pattern)
	if !ok {
		compiled, err := compileGlob(pattern)
		if err != nil {
			compiled = nil
		}
		re, _ = globs.LoadOrStore(pattern, compiled)
	}
	compiled := re.(*regexp.Regexp)
	return compiled != nil && compiled.MatchString(name)
}

// compileGlob translates a glob pattern into a regular expression, as Java's Globs does for Unix
// paths.
func compileGlob(glob string) (*regexp.Regexp, error) {
	p := []rune(glob)
	var b strings.Builder
	b.WriteString(`^`)
	inGroup := false
	for i := 0; i < len(p); {
		c := p[i]
		i++
		switch c {
		case '\\':
			if i == len(p) {
				return nil, fmt.Errorf("no character to escape at the end of %q", glob)
			}
			b.WriteString(regexp.QuoteMeta(string(p[i])))
			i++
		case '[':
			class, next, err := globClass(p, i)
			if err != nil {
				return nil, fmt.Errorf("%w in %q", err, glob)
			}
			b.WriteString(class)
			i = next
		case '{':
			if inGroup {
				return nil, fmt.Errorf("cannot nest groups in %q", glob)
			}
			b.WriteString(`(?:(?:`)
			inGroup = true
		case '}':
			if inGroup {
				b.WriteString(`))`)
				inGroup = false
			} else {
				b.WriteString(`\}`)
			}
		case ',':
			if inGroup {
				b.WriteString(`)|(?:`)
			} else {
				b.WriteString(`,`)
			}
		case '*':
			if i < len(p) && p[i] == '*' {
				b.WriteString(`.*`)
				i++
			} else {
				b.WriteString(`[^/]*`)
			}
		case '?':
			b.WriteString(`[^/]`)
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	if inGroup {
		return nil, fmt.Errorf("missing '}' in %q", glob)
	}
	b.WriteString(`$`)
	return regexp.Compile(b.String())
}

// globClass translates the bracket expression of p that starts at i (just after its '['),
// returning the regular expression's class and the index after the closing ']'. The class
// never matches '/': an explicit '/' is an error, as in Java, and a range across it skips it.
func globClass(p []rune, i int) (string, int, error) {
	var b strings.Builder
	b.WriteString(`[`)
	switch {
	case i < len(p) && p[i] == '!':
		b.WriteString(`^/`)
		i++
	case i < len(p) && p[i] == '^':
		b.WriteString(`\^`)
		i++
	}
	if i < len(p) && p[i] == '-' {
		b.WriteString(`\-`)
		i++
	}
	lit := func(r rune) string {
		if strings.ContainsRune(`\[]^-`, r) {
			return `\` + string(r)
		}
		return string(r)
	}
	var last rune
	hasStart, closed := false, false
	for i < len(p) {
		c := p[i]
		i++
		if c == ']' {
			closed = true
			break
		}
		if c == '/' {
			return "", 0, fmt.Errorf("explicit name separator in a class")
		}
		if c != '-' {
			b.WriteString(lit(c))
			last, hasStart = c, true
			continue
		}
		if !hasStart {
			return "", 0, fmt.Errorf("invalid range")
		}
		if i == len(p) || p[i] == ']' {
			// A '-' before the end of the class is itself, as in Java.
			b.WriteString(`\-`)
			continue
		}
		hi := p[i]
		i++
		if hi < last {
			return "", 0, fmt.Errorf("invalid range")
		}
		// The range's start was written already; '/' falls out of it.
		switch {
		case last < '/' && hi >= '/':
			b.WriteString(`-` + lit('/'-1))
			if hi > '/' {
				b.WriteString(lit('/'+1) + `-` + lit(hi))
			}
		default:
			b.WriteString(`-` + lit(hi))
		}
		hasStart = false
	}
	if !closed {
		return "", 0, fmt.Errorf("missing ']'")
	}
	b.WriteString(`]`)
	return b.String(), i, nil
}
