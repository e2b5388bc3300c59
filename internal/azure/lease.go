package azure

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	azlease "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"
	"go.uber.org/zap"
)

// Azure's bounds of a blob lease with an expiry: a whole number of seconds
// in [MinLeaseDuration, MaxLeaseDuration]. (Infinite leases exist but baton
// never uses them: a dead holder must not keep a lease.)
const (
	MinLeaseDuration = 15 * time.Second
	MaxLeaseDuration = 60 * time.Second
)

// maxBlobName is Azure's limit on the length of a blob name.
const maxBlobName = 1024

// CheckLeaseDuration returns a *ConfigError naming what (e.g. "lease
// duration") when d is not a duration Azure accepts for a blob lease.
func CheckLeaseDuration(what string, d time.Duration) error {
	if d < MinLeaseDuration || d > MaxLeaseDuration || d%time.Second != 0 {
		return configErr("%s %v is not a whole number of seconds in [%v, %v]", what, d, MinLeaseDuration, MaxLeaseDuration)
	}
	return nil
}

// leaseIDRE is the form of a lease ID: a GUID, 8-4-4-4-12 hex digits.
var leaseIDRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// CheckLeaseID returns a *ConfigError when id is not a GUID (Azure refuses
// any other lease ID).
func CheckLeaseID(id string) error {
	if !leaseIDRE.MatchString(id) {
		return configErr("lease id %q is not a GUID (like 3f2504e0-4f89-41d3-9a0c-0305e82c3301)", id)
	}
	return nil
}

// NewLeaseID returns a random (version 4) UUID.
func NewLeaseID() (string, error) {
	var b [16]byte
	if _, err := crand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random lease id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// Container is one container of a storage account: its client, the error
// classification of its caller, and the call bound. It is safe for
// concurrent use.
type Container struct {
	log         *zap.Logger
	client      *container.Client
	name        string
	cls         *Classifier
	callTimeout time.Duration
}

// NewContainer checks o and the container name and builds the client. It
// makes no network call. Errors are about the options: they are
// *ConfigError, wrap k.Config and hold no secret. Every error the
// Container and its Leases return later wraps the kinds k as documented.
func NewContainer(o Options, name string, k Kinds, log *zap.Logger) (*Container, error) {
	if log == nil {
		return nil, errors.New("new azure container: nil logger")
	}
	o = o.WithDefaults()
	cls := NewClassifier(o, name, k)
	wrap := func(err error) error {
		if k.Config == nil {
			return err
		}
		return fmt.Errorf("%w: %w", err, k.Config)
	}
	if err := CheckContainerName(name); err != nil {
		return nil, wrap(err)
	}
	client, err := NewClient(o)
	if err != nil {
		return nil, wrap(err)
	}
	return &Container{
		log:         log,
		client:      client.ServiceClient().NewContainerClient(name),
		name:        name,
		cls:         cls,
		callTimeout: o.CallTimeout,
	}, nil
}

// Name returns the container's name.
func (c *Container) Name() string { return c.name }

// Client returns the SDK client of the container, for blob calls this
// package does not wrap (upload, download, listing). Classify their errors
// with Classify.
func (c *Container) Client() *container.Client { return c.client }

// CallTimeout is the timeout of one try of one call.
func (c *Container) CallTimeout() time.Duration { return c.callTimeout }

// Bound gives ctx the budget of one whole call when it has no deadline.
func (c *Container) Bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return Bound(ctx, c.callTimeout)
}

// Describe turns err into a short, one-line description without secrets.
func (c *Container) Describe(err error) string { return c.cls.Describe(err) }

// Classify returns err as "prefix: what happened", classified (see
// Classifier.Classify) and redacted.
func (c *Container) Classify(prefix string, err error) error {
	return c.Redact(c.cls.Classify(prefix, err))
}

// Redact removes every secret from err's text (see Classifier.Redact).
func (c *Container) Redact(err error, kinds ...error) error { return c.cls.Redact(err, kinds...) }

