package agent

import (
	"context"
	"fmt"
	"os/exec"
	"time"
)

func osPower(string) (PowerStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/pmset", "-g", "batt").Output()
	if err != nil {
		return PowerStatus{}, fmt.Errorf("power: pmset -g batt: %w", err)
	}
	return parsePmset(string(out))
}
