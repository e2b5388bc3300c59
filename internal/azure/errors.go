package azure

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
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
)

// ErrorCode returns the storage error code of err ("LeaseAlreadyPresent"),
// or "" when err is not a storage response.
func ErrorCode(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// StatusCode returns the HTTP status of a storage response error, or 0.
func StatusCode(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// IsNotFound reports a missing blob or container (not a missing account).
func IsNotFound(err error) bool {
	return bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound)
}

// IsAuthError reports a 401 or 403 answer.
func IsAuthError(err error) bool {
	s := StatusCode(err)
	return s == http.StatusUnauthorized || s == http.StatusForbidden
}

// isLeaseHeld reports an answer that means another lease ID holds the
// lease (an acquire or a change to a new ID refused).
func isLeaseHeld(err error) bool {
	return bloberror.HasCode(err, bloberror.LeaseAlreadyPresent, bloberror.LeaseIsBreakingAndCannotBeAcquired)
}

// isLeaseNotHeld reports an answer that means the lease ID of a lease
// operation (renew, release, change) or of a blob operation under a lease
// condition does not hold the lease: another ID holds it, it expired and
// was taken, it is broken or breaking, or the blob is gone.
func isLeaseNotHeld(err error) bool {
	return IsNotFound(err) || bloberror.HasCode(err,
		bloberror.LeaseIDMismatchWithLeaseOperation, bloberror.LeaseNotPresentWithLeaseOperation,
		bloberror.LeaseLost, bloberror.LeaseIsBrokenAndCannotBeRenewed, bloberror.LeaseIDMissing,
		bloberror.LeaseIsBreakingAndCannotBeChanged,
		bloberror.LeaseIDMismatchWithBlobOperation, bloberror.LeaseNotPresentWithBlobOperation)
}

// isAlreadyThere reports an answer to a conditional creation that means
// the blob exists (and may already be leased by another node).
func isAlreadyThere(err error) bool {
	return bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet,
		bloberror.LeaseIDMissing, bloberror.LeaseAlreadyPresent, bloberror.LeaseIDMismatchWithBlobOperation)
}

// Kinds are the caller's sentinel errors that this package's errors wrap,
// so that each caller tests them with errors.Is against its own package's
// sentinels (lease.ErrConfig, certstore.ErrLockLost, ...). A nil kind is
// not wrapped.
type Kinds struct {
	// Config: the storage can never work as configured (options,
	// credentials, roles, network rules, a wrong endpoint).
	Config error
	// Held: another lease ID holds the lease (Acquire refused).
	Held error
	// Lost: this lease ID does not hold the lease (Renew, Release, Change,
	// and reads and writes under the lease ID).
	Lost error
}

// nonRetriable is the marker azidentity puts on credential errors that no
// retry can fix (no managed identity endpoint, no credential in the chain).
type nonRetriable interface {
	error
	NonRetriable()
}

// Classifier turns storage errors of one client into short, one-line errors
// without secrets, naming what to fix when the cause is configuration.
type Classifier struct {
	auth      string
	container string
	kinds     Kinds
	secrets   []string
}

// NewClassifier returns a Classifier for a client built from o, working on
// container. Errors that need an operator (credentials, roles, network
// rules, a wrong endpoint) wrap k.Config.
func NewClassifier(o Options, container string, k Kinds) *Classifier {
	c := &Classifier{auth: o.WithDefaults().Auth, container: container, kinds: k}
	sasTrimmed := strings.TrimPrefix(strings.TrimSpace(o.SASToken), "?")
	for _, s := range []string{o.ConnectionString, o.AccountKey, o.SASToken, sasTrimmed} {
		if s != "" {
			c.secrets = append(c.secrets, s)
		}
	}
	return c
}

// Describe turns err into a short, one-line description without secrets.
// The SDK's own messages span many lines and, for transport errors, carry
// the full request URL (with a SAS token's signature).
func (c *Classifier) Describe(err error) string {
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
		return c.RedactString(fmt.Sprintf("%s %s: %v", ue.Op, host, ue.Err))
	default:
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return c.RedactString(msg)
	}
}

