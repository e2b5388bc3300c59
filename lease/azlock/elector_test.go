package azlock

// lease.Elector-level tests of the Azure Blob backend against a real Azurite, in
// real time: failover, kill, storage outage, slow storage, terms, and the
// storage transactions per node-hour at default settings.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonproxy/baton/internal/azure"
	"github.com/batonproxy/baton/internal/azure/azuritetest"
	"github.com/batonproxy/baton/lease"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// testElectorConfig is the timing of the elector tests: the shortest lease
// Azure allows, renew every second, deadline 5 s, retry every 250 ms.
func testElectorConfig(name string) lease.Config {
	return lease.Config{
		NodeName:         name,
		AdvertiseURL:     "http://" + name + ":80",
		Duration:         15 * time.Second,
		RenewInterval:    time.Second,
		RenewDeadline:    5 * time.Second,
		RetryInterval:    250 * time.Millisecond,
		CandidacyBackoff: 2 * time.Second,
		ReleaseTimeout:   2 * time.Second,
	}
}

func startElector(t *testing.T, lock lease.Lock, cfg lease.Config) *lease.Elector {
	t.Helper()
	e, err := lease.NewElector(lock, cfg, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).Named(cfg.NodeName))
	if err != nil {
		t.Fatalf("lease.NewElector(%s): %v", cfg.NodeName, err)
	}
	e.Start(context.Background())
	e.SetHealthy(true, "test")
	t.Cleanup(e.Stop)
	return e
}

// fenceMonitor polls the electors' Fence every millisecond: it fails the
// test if two are ever on at once and records when each turned on or off.
type fenceMonitor struct {
	t     *testing.T
	names []string
	es    []*lease.Elector
	quit  chan struct{}
	done  chan struct{}

	mu      sync.Mutex
	on      []bool
	changes []fenceChange
}

type fenceChange struct {
	node int
	on   bool
	term uint64
	at   time.Time
}

func watchFences(t *testing.T, names []string, es ...*lease.Elector) *fenceMonitor {
	m := &fenceMonitor{t: t, names: names, es: es, on: make([]bool, len(es)),
		quit: make(chan struct{}), done: make(chan struct{})}
	go m.run()
	t.Cleanup(m.stop)
	return m
}

func (m *fenceMonitor) run() {
	defer close(m.done)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-m.quit:
			return
		case <-tick.C:
		}
		now := time.Now()
		var active []string
		m.mu.Lock()
		for i, e := range m.es {
			term, ok := e.Fence()
			if ok {
				active = append(active, fmt.Sprintf("%s(term %d)", m.names[i], term))
			}
			if ok != m.on[i] {
				m.on[i] = ok
				m.changes = append(m.changes, fenceChange{node: i, on: ok, term: term, at: now})
			}
		}
		m.mu.Unlock()
		if len(active) > 1 {
			m.t.Errorf("split brain at %s: %v are all active", now.Format("15:04:05.000"), active)
		}
	}
}

func (m *fenceMonitor) stop() {
	select {
	case <-m.quit:
	default:
		close(m.quit)
	}
	<-m.done
}

// last returns the time of node i's last fence change to on, or zero.
func (m *fenceMonitor) last(i int, on bool) (time.Time, uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for j := len(m.changes) - 1; j >= 0; j-- {
		if c := m.changes[j]; c.node == i && c.on == on {
			return c.at, c.term
		}
	}
	return time.Time{}, 0
}

// active returns the index of the one elector whose fence is on, or -1.
func (m *fenceMonitor) active() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, on := range m.on {
		if on {
			return i
		}
	}
	return -1
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Now()
}

// timedLock records every Renew: how long it took against its context's
// deadline.
type timedLock struct {
	lease.Lock
	mu     sync.Mutex
	renews []timedCall
}

type timedCall struct {
	start, end, deadline time.Time
	err                  error
}

func (l *timedLock) Renew(ctx context.Context, d time.Duration) error {
	c := timedCall{start: time.Now()}
	c.deadline, _ = ctx.Deadline()
	c.err = l.Lock.Renew(ctx, d)
	c.end = time.Now()
	l.mu.Lock()
	l.renews = append(l.renews, c)
	l.mu.Unlock()
	return c.err
}

func (l *timedLock) calls() []timedCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]timedCall(nil), l.renews...)
}

