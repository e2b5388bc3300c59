// Package leasetest provides an in-memory lease.Lock for tests.
//
// A Store plays the storage service (one lease, like one blob); each Lock
// made by Store.NewLock is one process's handle with its own lease ID. The
// store follows the same rules as the real backends: Acquire fails with
// lease.ErrHeld while another lease ID holds an unexpired lease and
// otherwise increments the term by one; Renew fails with lease.ErrLost when
// the lease ID is no longer the holder's (renewing one's own expired lease
// succeeds if nobody else took it); Release clears the holder and keeps the
// term.
//
// Expiry uses the store's clock, time.Now by default, so inside a
// testing/synctest bubble it follows the bubble's fake time.
//
// Each Lock can be told how its calls behave: per operation with Set (Fail,
// Hang, Delay, HangIgnoringContext, Pass), or strictly with Script, where
// every call must match the next scripted step and any other call fails the
// test. Every call is recorded (Calls, Count).
//
// Everything is safe for concurrent use.
package leasetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/batonproxy/baton/lease"
)

// Op names a Lock method.
type Op string

// The four Lock operations.
const (
	Acquire Op = "acquire"
	Renew   Op = "renew"
	Release Op = "release"
	Read    Op = "read"
	Change  Op = "change"
	Adopt   Op = "adopt"
)

// Store is the shared lease state, like the blob in the storage service.
type Store struct {
	mu      sync.Mutex
	now     func() time.Time
	rec     lease.Record
	owner   string // lease ID of the holder, "" when released
	nextID  int
	onGrant func(lease.Record)
}

// NewStore returns an empty store (no holder, term 0) using time.Now.
func NewStore() *Store {
	return &Store{now: time.Now}
}

// SetClock replaces the store's clock (used for expiry).
func (s *Store) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// OnGrant registers fn to run at every successful Acquire, while the store
// is locked, before the Acquire returns: the instant a new holder exists.
// Tests use it to check that no other node is still active at that instant.
// fn must not call the store.
func (s *Store) OnGrant(fn func(rec lease.Record)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onGrant = fn
}

// Holder returns the stored record and whether it is held and unexpired.
func (s *Store) Holder() (lease.Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec, s.validLocked()
}

// Break ends the current lease at once, as the storage's break-lease
// operation does: the holder's next Renew fails with lease.ErrLost.
func (s *Store) Break() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearLocked()
}

func (s *Store) validLocked() bool {
	return s.owner != "" && s.now().Before(s.rec.Expires)
}

func (s *Store) clearLocked() {
	s.owner = ""
	s.rec = lease.Record{Term: s.rec.Term}
}

// NewLock returns a new handle on the store with its own lease ID. name
// only appears in error texts.
func (s *Store) NewLock(name string) *Lock {
	s.mu.Lock()
	s.nextID++
	id := fmt.Sprintf("%s#%d", name, s.nextID)
	s.mu.Unlock()
	return s.NewLockID(name, id)
}

// NewLockID returns a new handle on the store with the given lease ID: a
// process restarted with its predecessor's ID (see lease.Keyed).
func (s *Store) NewLockID(name, id string) *Lock {
	return &Lock{store: s, name: name, id: id, actions: map[Op]Action{}}
}

// Action is what one call does before (or instead of) reaching the store.
type Action struct {
	kind  actionKind
	err   error
	delay time.Duration
	gate  <-chan struct{}
}

type actionKind int

const (
	kindPass actionKind = iota
	kindFail
	kindHang
	kindDelay
	kindHangIgnoringCtx
)

// Pass lets the call reach the store (the default).
func Pass() Action { return Action{} }

// Fail makes the call return err (wrapped with the operation) without
// reaching the store. Wrap lease.ErrLost, lease.ErrConfig or lease.ErrHeld
// to simulate those answers.
func Fail(err error) Action { return Action{kind: kindFail, err: err} }

// Hang makes the call block until its context is done and return the
// context's error: a storage call that never answers.
func Hang() Action { return Action{kind: kindHang} }

