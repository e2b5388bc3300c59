//go:build !windows

package main

import (
	"io"
	"time"
)

// serviceManager says whether this platform has the Windows service
// manager that `baton service` registers services with.
const serviceManager = false

func installService(serviceSpec, io.Writer) error { return errServiceUnsupported }

func removeService(string, time.Duration, io.Writer) error { return errServiceUnsupported }