func testElectorFailoverOnRelease(t *testing.T, az *azuritetest.Azurite) {
	la, _ := newAzuriteLock(t, az, "release")
	lb, _ := newAzuriteLock(t, az, "release")
	cfgA, cfgB := testElectorConfig("node-a"), testElectorConfig("node-b")
	a := startElector(t, la, cfgA)
	b := startElector(t, lb, cfgB)
	es := []*lease.Elector{a, b}
	m := watchFences(t, []string{"node-a", "node-b"}, a, b)

	waitFor(t, 10*time.Second, "one active node", func() bool { return m.active() >= 0 })
	act := m.active()
	other := 1 - act
	waitFor(t, 5*time.Second, "the other node to see the holder", func() bool {
		s := es[other].State()
		return s.Role == lease.RoleStandby && s.HolderKnown && s.Holder.Holder == []string{cfgA.NodeName, cfgB.NodeName}[act]
	})

	stopAt := time.Now()
	es[act].Stop() // fences off, releases
	released := time.Since(stopAt)
	newAt := waitFor(t, 5*time.Second, "the other node to become active", func() bool { _, ok := es[other].Fence(); return ok })
	failover := newAt.Sub(stopAt)
	t.Logf("failover on release: stop called -> other active in %v (Stop itself took %v)", failover.Round(time.Millisecond), released.Round(time.Millisecond))
	if limit := cfgA.RetryInterval + time.Second; failover > limit {
		t.Errorf("failover took %v, want within retry_interval + 1s = %v", failover, limit)
	}
	if term, _ := es[other].Fence(); term != 2 {
		t.Errorf("new active's term = %d, want 2", term)
	}
}

// childEnv makes the test binary a child elector for the kill test.
const childEnv = "BATON_AZBLOB_CHILD"

// TestAzBlobElectorChild is not a test: it is the body of the child
// process that TestAzBlobElectorKilledHolder starts and kills with SIGKILL.
// Without the environment variable it returns at once.
func TestAzBlobElectorChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		return
	}
	// The parent holds our stdin open: if it dies without killing us, we
	// exit instead of holding the lease forever.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(4)
	}()
	connStr, blob, _ := strings.Cut(spec, "|")
	l, err := New(Options{Container: "baton", Blob: blob, Options: azure.Options{
		Auth: azure.AuthConnectionString, ConnectionString: connStr, CallTimeout: time.Second,
	}}, zap.NewNop())
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	e, err := lease.NewElector(&reportingLock{Lock: l}, testElectorConfig("child"), zap.NewNop())
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	e.Start(context.Background())
	e.SetHealthy(true, "child")
	for {
		ch := e.Changed()
		if term, ok := e.Fence(); ok {
			fmt.Println("active", term)
		}
		<-ch
	}
}

// reportingLock prints the send time of every acquire and renew attempt
// and of every successful one, for the parent to bound the lease expiry.
type reportingLock struct{ lease.Lock }

func (l *reportingLock) Acquire(ctx context.Context, self lease.Record, d time.Duration) (lease.Record, error) {
	sent := time.Now().UnixNano()
	fmt.Println("send", sent)
	rec, err := l.Lock.Acquire(ctx, self, d)
	if err == nil {
		fmt.Println("ok", sent)
	}
	return rec, err
}

func (l *reportingLock) Renew(ctx context.Context, d time.Duration) error {
	sent := time.Now().UnixNano()
	fmt.Println("send", sent)
	err := l.Lock.Renew(ctx, d)
	if err == nil {
		fmt.Println("ok", sent)
	}
	return err
}

