package certstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/batonproxy/baton/internal/azure"
)

// Defaults and bounds of Options.
const (
	DefaultContainer = "baton"
	DefaultPrefix    = "certmagic/"
	DefaultLockTTL   = 30 * time.Second

	maxBlobName = 1024
	lockDir     = "locks/"
	lockPoll    = time.Second // Lock's poll interval, ±25 % jitter
)

// ErrConfig means the storage can never work as configured: bad options,
// or credentials, roles or network rules the storage account refuses.
var ErrConfig = errors.New("certstore: storage misconfigured")

// ErrLockLost means a lock this Storage held expired or was taken over
// before Unlock (renewals failed for LockTTL).
var ErrLockLost = errors.New("certstore: lock lost")

// ErrClosed is returned by Lock and TryLock after Close.
var ErrClosed = errors.New("certstore: storage closed")

// errLockHeld means another holder has the lock (TryLock answers false).
var errLockHeld = errors.New("certstore: lock held by another holder")

// kinds maps the storage's answers to this package's sentinels.
var kinds = azure.Kinds{Config: ErrConfig, Held: errLockHeld, Lost: ErrLockLost}

// Options configures New.
type Options struct {
	// Client is the storage account and how to authenticate to it, as for
	// the lease (AccountURL, Auth, ClientID, ConnectionString, AccountName,
	// AccountKey, SASToken, CallTimeout, Transport).
	Client azure.Options
	// Container holds the blobs. Default "baton" (the lease's default).
	Container string
	// Prefix is put before every key to form its blob name. Default
	// "certmagic/"; a missing trailing "/" is added.
	Prefix string
	// LockTTL is the blob lease duration of a lock: a whole number of
	// seconds in Azure's bounds, [15s, 60s]. Default 30 s. A dead
	// holder's lock frees up within LockTTL; a live holder renews every
	// LockTTL/3.
	LockTTL time.Duration
}

// Storage implements certmagic.Storage, certmagic.TryLocker and
// certmagic.LockLeaseRenewer on Azure Blob Storage. It is safe for
// concurrent use.
type Storage struct {
	log         *zap.Logger
	cont        *azure.Container
	containerNm string
	prefix      string
	callTimeout time.Duration
	ttl         time.Duration
	renewEvery  time.Duration
	poll        time.Duration

	mu     sync.Mutex
	held   map[string]*heldLock // by lock name
	closed bool
}

var (
	_ certmagic.Storage          = (*Storage)(nil)
	_ certmagic.TryLocker        = (*Storage)(nil)
	_ certmagic.LockLeaseRenewer = (*Storage)(nil)
)

// New checks o and builds the storage client. It makes no network call.
// Errors about the options wrap ErrConfig.
func New(o Options, log *zap.Logger) (*Storage, error) {
	if log == nil {
		return nil, errors.New("new certstore: nil logger")
	}
	if o.Container == "" {
		o.Container = DefaultContainer
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	o.Prefix = strings.TrimLeft(o.Prefix, "/")
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.LockTTL == 0 {
		o.LockTTL = DefaultLockTTL
	}
	o.Client = o.Client.WithDefaults()
	log = log.Named("certstore").With(zap.String("container", o.Container), zap.String("prefix", o.Prefix))
	where := "certstore " + o.Container + "/" + o.Prefix
	cont, err := azure.NewContainer(o.Client, o.Container, kinds, log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if o.Prefix == "/" || len(o.Prefix) > maxBlobName/2 {
		return nil, fmt.Errorf("%s: prefix %q must be 1 to %d characters: %w", where, o.Prefix, maxBlobName/2, ErrConfig)
	}
	if err := azure.CheckLeaseDuration("lock ttl", o.LockTTL); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", where, err, ErrConfig)
	}
	return &Storage{
		log:         log,
		cont:        cont,
		containerNm: o.Container,
		prefix:      o.Prefix,
		callTimeout: o.Client.CallTimeout,
		ttl:         o.LockTTL,
		renewEvery:  o.LockTTL / 3,
		poll:        lockPoll,
		held:        make(map[string]*heldLock),
	}, nil
}

// String names the storage for certmagic's logs.
func (s *Storage) String() string {
	return "certstore:azblob:" + s.containerNm + "/" + s.prefix
}

// blobName maps a key to its blob name.
func (s *Storage) blobName(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return "", fmt.Errorf("certstore: key %q is empty or starts or ends with /", key)
	}
	name := s.prefix + key
	if len(name) > maxBlobName {
		return "", fmt.Errorf("certstore: key %q is too long (blob names have at most %d characters)", key, maxBlobName)
	}
	return name, nil
}

