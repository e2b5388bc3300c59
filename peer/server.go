package peer

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// Handler serves the peers' calls. Mount it on its own listener.
func (l *Link) Handler() http.Handler { return http.HandlerFunc(l.serve) }

func (l *Link) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case pathHello, pathReleased, pathAcquired, pathPrepare, pathCommit, pathPromise, pathWithdraw:
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	if len(body) > maxBody {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	ts, mac, err := l.sign.verify(r.Header.Get(AuthHeader), r.Method, r.URL.Path, body, "")
	if err == nil {
		err = l.replay.fresh(mac, ts, l.now())
	}
	if err != nil {
		l.rejectedFrom(host, err)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	l.acceptedFrom(host)
	status, out := l.dispatch(r.Context(), r.URL.Path, body)
	b, _ := json.Marshal(out)
	if s, ok := out.(string); ok && status != http.StatusOK {
		b = []byte(s)
	}
	hv, _ := l.sign.header("ANSWER", r.URL.Path, l.now().UnixMilli(), b, mac)
	w.Header().Set(AuthHeader, hv)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// dispatch runs one authenticated call. A refusal is a status other than
// 200 with a string explaining it.
func (l *Link) dispatch(ctx context.Context, path string, body []byte) (int, any) {
	switch path {
	case pathHello:
		return http.StatusOK, l.local.Hello()
	case pathReleased:
		var m pushMsg
		if err := json.Unmarshal(body, &m); err != nil {
			return http.StatusBadRequest, "bad message: " + err.Error()
		}
		l.log.Debug("peer released the lease", zap.String("peer_node", m.From), zap.Uint64("term", m.Term))
		l.local.Nudge()
		return http.StatusOK, struct{}{}
	case pathAcquired:
		var m pushMsg
		if err := json.Unmarshal(body, &m); err != nil || m.Record == nil {
			return http.StatusBadRequest, "bad message"
		}
		l.local.NoteHolder(*m.Record)
		return http.StatusOK, struct{}{}
	case pathPrepare:
		var m prepareMsg
		if err := json.Unmarshal(body, &m); err != nil {
			return http.StatusBadRequest, "bad message: " + err.Error()
		}
		if err := l.local.CanAdopt(); err != nil {
			return http.StatusConflict, err.Error()
		}
		id := l.local.NewLeaseID()
		l.mu.Lock()
		l.pending = &pendingHandover{id: id, from: m.From, expires: l.now().Add(handoverTTL)}
		l.mu.Unlock()
		l.log.Info("handover prepared", zap.String("from", m.From))
		return http.StatusOK, prepareAnswer{LeaseID: id}
	case pathCommit:
		var m commitMsg
		if err := json.Unmarshal(body, &m); err != nil {
			return http.StatusBadRequest, "bad message: " + err.Error()
		}
		l.mu.Lock()
		p := l.pending
		ok := p != nil && p.id == m.LeaseID && l.now().Before(p.expires)
		if ok {
			l.pending = nil
		}
		l.mu.Unlock()
		if !ok {
			return http.StatusConflict, "no handover prepared with this lease id (expired or already used)"
		}
		rec, err := l.local.Adopt(ctx, m.LeaseID)
		if err != nil {
			l.log.Warn("handover not adopted", zap.String("from", m.From), zap.Error(err))
			return http.StatusConflict, err.Error()
		}
		l.log.Info("handover adopted", zap.String("from", m.From), zap.Uint64("term", rec.Term))
		return http.StatusOK, rec
	case pathPromise:
		var m promiseMsg
		if err := json.Unmarshal(body, &m); err != nil || m.From == "" || m.WindowMS <= 0 || m.WindowMS > maxPromiseMS {
			return http.StatusBadRequest, "bad message"
		}
		if err := l.local.Promise(m.From, m.Round, time.Duration(m.WindowMS)*time.Millisecond); err != nil {
			return http.StatusConflict, err.Error()
		}
		return http.StatusOK, struct{}{}
	case pathWithdraw:
		var m pushMsg
		if err := json.Unmarshal(body, &m); err != nil || m.From == "" {
			return http.StatusBadRequest, "bad message"
		}
		l.local.Withdraw(m.From, m.Round)
		return http.StatusOK, struct{}{}
	}
	return http.StatusNotFound, "not found"
}

// maxPromiseMS bounds a promise's window: Azure's longest lease.
const maxPromiseMS = 60_000

// rejectedFrom logs a rejected call once per remote host and reason.
func (l *Link) rejectedFrom(host string, err error) {
	l.mu.Lock()
	last := l.rejected[host]
	l.rejected[host] = err.Error()
	l.mu.Unlock()
	if last != err.Error() {
		level := l.log.Warn
		if errors.Is(err, errReplayed) {
			level = l.log.Info
		}
		level("peer call rejected", zap.String("remote", host), zap.Error(err))
	}
}

func (l *Link) acceptedFrom(host string) {
	l.mu.Lock()
	last, ok := l.rejected[host]
	if ok {
		delete(l.rejected, host)
	}
	l.mu.Unlock()
	if ok && last != "" {
		l.log.Info("peer calls accepted again", zap.String("remote", host))
	}
}