func testElectorKilledHolder(t *testing.T, az *azuritetest.Azurite) {

	// The holder is a child process, killed with SIGKILL: no release, no
	// goodbye. Its output says when each call was sent and which succeeded.
	cmd := exec.Command(os.Args[0], "-test.run=^TestAzBlobElectorChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+az.ConnectionString()+"|killed")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe() // closed when this process dies: the child exits
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close() })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu               sync.Mutex
		lastSend, lastOK time.Time
		activeTerm       uint64
		readDone         = make(chan struct{})
	)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-readDone
	})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				continue
			}
			n, _ := strconv.ParseInt(f[1], 10, 64)
			mu.Lock()
			switch f[0] {
			case "send":
				lastSend = time.Unix(0, n)
			case "ok":
				lastOK = time.Unix(0, n)
			case "active":
				activeTerm = uint64(n)
			}
			mu.Unlock()
		}
	}()
	t0 := time.Now()
	waitFor(t, 15*time.Second, "the child to become active", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return activeTerm == 1
	})

	t.Logf("child active after %v", time.Since(t0).Round(time.Millisecond))
	lb, _ := newAzuriteLock(t, az, "killed")
	cfg := testElectorConfig("node-b")
	b := startElector(t, lb, cfg)
	waitFor(t, 5*time.Second, "node-b to see the child as holder", func() bool {
		s := b.State()
		return s.Role == lease.RoleStandby && s.Holder.Holder == "child"
	})
	time.Sleep(1500 * time.Millisecond) // let the child renew at least once

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	_ = cmd.Wait()
	<-readDone
	mu.Lock()
	okSent, attemptSent := lastOK, lastSend
	mu.Unlock()
	earliest := okSent.Add(cfg.Duration)    // the storage cannot expire the lease before this
	latest := attemptSent.Add(cfg.Duration) // nor keep it after this (plus processing time)

	var activeAt time.Time
	waitFor(t, cfg.Duration+5*time.Second, "node-b to become active", func() bool {
		_, ok := b.Fence()
		if ok {
			activeAt = time.Now()
		}
		return ok
	})
	t.Logf("kill -> node-b active in %v; lease expiry in [%v, %v] after the kill; node-b active %v after the earliest expiry",
		activeAt.Sub(killedAt).Round(time.Millisecond), earliest.Sub(killedAt).Round(time.Millisecond),
		latest.Sub(killedAt).Round(time.Millisecond), activeAt.Sub(earliest).Round(time.Millisecond))
	if activeAt.Before(earliest) {
		t.Errorf("node-b active at %v, before the killed holder's lease could expire (%v)", activeAt, earliest)
	}
	if limit := latest.Add(cfg.RetryInterval + time.Second); activeAt.After(limit) {
		t.Errorf("node-b active %v after the latest expiry, want within retry_interval + 1s", activeAt.Sub(latest))
	}
	rec, ok, err := lb.Read(ctxT(t, 5*time.Second))
	if err != nil || !ok || rec.Holder != "node-b" || rec.Term != 2 {
		t.Errorf("holder record after the failover = %+v, %v, %v; want node-b, term 2", rec, ok, err)
	}
}

// TestAzBlobElectorStorageOutage stops Azurite under two electors and starts
// it again. Note: Azurite 3.37 forgets lease expiry times across its own
// restart (the lease reads as expired and can be taken at once; Azure
// keeps it), so the storage comes back only after the old active's
// deadline, and "new active" is faster here than it would be on Azure.
func TestAzBlobElectorStorageOutage(t *testing.T) {
	t.Parallel()
	az := azuritetest.Start(t)
	names := []string{"node-a", "node-b"}
	var es []*lease.Elector
	for _, n := range names {
		l, _ := newAzuriteLock(t, az, "outage", func(o *Options) { o.CallTimeout = 500 * time.Millisecond })
		es = append(es, startElector(t, l, testElectorConfig(n)))
	}
	m := watchFences(t, names, es...)
	cfg := testElectorConfig("")
	waitFor(t, 10*time.Second, "one active node", func() bool { return m.active() >= 0 })
	act := m.active()
	time.Sleep(1500 * time.Millisecond) // a renew or two
	termBefore, _ := es[act].Fence()

	az.Stop()
	stoppedAt := time.Now()
	time.Sleep(300 * time.Millisecond)       // let a renew answered just before the stop land
	validUntil := es[act].State().ValidUntil // sent time of the last good renew + deadline
	if lastSent := validUntil.Add(-cfg.RenewDeadline); lastSent.After(stoppedAt) {
		t.Fatalf("last successful renew sent at %v, after the storage stopped at %v", lastSent, stoppedAt)
	}
	var offLast time.Time
	offAt := waitFor(t, cfg.RenewDeadline+time.Second, "the active node to fence itself off", func() bool {
		offLast, _ = m.last(act, false)
		return offLast.After(stoppedAt)
	})
	onLast, _ := m.last(act, true)
	t.Logf("outage: fence off %v after the storage stopped; deadline was %v after it; fence off %v after the deadline",
		offAt.Sub(stoppedAt).Round(time.Millisecond), validUntil.Sub(stoppedAt).Round(time.Millisecond), offLast.Sub(validUntil).Round(time.Millisecond))
	if offLast.Before(validUntil.Add(-20*time.Millisecond)) || offLast.After(validUntil.Add(50*time.Millisecond)) || onLast.After(offLast) {
		t.Errorf("fence turned off at %v, want at the renew deadline %v", offLast, validUntil)
	}
	if limit := validUntil.Add(-cfg.RenewDeadline).Add(cfg.Duration); !offLast.Before(limit) {
		t.Errorf("fence still on %v after the last successful renew, want off before duration %v", offLast.Sub(validUntil.Add(-cfg.RenewDeadline)), cfg.Duration)
	}
	waitFor(t, 500*time.Millisecond, "the role to leave active after the deadline", func() bool { return es[act].State().Role != lease.RoleActive })

	az.Restart()
	restartedAt := time.Now()
	waitFor(t, cfg.Duration+10*time.Second, "one active node after the storage came back", func() bool { return m.active() >= 0 })
	t.Logf("storage back -> new active in %v", time.Since(restartedAt).Round(time.Millisecond))
	time.Sleep(1500 * time.Millisecond) // the split-brain monitor keeps watching
	if n := m.active(); n < 0 {
		t.Fatal("no active node 1.5 s after one became active")
	} else if term, _ := es[n].Fence(); term != termBefore+1 {
		t.Errorf("term after the outage = %d, want %d", term, termBefore+1)
	}
}

