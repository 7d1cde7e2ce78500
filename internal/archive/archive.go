// Package archive reads and writes the zip files that artifacts are: extraction that never
// writes outside its directory, and archives built from a directory, from chosen files or from
// any readers (a git tree).
package archive

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"
)

// Limits bound what extracting an archive may write: the sum of its files' uncompressed sizes,
// and the number of its entries (files and directories).
type Limits struct {
	Bytes int64
	Files int
}

// DefaultLimits take any real source tree or build output (AWS's own largest source artifact is
// a 5 GB zip; a large node_modules tree has some tens of thousands of files), and still keep a
// zip bomb from filling the disk: 10 GiB uncompressed, 100,000 entries.
var DefaultLimits = Limits{Bytes: 10 << 30, Files: 100_000}

// LimitError is an archive past one of its limits.
type LimitError struct {
	// Files says the number of entries is over its limit; else their size is.
	Files      bool
	Got, Limit uint64
}

func (e *LimitError) Error() string {
	if e.Files {
		return fmt.Sprintf("the archive holds %d entries, more than the limit of %d", e.Got, e.Limit)
	}
	return fmt.Sprintf("the archive's files add up to %d bytes uncompressed, more than the limit of %d", e.Got, e.Limit)
}

// check refuses an archive whose entries declare more than the limits allow. The declared sizes
// bound what extraction writes: archive/zip fails an entry whose data run past its size.
func (l Limits) check(files []*zip.File) error {
	if len(files) > l.Files {
		return &LimitError{Files: true, Got: uint64(len(files)), Limit: uint64(l.Files)}
	}
	var total uint64
	for _, f := range files {
		if total+f.UncompressedSize64 < total {
			total = math.MaxUint64
			break
		}
		total += f.UncompressedSize64
	}
	if total > uint64(l.Bytes) {
		return &LimitError{Got: total, Limit: uint64(l.Bytes)}
	}
	return nil
}

// Unzip extracts the archive at path into dir, which it creates, refusing entries that would
// land outside it and archives past limits. If it fails, it leaves no dir behind. It stops when
// ctx ends.
func Unzip(ctx context.Context, path, dir string, limits Limits) (err error) {
	r, err := zip.OpenReader(path)
	if err != nil {
		return fmt.Errorf("the artifact is not a zip file: %w", err)
	}
	defer r.Close()
	if err := limits.check(r.File); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, f := range r.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := filepath.FromSlash(f.Name)
		if f.FileInfo().IsDir() {
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
			continue
		}
		if parent := filepath.Dir(name); parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return err
			}
		}
		if err := extract(ctx, root, f, name); err != nil {
			return err
		}
	}
	return nil
}

func extract(ctx context.Context, root *os.Root, f *zip.File, name string) error {
	src, err := f.Open()
	if err != nil {
		return err
	}
	defer src.Close()
	mode := f.Mode().Perm()
	if mode == 0 {
		mode = 0o644
	}
	dst, err := root.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, ContextReader(ctx, src)); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// ContextReader reads from r until ctx ends, then fails with ctx's error.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Writer writes a zip archive to a file.
type Writer struct {
	f  *os.File
	zw *zip.Writer
}

// Create starts an archive at path.
func Create(path string) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &Writer{f: f, zw: zip.NewWriter(f)}, nil
}

// Add writes a regular file named name (slash-separated) with r's contents.
func (w *Writer) Add(name string, mode fs.FileMode, modified time.Time, r io.Reader) error {
	hdr := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: modified}
	hdr.SetMode(mode)
	dst, err := w.zw.CreateHeader(hdr)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, r)
	return err
}

// AddFile writes the file at src under name.
func (w *Writer) AddFile(name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	return w.Add(name, info.Mode().Perm(), info.ModTime(), f)
}

// Close finishes the archive and syncs nothing: artifacts are stored once written.
func (w *Writer) Close() error {
	if err := w.zw.Close(); err != nil {
		w.f.Close()
		return err
	}
	return w.f.Close()
}

// Abort removes an archive that will not be finished.
func (w *Writer) Abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}

// ZipDir writes the regular files under dir, with their modes, to a zip archive at path.
func ZipDir(dir, path string) error {
	w, err := Create(path)
	if err != nil {
		return err
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		return w.AddFile(filepath.ToSlash(rel), p)
	})
	if err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}
