package e2e

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchgate/patchgate/agent"
	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/config"
)

// TestAgentOnTheRoadOverTLS: the whole appliance with its agent TLS listener
// (rollout.agent_tls, client certificates required) and a real agent given the
// listener's fingerprint: it enrols over HTTPS, gets its client certificate from the
// appliance's agent CA, checks in with it; revoked by an admin, its next round is
// refused and, its token spent, it stops.
func TestAgentOnTheRoadOverTLS(t *testing.T) {
	s := newSite(t, func(c *config.Config) {
		c.Rollout.AgentTLS.Listen = "127.0.0.1:0"
		c.Rollout.AgentTLS.RequireClientCert = true
	})
	if s.sys.AgentTLSAddr() == "" || s.sys.AgentTLSFingerprint() == "" {
		t.Fatal("no agent TLS listener")
	}
	ctx := context.Background()
	tok, _, err := s.eng.CreateToken(ctx, "dora", "laptop", "pilot", nil, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(s.dir, "laptop-token")
	os.WriteFile(tokFile, []byte(tok), 0o600)
	state := filepath.Join(s.dir, "laptop")
	a, err := agent.New(agent.Config{
		Appliance:            "https://" + s.sys.AgentTLSAddr(),
		ApplianceFingerprint: s.sys.AgentTLSFingerprint(),
		TokenFile:            tokFile,
		StateDir:             state,
		Repos:                map[string]string{repoName: filepath.Join(s.dir, "vendor-root.json")},
		AllowCommands:        []string{os.Args[0]},
		RestorePoint:         "off",
	}, agent.Options{Logger: slog.New(slog.DiscardHandler), Version: "e2e",
		Facts: func(context.Context) agentapi.Facts { return agentapi.Facts{Hostname: "laptop", OS: "linux"} }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Cycle(ctx); err != nil {
		t.Fatalf("first round over HTTPS: %v", err)
	}
	for _, f := range []string{"appliance.pin", "client.crt", "client.key", "credential"} {
		if _, err := os.Stat(filepath.Join(state, f)); err != nil {
			t.Errorf("after enrolment: %v", err)
		}
	}
	if _, err := a.Cycle(ctx); err != nil {
		t.Fatalf("second round with the client certificate: %v", err)
	}
	if err := s.eng.RevokeAgent(ctx, "dora", a.ID()); err != nil {
		t.Fatal(err)
	}
	_, err = a.Cycle(ctx)
	var ae *agent.APIError
	if !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("round after revocation: %v, want refused, and the spent token refused too (403)", err)
	}
}
