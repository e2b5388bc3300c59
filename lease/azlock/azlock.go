package azlock

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/internal/azure"
	"github.com/batonproxy/baton/lease"
)

// Defaults of Options.
const (
	DefaultContainer = "baton"
	DefaultBlob      = "leader"
)

// Metadata keys of the holder record (the primitive hands them back in
// lower case).
const (
	metaTerm       = "term"
	metaHolder     = "holder"
	metaAdvertise  = "advertise_url"
	metaAcquiredAt = "acquired_at"
)

// kinds maps the storage's answers to package lease's sentinels.
var kinds = azure.Kinds{Config: lease.ErrConfig, Held: lease.ErrHeld, Lost: lease.ErrLost}

// Options configures New: the storage account and its authentication
// (secret fields hold the secret values themselves, already read from a
// file or the environment by the caller; they never appear in logs or
// errors), the blob that holds the lease, and the lock's lease ID.
type Options struct {
	azure.Options
	// Container holds the lease blob. Default "baton".
	Container string
	// Blob is the lease blob's name. Default "leader".
	Blob string
	// LeaseID is this lock's lease ID, a GUID; "" picks a random one. Two
	// processes must never use the same one.
	LeaseID string
}

// Lock is a lease.Lock kept in an Azure Blob Storage blob lease. It is safe
// for concurrent use.
type Lock struct {
	name     string // "container/blob", for errors
	cont     *azure.Container
	current  atomic.Pointer[azure.Lease] // the lease handle under this lock's ID (SetLeaseID replaces it)
	leaseSec atomic.Int32                // duration of the last successful acquire, seconds
}

var _ lease.Changer = (*Lock)(nil)

// New checks o and builds the storage clients. It makes no network call.
// Errors about the options wrap lease.ErrConfig.
func New(o Options, log *zap.Logger) (*Lock, error) {
	if log == nil {
		return nil, errors.New("new azblob lock: nil logger")
	}
	if o.Container == "" {
		o.Container = DefaultContainer
	}
	if o.Blob == "" {
		o.Blob = DefaultBlob
	}
	l := &Lock{name: o.Container + "/" + o.Blob}
	log = log.Named("azblob").With(zap.String("container", o.Container), zap.String("blob", o.Blob))
	var err error
	if l.cont, err = azure.NewContainer(o.Options, o.Container, kinds, log); err != nil {
		return nil, fmt.Errorf("azblob lease %s: %w", l.name, err)
	}
	h, err := l.cont.Lease(o.Blob, azure.LeaseOptions{ID: o.LeaseID})
	if err != nil {
		return nil, fmt.Errorf("azblob lease %s: %w", l.name, err)
	}
	l.current.Store(h)
	return l, nil
}

// lease is the handle under this lock's current ID.
func (l *Lock) lease() *azure.Lease { return l.current.Load() }

// LeaseID returns this lock's lease ID (for logs, tests and handovers; it
// is not a secret but grants nothing without storage credentials).
func (l *Lock) LeaseID() string { return l.lease().ID() }

// SetLeaseID implements lease.Keyed: later calls use id, which must be a
// GUID (an invalid one is ignored and the current ID kept: the next calls
// then behave as before, which is safe). It is what keeps a node's lease ID
// across a restart on one host (package internal/instance).
func (l *Lock) SetLeaseID(id string) {
	if h, err := l.lease().WithID(id); err == nil {
		l.current.Store(h)
	}
}

// leaseSeconds checks d against Azure's bounds.
func leaseSeconds(d time.Duration) (int32, error) {
	if err := azure.CheckLeaseDuration("lease duration", d); err != nil {
		return 0, fmt.Errorf("%w: %w", err, lease.ErrConfig)
	}
	return int32(d / time.Second), nil
}

