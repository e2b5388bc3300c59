package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// bodyBackend is a raw HTTP/1.1 origin that records each request as it
// arrived: request line, sorted header lines, framing, the body it read
// and the trailers after it. What it answers depends on the path:
//
//	/reject  a request that expects 100 gets 417 + Connection: close, unread
//	/ignore  the body is read without a 100 (a backend that does not know Expect)
//	else     a request that expects 100 gets one; the body is read, "got N" answers
type bodyBackend struct {
	testConns
	seen  []string // guarded by mu
	heads int      // requests whose header block was read; guarded by mu
}

func newBodyBackend(t *testing.T) *bodyBackend {
	t.Helper()
	bb := &bodyBackend{}
	bb.start(t, bb.serve)
	return bb
}

func (bb *bodyBackend) url() string { return "http://" + bb.ln.Addr().String() }

func (bb *bodyBackend) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		bb.mu.Lock()
		bb.heads++
		bb.mu.Unlock()
		var hdr []string
		for k, vv := range req.Header {
			for _, v := range vv {
				hdr = append(hdr, k+": "+v)
			}
		}
		slices.Sort(hdr)
		rec := fmt.Sprintf("%s %s %s\n%s\nframing: length=%d te=%v", req.Method, req.RequestURI, req.Proto,
			strings.Join(hdr, "\n"), req.ContentLength, req.TransferEncoding)
		expect := strings.EqualFold(req.Header.Get("Expect"), "100-continue")
		if expect && req.URL.Path == "/reject" {
			bb.record(rec + "\nbody: (not read)")
			io.WriteString(c, "HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\nContent-Length: 4\r\n\r\nnope")
			return
		}
		if expect && req.URL.Path != "/ignore" {
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			bb.record(rec + "\nbody error: " + err.Error())
			return
		}
		bb.record(fmt.Sprintf("%s\nbody: %d bytes %x\ntrailer: %v", rec, len(body), sha(body), req.Trailer))
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\ngot %d", len(fmt.Sprint("got ", len(body))), len(body))
	}
}

// sha is a short digest of b, enough to tell bodies apart in a message.
func sha(b []byte) uint64 {
	var h uint64 = 14695981039346656037
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

func (bb *bodyBackend) record(s string) {
	bb.mu.Lock()
	bb.seen = append(bb.seen, s)
	bb.mu.Unlock()
}

func (bb *bodyBackend) last() string {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	if len(bb.seen) == 0 {
		return ""
	}
	return bb.seen[len(bb.seen)-1]
}

// find returns the first request seen whose record starts with prefix.
func (bb *bodyBackend) find(prefix string) string {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	for _, s := range bb.seen {
		if strings.HasPrefix(s, prefix) {
			return s
		}
	}
	return ""
}

// headsRead is the number of requests whose header block reached it.
func (bb *bodyBackend) headsRead() int {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	return bb.heads
}

func (bb *bodyBackend) connCount() int {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	return bb.conns
}

// bodyCase is one request with a body for the differential test.
type bodyCase struct {
	name, method, path string
	body               string
	chunked            bool        // length unknown to the client: chunked (HTTP/1) or no content-length (HTTP/2)
	expect             bool        // Expect: 100-continue
	trailer            http.Header // sent after the body (declared, as Go's client does)
}

// send makes c send bc to base and reports what came back. Repeated 100s
// count once: net/http's server may add its own to the one relayed (on
// both paths; with httputil.ReverseProxy, in a race).
func send(t *testing.T, c *http.Client, base string, bc bodyCase) observed {
	t.Helper()
	var info []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			s := fmt.Sprint(code, " ", h.Get("Link"))
			if len(info) == 0 || info[len(info)-1] != s {
				info = append(info, s)
			}
			return nil
		},
	})
	var body io.Reader
	if bc.body != "" || bc.chunked {
		body = strings.NewReader(bc.body)
		if bc.chunked {
			body = io.MultiReader(body) // hides the length
		}
	}
	req, _ := http.NewRequestWithContext(ctx, bc.method, base+bc.path, body)
	if bc.chunked {
		req.ContentLength = -1
	}
	if bc.expect {
		req.Header.Set("Expect", "100-continue")
	}
	req.Trailer = bc.trailer
	req.Host = "app.example.com"
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", bc.method, bc.path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", bc.method, bc.path, err)
	}
	res.Header.Del("Date")
	return observed{status: res.StatusCode, header: res.Header, length: res.ContentLength,
		chunked: slices.Contains(res.TransferEncoding, "chunked"), body: string(b), trailer: res.Trailer, informative: info, close: res.Close}
}

