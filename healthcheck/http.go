package healthcheck

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/batonproxy/baton/internal/fsutil"
)

// DefaultMaxBodyBytes is how much of a response body an HTTP check reads when
// HTTPOptions.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 64 << 10

// userAgent is sent with every HTTP check unless HTTPOptions.Headers sets another.
const userAgent = "baton-healthcheck"

// outputBodyBytes is how much of the body an HTTP check keeps in its history output.
const outputBodyBytes = 256

// HTTPOptions configures an HTTP check. Only URL is required.
type HTTPOptions struct {
	URL string // http:// or https://
	// Display is the URL as reasons, /status and logs show it; "" means
	// URL with its password redacted. Give a form without secrets when
	// the query carries one (config.RedactURL).
	Display string
	Method  string            // default GET
	Headers map[string]string // sent with the request; a "Host" entry acts like Host
	Host    string            // Host header (and TLS server name) override
	// Expect lists the accepted status codes; empty means 200-399. Redirects are not followed:
	// a 3xx is a status like any other.
	Expect []StatusRange
	// BodyRegex, when not "", must match the first MaxBodyBytes of the body.
	BodyRegex string
	// CAFile is a PEM bundle trusted for https instead of the system roots.
	CAFile string
	// SkipVerify turns off certificate verification for https.
	SkipVerify bool
	// MaxBodyBytes bounds how much of the body is read; default DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// StatusRange is an inclusive range of HTTP status codes; {200, 200} is one code.
type StatusRange struct {
	Min, Max int
}

func (r StatusRange) String() string {
	if r.Min == r.Max {
		return strconv.Itoa(r.Min)
	}
	return strconv.Itoa(r.Min) + "-" + strconv.Itoa(r.Max)
}

var defaultExpect = []StatusRange{{Min: 200, Max: 399}}

type httpChecker struct {
	client   *http.Client
	method   string
	url      string // as given; the request is built from it
	display  string // url with the password redacted, for reasons
	host     string
	headers  http.Header
	expect   []StatusRange
	want     string // expect, formatted once
	bodyRe   *regexp.Regexp
	maxBody  int64
	readBody bool // whether the body must be read at all (regex)
}

// NewHTTP returns a check that sends one request per run on its own client. It follows no
// redirects, keeps at most one idle connection (closed by Monitor.Stop), and ignores proxy
// environment variables: it talks to the backend directly.
func NewHTTP(o HTTPOptions) (Checker, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("http check: parse url %q: %w", o.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("http check %s: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("http check %s: url has no host", u.Redacted())
	}
	c := &httpChecker{
		method:  strings.ToUpper(o.Method),
		url:     o.URL,
		display: cmp.Or(o.Display, u.Redacted()),
		host:    o.Host,
		headers: make(http.Header, len(o.Headers)+1),
		expect:  o.Expect,
		maxBody: o.MaxBodyBytes,
	}
	if c.method == "" {
		c.method = http.MethodGet
	}
	if !validMethod(c.method) {
		return nil, fmt.Errorf("http check %s: invalid method %q", c.display, o.Method)
	}
	c.headers.Set("User-Agent", userAgent)
	for k, v := range o.Headers {
		if strings.EqualFold(k, "Host") {
			if c.host == "" {
				c.host = v
			}
			continue
		}
		c.headers.Set(k, v)
	}
	if len(c.expect) == 0 {
		c.expect = defaultExpect
	}
	wants := make([]string, 0, len(c.expect))
	for _, r := range c.expect {
		if r.Min < 100 || r.Max > 599 || r.Min > r.Max {
			return nil, fmt.Errorf("http check %s: invalid expected status range %d-%d (want 100 <= min <= max <= 599)", c.display, r.Min, r.Max)
		}
		wants = append(wants, r.String())
	}
	c.want = strings.Join(wants, " or ")
	switch {
	case c.maxBody < 0:
		return nil, fmt.Errorf("http check %s: max body bytes %d is negative", c.display, c.maxBody)
	case c.maxBody == 0:
		c.maxBody = DefaultMaxBodyBytes
	}
	if o.BodyRegex != "" {
		if c.method == http.MethodHead {
			return nil, fmt.Errorf("http check %s: body regex with method HEAD: a HEAD response has no body", c.display)
		}
		re, err := regexp.Compile(o.BodyRegex)
		if err != nil {
			return nil, fmt.Errorf("http check %s: body regex: %w", c.display, err)
		}
		c.bodyRe = re
		c.readBody = true
	}

	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.SkipVerify {
		tlsConf.InsecureSkipVerify = true // #nosec G402 -- explicitly configured by the operator
	}
	if o.CAFile != "" {
		pem, err := fsutil.ReadFileLimit(o.CAFile, fsutil.MaxPEMFile)
		if err != nil {
			return nil, fmt.Errorf("http check %s: read ca file: %w", c.display, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("http check %s: ca file %s: no PEM certificate found", c.display, o.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	if c.host != "" {
		// Without this the certificate would be checked against the URL's host (often an IP).
		if h, _, err := net.SplitHostPort(c.host); err == nil {
			tlsConf.ServerName = h
		} else {
			tlsConf.ServerName = c.host
		}
	}
	c.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil, // the backend is local: never go through HTTP(S)_PROXY
			DialContext:            (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:        tlsConf,
			ForceAttemptHTTP2:      false,
			MaxIdleConns:           1,
			MaxIdleConnsPerHost:    1,
			IdleConnTimeout:        30 * time.Second,
			DisableCompression:     true, // match the regex against what the backend sent
			MaxResponseHeaderBytes: 64 << 10,
		},
		// A 3xx is a status to compare, not a hop to take.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, r := range m {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

func (c *httpChecker) Type() string { return "http" }

// CloseIdleConnections closes the kept-alive connection, if any.
func (c *httpChecker) CloseIdleConnections() { c.client.CloseIdleConnections() }

// Check sends the request and compares status and body. Every reason starts with the method
// and URL, e.g. "GET http://127.0.0.1:8080/: status 500, want 200-399".
func (c *httpChecker) Check(ctx context.Context) (string, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, nil)
	if err != nil {
		return "", failf(err, "%s %s: build request: %v", c.method, c.display, err)
	}
	req.Header = c.headers.Clone()
	if c.host != "" {
		req.Host = c.host
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return "", failf(err, "%s %s: %s", c.method, c.display, describeErr(ctx, start, err))
	}
	defer resp.Body.Close()

	// Read at most maxBody bytes (all of them when matching a regex, else only enough to let the
	// connection be reused); a larger body makes Close drop the connection, which is fine.
	var body []byte
	var readErr error
	if c.readBody {
		body, readErr = io.ReadAll(io.LimitReader(resp.Body, c.maxBody))
	} else {
		body, readErr = io.ReadAll(io.LimitReader(resp.Body, outputBodyBytes))
		if readErr == nil {
			_, readErr = io.Copy(io.Discard, io.LimitReader(resp.Body, c.maxBody-int64(len(body))))
		}
	}
	output := resp.Status
	if len(body) > 0 {
		output += "\n" + string(body[:min(len(body), outputBodyBytes)])
	}

	if !c.statusOK(resp.StatusCode) {
		return output, failf(nil, "%s %s: status %d, want %s", c.method, c.display, resp.StatusCode, c.want)
	}
	if readErr != nil {
		return output, failf(readErr, "%s %s: read body: %s", c.method, c.display, describeErr(ctx, start, readErr))
	}
	if c.bodyRe != nil && !c.bodyRe.Match(body) {
		if int64(len(body)) >= c.maxBody {
			return output, failf(nil, "%s %s: body does not match %q in its first %d bytes", c.method, c.display, c.bodyRe.String(), c.maxBody)
		}
		return output, failf(nil, "%s %s: body does not match %q", c.method, c.display, c.bodyRe.String())
	}
	return output, nil
}

func (c *httpChecker) statusOK(code int) bool {
	for _, r := range c.expect {
		if code >= r.Min && code <= r.Max {
			return true
		}
	}
	return false
}
