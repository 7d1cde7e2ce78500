package s3server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"strings"

	"github.com/johannesboyne/gofakes3"

	"github.com/sluicehq/sluice/internal/objects"
)

// backend lets gofakes3 serve an objects.Store.
type backend struct {
	store *objects.Store
	// written, if set, hears of every object version written, before the write is answered.
	written Written
	// account owns the buckets created through gofakes3, which it creates only with
	// authentication off.
	account string
	// listAll says ListBuckets lists every bucket, as it does with authentication off; with it
	// on, the server answers ListBuckets itself, with the caller's buckets only.
	listAll bool
}

var (
	_ gofakes3.Backend          = backend{}
	_ gofakes3.VersionedBackend = backend{}
)

// beyondPrefix sorts after every key that begins with the prefix it is appended to.
const beyondPrefix = "\U0010FFFF"

// listBatch is how many index rows a listing reads at a time.
const listBatch = 1000

func (b backend) ListBuckets() ([]gofakes3.BucketInfo, error) {
	if !b.listAll {
		return nil, errors.New("ListBuckets reached gofakes3 with authentication on")
	}
	buckets, err := b.store.Buckets(context.Background())
	if err != nil {
		return nil, err
	}
	out := make([]gofakes3.BucketInfo, 0, len(buckets))
	for _, bk := range buckets {
		out = append(out, gofakes3.BucketInfo{Name: bk.Name, CreationDate: gofakes3.NewContentTime(bk.Created)})
	}
	return out, nil
}

func (b backend) ListBucket(name string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	if prefix == nil {
		prefix = &gofakes3.Prefix{}
	}
	out := gofakes3.NewObjectList()
	after := page.Marker
	if prefix.HasDelimiter && strings.HasSuffix(after, prefix.Delimiter) {
		after += beyondPrefix // the marker is a common prefix the previous page ended with
	}
	var count int64
	for {
		batch, err := b.store.List(context.Background(), name, prefix.Prefix, after, listBatch)
		if err != nil {
			return nil, storeError(err, name, "")
		}
		if len(batch) == 0 {
			return out, nil
		}
		for _, o := range batch {
			after = o.Key
			if page.MaxKeys > 0 && count >= page.MaxKeys {
				out.IsTruncated = true
				return out, nil
			}
			var match gofakes3.PrefixMatch
			if !prefix.Match(o.Key, &match) {
				continue
			}
			if match.CommonPrefix {
				out.AddPrefix(match.MatchedPart)
				out.NextMarker = match.MatchedPart
				after = match.MatchedPart + beyondPrefix
				count++
				break
			}
			out.Add(&gofakes3.Content{Key: o.Key, LastModified: gofakes3.NewContentTime(o.Modified),
				ETag: gofakes3.FormatETag(o.MD5), Size: o.Size, StorageClass: gofakes3.StorageStandard})
			out.NextMarker = o.Key
			count++
		}
	}
}

func (b backend) CreateBucket(name string) error {
	err := b.store.CreateBucket(context.Background(), name, b.account)
	if errors.Is(err, objects.ErrBucketExists) {
		return gofakes3.ResourceError(gofakes3.ErrBucketAlreadyExists, name)
	}
	return err
}

func (b backend) BucketExists(name string) (bool, error) {
	_, err := b.store.Bucket(context.Background(), name)
	if errors.Is(err, objects.ErrNoSuchBucket) {
		return false, nil
	}
	return err == nil, err
}

func (b backend) DeleteBucket(name string) error {
	return storeError(b.store.DeleteBucket(context.Background(), name, false), name, "")
}

func (b backend) ForceDeleteBucket(name string) error {
	return storeError(b.store.DeleteBucket(context.Background(), name, true), name, "")
}

func (b backend) GetObject(bucket, key string, rnge *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	return b.GetObjectVersion(bucket, key, "", rnge)
}

func (b backend) HeadObject(bucket, key string) (*gofakes3.Object, error) {
	return b.HeadObjectVersion(bucket, key, "")
}

func (b backend) DeleteObject(bucket, key string) (gofakes3.ObjectDeleteResult, error) {
	o, err := b.store.Delete(context.Background(), bucket, key)
	if err != nil {
		return gofakes3.ObjectDeleteResult{}, storeError(err, bucket, key)
	}
	return gofakes3.ObjectDeleteResult{IsDeleteMarker: o.Deleted, VersionID: versionID(o)}, nil
}