// TestFastPathMatchesStandardPathWithBodies sends the same requests with
// bodies through the fast path and through httputil.ReverseProxy, over
// HTTP/1.1 and HTTP/2, with bodies streamed and with small ones read
// first (limits.buffer_body), and compares what the backend received
// (header block, framing, body, trailers) and what the client got.
func TestFastPathMatchesStandardPathWithBodies(t *testing.T) {
	bb := newBodyBackend(t)
	kib := strings.Repeat("0123456789abcdef", 64)
	big := strings.Repeat(kib, 200) // past bigBody and the copy buffer
	cases := []bodyCase{
		{name: "POST 1 KiB", method: "POST", path: "/", body: kib},
		{name: "POST 200 KiB", method: "POST", path: "/", body: big},
		{name: "POST chunked", method: "POST", path: "/", body: strings.Repeat(kib, 3), chunked: true},
		{name: "POST chunked, empty", method: "POST", path: "/", chunked: true},
		{name: "POST chunked 200 KiB", method: "POST", path: "/", body: big, chunked: true},
		{name: "POST chunked with a trailer", method: "POST", path: "/", body: "hello", chunked: true, trailer: http.Header{"X-Sum": {"abc"}}},
		{name: "PUT empty", method: "PUT", path: "/"},
		{name: "POST empty", method: "POST", path: "/"},
		{name: "DELETE", method: "DELETE", path: "/"},
		{name: "OPTIONS with a body", method: "OPTIONS", path: "/", body: "x"},
		{name: "POST, 100-continue refused", method: "POST", path: "/reject", body: kib, expect: true},
		{name: "PATCH, 100-continue answered", method: "PATCH", path: "/", body: kib, expect: true},
		{name: "POST 200 KiB, 100-continue answered", method: "POST", path: "/", body: big, expect: true},
		{name: "POST, 100-continue ignored by the backend", method: "POST", path: "/ignore", body: kib, expect: true},
	}
	for _, buffered := range []int{0, 64 << 10} {
		for _, h2 := range []bool{false, true} {
			name := fmt.Sprintf("%s/buffer_body=%d", map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], buffered)
			t.Run(name, func(t *testing.T) {
				fastP, stdP := proxyTo(t, bb.url(), true), proxyTo(t, bb.url(), false)
				fastP.opts.BufferBody, stdP.opts.BufferBody = buffered, buffered
				var fast, std *httptest.Server
				var client *http.Client
				if h2 {
					fast, _ = h2Front(t, fastP)
					std, _ = h2Front(t, stdP)
					client = h2Client()
				} else {
					fast, std = frontFor(t, fastP), frontFor(t, stdP)
					client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
				}
				tr := client.Transport.(*http.Transport)
				tr.DisableCompression = true
				tr.ExpectContinueTimeout = 5 * time.Second // the client waits for the 100
				defer client.CloseIdleConnections()
				for _, bc := range cases {
					if bc.path == "/ignore" && buffered > 0 {
						continue // a second wait of ExpectContinueTimeout teaches nothing new
					}
					t.Run(bc.name, func(t *testing.T) {
						gotFast := send(t, client, fast.URL, bc)
						sawFast := bb.last()
						gotStd := send(t, client, std.URL, bc)
						sawStd := bb.last()
						if sawFast != sawStd {
							t.Errorf("backend saw\n--- fast path ---\n%s\n--- standard path ---\n%s", sawFast, sawStd)
						}
						if fmt.Sprint(gotFast) != fmt.Sprint(gotStd) {
							t.Errorf("client got\n--- fast path ---\n%+v\n--- standard path ---\n%+v", gotFast, gotStd)
						}
						if want := fmt.Sprint("got ", len(bc.body)); bc.path != "/reject" && gotFast.body != want {
							t.Errorf("fast path: client got %d %q, want %q", gotFast.status, gotFast.body, want)
						}
						if bc.path == "/reject" && !h2 && buffered == 0 && !gotFast.close {
							// Else net/http's server waits to discard a
							// body the client sends only after a 100.
							t.Errorf("refused before the body was read, without Connection: close: %+v", gotFast)
						}
						if bc.expect && bc.path == "/" && (len(gotFast.informative) != 1 || gotFast.informative[0] != "100 ") {
							t.Errorf("fast path: informational answers %q, want one 100", gotFast.informative)
						}
					})
				}
				fastP.fast.mu.Lock()
				pooled := len(fastP.fast.idle)
				fastP.fast.mu.Unlock()
				if pooled == 0 {
					t.Errorf("no backend connection in the fast path's pool: requests with bodies did not take it")
				}
			})
		}
	}
}

