package lease

// Azure Blob Storage lease backend.
//
// The lock is a blob lease: a mutex with a 15–60 s expiry that the storage
// service enforces. The holder record (node name, advertise URL, term,
// acquired-at) lives in the blob's metadata and is written with the lease ID
// right after each acquisition, so only the current holder can change it.
//
// README text: "Azure Blob Storage lease"
//
// Setting it up in Azure:
//
//  1. A storage account (StorageV2; LRS is enough, the lease blob is 0
//     bytes) in the VMs' region:
//     az storage account create -n batonprod -g RG -l westeurope \
//     --sku Standard_LRS --kind StorageV2 --min-tls-version TLS1_2 \
//     --allow-blob-public-access false
//  2. A container for the lease. Create it up front: with the role assigned
//     on the container only, the nodes may not create it themselves (baton
//     creates the container when it is missing and it is allowed to, and
//     always creates the lease blob, "leader" by default):
//     az storage container create --account-name batonprod -n baton \
//     --auth-mode login
//  3. Each VM's managed identity (system-assigned, or a user-assigned one
//     whose client ID goes into client_id) gets the "Storage Blob Data
//     Contributor" role on that container:
//     az role assignment create --assignee-object-id <VM principal id> \
//     --assignee-principal-type ServicePrincipal \
//     --role "Storage Blob Data Contributor" \
//     --scope /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Storage/storageAccounts/batonprod/blobServices/default/containers/baton
//     Role assignments take a few minutes to apply; until then baton logs
//     "storage account rejected our credentials (403
//     AuthorizationPermissionMismatch): give this VM's identity the Storage
//     Blob Data Contributor role on container baton" and stays out of
//     candidacy.
//  4. baton.toml on every node:
//     [lease.azblob]
//     account_url = "https://batonprod.blob.core.windows.net"
//     container   = "baton"
//     blob        = "leader"
//     auth        = "managed-identity"   # "default" also finds it
//     Other clouds have other suffixes (Azure Government:
//     https://ACCOUNT.blob.core.usgovcloudapi.net). If the account has a
//     firewall, admit the VMs' subnet (service endpoint or private
//     endpoint). Shared keys, SAS tokens and connection strings also work
//     (auth = "shared-key", "sas", "connection-string"); give them from a
//     file or an environment variable, never inline. A SAS token needs
//     read, write, create and add permissions on the container.
//
// Every storage call is bounded: one try lasts at most the call timeout
// (2 s), a call makes at most three tries (transient errors: timeouts, 5xx,
// 429), and never outlives the elector's deadline for it.
//
// Cost: measured with a counting HTTP transport at the default timing
// (lease 15 s, renew every 3 s, retry every 1 s), about 1,200 storage
// transactions per hour for the active node (one renew per 3 s) and 3,600
// for each standby (one read per second; it tries to acquire only when the
// lease is free).
//
// A worked example with Azurite, the storage emulator (no Azure account):
//
//	scripts/install-azurite.sh
//	mkdir -p /tmp/azurite
//	.tools/azurite/node_modules/.bin/azurite-blob --blobHost 127.0.0.1 \
//	    --blobPort 10000 --location /tmp/azurite --skipApiVersionCheck &
//	export BATON_AZURITE='DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;'
//
// (--skipApiVersionCheck: the Go SDK speaks a newer storage API version
// than Azurite 3.37 knows; the calls baton makes are the same.) Then, in
// the baton.toml of two nodes:
//
//	[lease.azblob]
//	account_url = "http://127.0.0.1:10000/devstoreaccount1"
//	container   = "baton"
//	blob        = "leader"
//	auth        = "connection-string"
//	connection_string_env = "BATON_AZURITE"
//
// One node becomes active; "baton status" on either names it and its term.
// Stop it and the other is active within one retry interval; kill -9 it and
// the other takes over when the 15 s lease expires.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	azlease "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"
	"go.uber.org/zap"

	"github.com/batonproxy/baton/internal/azure"
)

// Auth modes of AzBlobOptions.Auth.
const (
	AzBlobAuthDefault          = azure.AuthDefault
	AzBlobAuthManagedIdentity  = azure.AuthManagedIdentity
	AzBlobAuthConnectionString = azure.AuthConnectionString
	AzBlobAuthSharedKey        = azure.AuthSharedKey
	AzBlobAuthSAS              = azure.AuthSAS
)

// Bounds of an Azure blob lease and the defaults of AzBlobOptions.
const (
	AzBlobMinLease           = 15 * time.Second
	AzBlobMaxLease           = 60 * time.Second
	DefaultAzBlobCallTimeout = azure.DefaultCallTimeout
)

