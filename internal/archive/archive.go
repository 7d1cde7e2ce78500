// Package archive reads and writes the zip files that artifacts are: extraction that never
// writes outside its directory, and archives built from a directory, from chosen files or from
// any readers (a git tree).
package archive

import (
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Unzip extracts the archive at path into dir, refusing entries that would land outside it.
func Unzip(path, dir string) error {
	r, err := zip.OpenReader(path)
	if err != nil {
		return fmt.Errorf("the artifact is not a zip file: %w", err)
	}
	defer r.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, f := range r.File {
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
		if err := extract(root, f, name); err != nil {
			return err
		}
	}
	return nil
}

func extract(root *os.Root, f *zip.File, name string) error {
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
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
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