// Ensure creates the container when it is missing. Creating one that
// exists is not an error; an identity that may not create containers gets
// an error wrapping Kinds.Config that says to create it up front.
func (c *Container) Ensure(ctx context.Context) error {
	ctx, cancel := c.Bound(ctx)
	defer cancel()
	_, err := c.client.Create(ctx, nil)
	switch {
	case err == nil:
		c.log.Info("created container", zap.String("container", c.name))
		return nil
	case bloberror.HasCode(err, bloberror.ContainerAlreadyExists):
		return nil
	case IsAuthError(err):
		return c.Redact(c.cls.configErrorf("create container %s: %s; create it up front (az storage container create) or allow this identity to",
			c.name, c.Describe(err)))
	default:
		return c.Classify("create container "+c.name, err)
	}
}

// LeaseOptions configures Container.Lease.
type LeaseOptions struct {
	// ID is the lease ID, a GUID; "" picks a random one.
	ID string
	// Noun names the lease in errors ("acquire NOUN container/blob: ...").
	// Default "lease".
	Noun string
}

// Lease is one lease ID on one blob: the blob-lease primitive. Creating it
// makes no call; it does not hold anything until Acquire succeeds. Its ID
// never changes (Change moves the lease to another ID, not the handle).
// It is safe for concurrent use.
type Lease struct {
	c    *Container
	blob *blockblob.Client
	path string // container/blob
	noun string
	id   string
}

// Lease returns the handle of lease ID o.ID on blob name of c. Errors
// (a bad ID, a blob name too long) are *ConfigError and wrap Kinds.Config.
func (c *Container) Lease(name string, o LeaseOptions) (*Lease, error) {
	if name == "" || len(name) > maxBlobName {
		return nil, c.configError(configErr("blob name must have 1 to %d characters", maxBlobName))
	}
	if o.Noun == "" {
		o.Noun = "lease"
	}
	l := &Lease{c: c, blob: c.client.NewBlockBlobClient(name), path: c.name + "/" + name, noun: o.Noun}
	return l.WithID(o.ID)
}

func (c *Container) configError(err error) error {
	if c.cls.kinds.Config == nil {
		return err
	}
	return fmt.Errorf("%w: %w", err, c.cls.kinds.Config)
}

// WithID returns a handle of lease ID id ("" = random) on the same blob.
func (l *Lease) WithID(id string) (*Lease, error) {
	if id == "" {
		var err error
		if id, err = NewLeaseID(); err != nil {
			return nil, err
		}
	}
	if err := CheckLeaseID(id); err != nil {
		return nil, l.c.configError(err)
	}
	n := *l
	n.id = strings.ToLower(id)
	return &n, nil
}

// ID returns the lease ID (lower case).
func (l *Lease) ID() string { return l.id }

// String names the lease for errors and logs: "lease container/blob".
func (l *Lease) String() string { return l.noun + " " + l.path }

func (l *Lease) client() *azlease.BlobClient {
	// NewBlobClient fails only for a client type it does not know.
	lc, _ := azlease.NewBlobClient(l.blob, &azlease.BlobClientOptions{LeaseID: to(l.id)})
	return lc
}

// fail classifies a storage error of op on this lease.
func (l *Lease) fail(op string, err error) error {
	return l.c.Classify(op+" "+l.String(), err)
}

// kindErr is an answer of the storage that means kind (Held, Lost).
func (l *Lease) kindErr(op string, err, kind error) error {
	if kind == nil {
		return l.c.Redact(fmt.Errorf("%s %s: %s", op, l, l.c.Describe(err)))
	}
	return l.c.Redact(fmt.Errorf("%s %s: %s: %w", op, l, l.c.Describe(err), kind))
}

// answer classifies the result of op by this ID: success, the ID does not
// hold the lease (Kinds.Lost), or a storage error.
func (l *Lease) answer(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case isLeaseNotHeld(err):
		return l.kindErr(op, err, l.c.cls.kinds.Lost)
	default:
		return l.fail(op, err)
	}
}

// Ensure creates the empty blob if it is missing, and the container first
// when cause (the not-found error that showed something missing; nil when
// unknown) does not say that only the blob is missing, or when the blob's
// creation finds no container. Both creations are idempotent and safe when
// nodes race; a blob that exists (leased or not) is left as it is.
func (l *Lease) Ensure(ctx context.Context, cause error) error {
	ctx, cancel := l.c.Bound(ctx)
	defer cancel()
	needContainer := !bloberror.HasCode(cause, bloberror.BlobNotFound)
	for {
		if needContainer {
			if err := l.c.Ensure(ctx); err != nil {
				return err
			}
		}
		_, err := l.blob.Upload(ctx, streaming.NopCloser(bytes.NewReader(nil)), &blockblob.UploadOptions{
			AccessConditions: &blob.AccessConditions{
				ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to(azcore.ETagAny)},
			},
		})
		switch {
		case err == nil:
			l.c.log.Info("created blob", zap.String("container", l.c.name), zap.String("blob", l.path))
			return nil
		case isAlreadyThere(err):
			return nil // another node created (and maybe already leased) it
		case bloberror.HasCode(err, bloberror.ContainerNotFound) && !needContainer:
			needContainer = true
		default:
			return l.c.Classify("create "+l.noun+" blob "+l.path, err)
		}
	}
}

