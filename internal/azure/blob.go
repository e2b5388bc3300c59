package azure

// Small whole-blob documents with optimistic concurrency: read a blob with
// its ETag, write it back only if nobody changed it since (If-Match), or
// create it only if it does not exist yet (If-None-Match: *).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
)

// ErrBlobChanged is wrapped by WriteBlob's error when the blob changed (or
// was created, or deleted) since the read that gave the ETag: read it again
// and retry.
var ErrBlobChanged = errors.New("blob changed since it was read")

// ErrBlobTooLarge is wrapped by ReadBlob's error for a blob over its limit.
var ErrBlobTooLarge = errors.New("blob too large")

// ReadBlob reads the whole blob name of c, at most limit bytes, and its
// ETag. A missing blob or container is not an error: the data is nil and
// the ETag empty. Other errors are classified (Classify) and hold no
// secret.
func (c *Container) ReadBlob(ctx context.Context, name string, limit int64) ([]byte, azcore.ETag, error) {
	if err := c.checkBlobName(name); err != nil {
		return nil, "", err
	}
	ctx, cancel := c.Bound(ctx)
	defer cancel()
	where := c.name + "/" + name
	resp, err := c.client.NewBlobClient(name).DownloadStream(ctx, nil)
	switch {
	case IsNotFound(err):
		return nil, "", nil
	case err != nil:
		return nil, "", c.Classify("read blob "+where, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != nil && *resp.ContentLength > limit {
		return nil, "", fmt.Errorf("read blob %s: %d bytes, more than %d: %w", where, *resp.ContentLength, limit, ErrBlobTooLarge)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, "", c.Classify("read blob "+where, err)
	}
	if int64(len(data)) > limit {
		return nil, "", fmt.Errorf("read blob %s: more than %d bytes: %w", where, limit, ErrBlobTooLarge)
	}
	var etag azcore.ETag
	if resp.ETag != nil {
		etag = *resp.ETag
	}
	return data, etag, nil
}

// WriteBlob replaces the blob name of c with data, only if its ETag is
// still etag (If-Match), or, with etag empty, only if the blob does not
// exist (If-None-Match: *; a missing container is then created once). It
// returns the new ETag. When the blob changed meanwhile (412
// ConditionNotMet, 409 BlobAlreadyExists, or a blob deleted since) the
// error wraps ErrBlobChanged. Other errors are classified and hold no
// secret.
func (c *Container) WriteBlob(ctx context.Context, name string, data []byte, etag azcore.ETag) (azcore.ETag, error) {
	if err := c.checkBlobName(name); err != nil {
		return "", err
	}
	ctx, cancel := c.Bound(ctx)
	defer cancel()
	where := c.name + "/" + name
	cond := &blob.ModifiedAccessConditions{IfMatch: &etag}
	if etag == "" {
		cond = &blob.ModifiedAccessConditions{IfNoneMatch: to(azcore.ETagAny)}
	}
	b := c.client.NewBlockBlobClient(name)
	for ensured := false; ; ensured = true {
		resp, err := b.Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), &blockblob.UploadOptions{
			AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: cond},
		})
		switch {
		case err == nil:
			var tag azcore.ETag
			if resp.ETag != nil {
				tag = *resp.ETag
			}
			return tag, nil
		case bloberror.HasCode(err, bloberror.ConditionNotMet, bloberror.BlobAlreadyExists, bloberror.BlobNotFound):
			return "", c.Redact(fmt.Errorf("write blob %s: %s: %w", where, c.Describe(err), ErrBlobChanged))
		case bloberror.HasCode(err, bloberror.ContainerNotFound) && etag == "" && !ensured:
			if err := c.Ensure(ctx); err != nil {
				return "", err
			}
		default:
			return "", c.Classify("write blob "+where, err)
		}
	}
}

func (c *Container) checkBlobName(name string) error {
	if name == "" || len(name) > maxBlobName {
		return c.configError(configErr("blob name must have 1 to %d characters", maxBlobName))
	}
	return nil
}
