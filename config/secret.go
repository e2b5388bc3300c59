package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/batonproxy/baton/internal/fsutil"
)

// ReadSecret returns a secret from the environment variable envName or from
// file, whichever is set (exactly one must be), with surrounding whitespace
// trimmed. Errors name the variable or the file, never the value. An empty
// secret is an error.
func ReadSecret(envName, file string) (string, error) {
	switch {
	case envName != "" && file != "":
		return "", fmt.Errorf("secret: both environment variable %s and file %s are set; use one", envName, file)
	case envName != "":
		v, ok := os.LookupEnv(envName)
		if !ok {
			return "", fmt.Errorf("secret: environment variable %s is not set", envName)
		}
		v = strings.TrimSpace(v)
		if v == "" {
			return "", fmt.Errorf("secret: environment variable %s is empty", envName)
		}
		return v, nil
	case file != "":
		// A secret is a key, a token or a connection string, never megabytes.
		b, err := fsutil.ReadFileLimit(file, fsutil.MaxSecretFile)
		if err != nil {
			return "", fmt.Errorf("secret: %w", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("secret: file %s is empty", file)
		}
		return v, nil
	}
	return "", errors.New("secret: no environment variable or file given")
}
