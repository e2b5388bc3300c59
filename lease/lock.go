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
