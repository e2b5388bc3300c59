package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testKey is a valid base64 account key; its text must never show.
const testKey = "c2VjcmV0LWtleS12YWx1ZQ=="

func azCS(accountURL, source string) string {
	doc := "[lease.azblob]\nauth = \"connection-string\"\n" + source + "\n"
	if accountURL != "" {
		doc += "account_url = \"" + accountURL + "\"\n"
	}
	return doc
}

func TestAccountURLWithConnectionString(t *testing.T) {
	dir := t.TempDir()
	write := func(name, cs string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(cs+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return "connection_string_file = \"" + filepath.ToSlash(f) + "\""
	}
	azure := write("azure", "DefaultEndpointsProtocol=https;AccountName=batonprod;AccountKey="+testKey+";EndpointSuffix=core.windows.net")
	azurite := write("azurite", "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="+testKey+";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;")
	sas := write("sas", "BlobEndpoint=https://batonprod.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&sig=SECRETSIG")
	t.Setenv("BATON_TEST_CS_ENV", "AccountName=other;AccountKey="+testKey)

	for _, tc := range []struct {
		name, accountURL, source string
		err                      string // "" means no error
		warn                     string // "" means no warning
	}{
		{name: "account_url absent", source: azure},
		{name: "same endpoint", accountURL: "https://batonprod.blob.core.windows.net", source: azure,
			warn: "lease.azblob.account_url is redundant: with auth = \"connection-string\" the endpoint comes from the connection string, which names the same one (https://batonprod.blob.core.windows.net); remove account_url."},
		{name: "same, written differently", accountURL: "HTTPS://BatonProd.Blob.Core.Windows.Net:443/", source: azure, warn: "is redundant"},
		{name: "same, emulator path-style", accountURL: "http://127.0.0.1:10000/devstoreaccount1/", source: azurite, warn: "is redundant"},
		{name: "same, SAS connection string", accountURL: "https://batonprod.blob.core.windows.net", source: sas, warn: "is redundant"},
		{name: "another account", accountURL: "https://batontest.blob.core.windows.net", source: azure,
			err: "names the blob endpoint https://batontest.blob.core.windows.net, but the connection string in lease.azblob.connection_string_file"},
		{name: "another emulator account", accountURL: "http://127.0.0.1:10000/devstoreaccount2", source: azurite,
			err: "names the blob endpoint http://127.0.0.1:10000/devstoreaccount2, but the connection string in lease.azblob.connection_string_file " + `"` + filepath.ToSlash(filepath.Join(dir, "azurite")) + `" names http://127.0.0.1:10000/devstoreaccount1`},
		{name: "another port", accountURL: "http://127.0.0.1:10001/devstoreaccount1", source: azurite, err: "names http://127.0.0.1:10000/devstoreaccount1"},
		{name: "another scheme", accountURL: "http://batonprod.blob.core.windows.net", source: sas, err: "names https://batonprod.blob.core.windows.net"},
		{name: "from the environment", accountURL: "https://batonprod.blob.core.windows.net", source: "connection_string_env = \"BATON_TEST_CS_ENV\"",
			err: "the connection string in lease.azblob.connection_string_env BATON_TEST_CS_ENV names https://other.blob.core.windows.net"},
		{name: "not readable here", accountURL: "https://batonprod.blob.core.windows.net", source: "connection_string_env = \"BATON_TEST_CS_UNSET\"",
			warn: "was not compared with the endpoint of the connection string (secret: environment variable BATON_TEST_CS_UNSET is not set)"},
		{name: "does not parse", accountURL: "https://batonprod.blob.core.windows.net", source: write("bad", "AccountKey="+testKey),
			warn: "was not compared with the endpoint of the connection string in lease.azblob.connection_string_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, azCS(tc.accountURL, tc.source))
			if tc.err != "" {
				es := Errors(err)
				if len(es) != 1 || es[0].Key != "lease.azblob.account_url" || es[0].Line != 4 || !strings.Contains(es[0].Msg, tc.err) {
					t.Fatalf("got %v, want test.toml:4: lease.azblob.account_url: ...%s...", err, tc.err)
				}
				if msg := err.Error(); strings.Contains(msg, testKey) || strings.Contains(msg, "SECRET") {
					t.Fatalf("the error shows the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			warnings := c.Timing().Warnings
			found := false
			for _, w := range warnings {
				if strings.Contains(w, "account_url") {
					found = tc.warn != "" && strings.Contains(w, tc.warn)
					if strings.Contains(w, testKey) || strings.Contains(w, "SECRET") {
						t.Errorf("the warning shows the secret: %q", w)
					}
				}
			}
			if found != (tc.warn != "") {
				t.Errorf("warnings %q, want one containing %q", warnings, tc.warn)
			}
			if !strings.Contains(c.Timing().String(), "account_url") == (tc.warn != "") {
				t.Errorf("check-config's output and the warning disagree:\n%s", c.Timing())
			}
		})
	}
}
