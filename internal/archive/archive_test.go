package archive

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeZip writes a zip archive at path; each entry is written by add.
func writeZip(t *testing.T, path string, add func(w *zip.Writer)) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := zip.NewWriter(f)
	add(w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// bomb writes entries copies of one deflated run of size zero bytes: an archive of a few hundred
// kilobytes that unpacks to entries×size bytes.
func bomb(t *testing.T, path string, entries int, size int64) {
	t.Helper()
	var compressed bytes.Buffer
	fw, _ := flate.NewWriter(&compressed, flate.BestCompression)
	zeros := make([]byte, 1<<20)
	crc := crc32.NewIEEE()
	for n := int64(0); n < size; n += int64(len(zeros)) {
		fw.Write(zeros)
		crc.Write(zeros)
	}
	fw.Close()
	writeZip(t, path, func(w *zip.Writer) {
		for i := range entries {
			hdr := &zip.FileHeader{Name: fmt.Sprintf("zeros/%d", i), Method: zip.Deflate, CRC32: crc.Sum32(), CompressedSize64: uint64(compressed.Len()), UncompressedSize64: uint64(size)}
			dst, err := w.CreateRaw(hdr)
			if err != nil {
				t.Fatal(err)
			}
			dst.Write(compressed.Bytes())
		}
	})
}

func TestUnzipExtractsInsideItsDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.zip")
	writeZip(t, path, func(w *zip.Writer) {
		for name, body := range map[string]string{"a.txt": "a", "sub/b.txt": "b"} {
			f, _ := w.Create(name)
			f.Write([]byte(body))
		}
	})
	out := filepath.Join(dir, "out", "a")
	if err := Unzip(context.Background(), path, out, DefaultLimits); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "sub", "b.txt")); err != nil || string(b) != "b" {
		t.Fatalf("sub/b.txt: %q, %v", b, err)
	}
}

// TestUnzipRefusesBombs checks that an archive past its limits is refused before anything is
// written, with an error that says which limit.
func TestUnzipRefusesBombs(t *testing.T) {
	dir := t.TempDir()
	limits := Limits{Bytes: 4 << 20, Files: 100}
	sized := filepath.Join(dir, "sized.zip")
	bomb(t, sized, 40, 1<<20) // 40 MiB from about 50 KB
	counted := filepath.Join(dir, "counted.zip")
	writeZip(t, counted, func(w *zip.Writer) {
		for i := range 101 {
			if _, err := w.Create(fmt.Sprintf("%sf%d", strings.Repeat("d/", i%3), i)); err != nil {
				t.Fatal(err)
			}
		}
	})
	for _, tc := range []struct {
		path, want string
		files      bool
	}{
		{sized, "the archive's files add up to 41943040 bytes uncompressed, more than the limit of 4194304", false},
		{counted, "the archive holds 101 entries, more than the limit of 100", true},
	} {
		out := filepath.Join(dir, "out")
		err := Unzip(context.Background(), tc.path, out, limits)
		var limitErr *LimitError
		if !errors.As(err, &limitErr) || limitErr.Files != tc.files || err.Error() != tc.want {
			t.Fatalf("Unzip(%s) = %v, want %q", filepath.Base(tc.path), err, tc.want)
		}
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Unzip(%s) left %s behind: %v", filepath.Base(tc.path), out, err)
		}
	}
	// Within the limits, the same bomb extracts.
	if err := Unzip(context.Background(), sized, filepath.Join(dir, "ok"), Limits{Bytes: 40 << 20, Files: 40}); err != nil {
		t.Fatal(err)
	}
}

// TestUnzipLeavesNothingBehind checks that an extraction that fails half-way, stopped or refused
// by an entry that climbs out of its directory, removes what it wrote.
func TestUnzipLeavesNothingBehind(t *testing.T) {
	dir := t.TempDir()
	escaping := filepath.Join(dir, "escaping.zip")
	writeZip(t, escaping, func(w *zip.Writer) {
		for _, name := range []string{"first.txt", "../../escaped.txt"} {
			f, _ := w.Create(name)
			f.Write([]byte("x"))
		}
	})
	out := filepath.Join(dir, "a", "b", "out")
	if err := Unzip(context.Background(), escaping, out, DefaultLimits); err == nil {
		t.Fatal("an entry climbing out of the directory was extracted")
	}
	if _, err := os.Stat(filepath.Join(dir, "a", "escaped.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the climbing entry was written: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed extraction left %s: %v", out, err)
	}

	big := filepath.Join(dir, "big.zip")
	bomb(t, big, 2, 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Unzip(ctx, big, out, DefaultLimits); !errors.Is(err, context.Canceled) {
		t.Fatalf("a stopped extraction returned %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a stopped extraction left %s: %v", out, err)
	}
}

// TestContextReaderStops checks that a copy through ContextReader ends with its context.
func TestContextReaderStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := ContextReader(ctx, strings.NewReader("abcdef"))
	buf := make([]byte, 3)
	if n, err := r.Read(buf); n != 3 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	cancel()
	if n, err := r.Read(buf); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after the context ended = %d, %v", n, err)
	}
}