// Acquire implements lease.Lock. It reads the blob first: while another
// holder's lease is valid it returns that holder's record and
// lease.ErrHeld without trying to acquire (one storage transaction per
// attempt for a standby; when the record names self.Holder it tries, in
// case the lease is still its own). Otherwise it acquires the lease, reads
// the stored term and writes the new holder record with term+1 under the
// lease. If that write fails it returns the error and sends no release
// (see recordAcquisition): the node never serves without a recorded term,
// and the lease expires on its own.
func (l *Lock) Acquire(ctx context.Context, self lease.Record, d time.Duration) (lease.Record, error) {
	secs, err := leaseSeconds(d)
	if err != nil {
		return lease.Record{}, fmt.Errorf("acquire lease %s: %w", l.name, err)
	}
	ctx, cancel := l.cont.Bound(ctx)
	defer cancel()

	h := l.lease()
	props, err := h.Properties(ctx)
	resumed := false
	switch {
	case err != nil:
		return lease.Record{}, err
	case !props.Exists:
		if err := h.Ensure(ctx, nil); err != nil {
			return lease.Record{}, err
		}
	case props.Held():
		rec, _ := recordFromMeta(props.Metadata)
		if rec.Holder != self.Holder || self.Holder == "" {
			return rec, fmt.Errorf("acquire lease %s: held by %q: %w", l.name, rec.Holder, lease.ErrHeld)
		}
		// Held under our own name: maybe our own lease (a renew that
		// timed out on our side but reached the storage, or a dead
		// predecessor's with the same ID: lease.Keyed). Acquiring with our
		// lease ID succeeds only if it is; if another process uses the
		// same name, the storage answers 409 below.
		resumed = true
	}

	err = h.Acquire(ctx, d)
	if errors.Is(err, lease.ErrHeld) {
		// Lost a race: report the winner as far as it has written.
		rec, _, rerr := l.read(ctx)
		if rerr != nil {
			rec = lease.Record{}
		}
		return rec, fmt.Errorf("acquire lease %s: held by %q: %w", l.name, rec.Holder, lease.ErrHeld)
	}
	if err != nil {
		return lease.Record{}, err
	}
	rec, err := l.recordAcquisition(ctx, self, secs)
	rec.Resumed = err == nil && resumed
	return rec, err
}

// recordAcquisition reads the term under our lease and writes the new
// holder record with term+1, conditional on our lease ID and on the blob
// being unchanged since that read. If that fails it returns the error and
// leaves the lease to expire: the node does not serve on it, and a release
// here would go out under the node's durable lease ID without the Elector
// retiring it first (a release that arrives late could then free a lease
// the same ID took again; see package lease, "Crash-restart takeover").
func (l *Lock) recordAcquisition(ctx context.Context, self lease.Record, secs int32) (lease.Record, error) {
	rec, err := l.writeRecord(ctx, self)
	if err != nil {
		return lease.Record{}, err
	}
	l.leaseSec.Store(secs)
	return rec, nil
}

func (l *Lock) writeRecord(ctx context.Context, self lease.Record) (lease.Record, error) {
	props, err := l.lease().HeldProperties(ctx)
	if err != nil {
		return lease.Record{}, err
	}
	prev, err := recordFromMeta(props.Metadata)
	if err != nil {
		return lease.Record{}, fmt.Errorf("acquire lease %s: %w", l.name, err)
	}
	rec := lease.Record{
		Holder:       self.Holder,
		AdvertiseURL: self.AdvertiseURL,
		Term:         prev.Term + 1,
		AcquiredAt:   time.Now().UTC().Round(0),
	}
	if err := l.lease().SetMetadata(ctx, recordToMeta(rec), props.ETag); err != nil {
		return lease.Record{}, err
	}
	return rec, nil
}

// Renew implements lease.Lock. Azure renews for the duration given at
// acquisition, so d must not exceed it.
func (l *Lock) Renew(ctx context.Context, d time.Duration) error {
	secs, err := leaseSeconds(d)
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", l.name, err)
	}
	if held := l.leaseSec.Load(); held != 0 && secs > held {
		return fmt.Errorf("renew lease %s for %v: it was acquired for %ds and azure renews for that", l.name, d, held)
	}
	return l.lease().Renew(ctx)
}

// Release implements lease.Lock. A lease that is not ours (or not there)
// is not an error.
func (l *Lock) Release(ctx context.Context) error { return l.ReleaseID(ctx, l.LeaseID()) }

// ReleaseID releases the lease if it is held under id (a GUID), whichever
// process holds it: the step that frees a lease after a handover that did
// not complete, or this lock's own (Release). A lease not held under id
// (or no blob) is not an error.
func (l *Lock) ReleaseID(ctx context.Context, id string) error {
	h, err := l.lease().WithID(id)
	if err != nil {
		return fmt.Errorf("release lease %s: %w", l.name, err)
	}
	err = h.Release(ctx)
	if errors.Is(err, lease.ErrLost) {
		return nil
	}
	if err == nil && h.ID() == l.LeaseID() {
		l.leaseSec.Store(0)
	}
	return err
}

