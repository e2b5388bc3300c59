package azure

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
)

// Auth modes of Options.Auth.
const (
	AuthDefault          = "default"
	AuthManagedIdentity  = "managed-identity"
	AuthConnectionString = "connection-string"
	AuthSharedKey        = "shared-key"
	AuthSAS              = "sas"
)

// The retry policy of every client New builds, and the default try timeout.
const (
	DefaultCallTimeout = 2 * time.Second

	MaxRetries    = 2 // three tries per call, all within the caller's ctx
	RetryDelay    = 100 * time.Millisecond
	MaxRetryDelay = time.Second
)

// Options says how to reach and authenticate to a storage account. Secret
// fields hold the secret values themselves (already read from a file or the
// environment by the caller); they never appear in errors.
type Options struct {
	// AccountURL is the blob service endpoint:
	// https://ACCOUNT.blob.core.windows.net, another cloud's suffix, or
	// Azurite's http://127.0.0.1:10000/devstoreaccount1. Not used with
	// connection-string auth (the connection string names the endpoint).
	AccountURL string
	// Auth is one of "default" (DefaultAzureCredential), "managed-identity",
	// "connection-string", "shared-key" or "sas". Default "default".
	Auth string
	// ClientID selects a user-assigned managed identity (managed-identity
	// auth only); empty means the system-assigned identity.
	ClientID string

	ConnectionString string // connection-string auth
	AccountName      string // shared-key auth; default: from AccountURL
	AccountKey       string // shared-key auth
	SASToken         string // sas auth, with or without the leading "?"

	// CallTimeout bounds one try of one storage call; a call makes at most
	// MaxRetries+1 tries and never outlives its context. Default 2 s.
	CallTimeout time.Duration
	// Transport replaces the HTTP transport (tests: fakes, counting). nil
	// uses the Azure SDK's default.
	Transport http.RoundTripper
}

