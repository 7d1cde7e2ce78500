package runners

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/sluicehq/sluice/internal/archive"
	"github.com/sluicehq/sluice/internal/buildspec"
)

// checkArtifactPaths refuses the paths of an artifact section that lead out of the directory
// they are relative to: absolute ones, and those whose .. climb above it.
func checkArtifactPaths(artifact string, section *buildspec.Artifacts) error {
	if b := section.BaseDirectory; b != "" && !isLocal(b) {
		return fmt.Errorf("the base-directory %q of the output artifact %s leads out of the source directory: use a relative path that stays inside it", b, artifact)
	}
	for _, p := range slices.Concat(section.Files, section.ExcludePaths) {
		if !isLocal(p) {
			return fmt.Errorf("the artifact path %q of the output artifact %s leads out of its base directory: use a relative path that stays inside it", p, artifact)
		}
	}
	return nil
}

// isLocal reports whether the slash-separated path or pattern p stays inside the directory it is
// relative to.
func isLocal(p string) bool { return !path.IsAbs(p) && filepath.IsLocal(filepath.FromSlash(p)) }

// collected is a file that goes into an output artifact.
type collected struct {
	// rel is its path under the base directory, slash-separated.
	rel  string
	size int64
}

// collector lists the files an artifact section names under its base directory, inside the
// build's work directory root. It follows no symbolic link to a directory, nor one that leads out
// of root; it takes no more files and bytes than limits allow, and stops when ctx ends.
type collector struct {
	ctx  context.Context
	root *os.Root
	// base is the base directory in root; files and excludes are the section's patterns.
	base            string
	files, excludes []string
	limits          archive.Limits
	logf            func(format string, args ...any)

	found   []collected
	bytes   int64
	visited int
	skipped int
}

// maxSkippedLogged bounds the log lines about links left out of an artifact.
const maxSkippedLogged = 10

// collect lists the files of the artifact section under base (slash-separated, inside root),
// sorted by path.
func collect(ctx context.Context, root *os.Root, base string, section *buildspec.Artifacts, limits archive.Limits, logf func(string, ...any)) ([]collected, error) {
	c := &collector{ctx: ctx, root: root, base: path.Clean(base), limits: limits, logf: logf}
	for _, p := range section.Files {
		c.files = append(c.files, path.Clean(p))
	}
	for _, p := range section.ExcludePaths {
		c.excludes = append(c.excludes, path.Clean(p))
	}
	if _, err := root.Stat(c.base); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err := c.walk(".", false); err != nil {
		return nil, err
	}
	if c.skipped > maxSkippedLogged {
		logf("Left out %d more symbolic links", c.skipped-maxSkippedLogged)
	}
	slices.SortFunc(c.found, func(a, b collected) int { return strings.Compare(a.rel, b.rel) })
	return c.found, nil
}

// walk lists the entries of the directory rel (under the base directory): the files the patterns
// match, or all of them when included (a pattern matched a directory above).
func (c *collector) walk(rel string, included bool) error {
	dir, err := c.root.Open(path.Join(c.base, rel))
	if err != nil {
		return err
	}
	defer dir.Close()
	for {
		entries, err := dir.ReadDir(256)
		for _, e := range entries {
			if err := c.entry(path.Join(rel, e.Name()), e, included); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// entry takes the directory entry e at p.
func (c *collector) entry(p string, e fs.DirEntry, included bool) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	if c.visited++; c.visited > 10*c.limits.Files {
		return fmt.Errorf("it looked at more than %d entries without finishing (ten times the server's --max-artifact-files): name the files more narrowly", 10*c.limits.Files)
	}
	matched := included || matchAny(c.files, p)
	switch {
	case e.IsDir():
		if matched || c.mayMatchUnder(p) {
			return c.walk(p, matched)
		}
		return nil
	case !matched || matchAny(c.excludes, p):
		return nil
	case e.Type().IsRegular():
		info, err := e.Info()
		if err != nil {
			return err
		}
		return c.add(p, info.Size())
	case e.Type()&fs.ModeSymlink != 0:
		// Through root: a link that leads out of the work directory, or is absolute, fails.
		info, err := c.root.Stat(path.Join(c.base, p))
		switch {
		case err == nil && info.Mode().IsRegular():
			return c.add(p, info.Size())
		case err == nil && info.IsDir():
			c.skip(p, "a symbolic link to a directory, which Sluice does not follow")
		case err != nil:
			c.skip(p, "a symbolic link that is absolute, leads out of the work directory or leads nowhere")
		}
	}
	return nil
}

func (c *collector) add(p string, size int64) error {
	if len(c.found) == c.limits.Files {
		return fmt.Errorf("it would hold more than %d files, the limit the server's --max-artifact-files sets", c.limits.Files)
	}
	if c.bytes += size; c.bytes > c.limits.Bytes {
		return fmt.Errorf("its files would add up to more than %d bytes, the limit the server's --max-artifact-bytes sets", c.limits.Bytes)
	}
	c.found = append(c.found, collected{rel: p, size: size})
	return nil
}

func (c *collector) skip(p, why string) {
	if c.skipped++; c.skipped <= maxSkippedLogged {
		c.logf("Left out %s: %s", p, why)
	}
}

// mayMatchUnder reports whether a pattern may match a path under the directory dir.
func (c *collector) mayMatchUnder(dir string) bool {
	names := strings.Split(dir, "/")
	for _, pattern := range c.files {
		if mayMatchUnder(pattern, names) {
			return true
		}
	}
	return false
}

// mayMatchUnder reports whether pattern may match a path under the directory whose path is names:
// whether they match its first segments, up to a **.
func mayMatchUnder(pattern string, names []string) bool {
	if strings.Contains(pattern, "{") {
		return true // alternatives may hold slashes: the segments are not the pattern's
	}
	segments := strings.Split(pattern, "/")
	for i, name := range names {
		if i == len(segments) {
			return false
		}
		if segments[i] == "**" {
			return true
		}
		if ok, _ := doublestar.Match(segments[i], name); !ok {
			return false
		}
	}
	return len(segments) > len(names)
}

// matchAny reports whether p matches one of patterns.
func matchAny(patterns []string, p string) bool {
	for _, pattern := range patterns {
		if ok, _ := doublestar.Match(pattern, p); ok {
			return true
		}
	}
	return false
}

// openRegular opens the regular file name under root for reading, following links only inside
// root. It does not wait on a FIFO, nor reads a device, that a build left in its place.
func openRegular(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", name)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, info, nil
}

// writeCollected writes the collected files under base to w, each under its name in the
// artifact, at most the size it was collected with.
func writeCollected(ctx context.Context, w *archive.Writer, root *os.Root, base string, files []collected, discardPaths bool) error {
	seen := map[string]bool{}
	for _, file := range files {
		name := file.rel
		if discardPaths {
			name = path.Base(name)
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		f, info, err := openRegular(root, path.Join(base, file.rel))
		if err != nil {
			return err
		}
		err = w.Add(name, info.Mode().Perm(), info.ModTime(), archive.ContextReader(ctx, io.LimitReader(f, file.size)))
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
