package lease

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors returned by Lock implementations. Callers test them with
// errors.Is; implementations wrap them with the lease's name.
var (
	// ErrHeld means another holder has a valid lease. It is the normal
	// "someone else is active" answer, not a fault.
	ErrHeld = errors.New("lease: held by another node")
	// ErrLost means this process no longer holds the lease it thought it
	// held (it expired and somebody else took it, or it was broken).
	ErrLost = errors.New("lease: lost")
	// ErrConfig means the lock can never work as configured (bad
	// credentials, missing account, permission denied). Retrying does not
	// help; the node stays out of candidacy until an operator fixes it.
	ErrConfig = errors.New("lease: storage misconfigured")
)

// Record is the holder record kept with the lease: who holds it, where that
// node accepts forwarded requests, and the fencing term of the acquisition.
type Record struct {
	Holder       string    `json:"holder"`
	AdvertiseURL string    `json:"advertise_url,omitempty"`
	Term         uint64    `json:"term"`
	AcquiredAt   time.Time `json:"acquired_at"`
	// Expires is the wall-clock expiry the storage last recorded, when the
	// backend knows it (the file backend does; Azure Blob does not expose
	// it). Informational only: no decision is taken on another host's clock.
	Expires time.Time `json:"expires,omitzero"`
	// Resumed is set by Acquire when the lease was still held, valid, under
	// this Lock's own lease ID: taken over from an earlier process of this
	// node that used the same ID (see Keyed), or from this process itself.
	// It is not stored.
	Resumed bool `json:"-"`
}

// Lock is one process's handle on a shared lease. Each Lock carries its own
// random lease ID; two processes never share one. All calls honour ctx and
// must return when it is done.
type Lock interface {
	// Acquire tries once to take the lease for d. On success the term stored
	// with the lease is incremented by exactly one and the new record (with
	// self's Holder and AdvertiseURL) is returned. If another holder has a
	// valid lease it returns that holder's record and an error wrapping
	// ErrHeld.
	Acquire(ctx context.Context, self Record, d time.Duration) (Record, error)
	// Renew extends the lease this Lock holds by d. It returns an error
	// wrapping ErrLost when the lease is no longer ours.
	Renew(ctx context.Context, d time.Duration) error
	// Release gives the lease up so another node can acquire it at once.
	// Releasing a lease that is not held is not an error.
	Release(ctx context.Context) error
	// Read returns the current holder record. ok is false when nobody holds
	// a valid lease (the record may still carry the last term).
	Read(ctx context.Context) (rec Record, ok bool, err error)
}

// Keyed is a Lock whose lease ID its owner chooses. With an ID kept on
// disk by the host (see Config.IDs), a restarted process takes over the
// lease its dead predecessor left behind instead of waiting for it to
// expire: Acquire succeeds at once while the lease is still held under the
// same ID.
type Keyed interface {
	Lock
	// LeaseID returns the ID the next calls use.
	LeaseID() string
	// SetLeaseID makes the next calls use id. The caller makes sure no
	// call of this Lock is in flight.
	SetLeaseID(id string)
}

// Changer is a Lock that can hand its lease to a named node without ever
// letting it go free (Azure Blob's Change Lease).
type Changer interface {
	Keyed
	// Change moves the lease this Lock holds to the ID to, which the
	// target proposed. Afterwards this Lock no longer holds it. It wraps
	// ErrLost when the lease is not held under this Lock's ID.
	Change(ctx context.Context, to string) error
	// Adopt takes over the lease held under from: it moves it to this
	// Lock's ID, makes it last d from now (whatever duration the previous
	// holder used) and writes self's holder record with the
	// term incremented by one, like Acquire. It wraps ErrLost when from
	// does not hold a valid lease.
	Adopt(ctx context.Context, from string, self Record, d time.Duration) (Record, error)
	// ReleaseID releases the lease if it is held under id; otherwise it
	// does nothing.
	ReleaseID(ctx context.Context, id string) error
}

// IDStore keeps this host's lease ID durable (see package
// internal/instance): Retire replaces the ID old with a new one on disk
// before the Elector makes a call that gives the lease away.
type IDStore interface {
	Retire(old string) (next string, err error)
}
