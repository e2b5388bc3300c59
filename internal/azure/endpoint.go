package azure

import (
	"net"
	"net/url"
	"strings"
)

// CanonicalEndpoint returns an account URL (as parseAccountURL accepts it)
// in a form in which two URLs of the same blob endpoint are equal: scheme
// and host in lower case, no default port (443 for https, 80 for http), no
// trailing slash. The path is kept as it is: with the emulator's path-style
// URLs (http://127.0.0.1:10000/devstoreaccount1) it names the account.
func CanonicalEndpoint(s string) (string, error) {
	u, err := parseAccountURL(s)
	if err != nil {
		return "", err
	}
	return canonical(u), nil
}

func canonical(u *url.URL) string {
	u.Scheme = strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if u.Scheme == "https" && port == "443" || u.Scheme == "http" && port == "80" {
		port = ""
	}
	switch {
	case port != "":
		u.Host = net.JoinHostPort(host, port)
	case strings.Contains(host, ":"):
		u.Host = "[" + host + "]"
	default:
		u.Host = host
	}
	return u.String()
}

// ConnectionStringEndpoint returns the blob endpoint that the client
// NewClient builds for connection-string auth talks to (the string's
// BlobEndpoint, or https://ACCOUNT.blob.SUFFIX), in the form of
// CanonicalEndpoint and without the SAS token a connection string may
// carry. It makes no network call. Errors are *ConfigError and hold no part
// of the string.
func ConnectionStringEndpoint(connectionString string) (string, error) {
	c, err := NewClient(Options{Auth: AuthConnectionString, ConnectionString: connectionString})
	if err != nil {
		return "", err
	}
	// The SDK's service URL: its endpoint with a trailing slash, and the
	// SAS as the query when the string has one.
	u, err := url.Parse(c.URL())
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", configErr("the connection string's blob endpoint is not an http(s) URL")
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.User = "", false, "", nil
	u.Path, u.RawPath = strings.TrimRight(u.Path, "/"), ""
	return canonical(u), nil
}
