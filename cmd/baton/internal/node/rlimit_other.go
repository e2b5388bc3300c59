//go:build !unix

package node

// openFilesLimit: Windows has no per-process descriptor limit of this
// kind (handles are bounded by memory), so [limits] are used as written.
func openFilesLimit() uint64 { return 0 }
