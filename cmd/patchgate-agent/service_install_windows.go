package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

func init() { winRegister, winUnregister = registerService, unregisterService }

// registerService creates the service: automatic (delayed) start as LocalSystem,
// restarted 30 s after a failure (the failure count resets after a day).
func registerService(_ context.Context, exe string, args []string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connecting to the service manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	s, err := m.CreateService(serviceName, exe, mgr.Config{
		DisplayName:      "Patchgate agent",
		Description:      "Fetches patches from the site's Patchgate appliance, verifies them with TUF and installs them in the maintenance window.",
		StartType:        mgr.StartAutomatic,
		DelayedAutoStart: true,
	}, args...)
	if err != nil {
		return fmt.Errorf("creating service %s: %w", serviceName, err)
	}
	defer s.Close()
	restart := mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: 30 * time.Second}
	if err := s.SetRecoveryActions([]mgr.RecoveryAction{restart, restart, restart}, 24*60*60); err != nil {
		return fmt.Errorf("setting the restart on failure of %s: %w", serviceName, err)
	}
	return nil
}

// unregisterService stops the service (waiting up to 6 minutes: an install in
// progress is let finish) and deletes it.
func unregisterService(ctx context.Context, _ string, _ []string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connecting to the service manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(serviceName)
	if err != nil {
		return fmt.Errorf("opening service %s: %w", serviceName, err)
	}
	defer s.Close()
	st, err := s.Control(svc.Stop)
	if err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
		return fmt.Errorf("stopping service %s: %w", serviceName, err)
	}
	deadline := time.Now().Add(6 * time.Minute)
	for err == nil && st.State != svc.Stopped && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		st, err = s.Query()
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("deleting service %s: %w", serviceName, err)
	}
	return nil
}