// Classify returns err as "prefix: what happened". Credential and
// configuration problems wrap the Classifier's config sentinel with a
// message that says what to fix; timeouts and cancellations keep the
// context error; everything else (5xx, 429 after the retries, network
// errors) is a plain, transient error. The result is not yet redacted of
// values the caller put into prefix: pass it through Redact.
func (c *Classifier) Classify(prefix string, err error) error {
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
		return c.classifyResponse(prefix, re)
	case errors.As(err, &afe):
		if afe.RawResponse == nil || afe.RawResponse.StatusCode < 500 {
			return c.configErrorf("%s: azure identity (auth %q) could not get a token: %s",
				prefix, c.auth, c.Describe(err))
		}
		return fmt.Errorf("%s: azure identity token service: %d", prefix, afe.RawResponse.StatusCode)
	case errors.As(err, &nre):
		return c.configErrorf("%s: no azure credential available (auth %q): %s",
			prefix, c.auth, c.Describe(err))
	case errors.As(err, &dns) && dns.IsNotFound:
		// Could be a typo in account_url or a DNS outage: transient, but
		// say what to check.
		return fmt.Errorf("%s: storage host %s not found (check account_url)", prefix, dns.Name)
	default:
		return fmt.Errorf("%s: %s", prefix, c.Describe(err))
	}
}

// configErrorf formats a message and wraps the config sentinel, if any.
func (c *Classifier) configErrorf(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if c.kinds.Config == nil {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %w", msg, c.kinds.Config)
}

func (c *Classifier) classifyResponse(prefix string, re *azcore.ResponseError) error {
	what := fmt.Sprintf("%d %s", re.StatusCode, re.ErrorCode)
	if re.ErrorCode == "" {
		what = fmt.Sprintf("%d %s", re.StatusCode, http.StatusText(re.StatusCode))
	}
	switch {
	case re.StatusCode == http.StatusForbidden && re.ErrorCode == "AuthorizationPermissionMismatch" && c.auth == AuthSAS:
		return c.configErrorf("%s: storage account rejected our credentials (%s): the SAS token must allow read, write, create and add on container %s",
			prefix, what, c.container)
	case re.StatusCode == http.StatusForbidden && re.ErrorCode == "AuthorizationPermissionMismatch":
		return c.configErrorf("%s: storage account rejected our credentials (%s): give this VM's identity the Storage Blob Data Contributor role on container %s",
			prefix, what, c.container)
	case re.StatusCode == http.StatusForbidden && re.ErrorCode == "AuthenticationFailed":
		return c.configErrorf("%s: storage account rejected our credentials (%s): check the %s for this account (wrong key, expired SAS, or clock skew)",
			prefix, what, credentialName(c.auth))
	case re.StatusCode == http.StatusForbidden && re.ErrorCode == "AuthorizationSourceIPMismatch":
		return c.configErrorf("%s: storage account rejected our credentials (%s): the account's network rules do not admit this host",
			prefix, what)
	case re.StatusCode == http.StatusForbidden && re.ErrorCode == "AuthorizationFailure":
		return c.configErrorf("%s: storage account rejected our credentials (%s): check the %s, its permissions, and the account's network rules",
			prefix, what, credentialName(c.auth))
	case re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden:
		return c.configErrorf("%s: storage account rejected our credentials (%s)", prefix, what)
	case re.StatusCode == http.StatusNotFound && (re.ErrorCode == "ContainerNotFound" || re.ErrorCode == "BlobNotFound"):
		return fmt.Errorf("%s: %s", prefix, what)
	case re.StatusCode == http.StatusNotFound:
		return c.configErrorf("%s: storage account or endpoint not found (%s): check account_url", prefix, what)
	case re.StatusCode == http.StatusBadRequest:
		return c.configErrorf("%s: storage rejected the request (%s)", prefix, what)
	case re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests || re.StatusCode == http.StatusRequestTimeout:
		return fmt.Errorf("%s: storage unavailable (%s)", prefix, what)
	default:
		return fmt.Errorf("%s: %s", prefix, what)
	}
}

func credentialName(auth string) string {
	switch auth {
	case AuthConnectionString:
		return "connection string"
	case AuthSharedKey:
		return "account key"
	case AuthSAS:
		return "SAS token"
	}
	return "credentials"
}

// RedactString removes every configured secret value from s, plain and
// URL-encoded.
func (c *Classifier) RedactString(s string) string {
	for _, sec := range c.secrets {
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

// Redact returns err with every secret value removed from its text. An
// error whose text holds no secret is returned as it is; otherwise the
// result unwraps only to those of the Classifier's Kinds,
// context.DeadlineExceeded, context.Canceled and kinds that err wrapped.
func (c *Classifier) Redact(err error, kinds ...error) error {
	if err == nil {
		return nil
	}
	msg := c.RedactString(err.Error())
	if msg == err.Error() {
		return err
	}
	r := &redactedError{msg: msg}
	all := append([]error{c.kinds.Config, c.kinds.Held, c.kinds.Lost, context.DeadlineExceeded, context.Canceled}, kinds...)
	for _, k := range all {
		if k != nil && errors.Is(err, k) {
			r.kinds = append(r.kinds, k)
		}
	}
	return r
}