// TestBodySmugglingThroughTheFrontDoor sends requests with ambiguous or
// malformed bodies on a raw connection through the whole front door, on
// both paths: the backend must read exactly the requests in want, whole,
// and the client's answers must be the same on both paths. close: the
// client half-closes its side after sending.
func TestBodySmugglingThroughTheFrontDoor(t *testing.T) {
	const end = "GET /end HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, tc := range []struct {
		name  string
		raw   string
		close bool
		codes []int    // what the client gets, 100s left out
		want  []string // "METHOD PATH BODY [trailer]" the backend read whole
	}{
		// TE wins over CL (RFC 9112, 6.3); the smuggled request is a
		// request of its own to both.
		{"CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + smuggled + end,
			false, []int{200, 200, 200}, []string{"POST / hello", "GET /smuggled ", "GET /end "}},
		{"two equal CLs", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello" + end,
			false, []int{200, 200}, []string{"POST / hello", "GET /end "}},
		{"two different CLs", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 41\r\n\r\nhello" + smuggled + end,
			false, []int{400}, nil},
		{"chunk size overflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n" + end,
			false, []int{400}, nil},
		{"chunk size past the body", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\nhello" + end,
			true, []int{400}, nil},
		{"chunk extension", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\n\r\n" + end,
			false, []int{200, 200}, []string{"POST / hello", "GET /end "}},
		// Undeclared trailers are read and dropped on both paths.
		{"trailer", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: v\r\n\r\n" + end,
			false, []int{200, 200}, []string{"POST / hello", "GET /end "}},
		// A declared one takes httputil.ReverseProxy, which announces it
		// but sends no value (its copy of the request's Trailer map is
		// taken before the body is read).
		{"declared trailer", "POST / HTTP/1.1\r\nHost: a\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: v\r\n\r\n" + end,
			false, []int{200, 200}, []string{"POST / hello map[X-T:[]]", "GET /end "}},
		{"request in the trailer", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n" + smuggled + end,
			false, []int{400}, nil},
		// What follows the declared length is the next request, to both
		// (here with the method "loGET").
		{"body longer than its CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nhello" + smuggled + end,
			false, []int{200, 200, 200}, []string{"POST / hel", "loGET /smuggled ", "GET /end "}},
		{"body shorter than its CL, then a request", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\n\r\nhello" + smuggled + end,
			false, []int{200, 200}, []string{"POST / hello" + smuggled, "GET /end "}},
		{"body shorter than its CL, then EOF", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello",
			true, []int{400}, nil},
		{"100-continue, body sent at once", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello" + end,
			false, []int{200, 200}, []string{"POST / hello", "GET /end "}},
	} {
		var gotFast []int
		for _, fast := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/fast=%v", tc.name, fast), func(t *testing.T) {
				var mu sync.Mutex
				var whole []string
				be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					b, err := io.ReadAll(r.Body)
					if err == nil {
						s := r.Method + " " + r.URL.Path + " " + string(b)
						if len(r.Trailer) > 0 {
							s += fmt.Sprint(" ", r.Trailer)
						}
						mu.Lock()
						whole = append(whole, s)
						mu.Unlock()
					}
					io.WriteString(w, "ok")
				}))
				defer be.Close()
				front := frontFor(t, proxyTo(t, be.URL, fast))
				c, err := net.Dial("tcp", front.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, tc.raw)
				if tc.close {
					c.(*net.TCPConn).CloseWrite()
				}
				br := bufio.NewReader(c)
				var codes []int
				for {
					res, err := http.ReadResponse(br, nil)
					if err != nil {
						break
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusContinue {
						codes = append(codes, res.StatusCode)
					}
				}
				be.Close() // every handler done
				mu.Lock()
				defer mu.Unlock()
				if !slices.Equal(codes, tc.codes) || !slices.Equal(whole, tc.want) {
					t.Errorf("client got %v, backend read %q whole; want %v and %q", codes, whole, tc.codes, tc.want)
				}
				if fast {
					gotFast = codes
				} else if !slices.Equal(codes, gotFast) {
					t.Errorf("client got %v on the standard path, %v on the fast path", codes, gotFast)
				}
			})
		}
	}
}

