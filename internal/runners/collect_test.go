package runners

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/archive"
	"github.com/sluicehq/sluice/internal/buildspec"
)

// workTree makes a work directory with the files, directories and symbolic links given by path
// (slash-separated): "dir/" is a directory, "->target" a link, anything else a file's contents.
func workTree(t *testing.T, entries map[string]string) *os.Root {
	t.Helper()
	dir := t.TempDir()
	for p, what := range entries {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(p, "/"):
			err = os.MkdirAll(full, 0o755)
		case strings.HasPrefix(what, "->"):
			err = os.Symlink(strings.TrimPrefix(what, "->"), full)
		default:
			err = os.WriteFile(full, []byte(what), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

func collectNames(t *testing.T, ctx context.Context, root *os.Root, base string, section *buildspec.Artifacts, limits archive.Limits) ([]string, []string, error) {
	t.Helper()
	var logged []string
	files, err := collect(ctx, root, base, section, limits, func(format string, args ...any) {
		logged = append(logged, fmt.Sprintf(format, args...))
	})
	var names []string
	for _, f := range files {
		names = append(names, f.rel)
	}
	return names, logged, err
}

// TestCollectFollowsNoLinkOut collects out/**/* from a directory with a link to /, a loop, a link
// out of the work directory and links inside it: only the regular files and the links to files
// inside the work directory are taken, and the rest is logged.
func TestCollectFollowsNoLinkOut(t *testing.T) {
	root := workTree(t, map[string]string{
		"src/Src/out/real.txt":     "real",
		"src/Src/out/sub/deep.txt": "deep",
		"src/Src/out/self":         "->/",
		"src/Src/out/loop":         "->.",
		"src/Src/out/passwd":       "->/etc/passwd",
		"src/Src/out/up":           "->../../../../../..",
		"src/Src/out/alias.txt":    "->real.txt",
		"src/Src/out/other.txt":    "->../../Other/other.txt",
		"src/Src/elsewhere.txt":    "not under out",
		"src/Other/other.txt":      "other",
	})
	names, logged, err := collectNames(t, context.Background(), root, "src/Src", &buildspec.Artifacts{Files: []string{"out/**/*"}}, archive.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"out/alias.txt", "out/other.txt", "out/real.txt", "out/sub/deep.txt"}
	if !slices.Equal(names, want) {
		t.Fatalf("collected %v, want %v", names, want)
	}
	log := strings.Join(logged, "\n")
	for _, left := range []string{"out/self", "out/loop", "out/passwd", "out/up"} {
		if !strings.Contains(log, "Left out "+left+": ") {
			t.Errorf("the log does not say %s was left out:\n%s", left, log)
		}
	}
	// A base directory that is a link out of the work directory is not followed either.
	base := workTree(t, map[string]string{"src/Src/dist": "->/usr"})
	if _, _, err := collectNames(t, context.Background(), base, "src/Src/dist", &buildspec.Artifacts{Files: []string{"**/*"}}, archive.DefaultLimits); err == nil {
		t.Fatal("a base directory linked to /usr was collected")
	}
}

// TestCollectStopsAtItsLimits checks that collecting fails past the number of files and the bytes
// an artifact may hold, without reading the files, and when its job ends.
func TestCollectStopsAtItsLimits(t *testing.T) {
	entries := map[string]string{}
	for i := range 5 {
		entries[fmt.Sprintf("src/Src/f%d", i)] = "12345"
	}
	root := workTree(t, entries)
	all := &buildspec.Artifacts{Files: []string{"**/*"}}
	if _, _, err := collectNames(t, context.Background(), root, "src/Src", all, archive.Limits{Bytes: 1 << 20, Files: 4}); err == nil || !strings.Contains(err.Error(), "more than 4 files") || !strings.Contains(err.Error(), "--max-artifact-files") {
		t.Errorf("5 files with a limit of 4: %v", err)
	}
	if _, _, err := collectNames(t, context.Background(), root, "src/Src", all, archive.Limits{Bytes: 24, Files: 10}); err == nil || !strings.Contains(err.Error(), "more than 24 bytes") || !strings.Contains(err.Error(), "--max-artifact-bytes") {
		t.Errorf("25 bytes with a limit of 24: %v", err)
	}
	// A sparse file of a terabyte: refused by its size, not read.
	sparse, err := root.Create("src/Src/huge")
	if err != nil {
		t.Fatal(err)
	}
	if err := sparse.Truncate(1 << 40); err != nil {
		t.Fatal(err)
	}
	sparse.Close()
	if _, _, err := collectNames(t, context.Background(), root, "src/Src", &buildspec.Artifacts{Files: []string{"huge"}}, archive.DefaultLimits); err == nil || !strings.Contains(err.Error(), "more than 10737418240 bytes") {
		t.Errorf("a file of a terabyte: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := collectNames(t, ctx, root, "src/Src", all, archive.DefaultLimits); !errors.Is(err, context.Canceled) {
		t.Errorf("collecting for a job that ended: %v", err)
	}
}

// TestCollectWalksOnlyWherePatternsMayMatch checks which directories collecting enters.
func TestCollectWalksOnlyWherePatternsMayMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, dir string
		want         bool
	}{
		{"out/**/*", "out", true},
		{"out/**/*", "out/a/b", true},
		{"out/**/*", "node_modules", false},
		{"dist/*.js", "dist", true},
		{"dist/*.js", "dist/sub", false},
		{"**/*", "a/b", true},
		{"*.txt", "docs", false},
		{"d?st/*", "dist", true},
		{"a/{b,c/d}/e", "x", true},
	} {
		if got := mayMatchUnder(tc.pattern, strings.Split(tc.dir, "/")); got != tc.want {
			t.Errorf("mayMatchUnder(%q, %q) = %v, want %v", tc.pattern, tc.dir, got, tc.want)
		}
	}
}

// TestArtifactPathsStayInside checks the paths of artifact sections.
func TestArtifactPathsStayInside(t *testing.T) {
	for _, tc := range []struct {
		section buildspec.Artifacts
		naming  string
	}{
		{buildspec.Artifacts{BaseDirectory: "../..", Files: []string{"**/*"}}, `"../.."`},
		{buildspec.Artifacts{BaseDirectory: "/etc", Files: []string{"**/*"}}, `"/etc"`},
		{buildspec.Artifacts{BaseDirectory: "dist/../..", Files: []string{"**/*"}}, `"dist/../.."`},
		{buildspec.Artifacts{Files: []string{"dist/*", "../../sluice.db"}}, `"../../sluice.db"`},
		{buildspec.Artifacts{Files: []string{"/etc/passwd"}}, `"/etc/passwd"`},
		{buildspec.Artifacts{Files: []string{"**/*"}, ExcludePaths: []string{"../x"}}, `"../x"`},
		{buildspec.Artifacts{BaseDirectory: "./dist/", Files: []string{"./**/*", "a/../b"}, ExcludePaths: []string{"*.map"}}, ""},
	} {
		err := checkArtifactPaths("Out", &tc.section)
		switch {
		case tc.naming == "" && err != nil:
			t.Errorf("%+v: %v", tc.section, err)
		case tc.naming != "" && (err == nil || !strings.Contains(err.Error(), tc.naming)):
			t.Errorf("%+v: %v, want an error naming %s", tc.section, err, tc.naming)
		}
	}
}