// WithDefaults returns o with the documented defaults of Auth and
// CallTimeout applied.
func (o Options) WithDefaults() Options {
	if o.Auth == "" {
		o.Auth = AuthDefault
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	return o
}

// ConfigError is an option that can never work. Its message says what to
// fix and holds no secret. Callers usually rewrap it with their own
// configuration sentinel.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

func configErr(format string, args ...any) error {
	return &ConfigError{Msg: fmt.Sprintf(format, args...)}
}

// containerNameRE is Azure's rule for container names.
var containerNameRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$`)

// CheckContainerName returns a *ConfigError when name is not a valid
// container name.
func CheckContainerName(name string) error {
	if !containerNameRE.MatchString(name) {
		return configErr("container name %q is invalid (3-63 lowercase letters, digits and single hyphens)", name)
	}
	return nil
}

// NewClient checks o (after WithDefaults) and builds the client. It makes
// no network call. Errors about the options are *ConfigError; no error
// holds a secret of o.
func NewClient(o Options) (*azblob.Client, error) {
	o = o.WithDefaults()
	c, err := build(o)
	if ce, ok := err.(*ConfigError); ok {
		ce.Msg = NewClassifier(o, "", Kinds{}).RedactString(ce.Msg)
	}
	return c, err
}

func build(o Options) (*azblob.Client, error) {
	if o.CallTimeout < 0 {
		return nil, configErr("call timeout %v is negative", o.CallTimeout)
	}
	if o.ClientID != "" && o.Auth != AuthManagedIdentity {
		return nil, configErr("client_id is only used with auth %q (auth is %q)", AuthManagedIdentity, o.Auth)
	}
	copts := &azblob.ClientOptions{ClientOptions: policy.ClientOptions{
		Retry: policy.RetryOptions{
			MaxRetries:    MaxRetries,
			TryTimeout:    o.CallTimeout,
			RetryDelay:    RetryDelay,
			MaxRetryDelay: MaxRetryDelay,
		},
		Telemetry: policy.TelemetryOptions{ApplicationID: "baton"},
	}}
	if o.Transport != nil {
		copts.Transport = &http.Client{Transport: o.Transport}
	}

	var svcURL string
	if o.Auth != AuthConnectionString {
		u, err := parseAccountURL(o.AccountURL)
		if err != nil {
			return nil, err
		}
		svcURL = u.String()
		if (o.Auth == AuthDefault || o.Auth == AuthManagedIdentity) && u.Scheme != "https" {
			return nil, configErr("auth %q needs an https account_url (got %s)", o.Auth, svcURL)
		}
	}

	var (
		client *azblob.Client
		err    error
	)
	switch o.Auth {
	case AuthDefault:
		var cred azcore.TokenCredential
		cred, err = azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, configErr("default azure credential: %v", err)
		}
		client, err = azblob.NewClient(svcURL, cred, copts)
	case AuthManagedIdentity:
		mo := &azidentity.ManagedIdentityCredentialOptions{}
		if o.ClientID != "" {
			mo.ID = azidentity.ClientID(o.ClientID)
		}
		var cred azcore.TokenCredential
		cred, err = azidentity.NewManagedIdentityCredential(mo)
		if err != nil {
			return nil, configErr("managed identity credential: %v", err)
		}
		client, err = azblob.NewClient(svcURL, cred, copts)
	case AuthConnectionString:
		if o.ConnectionString == "" {
			return nil, configErr("auth %q needs a connection string (it is empty)", o.Auth)
		}
		client, err = azblob.NewClientFromConnectionString(o.ConnectionString, copts)
		if err != nil {
			// The SDK's parse errors do not quote the string; New's
			// redaction makes sure of it.
			return nil, configErr("connection string: %v", err)
		}
	case AuthSharedKey:
		if o.AccountKey == "" {
			return nil, configErr("auth %q needs an account key (it is empty)", o.Auth)
		}
		name := o.AccountName
		if name == "" {
			name = AccountNameFromURL(svcURL)
		}
		if name == "" {
			return nil, configErr("auth %q: cannot tell the account name from account_url %s; set it", o.Auth, svcURL)
		}
		var cred *azblob.SharedKeyCredential
		cred, err = azblob.NewSharedKeyCredential(name, o.AccountKey)
		if err != nil {
			return nil, configErr("account key for %s is not valid base64", name)
		}
		client, err = azblob.NewClientWithSharedKeyCredential(svcURL, cred, copts)
	case AuthSAS:
		tok := strings.TrimPrefix(strings.TrimSpace(o.SASToken), "?")
		if tok == "" {
			return nil, configErr("auth %q needs a SAS token (it is empty)", o.Auth)
		}
		if _, perr := url.ParseQuery(tok); perr != nil {
			return nil, configErr("SAS token is not a URL query string")
		}
		client, err = azblob.NewClientWithNoCredential(svcURL+"?"+tok, copts)
	default:
		return nil, configErr("auth %q is not one of default, managed-identity, connection-string, shared-key, sas", o.Auth)
	}
	if err != nil {
		return nil, configErr("storage client: %v", err)
	}
	return client, nil
}

// parseAccountURL checks an account URL and returns it without a trailing
// slash, query or fragment.
func parseAccountURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, configErr("account_url is empty (e.g. https://ACCOUNT.blob.core.windows.net)")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, configErr("account_url %q is not an http(s) URL like https://ACCOUNT.blob.core.windows.net", s)
	}
	if u.RawQuery != "" || u.User != nil {
		return nil, configErr("account_url must not carry a query or user info (put a SAS token in its own setting)")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	u.Fragment = ""
	return u, nil
}

// AccountNameFromURL returns the storage account name of an account URL,
// "" when it cannot tell. The emulator's endpoints are path-style (the
// account is the first path segment) when the host is an IP address,
// "localhost" or a name without dots (http://127.0.0.1:10000/devstoreaccount1,
// http://azurite:10000/devstoreaccount1); every other host is Azure's
// host-style https://ACCOUNT.blob.core.windows.net (any cloud's suffix),
// where the account is the host's first label and a path is ignored. A URL
// with a query or user info names no account. For a custom domain, give
// the account name explicitly.
func AccountNameFromURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" || u.RawQuery != "" || u.User != nil {
		return ""
	}
	h := u.Hostname()
	if _, err := netip.ParseAddr(h); err == nil || h == "localhost" || !strings.Contains(h, ".") {
		seg, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		return seg
	}
	label, _, _ := strings.Cut(h, ".")
	return label
}

// CallBudget is the longest one call can take with try timeout callTimeout:
// all its tries and the back-offs between them.
func CallBudget(callTimeout time.Duration) time.Duration {
	return time.Duration(MaxRetries+1)*callTimeout + MaxRetries*MaxRetryDelay
}

// Bound gives ctx the deadline CallBudget(callTimeout) when it has none, so
// that no call is unbounded even if a caller forgets one. A ctx with a
// deadline keeps it.
func Bound(ctx context.Context, callTimeout time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, CallBudget(callTimeout))
}
