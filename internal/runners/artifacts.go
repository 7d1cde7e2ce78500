package runners

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sluicehq/sluice/internal/archive"
	"github.com/sluicehq/sluice/internal/artifacts"
	"github.com/sluicehq/sluice/internal/model"
)

// location is where the job data says an artifact is.
func location(a model.Artifact) (bucket, key string, err error) {
	if a.Location == nil || a.Location.S3Location == nil || a.Location.S3Location.BucketName == nil || a.Location.S3Location.ObjectKey == nil {
		return "", "", fmt.Errorf("the job gives no location for the artifact %s", *a.Name)
	}
	return *a.Location.S3Location.BucketName, *a.Location.S3Location.ObjectKey, nil
}

// fetchInput downloads an input artifact and extracts it into dir, within limits.
func fetchInput(ctx context.Context, arts artifacts.Store, limits archive.Limits, j *job, a model.Artifact, dir string) error {
	bucket, key, err := location(a)
	if err != nil {
		return err
	}
	body, _, err := arts.Get(ctx, bucket, key, "")
	if err != nil {
		return fmt.Errorf("read the input artifact %s from s3://%s/%s: %w", *a.Name, bucket, key, err)
	}
	defer body.Close()
	zipPath := filepath.Join(j.dir, *a.Name+".input.zip")
	f, err := os.Create(zipPath)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download the input artifact %s: %w", *a.Name, err)
	}
	defer os.Remove(zipPath)
	if err := archive.Unzip(ctx, zipPath, dir, limits); err != nil {
		var tooBig *archive.LimitError
		if errors.As(err, &tooBig) {
			flag := "--max-artifact-bytes"
			if tooBig.Files {
				flag = "--max-artifact-files"
			}
			return fmt.Errorf("the input artifact %s was not extracted: %w (the server's %s)", *a.Name, err, flag)
		}
		return fmt.Errorf("extract the input artifact %s: %w", *a.Name, err)
	}
	j.logf("Downloaded the input artifact %s from s3://%s/%s", *a.Name, bucket, key)
	return nil
}

// storeOutput uploads the zip file at zipPath as an output artifact.
func storeOutput(ctx context.Context, arts artifacts.Store, j *job, a model.Artifact, zipPath string) error {
	bucket, key, err := location(a)
	if err != nil {
		return err
	}
	size, err := putFile(ctx, arts, bucket, key, zipPath, artifacts.Metadata{})
	if err != nil {
		return fmt.Errorf("store the output artifact %s at s3://%s/%s: %w", *a.Name, bucket, key, err)
	}
	j.logf("Stored the output artifact %s (%d bytes) at s3://%s/%s", *a.Name, size, bucket, key)
	return nil
}

// putFile stores the file at path as an object and returns its size.
func putFile(ctx context.Context, arts artifacts.Store, bucket, key, path string, meta artifacts.Metadata) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	_, err = arts.Put(ctx, bucket, key, f, info.Size(), meta)
	return info.Size(), err
}
