package main

import (
	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// systemdNotifier sends sd_notify(3) messages to systemd when the unit is
// Type=notify (NOTIFY_SOCKET set); without it, it does nothing.
type systemdNotifier struct{ log *zap.Logger }

func (n systemdNotifier) notify(state string) {
	sent, err := daemon.SdNotify(false, state)
	switch {
	case err != nil:
		n.log.Warn("cannot notify systemd", zap.String("state", state), zap.Error(err))
	case sent:
		n.log.Debug("notified systemd", zap.String("state", state))
	}
}