// Metadata keys of the holder record. Azure stores them as sent, but Go's
// HTTP client canonicalises response header names, so they come back as
// "Term", "Advertise_url", ...: always look them up case-insensitively.
const (
	metaTerm       = "term"
	metaHolder     = "holder"
	metaAdvertise  = "advertise_url"
	metaAcquiredAt = "acquired_at"
)

// AzBlobOptions configures NewAzBlobLock: the storage account and its
// authentication (azure.Options: secret fields hold the secret values
// themselves, already read from a file or the environment by the caller;
// they never appear in logs or errors), and the blob that holds the lease.
type AzBlobOptions struct {
	azure.Options
	Container string
	Blob      string
}

// AzBlobLock is a Lock kept in an Azure Blob Storage blob lease. Each
// AzBlobLock has its own random lease ID. It is safe for concurrent use.
type AzBlobLock struct {
	log      *zap.Logger
	name     string // "container/blob", for errors
	opts     AzBlobOptions
	cls      *azure.Classifier
	cont     *container.Client
	blob     *blockblob.Client
	lease    *azlease.BlobClient
	leaseSec atomic.Int32 // duration of the last successful acquire, seconds
}

var _ Lock = (*AzBlobLock)(nil)

// NewAzBlobLock checks o and builds the storage clients. It makes no network
// call. Errors about the options wrap ErrConfig.
func NewAzBlobLock(o AzBlobOptions, log *zap.Logger) (*AzBlobLock, error) {
	if log == nil {
		return nil, errors.New("new azblob lock: nil logger")
	}
	if o.Container == "" {
		o.Container = "baton"
	}
	if o.Blob == "" {
		o.Blob = "leader"
	}
	if o.Auth == "" {
		o.Auth = AzBlobAuthDefault
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = DefaultAzBlobCallTimeout
	}
	l := &AzBlobLock{
		log:  log.Named("azblob").With(zap.String("container", o.Container), zap.String("blob", o.Blob)),
		name: o.Container + "/" + o.Blob,
		opts: o,
	}
	l.cls = azure.NewClassifier(o.clientOptions(), o.Container, azure.Kinds{Config: ErrConfig})
	if err := l.build(); err != nil {
		return nil, l.redact(fmt.Errorf("azblob lease %s: %w", l.name, err))
	}
	return l, nil
}

func configErr(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrConfig)
}

// clientOptions returns the storage account part of o.
func (o AzBlobOptions) clientOptions() azure.Options { return o.Options }

func (l *AzBlobLock) build() error {
	o := l.opts
	if err := azure.CheckContainerName(o.Container); err != nil {
		return configErr("%s", err)
	}
	if len(o.Blob) > 1024 {
		return configErr("blob name is longer than 1024 characters")
	}
	client, err := azure.NewClient(o.clientOptions())
	if err != nil {
		// All of New's errors are about the options.
		return configErr("%s", err)
	}
	l.cont = client.ServiceClient().NewContainerClient(o.Container)
	l.blob = l.cont.NewBlockBlobClient(o.Blob)
	// A nil LeaseID makes the SDK generate a random UUID: one per lock.
	l.lease, err = azlease.NewBlobClient(l.blob, nil)
	if err != nil {
		return fmt.Errorf("lease client: %w", err)
	}
	return nil
}

// accountNameFromURL returns the storage account name of an account URL.
func accountNameFromURL(s string) string { return azure.AccountNameFromURL(s) }

// LeaseID returns this lock's lease ID (for logs and tests; it is not a
// secret but grants nothing without storage credentials).
func (l *AzBlobLock) LeaseID() string { return *l.lease.LeaseID() }

// bound gives ctx a deadline when it has none, so that no call is unbounded
// even if a caller forgets one: all tries and back-offs of one call.
func (l *AzBlobLock) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return azure.Bound(ctx, l.opts.CallTimeout)
}

func leaseSeconds(d time.Duration) (int32, error) {
	if d < AzBlobMinLease || d > AzBlobMaxLease || d%time.Second != 0 {
		return 0, configErr("lease duration %v is not a whole number of seconds in [%v, %v]", d, AzBlobMinLease, AzBlobMaxLease)
	}
	return int32(d / time.Second), nil
}