// Acquire takes the lease under this handle's ID for d (Azure's bounds;
// otherwise an error wrapping Kinds.Config before any call). A missing
// blob or container is created once (Ensure). Acquiring a lease this ID
// already holds succeeds and restarts its expiry. When another ID holds
// the lease the error wraps Kinds.Held.
func (l *Lease) Acquire(ctx context.Context, d time.Duration) error {
	if err := CheckLeaseDuration(l.noun+" duration", d); err != nil {
		return l.c.Redact(fmt.Errorf("acquire %s: %w", l, l.c.configError(err)))
	}
	ctx, cancel := l.c.Bound(ctx)
	defer cancel()
	lc := l.client()
	for ensured := false; ; ensured = true {
		_, err := lc.AcquireLease(ctx, int32(d/time.Second), nil)
		switch {
		case err == nil:
			return nil
		case isLeaseHeld(err):
			return l.kindErr("acquire", err, l.c.cls.kinds.Held)
		case IsNotFound(err) && !ensured:
			// Missing, or deleted since: create it once.
			if err := l.Ensure(ctx, err); err != nil {
				return err
			}
		default:
			return l.fail("acquire", err)
		}
	}
}

// Renew restarts the lease's expiry, for the duration it was acquired
// with (Azure renews an expired lease too as long as nobody else took it).
// When this ID does not hold the lease the error wraps Kinds.Lost.
func (l *Lease) Renew(ctx context.Context) error {
	ctx, cancel := l.c.Bound(ctx)
	defer cancel()
	_, err := l.client().RenewLease(ctx, nil)
	return l.answer("renew", err)
}

// Release gives the lease up: another ID can acquire it at once. When this
// ID does not hold the lease (or the blob is gone) nothing changes and the
// error wraps Kinds.Lost; callers that do not care test for it.
func (l *Lease) Release(ctx context.Context) error {
	ctx, cancel := l.c.Bound(ctx)
	defer cancel()
	_, err := l.client().ReleaseLease(ctx, nil)
	return l.answer("release", err)
}

// Change moves the lease this ID holds to proposedID (Azure's Change
// Lease): the expiry stays as it is, and from then on only proposedID can
// renew, release or change it; this handle's ID no longer holds it.
// Repeating a change that succeeded (proposedID already holds the lease)
// succeeds. A proposedID that is not a GUID wraps Kinds.Config before any
// call; when this ID does not hold the lease (or it is being broken) the
// error wraps Kinds.Lost.
func (l *Lease) Change(ctx context.Context, proposedID string) error {
	if err := CheckLeaseID(proposedID); err != nil {
		return l.c.Redact(fmt.Errorf("change %s: proposed %w", l, l.c.configError(err)))
	}
	ctx, cancel := l.c.Bound(ctx)
	defer cancel()
	_, err := l.client().ChangeLease(ctx, strings.ToLower(proposedID), nil)
	return l.answer("change", err)
}

// Break ends the lease whoever holds it (no lease ID is needed): no ID can
// renew it any more, and nobody can acquire it until the break period
// ends, the smaller of period (rounded down to whole seconds, at most 60 s;
// 0 breaks at once) and the time the lease had left. It returns the time
// until the lease can be acquired again. A blob without a lease, or no
// blob, is not an error (0).
func (l *Lease) Break(ctx context.Context, period time.Duration) (time.Duration, error) {
	secs := int32(min(max(period, 0), MaxLeaseDuration) / time.Second)
	ctx, cancel := l.c.Bound(ctx)
	defer cancel()
	resp, err := l.client().BreakLease(ctx, &azlease.BlobBreakOptions{BreakPeriod: &secs})
	switch {
	case err == nil:
		if resp.LeaseTime == nil {
			return 0, nil
		}
		return time.Duration(*resp.LeaseTime) * time.Second, nil
	case IsNotFound(err) || bloberror.HasCode(err, bloberror.LeaseNotPresentWithLeaseOperation):
		return 0, nil
	default:
		return 0, l.fail("break", err)
	}
}