func testElectorSlowStorage(t *testing.T, az *azuritetest.Azurite) {
	proxy := azuritetest.NewDelayProxy(t, az.Addr())
	names := []string{"node-a", "node-b"}
	var (
		es    []*lease.Elector
		locks []*timedLock
	)
	for _, n := range names {
		l, _ := newAzuriteLock(t, az, "elector-slow", func(o *Options) {
			o.Auth = azure.AuthSharedKey
			o.AccountURL = proxy.URL("/" + azuritetest.AccountName)
			o.AccountKey = azuritetest.AccountKey
			o.CallTimeout = 300 * time.Millisecond
		})
		tl := &timedLock{Lock: l}
		locks = append(locks, tl)
		es = append(es, startElector(t, tl, testElectorConfig(n)))
	}
	m := watchFences(t, names, es...)
	t.Cleanup(func() { proxy.SetDelay(0) }) // before the electors stop: quick releases
	cfg := testElectorConfig("")
	waitFor(t, 10*time.Second, "one active node", func() bool { return m.active() >= 0 })
	act := m.active()
	time.Sleep(1500 * time.Millisecond)

	proxy.SetDelay(2 * time.Second) // beyond every try timeout and renew attempt
	slowAt := time.Now()
	time.Sleep(300 * time.Millisecond) // let a renew answered just before the slow-down land
	validUntil := es[act].State().ValidUntil
	var offAt time.Time
	waitFor(t, cfg.RenewDeadline+time.Second, "the active node to fence itself off", func() bool {
		offAt, _ = m.last(act, false)
		return offAt.After(slowAt)
	})
	t.Logf("slow storage: fence off %v after the slow-down, %v after the deadline",
		offAt.Sub(slowAt).Round(time.Millisecond), offAt.Sub(validUntil).Round(time.Millisecond))
	if offAt.After(validUntil.Add(50 * time.Millisecond)) {
		t.Errorf("fence off at %v, after the renew deadline %v", offAt, validUntil)
	}
	if offAt.After(slowAt.Add(cfg.RenewDeadline + 50*time.Millisecond)) {
		t.Errorf("fence off %v after the slow-down, want within the renew deadline %v", offAt.Sub(slowAt), cfg.RenewDeadline)
	}
	var timedOut int
	for _, c := range locks[act].calls() {
		if c.start.Before(slowAt) {
			continue
		}
		if c.err != nil {
			timedOut++
		}
		if c.deadline.IsZero() {
			t.Errorf("renew at %v without a deadline", c.start)
		} else if c.end.After(c.deadline.Add(500 * time.Millisecond)) {
			// The safety property (fence off at the deadline) is asserted
			// above with a tight bound; this only checks that a call does not
			// run on unbounded. Under a loaded -race run the SDK's return after
			// cancellation was seen 150 ms late.
			t.Errorf("renew sent at %v returned %v after its deadline", c.start, c.end.Sub(c.deadline))
		}
	}
	if timedOut < 2 {
		t.Errorf("%d renew attempts failed during the slow-down, want at least 2 (an attempt per interval until the deadline)", timedOut)
	}
}

