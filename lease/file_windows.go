//go:build windows

package lease

import (
	"context"
	"os"

	"github.com/batonproxy/baton/internal/fsutil"
)

// lockFile takes an exclusive LockFileEx lock on f, honouring ctx.
func lockFile(ctx context.Context, f *os.File) error {
	return fsutil.Lock(ctx, f)
}

func unlockFile(f *os.File) error { return fsutil.Unlock(f) }
