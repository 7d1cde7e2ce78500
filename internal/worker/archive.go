package worker

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluicehq/sluice/internal/archive"
)

func s3Location(a types.Artifact) (bucket, key string, err error) {
	if a.Location == nil || a.Location.S3Location == nil {
		return "", "", errors.New("the job gives no S3 location for it")
	}
	return aws.ToString(a.Location.S3Location.BucketName), aws.ToString(a.Location.S3Location.ObjectKey), nil
}

// download fetches an artifact to the file zipPath and unzips it into dir, within the default
// limits on what an artifact may unpack to.
func download(ctx context.Context, client *s3.Client, a types.Artifact, dir, zipPath string) error {
	bucket, key, err := s3Location(a)
	if err != nil {
		return err
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	defer out.Body.Close()
	f, err := os.Create(zipPath)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(f, out.Body); err != nil {
		return err
	}
	return archive.Unzip(ctx, zipPath, dir, archive.DefaultLimits)
}

// upload zips dir into the file zipPath and stores it as the artifact.
func upload(ctx context.Context, client *s3.Client, a types.Artifact, dir, zipPath string) error {
	bucket, key, err := s3Location(a)
	if err != nil {
		return err
	}
	if err := archive.ZipDir(dir, zipPath); err != nil {
		return err
	}
	f, err := os.Open(zipPath)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: f})
	return err
}
