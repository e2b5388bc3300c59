package lease

import "context"

// describe turns err into a short, one-line description without secrets.
func (l *AzBlobLock) describe(err error) string { return l.cls.Describe(err) }

// wrap classifies a storage error for op ("renew lease"): credential and
// configuration problems wrap ErrConfig with a message that says what to
// fix; timeouts keep the context error; everything else (5xx, 429 after
// the retries, network errors) is a plain, transient error.
func (l *AzBlobLock) wrap(op string, err error) error {
	return l.redact(l.cls.Classify(op+" "+l.name, err))
}

// redact returns err with every secret value removed from its text; a
// redacted error unwraps only to the sentinels the original wrapped.
func (l *AzBlobLock) redact(err error) error {
	return l.cls.Redact(err, ErrConfig, ErrHeld, ErrLost, context.DeadlineExceeded, context.Canceled)
}
