//go:build !linux && !windows

package main

import "go.uber.org/zap"

// systemdNotifier does nothing outside Linux.
type systemdNotifier struct{ log *zap.Logger }

func (systemdNotifier) notify(string) {}
