package certstore

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/internal/azure"
)

// heldLock is one lock this Storage holds, with its renewal goroutine.
type heldLock struct {
	name     string
	lc       *azure.Lease
	cancel   context.CancelFunc // stops the renewal
	done     chan struct{}      // closed when the renewal goroutine ended
	released chan struct{}      // closed by Unlock after the release: wakes local waiters
	lost     atomic.Pointer[error]
}

// lockBlob returns the blob name of lock name.
func (s *Storage) lockBlob(name string) (string, error) {
	if name == "" {
		return "", errors.New("certstore: empty lock name")
	}
	b, err := s.blobName(lockDir + name)
	if err != nil {
		return "", fmt.Errorf("certstore: lock name %q: %w", name, err)
	}
	return b, nil
}

// Lock implements certmagic.Locker. It blocks until the lock is acquired,
// ctx ends, or the storage refuses for a reason no retry can fix (an
// ErrConfig error). Transient storage errors are logged and retried at the
// poll interval.
func (s *Storage) Lock(ctx context.Context, name string) error {
	if _, err := s.lockBlob(name); err != nil {
		return err
	}
	// One lease ID for all attempts: if an acquire reaches the storage but
	// its answer is lost, the next attempt with the same ID succeeds
	// (instead of waiting out our own orphaned lease).
	id, err := azure.NewLeaseID()
	if err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	log := s.log.With(zap.String("lock", name))
	start := time.Now()
	failing := false
	for {
		ok, wait, err := s.tryLock(ctx, name, id)
		switch {
		case ok:
			log.Debug("lock acquired", zap.Duration("waited", time.Since(start)))
			return nil
		case err != nil && (errors.Is(err, ErrConfig) || errors.Is(err, ErrClosed) || ctx.Err() != nil):
			return err
		case err != nil && !failing:
			failing = true
			log.Warn("cannot acquire lock yet, retrying", zap.Error(err))
		case err == nil && failing:
			failing = false
			log.Info("lock storage reachable again")
		}
		t := time.NewTimer(s.jitter())
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("lock %s: %w", name, ctx.Err())
		case <-wait:
			t.Stop()
		case <-t.C:
		}
	}
}

// TryLock implements certmagic.TryLocker: one attempt, false when another
// holder has the lock.
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	if _, err := s.lockBlob(name); err != nil {
		return false, err
	}
	id, err := azure.NewLeaseID()
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", name, err)
	}
	ok, _, err := s.tryLock(ctx, name, id)
	return ok, err
}

// jitter returns the poll interval ±25 %.
func (s *Storage) jitter() time.Duration {
	return s.poll*3/4 + mrand.N(s.poll/2+1)
}

// tryLock makes one attempt with lease ID id. When this Storage already
// holds the lock it makes no call and returns a channel closed at that
// holder's Unlock.
func (s *Storage) tryLock(ctx context.Context, name, id string) (bool, <-chan struct{}, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false, nil, fmt.Errorf("lock %s: %w", name, ErrClosed)
	}
	if h, ok := s.held[name]; ok {
		s.mu.Unlock()
		return false, h.released, nil
	}
	s.mu.Unlock()

	blobName, _ := s.lockBlob(name)
	lc, err := s.cont.Lease(blobName, azure.LeaseOptions{ID: id, Noun: "lock"})
	if err != nil {
		return false, nil, fmt.Errorf("lock %s: %w", name, err)
	}
	// The primitive creates a missing lock blob (and container) once.
	sent := time.Now()
	err = lc.Acquire(ctx, s.ttl)
	switch {
	case errors.Is(err, errLockHeld):
		return false, nil, nil
	case err != nil:
		return false, nil, err
	}

	h := &heldLock{name: name, lc: lc, done: make(chan struct{}), released: make(chan struct{})}
	rctx, rcancel := context.WithCancel(context.Background())
	h.cancel = rcancel
	s.mu.Lock()
	if s.closed {
		// Close ran during the acquire: give the lease back at once.
		s.mu.Unlock()
		rcancel()
		close(h.done)
		s.release(ctx, h)
		return false, nil, fmt.Errorf("lock %s: %w", name, ErrClosed)
	}
	s.held[name] = h
	s.mu.Unlock()
	go s.keep(rctx, h, sent)
	return true, nil, nil
}