// Acquire implements Lock. It reads the blob first: while another holder's
// lease is valid it returns that holder's record and ErrHeld without trying
// to acquire (one storage transaction per attempt for a standby; when the
// record names self.Holder it tries, in case the lease is still its own). Otherwise
// it acquires the lease, reads the stored term and writes the new holder
// record with term+1 under the lease. If that write fails it releases the
// lease again and returns the error: it never holds the lease without a
// recorded term.
func (l *AzBlobLock) Acquire(ctx context.Context, self Record, d time.Duration) (Record, error) {
	secs, err := leaseSeconds(d)
	if err != nil {
		return Record{}, fmt.Errorf("acquire lease %s: %w", l.name, err)
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()

	for attempt := 0; ; attempt++ {
		props, err := l.blob.GetProperties(ctx, nil)
		switch {
		case azure.IsNotFound(err) && attempt == 0:
			if err := l.ensure(ctx); err != nil {
				return Record{}, err
			}
		case err != nil:
			return Record{}, l.wrap("acquire lease", err)
		case leaseHeld(props.LeaseState):
			rec, _ := recordFromMeta(props.Metadata)
			if rec.Holder != self.Holder || self.Holder == "" {
				return rec, fmt.Errorf("acquire lease %s: held by %q: %w", l.name, rec.Holder, ErrHeld)
			}
			// Held under our own name: maybe our own lease (a renew that
			// timed out on our side but reached the storage). Acquiring
			// with our lease ID succeeds only if it is; if another process
			// uses the same name, the storage answers 409 below.
		}

		_, err = l.lease.AcquireLease(ctx, secs, nil)
		if err == nil {
			break
		}
		switch code := azure.ErrorCode(err); {
		case azure.IsNotFound(err) && attempt == 0:
			// Deleted between the read and the acquire: recreate once.
			if err := l.ensure(ctx); err != nil {
				return Record{}, err
			}
			continue
		case code == "LeaseAlreadyPresent" || code == "LeaseIsBreakingAndCannotBeAcquired":
			// Lost a race: report the winner as far as it has written.
			rec, _, rerr := l.read(ctx)
			if rerr != nil {
				rec = Record{}
			}
			return rec, fmt.Errorf("acquire lease %s: held by %q: %w", l.name, rec.Holder, ErrHeld)
		default:
			return Record{}, l.wrap("acquire lease", err)
		}
	}

	rec, err := l.recordAcquisition(ctx, self)
	if err != nil {
		// Never stay holder without a recorded term: give the lease back
		// with a fresh, bounded context (ctx may be what just expired).
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.CallTimeout)
		defer rcancel()
		if rerr := l.Release(rctx); rerr != nil {
			return Record{}, fmt.Errorf("%w (and the release after it failed: %v)", err, rerr)
		}
		return Record{}, err
	}
	l.leaseSec.Store(secs)
	return rec, nil
}

// recordAcquisition reads the term under our fresh lease and writes the new
// holder record with term+1, conditional on the blob being unchanged since
// that read and on our lease ID.
func (l *AzBlobLock) recordAcquisition(ctx context.Context, self Record) (Record, error) {
	props, err := l.blob.GetProperties(ctx, nil)
	if err != nil {
		return Record{}, l.wrap("read term after acquiring lease", err)
	}
	prev, err := recordFromMeta(props.Metadata)
	if err != nil {
		return Record{}, fmt.Errorf("acquire lease %s: %w", l.name, err)
	}
	rec := Record{
		Holder:       self.Holder,
		AdvertiseURL: self.AdvertiseURL,
		Term:         prev.Term + 1,
		AcquiredAt:   time.Now().UTC().Round(0),
	}
	_, err = l.blob.SetMetadata(ctx, recordToMeta(rec), &blob.SetMetadataOptions{
		AccessConditions: &blob.AccessConditions{
			LeaseAccessConditions:    &blob.LeaseAccessConditions{LeaseID: l.lease.LeaseID()},
			ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: props.ETag},
		},
	})
	if err != nil {
		return Record{}, l.wrap("write holder record after acquiring lease", err)
	}
	return rec, nil
}

// ensure creates the container and the empty lease blob if they are
// missing. Both creations are idempotent and safe when nodes race.
func (l *AzBlobLock) ensure(ctx context.Context) error {
	_, err := l.cont.Create(ctx, nil)
	switch code := azure.ErrorCode(err); {
	case err == nil:
		l.log.Info("created lease container")
	case code == "ContainerAlreadyExists":
	case azure.IsAuthError(err):
		return fmt.Errorf("create container %s: %s; create it up front (az storage container create) or allow this identity to: %w",
			l.opts.Container, l.describe(err), ErrConfig)
	default:
		return l.wrap("create lease container", err)
	}
	_, err = l.blob.Upload(ctx, streaming.NopCloser(bytes.NewReader(nil)), &blockblob.UploadOptions{
		AccessConditions: &blob.AccessConditions{
			ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to(azcore.ETagAny)},
		},
	})
	switch code := azure.ErrorCode(err); {
	case err == nil:
		l.log.Info("created lease blob")
	case code == "BlobAlreadyExists", code == "ConditionNotMet", code == "LeaseIdMissing",
		code == "LeaseAlreadyPresent", code == "LeaseIdMismatchWithBlobOperation":
		// Another node created (and maybe already leased) it.
	default:
		return l.wrap("create lease blob", err)
	}
	return nil
}