// LeaseState is the state of a blob's lease.
type LeaseState string

// The lease states Azure reports.
const (
	StateAvailable LeaseState = "available"
	StateLeased    LeaseState = "leased"
	StateExpired   LeaseState = "expired"
	StateBreaking  LeaseState = "breaking"
	StateBroken    LeaseState = "broken"
)

// Properties is what Properties and HeldProperties read of the blob.
type Properties struct {
	// Exists is false when the blob or its container is missing; the
	// other fields are then empty.
	Exists bool
	// State is the lease state; Held tells whether an ID holds the lease.
	State LeaseState
	// Metadata has the blob's metadata with lower-case keys (Go's HTTP
	// client hands them back canonicalised: "Term", "Advertise_url").
	Metadata map[string]string
	// ETag is the blob's entity tag, for SetMetadata's ifMatch.
	ETag azcore.ETag
}

// Held reports whether some lease ID holds the lease: leased, or breaking
// (nobody else can acquire it yet).
func (p Properties) Held() bool { return p.State == StateLeased || p.State == StateBreaking }

// Properties reads the blob's lease state and metadata, whoever holds the
// lease. A missing blob or container is not an error (Exists false).
func (l *Lease) Properties(ctx context.Context) (Properties, error) {
	return l.properties(ctx, false)
}

// HeldProperties reads the blob's lease state and metadata with this ID as
// an access condition: it succeeds only while this ID holds the lease, and
// otherwise (or when the blob is gone) returns an error wrapping
// Kinds.Lost.
func (l *Lease) HeldProperties(ctx context.Context) (Properties, error) {
	return l.properties(ctx, true)
}

func (l *Lease) properties(ctx context.Context, held bool) (Properties, error) {
	ctx, cancel := l.c.Bound(ctx)
	defer cancel()
	var o *blob.GetPropertiesOptions
	if held {
		o = &blob.GetPropertiesOptions{AccessConditions: &blob.AccessConditions{
			LeaseAccessConditions: &blob.LeaseAccessConditions{LeaseID: to(l.id)},
		}}
	}
	props, err := l.blob.GetProperties(ctx, o)
	switch {
	case err == nil:
	case held && isLeaseNotHeld(err):
		return Properties{}, l.kindErr("read", err, l.c.cls.kinds.Lost)
	case IsNotFound(err):
		return Properties{}, nil
	default:
		return Properties{}, l.fail("read", err)
	}
	p := Properties{Exists: true, Metadata: make(map[string]string, len(props.Metadata))}
	if props.LeaseState != nil {
		p.State = LeaseState(*props.LeaseState)
	}
	if props.ETag != nil {
		p.ETag = *props.ETag
	}
	for k, v := range props.Metadata {
		if v != nil {
			p.Metadata[strings.ToLower(k)] = *v
		}
	}
	return p, nil
}

// SetMetadata replaces the blob's metadata with meta (values must be
// header-safe: printable ASCII) while this ID holds the lease, and, when
// ifMatch is not empty, only if the blob's ETag is still ifMatch. When
// this ID does not hold the lease the error wraps Kinds.Lost; a changed
// ETag is a plain error ("412 ConditionNotMet").
func (l *Lease) SetMetadata(ctx context.Context, meta map[string]string, ifMatch azcore.ETag) error {
	ctx, cancel := l.c.Bound(ctx)
	defer cancel()
	m := make(map[string]*string, len(meta))
	for k, v := range meta {
		m[k] = to(v)
	}
	ac := &blob.AccessConditions{LeaseAccessConditions: &blob.LeaseAccessConditions{LeaseID: to(l.id)}}
	if ifMatch != "" {
		ac.ModifiedAccessConditions = &blob.ModifiedAccessConditions{IfMatch: &ifMatch}
	}
	_, err := l.blob.SetMetadata(ctx, m, &blob.SetMetadataOptions{AccessConditions: ac})
	return l.answer("write metadata of", err)
}

func to[T any](v T) *T { return &v }
