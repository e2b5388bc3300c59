package azure

import (
	"errors"
	"strings"
	"testing"
)

func TestCanonicalEndpoint(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://acct.blob.core.windows.net", "https://acct.blob.core.windows.net"},
		{"HTTPS://Acct.Blob.Core.Windows.NET/", "https://acct.blob.core.windows.net"},
		{"https://acct.blob.core.windows.net:443//", "https://acct.blob.core.windows.net"},
		{"https://acct.blob.core.windows.net:8443", "https://acct.blob.core.windows.net:8443"},
		{"http://127.0.0.1:10000/devstoreaccount1/", "http://127.0.0.1:10000/devstoreaccount1"},
		{"http://LOCALHOST:80/devstoreaccount1", "http://localhost/devstoreaccount1"},
		{"http://[::1]:10000/devstoreaccount1", "http://[::1]:10000/devstoreaccount1"},
		{"http://[::1]:80/a", "http://[::1]/a"},
	} {
		got, err := CanonicalEndpoint(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("CanonicalEndpoint(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := CanonicalEndpoint("https://a.blob.core.windows.net/?sig=x"); err == nil {
		t.Error("a URL with a query has no canonical form")
	}
}

func TestConnectionStringEndpoint(t *testing.T) {
	const key = "c2VjcmV0LWtleS12YWx1ZQ==" // "secret-key-value"
	for _, tc := range []struct{ cs, want string }{
		{"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + key + ";EndpointSuffix=core.windows.net", "https://acct.blob.core.windows.net"},
		{"AccountName=acct;AccountKey=" + key, "https://acct.blob.core.windows.net"},
		{"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + key + ";EndpointSuffix=core.usgovcloudapi.net", "https://acct.blob.core.usgovcloudapi.net"},
		{"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + key + ";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;", "http://127.0.0.1:10000/devstoreaccount1"},
		{"BlobEndpoint=https://Acct.blob.core.windows.net:443/;SharedAccessSignature=sv=2022-11-02&sig=SECRETSIG", "https://acct.blob.core.windows.net"},
	} {
		got, err := ConnectionStringEndpoint(tc.cs)
		if err != nil || got != tc.want {
			t.Errorf("ConnectionStringEndpoint(%q) = %q, %v; want %q", tc.cs, got, err, tc.want)
		}
	}
	for _, cs := range []string{
		"AccountKey=" + key,                      // no account, no endpoint
		"AccountName=a;AccountKey=" + key + ";x", // not key=value
		"AccountName=a;AccountKey=not base64 " + key,
		"BlobEndpoint=ftp://host/a;SharedAccessSignature=sig=SECRETSIG",
	} {
		_, err := ConnectionStringEndpoint(cs)
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("ConnectionStringEndpoint(%q): %v, want a *ConfigError", cs, err)
			continue
		}
		if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "SECRETSIG") {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
}