// TestAbandonedBodySpoilsOnlyItsConnection: a client that sends part of a
// body and goes away (or stalls past the client timeout) leaves a backend
// connection holding part of a request; it is closed, never reused, so
// the next request on the pool reaches the backend whole, and the fault
// is the client's (400/408, not counted against the backend).
func TestAbandonedBodySpoilsOnlyItsConnection(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration // Options.ClientTimeout
		closeW  bool          // the client half-closes after the part
		want    int
	}{
		{"cut short", 0, true, http.StatusBadRequest},
		{"stalled", 100 * time.Millisecond, false, http.StatusRequestTimeout},
	} {
		for _, fast := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/fast=%v", tc.name, fast), func(t *testing.T) {
				bb := newBodyBackend(t)
				p := proxyTo(t, bb.url(), fast)
				obs := &countingObserver{}
				p.opts.Observer = obs
				p.opts.ClientTimeout = tc.timeout
				front := frontFor(t, p)
				client := &http.Client{Timeout: 5 * time.Second}
				defer client.CloseIdleConnections()
				warm := send(t, client, front.URL, bodyCase{method: "POST", path: "/", body: "warm"})
				if warm.body != "got 4" || bb.connCount() != 1 {
					t.Fatalf("warm-up: %+v, %d backend connections", warm, bb.connCount())
				}
				// 100,000 bytes declared, 50,000 sent (past every buffer,
				// so part of the body reaches the backend), then nothing.
				c, err := net.Dial("tcp", front.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, "POST /abandoned HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n")
				c.Write(bytes.Repeat([]byte("a"), 50000))
				if tc.closeW {
					c.(*net.TCPConn).CloseWrite()
				}
				res, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != tc.want {
					t.Errorf("abandoned body: %d, want %d", res.StatusCode, tc.want)
				}
				// The next request takes the pool: it must not land on
				// the connection that holds half of the abandoned one.
				next := send(t, client, front.URL, bodyCase{method: "POST", path: "/next", body: "next request"})
				if seen := bb.find("POST /next "); next.status != 200 || next.body != "got 12" || !strings.Contains(seen, "body: 12 bytes") {
					t.Errorf("next request: %+v; backend saw:\n%s", next, seen)
				}
				obs.mu.Lock()
				defer obs.mu.Unlock()
				if obs.errs != 0 {
					t.Errorf("%d client faults counted against the backend (statuses %v)", obs.errs, obs.done)
				}
			})
		}
	}
}

// TestHTTP2AbandonedBody: an HTTP/2 client that resets its stream in the
// middle of a body gets its stream ended (499, not counted against the
// backend), the backend connection that held part of the body is closed,
// and the next request on the same client connection is served whole.
func TestHTTP2AbandonedBody(t *testing.T) {
	for _, fast := range []bool{true, false} {
		bb := newBodyBackend(t)
		p := proxyTo(t, bb.url(), fast)
		obs := &countingObserver{}
		p.opts.Observer = obs
		front, conns := h2Front(t, p)
		client := h2Client()
		pr, pw := io.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", front.URL+"/abandoned", pr)
		req.ContentLength = 100000
		done := make(chan error, 1)
		go func() {
			res, err := client.Do(req)
			if err == nil {
				res.Body.Close()
			}
			done <- err
		}()
		pw.Write(bytes.Repeat([]byte("a"), 50000))
		// Abandoned while the body is on its way to the backend: the
		// request reached it, not only the dial (a client gone during the
		// dial is another case, the connection kept for the next request).
		waitFor(t, func() bool { return p.InFlight() == 1 && bb.connCount() == 1 && bb.headsRead() == 1 })
		cancel()
		pw.CloseWithError(context.Canceled)
		<-done
		waitFor(t, func() bool { return p.InFlight() == 0 })
		next := send(t, client, front.URL, bodyCase{method: "POST", path: "/next", body: "next request"})
		if seen := bb.find("POST /next "); next.status != 200 || next.body != "got 12" || !strings.Contains(seen, "body: 12 bytes") {
			t.Errorf("fast=%v: next request: %+v; backend saw:\n%s", fast, next, seen)
		}
		if n := conns.Load(); n != 1 {
			t.Errorf("fast=%v: %d client connections, want 1 (the reset ended one stream only)", fast, n)
		}
		obs.mu.Lock()
		if obs.errs != 0 || len(obs.done) != 2 || obs.done[0] != StatusClientClosedRequest {
			t.Errorf("fast=%v: observer saw %v (%d backend errors), want 499 then 200, none against the backend", fast, obs.done, obs.errs)
		}
		obs.mu.Unlock()
		client.CloseIdleConnections()
	}
}

