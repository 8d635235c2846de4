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

func init() {
	winRegister, winUnregister, winSecureDir = registerService, unregisterService, secureDir
}

// dataDirSDDL: owner Administrators; full control for SYSTEM and Administrators,
// inherited by what is inside; nothing inherited from above (protected).
const dataDirSDDL = "O:BAD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

// secureDir replaces dir's owner and ACL with dataDirSDDL's, for what is already
// inside too.
func secureDir(dir string) error {
	sd, err := windows.SecurityDescriptorFromString(dataDirSDDL)
	if err != nil {
		return fmt.Errorf("parsing the ACL: %w", err)
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return fmt.Errorf("reading the ACL's owner: %w", err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("reading the ACL: %w", err)
	}
	err = windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION,
		owner, nil, dacl, nil)
	if err != nil {
		return fmt.Errorf("setting the ACL of %s: %w", dir, err)
	}
	return nil
}

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