func (b backend) PutObject(bucket, key string, meta map[string]string, input io.Reader, _ int64, conditions *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	if conditions != nil {
		info := &gofakes3.ConditionalObjectInfo{}
		if cur, err := b.store.Head(context.Background(), bucket, key, ""); err == nil {
			info = &gofakes3.ConditionalObjectInfo{Exists: true, Hash: cur.MD5}
		}
		if err := gofakes3.CheckPutConditions(conditions, info); err != nil {
			return gofakes3.PutObjectResult{}, err
		}
	}
	o, err := b.store.Put(context.Background(), bucket, key, meta, input)
	if err != nil {
		return gofakes3.PutObjectResult{}, storeError(err, bucket, key)
	}
	if b.written != nil {
		if err := b.written(context.Background(), bucket, key, o.Version); err != nil {
			return gofakes3.PutObjectResult{}, fmt.Errorf("record the write of s3://%s/%s: %w", bucket, key, err)
		}
	}
	return gofakes3.PutObjectResult{VersionID: versionID(o)}, nil
}

func (b backend) DeleteMulti(bucket string, keys ...string) (gofakes3.MultiDeleteResult, error) {
	var res gofakes3.MultiDeleteResult
	for _, key := range keys {
		if _, err := b.store.Delete(context.Background(), bucket, key); err != nil {
			res.Error = append(res.Error, gofakes3.ErrorResult{Key: key, Code: gofakes3.ErrInternal, Message: err.Error()})
			continue
		}
		res.Deleted = append(res.Deleted, gofakes3.ObjectID{Key: key})
	}
	return res, nil
}

func (b backend) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	return gofakes3.CopyObject(b, srcBucket, srcKey, dstBucket, dstKey, meta)
}

func (b backend) VersioningConfiguration(bucket string) (gofakes3.VersioningConfiguration, error) {
	bk, err := b.store.Bucket(context.Background(), bucket)
	if err != nil {
		return gofakes3.VersioningConfiguration{}, storeError(err, bucket, "")
	}
	return gofakes3.VersioningConfiguration{Status: gofakes3.VersioningStatus(bk.Versioning)}, nil
}

func (b backend) SetVersioningConfiguration(bucket string, v gofakes3.VersioningConfiguration) error {
	return storeError(b.store.SetVersioning(context.Background(), bucket, string(v.Status)), bucket, "")
}

func (b backend) GetObjectVersion(bucket, key string, version gofakes3.VersionID, rnge *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	o, f, err := b.store.Open(context.Background(), bucket, key, string(version))
	if err != nil {
		return nil, storeError(err, bucket, key)
	}
	r, err := rnge.Range(o.Size)
	if err != nil {
		f.Close()
		return nil, err
	}
	var contents io.ReadCloser = f
	if r != nil {
		contents = sectionCloser{io.NewSectionReader(f, r.Start, r.Length), f}
	}
	out := object(o)
	out.Contents, out.Range = contents, r
	return out, nil
}

func (b backend) HeadObjectVersion(bucket, key string, version gofakes3.VersionID) (*gofakes3.Object, error) {
	o, err := b.store.Head(context.Background(), bucket, key, string(version))
	if err != nil {
		return nil, storeError(err, bucket, key)
	}
	out := object(o)
	out.Contents = http.NoBody
	return out, nil
}

func (b backend) DeleteObjectVersion(bucket, key string, version gofakes3.VersionID) (gofakes3.ObjectDeleteResult, error) {
	o, err := b.store.DeleteVersion(context.Background(), bucket, key, string(version))
	if err != nil {
		return gofakes3.ObjectDeleteResult{}, storeError(err, bucket, key)
	}
	return gofakes3.ObjectDeleteResult{IsDeleteMarker: o.Deleted, VersionID: version}, nil
}

func (b backend) DeleteMultiVersions(bucket string, ids ...gofakes3.ObjectID) (gofakes3.MultiDeleteResult, error) {
	var res gofakes3.MultiDeleteResult
	for _, id := range ids {
		var err error
		if id.VersionID == "" {
			_, err = b.store.Delete(context.Background(), bucket, id.Key)
		} else {
			_, err = b.store.DeleteVersion(context.Background(), bucket, id.Key, id.VersionID)
		}
		if err != nil {
			res.Error = append(res.Error, gofakes3.ErrorResult{Key: id.Key, Code: gofakes3.ErrInternal, Message: err.Error()})
			continue
		}
		res.Deleted = append(res.Deleted, id)
	}
	return res, nil
}

