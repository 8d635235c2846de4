package agent

func osPower(sysfsRoot string) (PowerStatus, error) { return readPowerSupply(sysfsRoot) }