// TestRetryOnlyWhatWasNotSent: a reused backend connection that fails
// before any byte of the answer is retried once on a new one for a GET,
// never for a POST whose body went out (the backend may have acted on
// it), as http.Transport does.
func TestRetryOnlyWhatWasNotSent(t *testing.T) {
	for _, fast := range []bool{true, false} {
		var mu sync.Mutex
		seen := map[string]int{}
		origin := rawOrigin(t, func(c net.Conn, req *http.Request) bool {
			io.Copy(io.Discard, req.Body)
			mu.Lock()
			seen[req.URL.Path]++
			n := seen[req.URL.Path]
			mu.Unlock()
			if req.URL.Path != "/warm" && n == 1 {
				return false // read the request, then hang up without a word
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return true
		})
		p := proxyTo(t, origin, fast)
		for _, tc := range []struct {
			method, path, body string
			status, times      int
		}{
			{"GET", "/get", "", 200, 2},
			{"POST", "/post", "payload", 502, 1},
			{"PUT", "/put", "", 502, 1}, // not replayable: not sent again
		} {
			w := httptest.NewRecorder()
			p.ServeHTTP(w, httptest.NewRequest("GET", "http://app.example.com/warm", nil))
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			w = httptest.NewRecorder()
			p.ServeHTTP(w, httptest.NewRequest(tc.method, "http://app.example.com"+tc.path, body))
			mu.Lock()
			n := seen[tc.path]
			mu.Unlock()
			if w.Code != tc.status || n != tc.times {
				t.Errorf("fast=%v %s %s: %d, backend saw it %d times; want %d, %d times", fast, tc.method, tc.path, w.Code, n, tc.status, tc.times)
			}
		}
	}
}

// TestExpectFinalAnswerRetiresTheConnection: a backend that answers a
// request expecting 100 with a final status, without Connection: close
// and without reading the body, gets no body and that connection is not
// used again: the unread body can never become its next request.
func TestExpectFinalAnswerRetiresTheConnection(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	origin := rawOrigin(t, func(c net.Conn, req *http.Request) bool {
		mu.Lock()
		paths = append(paths, req.URL.Path)
		mu.Unlock()
		if req.Header.Get("Expect") != "" {
			// No 100, no Connection: close, the body left unread.
			io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
			return true
		}
		io.Copy(io.Discard, req.Body)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	p := proxyTo(t, origin, true)
	front := frontFor(t, p)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
	defer client.CloseIdleConnections()
	got := send(t, client, front.URL, bodyCase{method: "POST", path: "/upload", body: "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", expect: true})
	if got.status != http.StatusUnauthorized {
		t.Errorf("upload: %d, want the backend's 401", got.status)
	}
	got = send(t, client, front.URL, bodyCase{method: "GET", path: "/first"})
	if got.status != 200 {
		t.Errorf("next request: %d", got.status)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(paths, []string{"/upload", "/first"}) {
		t.Errorf("backend read requests %q, want /upload and /first", paths)
	}
}

// TestPooledBodiesStayIntact: bodies up to Options.BufferBody are read
// into pooled buffers, given back once the fast path sent them. Many
// concurrent POSTs of different sizes and contents each reach the backend
// as sent (a buffer reused too early would mix them; under -race it is
// also a data race). On the standard path, where http.Transport may read a
// body after the handler returned, no buffer goes back to the pool.
func TestPooledBodiesStayIntact(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil || fmt.Sprintf("%x", sha(b)) != r.Header.Get("X-Sum") {
			http.Error(w, fmt.Sprintf("body of %d bytes does not match its sum (%v)", len(b), err), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	for _, fast := range []bool{true, false} {
		p := proxyTo(t, backend.URL, fast)
		p.opts.BufferBody = 64 << 10
		front := httptest.NewServer(p)
		client := front.Client()
		var wg sync.WaitGroup
		var bad sync.Map
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 60 {
					body := bytes.Repeat([]byte{byte('a' + (g+i)%26)}, 1+(g*7919+i*104729)%(64<<10))
					body[len(body)/2] = byte(i)
					req, _ := http.NewRequest("POST", front.URL+"/sum", bytes.NewReader(body))
					req.Header.Set("X-Sum", fmt.Sprintf("%x", sha(body)))
					res, err := client.Do(req)
					if err != nil {
						bad.Store(fmt.Sprint(g, i), err.Error())
						continue
					}
					b, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						bad.Store(fmt.Sprint(g, i), string(b))
					}
				}
			}()
		}
		wg.Wait()
		front.Close()
		bad.Range(func(k, v any) bool {
			t.Errorf("fast=%v: request %v: %v", fast, k, v)
			return true
		})
		if !fast {
			if bp := p.bodyBufs.Get(); bp != nil {
				t.Errorf("standard path: a body buffer went back to the pool")
			}
		}
	}
}
