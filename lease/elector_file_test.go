package lease_test

import (
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/lease"
)

// TestElectorOnFileLock runs two Electors on one real lease file: one wins,
// a step-down hands over within a retry interval, Stop releases.
func TestElectorOnFileLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "lease.json")
	synctest.Test(t, func(t *testing.T) {
		var es []*lease.Elector
		for _, name := range []string{"a", "b"} {
			l, err := lease.NewFileLock(path)
			if err != nil {
				t.Fatal(err)
			}
			e, err := lease.NewElector(l, testConfig(name), zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			e.Start(t.Context())
			t.Cleanup(e.Stop)
			es = append(es, e)
		}
		a, b := es[0], es[1]
		a.SetHealthy(true, "ok")
		waitState(t, a, time.Second, "a active", roleIs(lease.RoleActive))
		b.SetHealthy(true, "ok")
		waitState(t, b, 2*retryInterval, "b standby", roleIs(lease.RoleStandby))
		time.Sleep(time.Minute) // a renews through the file
		if _, ok := a.Fence(); !ok {
			t.Fatal("a lost the lease while renewing")
		}

		ts := time.Now()
		if err := a.StepDown("test"); err != nil {
			t.Fatal(err)
		}
		s := waitState(t, b, 2*retryInterval, "b active", roleIs(lease.RoleActive))
		// Within one retry interval, plus the file-lock latency of the attempt.
		if d := s.Since.Sub(ts); d > retryInterval+100*time.Millisecond || s.Term != 2 {
			t.Errorf("b active %s after the step-down, term %d", d, s.Term)
		}
		if _, ok := a.Fence(); ok {
			t.Error("a's fence on after the step-down")
		}
		b.Stop()
		s = waitState(t, a, backoff+2*retryInterval, "a active again", roleIs(lease.RoleActive))
		if s.Term != 3 {
			t.Errorf("a's term %d, want 3", s.Term)
		}
		a.Stop()

		l, err := lease.NewFileLock(path)
		if err != nil {
			t.Fatal(err)
		}
		rec, ok, err := l.Read(t.Context())
		if err != nil || ok || rec.Term != 3 {
			t.Errorf("lease file after both stopped: %+v, held %v, %v", rec, ok, err)
		}
	})
}