func testElectorTerms(t *testing.T, az *azuritetest.Azurite) {
	la, _ := newAzuriteLock(t, az, "elector-terms")
	lb, _ := newAzuriteLock(t, az, "elector-terms")
	reader, _ := newAzuriteLock(t, az, "elector-terms")
	a := startElector(t, la, testElectorConfig("node-a"))
	waitFor(t, 10*time.Second, "node-a active", func() bool { _, ok := a.Fence(); return ok })
	b := startElector(t, lb, testElectorConfig("node-b"))
	es := map[string]*lease.Elector{"node-a": a, "node-b": b}
	watchFences(t, []string{"node-a", "node-b"}, a, b)

	check := func(holder string, term uint64) {
		t.Helper()
		e := es[holder]
		waitFor(t, 5*time.Second, holder+" active", func() bool { _, ok := e.Fence(); return ok })
		if got, _ := e.Fence(); got != term {
			t.Errorf("%s's term = %d, want %d", holder, got, term)
		}
		rec, ok, err := reader.Read(ctxT(t, 5*time.Second))
		if err != nil || !ok || rec.Holder != holder || rec.Term != term || rec.AdvertiseURL != "http://"+holder+":80" {
			t.Errorf("holder record = %+v, %v, %v; want %s, term %d", rec, ok, err, holder, term)
		}
	}
	check("node-a", 1)
	waitFor(t, 5*time.Second, "node-b standby", func() bool { return b.State().Role == lease.RoleStandby })
	if err := a.StepDown("test"); err != nil {
		t.Fatal(err)
	}
	check("node-b", 2)
	// node-a sits out its candidacy back-off, then competes again.
	waitFor(t, 5*time.Second, "node-a back from its back-off", func() bool {
		s := a.State()
		return s.Role == lease.RoleStandby && time.Now().After(s.BackoffUntil)
	})
	if err := b.StepDown("test"); err != nil {
		t.Fatal(err)
	}
	check("node-a", 3)
}

// defaultTiming is the product's default timing (lease 15 s, renew every
// 3 s, deadline 10 s, retry every 1 s).
func defaultTiming(name string) lease.Config {
	return lease.Config{NodeName: name, Duration: 15 * time.Second, RenewInterval: 3 * time.Second,
		RenewDeadline: 10 * time.Second, RetryInterval: time.Second, CandidacyBackoff: 10 * time.Second}
}

// testTransactionsPerHour counts the storage requests of an active and
// a standby node at the default timing (lease 15 s, renew every 3 s,
// deadline 10 s, retry every 1 s) with a counting HTTP transport, over a
// steady-state window of 9 s, and extrapolates to one hour.
func testTransactionsPerHour(t *testing.T, az *azuritetest.Azurite) {
	cfg := defaultTiming
	la, ca := newAzuriteLock(t, az, "count")
	lb, cb := newAzuriteLock(t, az, "count")
	a := startElector(t, la, cfg("node-a"))
	waitFor(t, 10*time.Second, "node-a active", func() bool { _, ok := a.Fence(); return ok })
	b := startElector(t, lb, cfg("node-b"))
	waitFor(t, 5*time.Second, "node-b standby", func() bool { return b.State().Role == lease.RoleStandby })

	const window = 9 * time.Second
	t0 := time.Now()
	time.Sleep(window)
	t1 := time.Now()
	active, na := ca.rate(t0, t1)
	standby, nb := cb.rate(t0, t1)
	t.Logf("storage transactions per node-hour at default timing (counting transport; %d and %d requests in a %v window, rate from first to last): active %.0f, standby %.0f",
		na, nb, window, active, standby)
	// One renew per 3 s; one acquire attempt (a read) per 1 s.
	if active < 1100 || active > 1300 {
		t.Errorf("active: %.0f transactions/hour, want about 1200", active)
	}
	if standby < 3400 || standby > 3800 {
		t.Errorf("standby: %.0f transactions/hour, want about 3600", standby)
	}
}