// Delay makes the call wait d (or until its context is done) and then reach
// the store: storage latency.
func Delay(d time.Duration) Action { return Action{kind: kindDelay, delay: d} }

// HangIgnoringContext makes the call block until gate is closed, ignoring
// its context (a broken client that violates the Lock contract), and then
// return an error. Close gate before stopping the code under test, or its
// Stop will wait for the call.
func HangIgnoringContext(gate <-chan struct{}) Action {
	return Action{kind: kindHangIgnoringCtx, gate: gate}
}

// Step is one expected call of a script.
type Step struct {
	Op     Op
	Action Action
}

// Call is the record of one call.
type Call struct {
	Op       Op
	Start    time.Time // store clock when the call started
	Deadline time.Time // the context's deadline (time package clock); zero if none
	End      time.Time // store clock when it returned; zero while running
	Err      error
}

// Lock is one process's handle on a Store. It implements lease.Lock.
type Lock struct {
	store *Store
	name  string

	mu       sync.Mutex
	id       string
	actions  map[Op]Action
	script   []Step
	scripted bool
	t        testing.TB
	calls    []Call
}

var _ lease.Changer = (*Lock)(nil)

// ID returns the lock's lease ID.
func (l *Lock) ID() string { return l.LeaseID() }

// LeaseID implements lease.Keyed.
func (l *Lock) LeaseID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.id
}

// SetLeaseID implements lease.Keyed.
func (l *Lock) SetLeaseID(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.id = id
}

// Set makes every later call of op behave as a (until changed again). It
// is ignored while a script is active.
func (l *Lock) Set(op Op, a Action) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.actions[op] = a
}

// Script makes the lock strict: each following call must be the next step's
// Op, and behaves as that step's Action. A call of another Op, or any call
// once the steps are used up, is reported with t.Errorf and fails without
// reaching the store. Calling Script again replaces the remaining steps.
func (l *Lock) Script(t testing.TB, steps ...Step) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t, l.script, l.scripted = t, append([]Step(nil), steps...), true
}

// Unscript ends strict mode; calls follow Set again.
func (l *Lock) Unscript() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t, l.script, l.scripted = nil, nil, false
}

// Remaining returns how many scripted steps have not been called yet.
func (l *Lock) Remaining() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.script)
}

// Calls returns a copy of the call records, in order of start.
func (l *Lock) Calls() []Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Call(nil), l.calls...)
}

// Count returns how many calls of op were made.
func (l *Lock) Count(op Op) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.calls {
		if c.Op == op {
			n++
		}
	}
	return n
}

var errUnexpected = errors.New("leasetest: unexpected call")

// begin records the call and picks its action.
func (l *Lock) begin(ctx context.Context, op Op) (idx int, a Action, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	deadline, _ := ctx.Deadline()
	l.calls = append(l.calls, Call{Op: op, Start: l.store.clock(), Deadline: deadline})
	idx = len(l.calls) - 1
	if !l.scripted {
		return idx, l.actions[op], nil
	}
	if len(l.script) == 0 {
		l.t.Errorf("leasetest: lock %s: unexpected %s call after the end of the script", l.name, op)
		return idx, Action{}, errUnexpected
	}
	step := l.script[0]
	l.script = l.script[1:]
	if step.Op != op {
		l.t.Errorf("leasetest: lock %s: got %s call, script expects %s", l.name, op, step.Op)
		return idx, Action{}, errUnexpected
	}
	return idx, step.Action, nil
}

func (l *Lock) end(idx int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls[idx].End = l.store.clock()
	l.calls[idx].Err = err
}

func (s *Store) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