// dirPrefix is the blob name prefix of everything under dir ("" = all).
func (s *Storage) dirPrefix(dir string) string {
	dir = strings.Trim(dir, "/")
	if dir == "" {
		return s.prefix
	}
	return s.prefix + dir + "/"
}

// where names key's blob for errors: "container/prefix/key".
func (s *Storage) where(key string) string {
	return s.containerNm + "/" + s.prefix + key
}

// fail classifies and redacts a storage error of op on key.
func (s *Storage) fail(op, key string, err error) error {
	return s.cont.Classify(op+" "+s.where(key), err)
}

func (s *Storage) notExist(op, key string) error {
	return fmt.Errorf("%s %s: %w", op, s.where(key), fs.ErrNotExist)
}

func (s *Storage) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return s.cont.Bound(ctx)
}

// Store implements certmagic.Storage: one Put Blob, so readers see the old
// or the new value.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	name, err := s.blobName(key)
	if err != nil {
		return err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	b := s.cont.Client().NewBlockBlobClient(name)
	for attempt := 0; ; attempt++ {
		_, err = b.Upload(ctx, streaming.NopCloser(bytes.NewReader(value)), nil)
		if err == nil {
			return nil
		}
		if attempt == 0 && bloberror.HasCode(err, bloberror.ContainerNotFound) {
			if err := s.cont.Ensure(ctx); err != nil {
				return err
			}
			continue
		}
		return s.fail("store", key, err)
	}
}

// Load implements certmagic.Storage.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	name, err := s.blobName(key)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	resp, err := s.cont.Client().NewBlobClient(name).DownloadStream(ctx, nil)
	if azure.IsNotFound(err) {
		return nil, s.notExist("load", key)
	}
	if err != nil {
		return nil, s.fail("load", key, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, s.fail("load", key, err)
	}
	return data, nil
}

// Delete implements certmagic.Storage: the key's blob and every key under
// it as a directory. A missing key is not an error.
func (s *Storage) Delete(ctx context.Context, key string) error {
	name, err := s.blobName(key)
	if err != nil {
		return err
	}
	if err := s.deleteBlob(ctx, key, name); err != nil {
		return err
	}
	var under []string
	err = s.listFlat(ctx, name+"/", func(blobName string) { under = append(under, blobName) })
	if err != nil {
		return s.fail("delete", key, err)
	}
	for _, n := range under {
		if err := s.deleteBlob(ctx, strings.TrimPrefix(n, s.prefix), n); err != nil {
			return err
		}
	}
	return nil
}

func (s *Storage) deleteBlob(ctx context.Context, key, name string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.cont.Client().NewBlobClient(name).Delete(ctx, &blob.DeleteOptions{
		DeleteSnapshots: to(blob.DeleteSnapshotsOptionTypeInclude),
	})
	if err == nil || azure.IsNotFound(err) {
		return nil
	}
	return s.fail("delete", key, err)
}

// Exists implements certmagic.Storage: true for a key or a directory;
// false also when the storage cannot be asked.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// Stat implements certmagic.Storage. A directory has IsTerminal false and
// no size or modification time.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	name, err := s.blobName(key)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	props, err := s.cont.Client().NewBlobClient(name).GetProperties(ctx, nil)
	switch {
	case err == nil:
		ki := certmagic.KeyInfo{Key: key, IsTerminal: true}
		if props.LastModified != nil {
			ki.Modified = *props.LastModified
		}
		if props.ContentLength != nil {
			ki.Size = *props.ContentLength
		}
		return ki, nil
	case !azure.IsNotFound(err):
		return certmagic.KeyInfo{}, s.fail("stat", key, err)
	}
	isDir, err := s.hasAny(ctx, name+"/")
	if err != nil {
		return certmagic.KeyInfo{}, s.fail("stat", key, err)
	}
	if !isDir {
		return certmagic.KeyInfo{}, s.notExist("stat", key)
	}
	return certmagic.KeyInfo{Key: key}, nil
}

