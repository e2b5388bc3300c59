package azlock

import (
	"context"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"go.uber.org/zap"

	"github.com/batonproxy/baton/internal/azure"
	"github.com/batonproxy/baton/lease/history"
)

// NewHistory returns the election's history (package lease/history) kept
// in the blob "<Blob>.history" beside the lease blob, in the same
// container, with the same account and credentials (o.LeaseID is not
// used: the history blob is never leased). Every update reads the blob
// with its ETag and writes it back on condition that it is unchanged
// (If-None-Match: * when creating it), starting again when another node
// came first. It makes no network call.
func NewHistory(o Options, log *zap.Logger) (*history.Conditional, error) {
	if log == nil {
		return nil, errors.New("new azblob history: nil logger")
	}
	if o.Container == "" {
		o.Container = DefaultContainer
	}
	if o.Blob == "" {
		o.Blob = DefaultBlob
	}
	name := o.Blob + history.Suffix
	where := o.Container + "/" + name
	log = log.Named("azblob").With(zap.String("container", o.Container), zap.String("blob", name))
	cont, err := azure.NewContainer(o.Options, o.Container, kinds, log)
	if err != nil {
		return nil, fmt.Errorf("azblob history %s: %w", where, err)
	}
	return history.NewConditional(historyBlob{cont: cont, name: name}), nil
}

// historyBlob is the history's blob: history.Blob on internal/azure's
// conditional reads and writes.
type historyBlob struct {
	cont *azure.Container
	name string
}

func (b historyBlob) String() string { return "azblob " + b.cont.Name() + "/" + b.name }

func (b historyBlob) Get(ctx context.Context) ([]byte, string, error) {
	data, etag, err := b.cont.ReadBlob(ctx, b.name, history.MaxSize)
	return data, string(etag), err
}

func (b historyBlob) Put(ctx context.Context, data []byte, version string) error {
	_, err := b.cont.WriteBlob(ctx, b.name, data, azcore.ETag(version))
	if errors.Is(err, azure.ErrBlobChanged) {
		return fmt.Errorf("%w: %w", err, history.ErrConflict)
	}
	return err
}