// Renew implements Lock. Azure renews for the duration given at
// acquisition, so d must not exceed it.
func (l *AzBlobLock) Renew(ctx context.Context, d time.Duration) error {
	secs, err := leaseSeconds(d)
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", l.name, err)
	}
	if held := l.leaseSec.Load(); held != 0 && secs > held {
		return fmt.Errorf("renew lease %s for %v: it was acquired for %ds and azure renews for that", l.name, d, held)
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	_, err = l.lease.RenewLease(ctx, nil)
	switch code := azure.ErrorCode(err); {
	case err == nil:
		return nil
	case code == "LeaseIdMismatchWithLeaseOperation", code == "LeaseNotPresentWithLeaseOperation",
		code == "LeaseLost", code == "LeaseIsBrokenAndCannotBeRenewed", code == "LeaseIdMissing",
		azure.IsNotFound(err):
		return fmt.Errorf("renew lease %s: %s: %w", l.name, l.describe(err), ErrLost)
	default:
		return l.wrap("renew lease", err)
	}
}

// Release implements Lock. A lease that is not ours (or not there) is not
// an error.
func (l *AzBlobLock) Release(ctx context.Context) error {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	_, err := l.lease.ReleaseLease(ctx, nil)
	switch code := azure.ErrorCode(err); {
	case err == nil:
		l.leaseSec.Store(0)
		return nil
	case code == "LeaseIdMismatchWithLeaseOperation", code == "LeaseNotPresentWithLeaseOperation",
		code == "LeaseLost", azure.IsNotFound(err):
		return nil
	default:
		return l.wrap("release lease", err)
	}
}

// Read implements Lock. ok is true while a lease is held (leased, or
// breaking: nobody else can acquire it yet). A missing blob or container
// reads as no holder, term 0.
func (l *AzBlobLock) Read(ctx context.Context) (Record, bool, error) {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return l.read(ctx)
}

func (l *AzBlobLock) read(ctx context.Context) (Record, bool, error) {
	props, err := l.blob.GetProperties(ctx, nil)
	if azure.IsNotFound(err) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, l.wrap("read lease", err)
	}
	rec, err := recordFromMeta(props.Metadata)
	if err != nil {
		return rec, leaseHeld(props.LeaseState), fmt.Errorf("read lease %s: %w", l.name, err)
	}
	return rec, leaseHeld(props.LeaseState), nil
}

func leaseHeld(s *azlease.StateType) bool {
	return s != nil && (*s == azlease.StateTypeLeased || *s == azlease.StateTypeBreaking)
}

// metaGet looks a metadata key up case-insensitively.
func metaGet(m map[string]*string, key string) (string, bool) {
	for k, v := range m {
		if strings.EqualFold(k, key) && v != nil {
			return *v, true
		}
	}
	return "", false
}

// recordFromMeta decodes the holder record. A missing term is 0 (a new
// blob); a term that is not a number is an error that needs an operator: we
// never restart the fencing sequence silently.
func recordFromMeta(m map[string]*string) (Record, error) {
	var rec Record
	if v, ok := metaGet(m, metaHolder); ok {
		rec.Holder = metaDecode(v)
	}
	if v, ok := metaGet(m, metaAdvertise); ok {
		rec.AdvertiseURL = metaDecode(v)
	}
	if v, ok := metaGet(m, metaAcquiredAt); ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			rec.AcquiredAt = t
		}
	}
	if v, ok := metaGet(m, metaTerm); ok {
		t, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return rec, fmt.Errorf("holder record term %q is not a number; fix or remove the blob's %q metadata: %w", v, metaTerm, ErrConfig)
		}
		rec.Term = t
	}
	return rec, nil
}

func recordToMeta(r Record) map[string]*string {
	return map[string]*string{
		metaTerm:       to(strconv.FormatUint(r.Term, 10)),
		metaHolder:     to(metaEncode(r.Holder)),
		metaAdvertise:  to(metaEncode(r.AdvertiseURL)),
		metaAcquiredAt: to(r.AcquiredAt.Format(time.RFC3339Nano)),
	}
}

// metaEncode makes a value safe for an HTTP header (metadata travels as
// x-ms-meta-* headers): bytes outside printable ASCII, spaces and '%' are
// percent-encoded. Plain names and URLs stay readable.
func metaEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c > '~' || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func metaDecode(s string) string {
	if v, err := url.PathUnescape(s); err == nil {
		return v
	}
	return s
}

func to[T any](v T) *T { return &v }