// do runs the action; reach == true means the call should now reach the
// store.
func (a Action) do(ctx context.Context) (reach bool, err error) {
	switch a.kind {
	case kindFail:
		return false, a.err
	case kindHang:
		<-ctx.Done()
		return false, ctx.Err()
	case kindDelay:
		t := time.NewTimer(a.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	case kindHangIgnoringCtx:
		<-a.gate
		return false, errors.New("leasetest: hung call released")
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return true, nil
}

func (l *Lock) run(ctx context.Context, op Op, fn func() error) (err error) {
	idx, a, err := l.begin(ctx, op)
	defer func() { l.end(idx, err) }()
	if err != nil {
		return fmt.Errorf("%s fake lease %s: %w", op, l.name, err)
	}
	reach, err := a.do(ctx)
	if err != nil {
		return fmt.Errorf("%s fake lease %s: %w", op, l.name, err)
	}
	if !reach {
		return nil
	}
	return fn()
}

// Acquire implements lease.Lock.
func (l *Lock) Acquire(ctx context.Context, self lease.Record, d time.Duration) (lease.Record, error) {
	var out lease.Record
	id := l.LeaseID()
	err := l.run(ctx, Acquire, func() error {
		s := l.store
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.now()
		resumed := s.validLocked() && s.owner == id
		if s.validLocked() && s.owner != id {
			out = s.rec
			return fmt.Errorf("acquire fake lease %s: %w (holder %s, term %d)", l.name, lease.ErrHeld, s.rec.Holder, s.rec.Term)
		}
		s.grantLocked(id, self, now, d)
		out = s.rec
		out.Resumed = resumed
		return nil
	})
	return out, err
}

// grantLocked makes id the holder with the next term.
func (s *Store) grantLocked(id string, self lease.Record, now time.Time, d time.Duration) {
	s.owner = id
	s.rec = lease.Record{
		Holder:       self.Holder,
		AdvertiseURL: self.AdvertiseURL,
		Term:         s.rec.Term + 1,
		AcquiredAt:   now,
		Expires:      now.Add(d),
	}
	if s.onGrant != nil {
		s.onGrant(s.rec)
	}
}

// Renew implements lease.Lock.
func (l *Lock) Renew(ctx context.Context, d time.Duration) error {
	id := l.LeaseID()
	return l.run(ctx, Renew, func() error {
		s := l.store
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.owner != id {
			return fmt.Errorf("renew fake lease %s: %w", l.name, lease.ErrLost)
		}
		s.rec.Expires = s.now().Add(d)
		return nil
	})
}

// Release implements lease.Lock.
func (l *Lock) Release(ctx context.Context) error {
	return l.ReleaseID(ctx, l.LeaseID())
}

// ReleaseID implements lease.Changer (recorded as a Release call).
func (l *Lock) ReleaseID(ctx context.Context, id string) error {
	return l.run(ctx, Release, func() error {
		s := l.store
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.owner == id && id != "" {
			s.clearLocked()
		}
		return nil
	})
}

// Change implements lease.Changer: the lease held under this lock's ID
// (valid or not, as long as nobody else took it) moves to the ID to.
func (l *Lock) Change(ctx context.Context, to string) error {
	id := l.LeaseID()
	return l.run(ctx, Change, func() error {
		s := l.store
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.owner != id {
			return fmt.Errorf("change fake lease %s: %w", l.name, lease.ErrLost)
		}
		s.owner = to
		return nil
	})
}

// Adopt implements lease.Changer.
func (l *Lock) Adopt(ctx context.Context, from string, self lease.Record, d time.Duration) (lease.Record, error) {
	id := l.LeaseID()
	var out lease.Record
	err := l.run(ctx, Adopt, func() error {
		s := l.store
		s.mu.Lock()
		defer s.mu.Unlock()
		if from == "" || s.owner != from || !s.validLocked() {
			return fmt.Errorf("adopt fake lease %s: %w", l.name, lease.ErrLost)
		}
		s.grantLocked(id, self, s.now(), d)
		out = s.rec
		return nil
	})
	return out, err
}

// Owner returns the lease ID that holds the lease ("" when released).
func (s *Store) Owner() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owner
}

// Read implements lease.Lock.
func (l *Lock) Read(ctx context.Context) (lease.Record, bool, error) {
	var (
		rec lease.Record
		ok  bool
	)
	err := l.run(ctx, Read, func() error {
		s := l.store
		s.mu.Lock()
		defer s.mu.Unlock()
		rec, ok = s.rec, s.validLocked()
		return nil
	})
	return rec, ok, err
}
