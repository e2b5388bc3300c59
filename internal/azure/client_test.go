package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

func TestNewClient(t *testing.T) {
	const secret = "c2VjcmV0LXNpZ25hdHVyZQ"
	valid := Options{AccountURL: "https://acct.blob.core.windows.net", Auth: AuthSharedKey, AccountKey: "a2V5"}
	tests := []struct {
		name string
		mod  func(*Options)
		want string // "" means valid
	}{
		{"shared key", func(*Options) {}, ""},
		{"default auth", func(o *Options) { o.Auth = "" }, ""},
		{"managed identity with client id", func(o *Options) { o.Auth, o.ClientID = AuthManagedIdentity, "11111111-1111-1111-1111-111111111111" }, ""},
		{"sas", func(o *Options) { o.Auth, o.SASToken = AuthSAS, "?sv=1&sig=x" }, ""},
		{"connection string", func(o *Options) {
			o.Auth, o.ConnectionString = AuthConnectionString, "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/a;"
		}, ""},
		{"no url", func(o *Options) { o.AccountURL = "" }, "account_url is empty"},
		{"query in url", func(o *Options) { o.AccountURL += "/?sig=x" }, "must not carry a query"},
		{"identity over http", func(o *Options) { o.Auth, o.AccountURL = AuthDefault, "http://acct.example" }, "needs an https account_url"},
		{"client id without mi", func(o *Options) { o.ClientID = "x" }, "client_id is only used"},
		{"negative timeout", func(o *Options) { o.CallTimeout = -time.Second }, "negative"},
		{"no name", func(o *Options) { o.AccountURL = "http://127.0.0.1:10000" }, "cannot tell the account name"},
		{"bad key", func(o *Options) { o.AccountKey = "not base64 " + secret }, "not valid base64"},
		{"bad connection string", func(o *Options) {
			o.Auth, o.ConnectionString = AuthConnectionString, "AccountName=a;AccountKey="+secret+";Bogus"
		}, "connection string"},
		{"bad sas", func(o *Options) { o.Auth, o.SASToken = AuthSAS, "%zz"+secret }, "not a URL query string"},
		{"unknown auth", func(o *Options) { o.Auth = "password" }, `auth "password" is not one of`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := valid
			tc.mod(&o)
			c, err := NewClient(o)
			if tc.want == "" {
				if err != nil || c == nil {
					t.Fatalf("NewClient: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewClient: %v, want a *ConfigError containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error holds the secret: %v", err)
			}
		})
	}
	if err := CheckContainerName("Bad_Name"); err == nil {
		t.Error("CheckContainerName(Bad_Name): want an error")
	}
	if err := CheckContainerName("baton"); err != nil {
		t.Errorf("CheckContainerName(baton): %v", err)
	}
}

func TestBound(t *testing.T) {
	if got, want := CallBudget(2*time.Second), 8*time.Second; got != want {
		t.Errorf("CallBudget(2s) = %v, want %v", got, want)
	}
	ctx, cancel := Bound(context.Background(), time.Second)
	defer cancel()
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > CallBudget(time.Second) {
		t.Errorf("Bound without a deadline: %v %v, want within %v", dl, ok, CallBudget(time.Second))
	}
	parent, pcancel := context.WithTimeout(context.Background(), time.Hour)
	defer pcancel()
	ctx2, cancel2 := Bound(parent, time.Second)
	defer cancel2()
	if dl, _ := ctx2.Deadline(); time.Until(dl) < 59*time.Minute {
		t.Errorf("Bound changed the caller's deadline to %v", dl)
	}
}

var errTestConfig = errors.New("test: misconfigured")

func TestClassifier(t *testing.T) {
	const sas = "sv=2024&sig=c2VjcmV0"
	c := NewClassifier(Options{Auth: AuthSAS, SASToken: "?" + sas}, "baton", Kinds{Config: errTestConfig})
	resp := func(status int, code string) error {
		return &azcore.ResponseError{StatusCode: status, ErrorCode: code, RawResponse: &http.Response{StatusCode: status}}
	}
	tests := []struct {
		name       string
		err        error
		wantConfig bool
		want       string
	}{
		{"role", resp(403, "AuthorizationPermissionMismatch"), true, "the SAS token must allow read, write, create and add on container baton"},
		{"auth failed", resp(403, "AuthenticationFailed"), true, "check the SAS token"},
		{"no account", resp(404, "ResourceNotFound"), true, "check account_url"},
		{"missing blob", resp(404, "BlobNotFound"), false, "404 BlobNotFound"},
		{"busy", resp(503, "ServerBusy"), false, "storage unavailable (503 ServerBusy)"},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), false, "timed out"},
		{"secret in text", errors.New("GET https://a/b?" + sas + ": refused"), false, "[REDACTED]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Redact(c.Classify("load x", tc.err))
			if errors.Is(err, errTestConfig) != tc.wantConfig || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "load x: ") {
				t.Errorf("Classify(%v) = %v; want config %v, containing %q", tc.err, err, tc.wantConfig, tc.want)
			}
			if strings.Contains(err.Error(), "c2VjcmV0") {
				t.Errorf("secret in %q", err)
			}
		})
	}
	// A redacted error keeps the sentinels, not the original.
	orig := fmt.Errorf("x %s: %w", sas, errTestConfig)
	red := c.Redact(orig)
	if !errors.Is(red, errTestConfig) || errors.Unwrap(red) != nil || strings.Contains(red.Error(), sas) {
		t.Errorf("Redact = %v (is config %v)", red, errors.Is(red, errTestConfig))
	}
	if ErrorCode(resp(409, "LeaseAlreadyPresent")) != "LeaseAlreadyPresent" || !IsNotFound(resp(404, "ContainerNotFound")) ||
		!IsAuthError(resp(401, "")) || IsNotFound(errors.New("x")) {
		t.Error("ErrorCode/IsNotFound/IsAuthError")
	}
}

func TestClassifyCredentialErrors(t *testing.T) {
	c := NewClassifier(Options{Auth: AuthManagedIdentity}, "baton", Kinds{Config: errTestConfig})
	tests := []struct {
		name       string
		err        error
		wantConfig bool
		wantMsg    string
	}{
		{"token refused", fmt.Errorf("get token: %w", &azidentity.AuthenticationFailedError{
			RawResponse: &http.Response{StatusCode: 400, Status: "400 Bad Request", Body: io.NopCloser(strings.NewReader(`{"error":"invalid_request"}`))}}),
			true, `azure identity (auth "managed-identity") could not get a token`},
		{"no response", &azidentity.AuthenticationFailedError{}, true, "could not get a token"},
		{"token service down", &azidentity.AuthenticationFailedError{
			RawResponse: &http.Response{StatusCode: 503, Body: io.NopCloser(strings.NewReader(""))}}, false, "token service: 503"},
		{"no credential", fmt.Errorf("chain: %w", fakeUnavailable{}), true, "no azure credential available"},
		{"dns", &net.DNSError{Err: "no such host", Name: "acct.blob.core.windows.net", IsNotFound: true}, false, "check account_url"},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), false, "timed out"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Redact(c.Classify("renew lease baton/leader", tc.err))
			if errors.Is(err, errTestConfig) != tc.wantConfig || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Classify(%v) = %v; want config %v, containing %q", tc.err, err, tc.wantConfig, tc.wantMsg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

type fakeUnavailable struct{}

func (fakeUnavailable) Error() string {
	return "ManagedIdentityCredential: no managed identity endpoint"
}
func (fakeUnavailable) NonRetriable() {}
