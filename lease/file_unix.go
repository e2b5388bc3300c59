//go:build unix

package lease

import (
	"context"
	"os"

	"github.com/batonproxy/baton/internal/fsutil"
)

// lockFile takes an exclusive flock on f, honouring ctx.
func lockFile(ctx context.Context, f *os.File) error {
	return fsutil.Lock(ctx, f)
}

func unlockFile(f *os.File) error { return fsutil.Unlock(f) }
