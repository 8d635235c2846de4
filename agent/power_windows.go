package agent

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// systemPowerStatus is SYSTEM_POWER_STATUS (x/sys/windows does not wrap it).
type systemPowerStatus struct {
	ACLineStatus        byte
	BatteryFlag         byte
	BatteryLifePercent  byte
	SystemStatusFlag    byte
	BatteryLifeTime     uint32
	BatteryFullLifeTime uint32
}

var procGetSystemPowerStatus = windows.NewLazySystemDLL("kernel32.dll").NewProc("GetSystemPowerStatus")

func osPower(string) (PowerStatus, error) {
	var s systemPowerStatus
	if r, _, err := procGetSystemPowerStatus.Call(uintptr(unsafe.Pointer(&s))); r == 0 {
		return PowerStatus{}, fmt.Errorf("power: GetSystemPowerStatus: %w", err)
	}
	st := PowerStatus{OnAC: s.ACLineStatus == 1}
	// BatteryFlag 128: no system battery; 255: unknown. Percent 255: unknown.
	if s.BatteryFlag != 128 && s.BatteryFlag != 255 && s.BatteryLifePercent <= 100 {
		st.HasBattery, st.Percent = true, int(s.BatteryLifePercent)
	}
	if !st.HasBattery && s.ACLineStatus == 255 {
		st.OnAC = true // a desktop that cannot tell
	}
	return st, nil
}