func (b backend) ListBucketVersions(bucket string, prefix *gofakes3.Prefix, page *gofakes3.ListBucketVersionsPage) (*gofakes3.ListBucketVersionsResult, error) {
	if prefix == nil {
		prefix = &gofakes3.Prefix{}
	}
	if page == nil {
		page = &gofakes3.ListBucketVersionsPage{}
	}
	limit := int(page.MaxKeys)
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	out := &gofakes3.ListBucketVersionsResult{Name: bucket, Prefix: prefix.Prefix, Delimiter: prefix.Delimiter,
		MaxKeys: int64(limit), KeyMarker: page.KeyMarker, VersionIDMarker: page.VersionIDMarker}
	afterKey, afterVersion := page.KeyMarker, string(page.VersionIDMarker)
	seen := map[string]bool{}
	for {
		batch, err := b.store.ListVersions(context.Background(), bucket, prefix.Prefix, afterKey, afterVersion, listBatch)
		if err != nil {
			return nil, storeError(err, bucket, "")
		}
		if len(batch) == 0 {
			return out, nil
		}
		for _, o := range batch {
			if len(out.Versions)+len(out.CommonPrefixes) >= limit {
				out.IsTruncated = true
				out.NextKeyMarker, out.NextVersionIDMarker = afterKey, gofakes3.VersionID(afterVersion)
				return out, nil
			}
			afterKey, afterVersion = o.Key, o.Version
			var match gofakes3.PrefixMatch
			if !prefix.Match(o.Key, &match) {
				continue
			}
			if match.CommonPrefix {
				if !seen[match.MatchedPart] {
					seen[match.MatchedPart] = true
					out.CommonPrefixes = append(out.CommonPrefixes, match.AsCommonPrefix())
				}
				continue
			}
			modified := gofakes3.NewContentTime(o.Modified)
			if o.Deleted {
				out.Versions = append(out.Versions, &gofakes3.DeleteMarker{Key: o.Key, VersionID: gofakes3.VersionID(o.Version), IsLatest: o.Latest, LastModified: modified})
				continue
			}
			out.Versions = append(out.Versions, &gofakes3.Version{Key: o.Key, VersionID: gofakes3.VersionID(o.Version), IsLatest: o.Latest,
				LastModified: modified, Size: o.Size, ETag: gofakes3.FormatETag(o.MD5), StorageClass: gofakes3.StorageStandard})
		}
	}
}

// object describes a stored version as gofakes3 does; objects written while versioning was off
// carry no version id.
// gofakes3 reads an object's Last-Modified from its metadata, which objects written by Sluice
// itself rather than through the endpoint do not carry.
func object(o objects.Object) *gofakes3.Object {
	meta := o.Metadata
	if _, ok := meta["Last-Modified"]; !ok {
		meta = maps.Clone(meta)
		if meta == nil {
			meta = map[string]string{}
		}
		meta["Last-Modified"] = o.Modified.UTC().Format(http.TimeFormat)
	}
	return &gofakes3.Object{Name: o.Key, Metadata: meta, Size: o.Size, Hash: o.MD5, VersionID: versionID(o), IsDeleteMarker: o.Deleted}
}

func versionID(o objects.Object) gofakes3.VersionID {
	return gofakes3.VersionID(o.VersionID())
}

// storeError turns the store's errors into S3's.
func storeError(err error, bucket, key string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, objects.ErrNoSuchBucket):
		return gofakes3.BucketNotFound(bucket)
	case errors.Is(err, objects.ErrNoSuchKey):
		return gofakes3.KeyNotFound(key)
	case errors.Is(err, objects.ErrNoSuchVersion):
		return gofakes3.ResourceError(gofakes3.ErrNoSuchVersion, key)
	case errors.Is(err, objects.ErrInvalidVersion):
		return gofakes3.ErrorMessage(gofakes3.ErrInvalidArgument, "Invalid version id specified")
	case errors.Is(err, objects.ErrBucketNotEmpty):
		return gofakes3.ResourceError(gofakes3.ErrBucketNotEmpty, bucket)
	}
	return err
}

type sectionCloser struct {
	io.Reader
	f *os.File
}

func (s sectionCloser) Close() error { return s.f.Close() }