// keep renews h's lease every renewEvery until ctx ends or the lease is
// lost; lastOK is the send time of the acquisition. A renewal that fails for a transient reason is retried at the next
// tick; Azure renews an expired lease too as long as nobody else took it.
func (s *Storage) keep(ctx context.Context, h *heldLock, lastOK time.Time) {
	defer close(h.done)
	log := s.log.With(zap.String("lock", h.name))
	t := time.NewTicker(s.renewEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sent := time.Now()
		err := s.renew(ctx, h, s.renewEvery)
		switch {
		case err == nil:
			lastOK = sent
			if failing {
				failing = false
				log.Info("lock renewed again")
			}
		case errors.Is(err, ErrLockLost):
			h.lost.Store(&err)
			log.Error("lock lost: another holder may run the same job", zap.Error(err))
			return
		case ctx.Err() != nil:
			return
		default:
			expired := time.Since(lastOK) >= s.ttl
			if expired {
				log.Error("cannot renew lock: its lease has expired, another holder may take it", zap.Error(err),
					zap.Duration("since_last_renewal", time.Since(lastOK)))
			} else if !failing {
				log.Warn("cannot renew lock, retrying", zap.Error(err), zap.Duration("since_last_renewal", time.Since(lastOK)))
			}
			failing = true
		}
	}
}

// renew renews h's lease once, bounded by max as well as the call budget.
func (s *Storage) renew(ctx context.Context, h *heldLock, max time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, min(max, azure.CallBudget(s.callTimeout)))
	defer cancel()
	return h.lc.Renew(ctx)
}

// RenewLockLease implements certmagic.LockLeaseRenewer, which certmagic
// calls between issuance attempts: it renews the lease at once and fails
// (ErrLockLost) when this Storage no longer holds lockKey. The lease keeps
// its LockTTL (Azure's maximum is 60 s); the background renewal extends it
// until Unlock, whatever leaseDuration asks for.
func (s *Storage) RenewLockLease(ctx context.Context, lockKey string, _ time.Duration) error {
	s.mu.Lock()
	h, ok := s.held[lockKey]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("renew lock %s: not held by this storage: %w", lockKey, ErrLockLost)
	}
	if p := h.lost.Load(); p != nil {
		return *p
	}
	err := s.renew(ctx, h, azure.CallBudget(s.callTimeout))
	if errors.Is(err, ErrLockLost) {
		h.lost.Store(&err)
	}
	return err
}

// Unlock implements certmagic.Locker: it stops the renewal, waits for it,
// and releases the lease with a context detached from ctx's cancellation
// (the release matters most at shutdown) but bounded. A lock that was lost
// meanwhile is logged, not an error: nothing is left to release.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h, ok := s.held[name]
	if ok {
		delete(s.held, name)
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("unlock %s: not held by this storage", name)
	}
	h.cancel()
	<-h.done
	err := s.release(ctx, h)
	close(h.released) // after the release, so a local waiter's acquire succeeds
	return err
}

func (s *Storage) release(ctx context.Context, h *heldLock) error {
	if p := h.lost.Load(); p != nil {
		s.log.Warn("unlocking a lock that was lost before", zap.String("lock", h.name), zap.Error(*p))
		return nil
	}
	ctx, cancel := s.bound(context.WithoutCancel(ctx))
	defer cancel()
	err := h.lc.Release(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrLockLost):
		s.log.Warn("unlocking a lock that was lost before", zap.String("lock", h.name), zap.Error(err))
		return nil
	default:
		// Not renewed any more: it frees up within LockTTL anyway.
		return err
	}
}

// Close releases every lock this Storage still holds (stopping their
// renewals) and makes later Lock and TryLock calls fail with ErrClosed.
// Call it at shutdown, after certmagic's cache is stopped, so that another
// node need not wait LockTTL. It returns the first release error.
func (s *Storage) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	held := s.held
	s.held = make(map[string]*heldLock)
	s.mu.Unlock()
	var first error
	for _, h := range held {
		s.log.Warn("releasing a lock still held at close", zap.String("lock", h.name))
		h.cancel()
		<-h.done
		err := s.release(ctx, h)
		close(h.released)
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}
