package azure

import (
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/batonproxy/baton/internal/azure/azuritetest"
)

// TestBlobAzurite: ReadBlob and WriteBlob against a real Azurite: a missing
// blob reads as nothing, creation is exclusive, a stale ETag is refused
// with ErrBlobChanged, the size limit holds, and concurrent
// read-modify-write loops lose no update.
func TestBlobAzurite(t *testing.T) {
	t.Parallel()
	az := azuritetest.Start(t)
	c := azuriteContainer(t, az, "docs") // the container does not exist yet

	data, tag, err := c.ReadBlob(ctxT(t), "doc", 1<<10)
	if err != nil || data != nil || tag != "" {
		t.Fatalf("ReadBlob of a missing container: %q, %q, %v; want nothing, no error", data, tag, err)
	}
	tag1, err := c.WriteBlob(ctxT(t), "doc", []byte("one"), "")
	if err != nil || tag1 == "" {
		t.Fatalf("WriteBlob creating blob and container: %q, %v", tag1, err)
	}
	if _, err := c.WriteBlob(ctxT(t), "doc", []byte("again"), ""); !errors.Is(err, ErrBlobChanged) {
		t.Errorf("second creation: %v, want ErrBlobChanged", err)
	}
	data, tag, err = c.ReadBlob(ctxT(t), "doc", 1<<10)
	if err != nil || string(data) != "one" || tag != tag1 {
		t.Fatalf("ReadBlob = %q, %q, %v; want one, %q", data, tag, err, tag1)
	}
	tag2, err := c.WriteBlob(ctxT(t), "doc", []byte("two"), tag1)
	if err != nil || tag2 == tag1 {
		t.Fatalf("WriteBlob with the current ETag: %q, %v", tag2, err)
	}
	if _, err := c.WriteBlob(ctxT(t), "doc", []byte("stale"), tag1); !errors.Is(err, ErrBlobChanged) || errors.Is(err, errConfig) {
		t.Errorf("WriteBlob with a stale ETag: %v, want ErrBlobChanged", err)
	}
	if _, err := c.WriteBlob(ctxT(t), "other", []byte("x"), tag2); !errors.Is(err, ErrBlobChanged) {
		t.Errorf("WriteBlob with an ETag on a missing blob: %v, want ErrBlobChanged", err)
	}
	if _, _, err := c.ReadBlob(ctxT(t), "doc", 2); !errors.Is(err, ErrBlobTooLarge) {
		t.Errorf("ReadBlob over the limit: %v, want ErrBlobTooLarge", err)
	}
	if _, _, err := c.ReadBlob(ctxT(t), "", 2); !errors.Is(err, errConfig) {
		t.Errorf("ReadBlob with an empty name: %v, want the config kind", err)
	}

	// Concurrent counters: every increment is a read and a conditional
	// write, retried on ErrBlobChanged. None may be lost.
	const writers, each = 4, 5
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		conflicts int
	)
	for range writers {
		wg.Go(func() {
			for range each {
				for {
					data, tag, err := c.ReadBlob(ctxT(t), "counter", 64)
					if err != nil {
						t.Error(err)
						return
					}
					n, _ := strconv.Atoi(string(data))
					_, err = c.WriteBlob(ctxT(t), "counter", []byte(strconv.Itoa(n+1)), tag)
					if errors.Is(err, ErrBlobChanged) {
						mu.Lock()
						conflicts++
						mu.Unlock()
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	data, _, err = c.ReadBlob(ctxT(t), "counter", 64)
	if err != nil || string(data) != strconv.Itoa(writers*each) {
		t.Errorf("counter = %q, %v; want %d", data, err, writers*each)
	}
	t.Logf("%d conflicts among %d writers", conflicts, writers)
}
