package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Files keeps logs in a directory, one file per action execution (<id>.log), and an empty file
// <id>.done once the log is complete. Only the server that owns the directory reads them.
type Files struct {
	dir string
}

// NewFiles returns the backend of the logs kept in dir, creating it.
func NewFiles(dir string) (*Files, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the log directory: %w", err)
	}
	return &Files{dir: dir}, nil
}

func (b *Files) path(id, ext string) string { return filepath.Join(b.dir, id+ext) }

// Create starts or continues the log of id.
func (b *Files) Create(id string) (io.WriteCloser, error) {
	done := b.path(id, ".done")
	_ = os.Remove(done)
	f, err := os.OpenFile(b.path(id, ".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create the log of %s: %w", id, err)
	}
	return &fileWriter{f: f, donePath: done}, nil
}

// Complete reports whether the log of id has ended.
func (b *Files) Complete(_ context.Context, id string) (bool, error) {
	if _, err := os.Stat(b.path(id, ".log")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, ErrNotFound
		}
		return false, err
	}
	_, err := os.Stat(b.path(id, ".done"))
	return err == nil, nil
}

// Copy writes the log of id from offset to w.
func (b *Files) Copy(_ context.Context, w io.Writer, id string, offset int64) (int64, error) {
	f, err := os.Open(b.path(id, ".log"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, ErrNotFound
		}
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, err
	}
	return io.Copy(w, f)
}

// Close does nothing: the files stay.
func (b *Files) Close() error { return nil }

// fileWriter appends to the log of one action execution.
type fileWriter struct {
	f        *os.File
	donePath string
}

func (w *fileWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

// Close ends the log.
func (w *fileWriter) Close() error {
	err := w.f.Close()
	if f, cerr := os.Create(w.donePath); cerr == nil {
		f.Close()
	} else if err == nil {
		err = cerr
	}
	return err
}