// hasAny reports whether a blob name starts with prefix.
func (s *Storage) hasAny(ctx context.Context, prefix string) (bool, error) {
	pager := s.cont.Client().NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix, MaxResults: to(int32(1))})
	if !pager.More() {
		return false, nil
	}
	page, err := nextPage(ctx, s.callTimeout, pager.NextPage)
	if azure.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return len(page.Segment.BlobItems) > 0, nil
}

// listFlat calls f with the name of every blob starting with prefix. A
// missing container has no blobs.
func (s *Storage) listFlat(ctx context.Context, prefix string, f func(name string)) error {
	pager := s.cont.Client().NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	return eachPage(ctx, s.callTimeout, pager, func(page container.ListBlobsFlatResponse) {
		for _, it := range page.Segment.BlobItems {
			if it.Name != nil {
				f(*it.Name)
			}
		}
	})
}

// List implements certmagic.Storage. Non-recursive: the direct children of
// dir, files and directories. Recursive: every key under dir and every
// directory between dir and those keys. An empty dir lists the whole
// storage. Nothing under dir is fs.ErrNotExist, unless dir is a file key
// (no children, no error), as with FileStorage.
func (s *Storage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	dir = strings.Trim(dir, "/")
	prefix := s.dirPrefix(dir)

	seen := make(map[string]struct{})
	add := func(blobName string) {
		rel := strings.Trim(strings.TrimPrefix(blobName, prefix), "/")
		if rel == "" {
			return
		}
		if !recursive {
			seen[joinKey(dir, rel)] = struct{}{}
			return
		}
		// The key and each directory between dir and it.
		for i := 0; i < len(rel); i++ {
			if rel[i] == '/' {
				seen[joinKey(dir, rel[:i])] = struct{}{}
			}
		}
		seen[joinKey(dir, rel)] = struct{}{}
	}

	var err error
	if recursive {
		err = s.listFlat(ctx, prefix, add)
	} else {
		err = s.listHierarchy(ctx, prefix, add)
	}
	if err != nil {
		return nil, s.fail("list", dir, err)
	}
	if len(seen) == 0 {
		if dir != "" {
			if _, serr := s.Stat(ctx, dir); serr == nil {
				return []string{}, nil
			}
		}
		return nil, s.notExist("list", dir)
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}

// listHierarchy calls f with the direct children of prefix: blob names and
// virtual directories (their names end in "/").
func (s *Storage) listHierarchy(ctx context.Context, prefix string, f func(name string)) error {
	pager := s.cont.Client().NewListBlobsHierarchyPager("/", &container.ListBlobsHierarchyOptions{Prefix: &prefix})
	return eachPage(ctx, s.callTimeout, pager, func(page container.ListBlobsHierarchyResponse) {
		for _, p := range page.Segment.BlobPrefixes {
			if p.Name != nil {
				f(*p.Name)
			}
		}
		for _, it := range page.Segment.BlobItems {
			if it.Name != nil {
				f(*it.Name)
			}
		}
	})
}

// nextPage fetches one page of a listing, bounded like any other call.
// eachPage calls visit with every page of pager, each fetched within
// callTimeout. A missing container has no pages.
func eachPage[T any](ctx context.Context, callTimeout time.Duration, pager *runtime.Pager[T], visit func(T)) error {
	for pager.More() {
		page, err := nextPage(ctx, callTimeout, pager.NextPage)
		if azure.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		visit(page)
	}
	return nil
}

func nextPage[T any](ctx context.Context, callTimeout time.Duration, next func(context.Context) (T, error)) (T, error) {
	ctx, cancel := azure.Bound(ctx, callTimeout)
	defer cancel()
	return next(ctx)
}

func joinKey(dir, rel string) string {
	if dir == "" {
		return rel
	}
	return dir + "/" + rel
}

func to[T any](v T) *T { return &v }
