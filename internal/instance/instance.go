package instance

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/batonproxy/baton/internal/fsutil"
)

// maxStateFile bounds what is read of the lease ID and lock (PID) files,
// which hold a line each.
const maxStateFile = 4 << 10

// ErrRunning is wrapped by Acquire's error when another process holds the
// instance lock.
var ErrRunning = errors.New("instance: another process runs this configuration")

// Lock is this process's instance lock and lease ID store.
type Lock struct {
	path   string // the lock file
	idPath string // the lease ID file
	f      *os.File

	mu sync.Mutex
	id string
}

// FileName returns the base name of the files for an identity: the node
// name (made safe for a file name) and a short hash of the node name and
// the lease target, so that two configurations differ unless they are the
// same node competing for the same lease.
func FileName(node, leaseTarget string) string {
	sum := sha256.Sum256([]byte(node + "\x00" + leaseTarget))
	return "baton-" + unsafeChars.ReplaceAllString(node, "_") + "-" + hex.EncodeToString(sum[:6])
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// Acquire takes the instance lock for base (see FileName) in dir, creating
// dir (mode 0750) when missing. It fails, wrapping ErrRunning, when another
// live process holds it; the error names the lock file and that process's
// PID as far as it can be read.
func Acquire(dir, base string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("instance lock: %w", err)
	}
	l := &Lock{
		path:   filepath.Join(dir, base+".lock"),
		idPath: filepath.Join(dir, base+".leaseid"),
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("instance lock %s: %w", l.path, err)
	}
	got, err := fsutil.TryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("instance lock %s: %w", l.path, err)
	}
	if !got {
		pid := readPID(l.path)
		f.Close()
		return nil, fmt.Errorf("%w: %s is locked by PID %s (stop it first; a second baton run of one configuration is refused)", ErrRunning, l.path, pid)
	}
	if err := writePID(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("instance lock %s: %w", l.path, err)
	}
	l.f = f
	return l, nil
}

// Path returns the lock file's path.
func (l *Lock) Path() string { return l.path }

// Close releases the lock. The lease ID file stays for the next process.
func (l *Lock) Close() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close() // closing drops the OS lock
	l.f = nil
	return err
}

// LeaseID returns the lease ID to use. inherited is true when the ID was
// already on disk: an earlier process of this configuration may have held
// the lease under it and died (it is dead, since this process holds the
// instance lock). A new ID is written durably before it is returned.
func (l *Lock) LeaseID() (id string, inherited bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.id != "" {
		return l.id, false, nil
	}
	b, err := fsutil.ReadFileLimit(l.idPath, maxStateFile)
	switch {
	case err == nil && isGUID(strings.TrimSpace(string(b))):
		l.id = strings.TrimSpace(string(b))
		return l.id, true, nil
	case err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, fsutil.ErrTooLarge):
		return "", false, fmt.Errorf("read lease id %s: %w", l.idPath, err)
	}
	// Missing or not a GUID (a torn write cannot happen with rename, but a
	// hand-edited file can; a file too large to read cannot be one): a new
	// ID, never used anywhere.
	id, err = l.writeNewLocked()
	return id, false, err
}

// Retire replaces the current lease ID on disk with a new random one and
// returns it. Call it before any call that gives the lease held under old
// away; if it fails, do not make that call.
func (l *Lock) Retire(old string) (next string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.id != "" && old != l.id {
		return "", fmt.Errorf("retire lease id: %q is not the current id", old)
	}
	return l.writeNewLocked()
}

func (l *Lock) writeNewLocked() (string, error) {
	id := NewGUID()
	if err := fsutil.WriteFile(l.idPath, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write lease id %s: %w", l.idPath, err)
	}
	l.id = id
	return id, nil
}

// NewGUID returns a random version-4 GUID in its canonical text form (what
// Azure Blob Storage accepts as a proposed lease ID).
func NewGUID() string {
	var b [16]byte
	_, _ = io.ReadFull(rand.Reader, b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func isGUID(s string) bool { return guidRE.MatchString(s) }

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

func readPID(path string) string {
	b, err := fsutil.ReadFileLimit(path, maxStateFile)
	if err != nil || len(strings.TrimSpace(string(b))) == 0 {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
