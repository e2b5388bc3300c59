package lease

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// errorCode returns the storage error code of err ("LeaseAlreadyPresent"),
// or "" when err is not a storage response.
func errorCode(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func statusCode(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// isNotFound reports a missing blob or container (not a missing account).
func isNotFound(err error) bool {
	switch errorCode(err) {
	case "BlobNotFound", "ContainerNotFound":
		return true
	}
	return false
}

func isAuthError(err error) bool {
	s := statusCode(err)
	return s == http.StatusUnauthorized || s == http.StatusForbidden
}

// nonRetriable is the marker azidentity puts on credential errors that no
// retry can fix (no managed identity endpoint, no credential in the chain).
type nonRetriable interface {
	error
	NonRetriable()
}

// describe turns err into a short, one-line description without secrets.
// The SDK's own messages span many lines and, for transport errors, carry
// the full request URL (with a SAS token's signature).
func (l *AzBlobLock) describe(err error) string {
	var re *azcore.ResponseError
	var ue *url.Error
	switch {
	case errors.As(err, &re):
		if re.ErrorCode != "" {
			return fmt.Sprintf("%d %s", re.StatusCode, re.ErrorCode)
		}
		return fmt.Sprintf("%d %s", re.StatusCode, http.StatusText(re.StatusCode))
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &ue):
		// Op and host only: the URL's query may hold a SAS token.
		host := ""
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
		return l.redactString(fmt.Sprintf("%s %s: %v", ue.Op, host, ue.Err))
	default:
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return l.redactString(msg)
	}
}

// wrap classifies a storage error for op ("renew lease"): credential and
// configuration problems wrap ErrConfig with a message that says what to
// fix; timeouts keep the context error; everything else (5xx, 429 after
// the retries, network errors) is a plain, transient error.
func (l *AzBlobLock) wrap(op string, err error) error {
	return l.redact(l.classify(op, err))
}

func (l *AzBlobLock) classify(op string, err error) error {
	prefix := fmt.Sprintf("%s %s", op, l.name)
	var re *azcore.ResponseError
	var afe *azidentity.AuthenticationFailedError
	var nre nonRetriable
	var dns *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: storage call timed out: %w", prefix, context.DeadlineExceeded)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", prefix, context.Canceled)
	case errors.As(err, &re):
		return l.wrapResponse(prefix, re)
	case errors.As(err, &afe):
		if afe.RawResponse == nil || afe.RawResponse.StatusCode < 500 {
			return fmt.Errorf("%s: azure identity (auth %q) could not get a token: %s: %w",
				prefix, l.opts.Auth, l.describe(err), ErrConfig)
		}
		return fmt.Errorf("%s: azure identity token service: %d", prefix, afe.RawResponse.StatusCode)
	case errors.As(err, &nre):
		return fmt.Errorf("%s: no azure credential available (auth %q): %s: %w",
			prefix, l.opts.Auth, l.describe(err), ErrConfig)
	case errors.As(err, &dns) && dns.IsNotFound:
		// Could be a typo in account_url or a DNS outage: transient, but
		// say what to check.
		return fmt.Errorf("%s: storage host %s not found (check account_url)", prefix, dns.Name)
	default:
		return fmt.Errorf("%s: %s", prefix, l.describe(err))
	}
}

func (l *AzBlobLock) wrapResponse(prefix string, re *azcore.ResponseError) error {
	what := fmt.Sprintf("%d %s", re.StatusCode, re.ErrorCode)
	if re.ErrorCode == "" {
		what = fmt.Sprintf("%d %s", re.StatusCode, http.StatusText(re.StatusCode))
	}
	switch {
	case re.StatusCode == http.StatusForbidden && re.ErrorCode == "AuthorizationPermissionMismatch" && l.opts.Auth == AzBlobAuthSAS:
		return fmt.Errorf("%s: storage account rejected our credentials (%s): the SAS token must allow read, write, create and add on container %s: %w",
			prefix, what, l.opts.Container, ErrConfig)
	case re.StatusCode == http.StatusForbidden && re.ErrorCode == "AuthorizationPermissionMismatch":
		return fmt.Errorf("%s: storage account rejected our credentials (%s): give this VM's identity the Storage Blob Data Contributor role on container %s: %w",
			prefix, what, l.opts.Container, ErrConfig)
	case re.StatusCode == http.StatusForbidden && re.ErrorCode == "AuthenticationFailed":
		return fmt.Errorf("%s: storage account rejected our credentials (%s): check the %s for this account (wrong key, expired SAS, or clock skew): %w",
			prefix, what, credentialName(l.opts.Auth), ErrConfig)
	case re.StatusCode == http.StatusForbidden && re.ErrorCode == "AuthorizationSourceIPMismatch":
		return fmt.Errorf("%s: storage account rejected our credentials (%s): the account's network rules do not admit this host: %w",
			prefix, what, ErrConfig)
	case re.StatusCode == http.StatusForbidden && re.ErrorCode == "AuthorizationFailure":
		return fmt.Errorf("%s: storage account rejected our credentials (%s): check the %s, its permissions, and the account's network rules: %w",
			prefix, what, credentialName(l.opts.Auth), ErrConfig)
	case re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%s: storage account rejected our credentials (%s): %w", prefix, what, ErrConfig)
	case re.StatusCode == http.StatusNotFound && (re.ErrorCode == "ContainerNotFound" || re.ErrorCode == "BlobNotFound"):
		return fmt.Errorf("%s: %s", prefix, what)
	case re.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s: storage account or endpoint not found (%s): check account_url: %w", prefix, what, ErrConfig)
	case re.StatusCode == http.StatusBadRequest:
		return fmt.Errorf("%s: storage rejected the request (%s): %w", prefix, what, ErrConfig)
	case re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests || re.StatusCode == http.StatusRequestTimeout:
		return fmt.Errorf("%s: storage unavailable (%s)", prefix, what)
	default:
		return fmt.Errorf("%s: %s", prefix, what)
	}
}

func credentialName(auth string) string {
	switch auth {
	case AzBlobAuthConnectionString:
		return "connection string"
	case AzBlobAuthSharedKey:
		return "account key"
	case AzBlobAuthSAS:
		return "SAS token"
	}
	return "credentials"
}

// redactString removes every configured secret value from s, plain and
// URL-encoded.
func (l *AzBlobLock) redactString(s string) string {
	for _, sec := range l.secrets {
		s = strings.ReplaceAll(s, sec, "[REDACTED]")
		s = strings.ReplaceAll(s, url.QueryEscape(sec), "[REDACTED]")
	}
	return s
}

// redactedError has a redacted text and unwraps only to the sentinels the
// original wrapped, so no secret can be reached through errors.Unwrap.
type redactedError struct {
	msg   string
	kinds []error
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Unwrap() []error { return e.kinds }

// redact returns err with every secret value removed from its text.
func (l *AzBlobLock) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := l.redactString(err.Error())
	if msg == err.Error() {
		return err
	}
	r := &redactedError{msg: msg}
	for _, k := range []error{ErrConfig, ErrHeld, ErrLost, context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, k) {
			r.kinds = append(r.kinds, k)
		}
	}
	return r
}