// Change moves the lease this lock holds to proposedID (a GUID; Azure's
// Change Lease), typically the lease ID of the node that is to take over
// (see Adopt). The lease stays held throughout, with the expiry it had;
// afterwards this lock no longer holds it (unless proposedID is its own
// ID) and its Renew returns lease.ErrLost. Repeating a change that
// succeeded succeeds. The error wraps lease.ErrLost when this lock does not
// hold the lease, and lease.ErrConfig when proposedID is not a GUID.
func (l *Lock) Change(ctx context.Context, proposedID string) error {
	if err := l.lease().Change(ctx, proposedID); err != nil {
		return err
	}
	if !strings.EqualFold(proposedID, l.LeaseID()) {
		l.leaseSec.Store(0)
	}
	return nil
}

// Adopt takes over the lease currently held under fromID (a GUID): it
// changes that lease to this lock's own ID, acquires it again under that
// ID for d (so it lasts d from about now, not from the previous holder's
// last renewal, and later renewals are for d even when the previous
// holder's lease.duration differed), and records self as the holder with
// term+1 exactly as Acquire does. On success this lock holds the
// lease and returns the new record. The error wraps lease.ErrLost when
// fromID no longer holds the lease (it expired, was released or moved
// on), and lease.ErrConfig when fromID is not a GUID or d is out of
// Azure's bounds. If the renewal or the record fails after the change, the
// error is returned and no release is sent (see recordAcquisition): the
// lease expires on its own.
func (l *Lock) Adopt(ctx context.Context, fromID string, self lease.Record, d time.Duration) (lease.Record, error) {
	secs, err := leaseSeconds(d)
	if err != nil {
		return lease.Record{}, fmt.Errorf("adopt lease %s: %w", l.name, err)
	}
	from, err := l.lease().WithID(fromID)
	if err != nil {
		return lease.Record{}, fmt.Errorf("adopt lease %s: %w", l.name, err)
	}
	ctx, cancel := l.cont.Bound(ctx)
	defer cancel()
	if err := from.Change(ctx, l.LeaseID()); err != nil {
		return lease.Record{}, fmt.Errorf("adopt lease %s from %s: %w", l.name, from.ID(), err)
	}
	// Acquire, not Renew: acquiring a lease this ID already holds sets the
	// duration anew, and Azure would otherwise keep the one the previous
	// holder acquired with. A node whose lease.duration is longer than its
	// predecessor's would then fence by a lease that expires earlier than it
	// thinks.
	if err := l.lease().Acquire(ctx, d); err != nil {
		// Not released, for the reason recordAcquisition gives: the lease
		// expires on its own. Held by another ID means ours is gone.
		if errors.Is(err, lease.ErrHeld) {
			err = fmt.Errorf("%w: %w", err, lease.ErrLost)
		}
		return lease.Record{}, fmt.Errorf("adopt lease %s: %w", l.name, err)
	}
	return l.recordAcquisition(ctx, self, secs)
}

// Read implements lease.Lock. ok is true while a lease is held (leased, or
// breaking: nobody else can acquire it yet). A missing blob or container
// reads as no holder, term 0.
func (l *Lock) Read(ctx context.Context) (lease.Record, bool, error) {
	ctx, cancel := l.cont.Bound(ctx)
	defer cancel()
	return l.read(ctx)
}

func (l *Lock) read(ctx context.Context) (lease.Record, bool, error) {
	props, err := l.lease().Properties(ctx)
	if err != nil || !props.Exists {
		return lease.Record{}, false, err
	}
	rec, err := recordFromMeta(props.Metadata)
	if err != nil {
		return rec, props.Held(), fmt.Errorf("read lease %s: %w", l.name, err)
	}
	return rec, props.Held(), nil
}

// recordFromMeta decodes the holder record. A missing term is 0 (a new
// blob); a term that is not a number is an error that needs an operator: we
// never restart the fencing sequence silently.
func recordFromMeta(m map[string]string) (lease.Record, error) {
	var rec lease.Record
	if v, ok := m[metaHolder]; ok {
		rec.Holder = metaDecode(v)
	}
	if v, ok := m[metaAdvertise]; ok {
		rec.AdvertiseURL = metaDecode(v)
	}
	if v, ok := m[metaAcquiredAt]; ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			rec.AcquiredAt = t
		}
	}
	if v, ok := m[metaTerm]; ok {
		t, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return rec, fmt.Errorf("holder record term %q is not a number; fix or remove the blob's %q metadata: %w", v, metaTerm, lease.ErrConfig)
		}
		rec.Term = t
	}
	return rec, nil
}

func recordToMeta(r lease.Record) map[string]string {
	return map[string]string{
		metaTerm:       strconv.FormatUint(r.Term, 10),
		metaHolder:     metaEncode(r.Holder),
		metaAdvertise:  metaEncode(r.AdvertiseURL),
		metaAcquiredAt: r.AcquiredAt.Format(time.RFC3339Nano),
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
