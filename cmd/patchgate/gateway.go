package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/appliance/gateway"
)

func newGatewayCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "The nftables egress gateway",
		Args:  cobra.NoArgs,
	}
	var path string
	rules := &cobra.Command{
		Use:   "rules --config FILE",
		Short: "Print the nftables ruleset the gateway would apply, without applying it",
		Long: `rules prints the table "inet patchgate" that the config's gateway section, segments and
resolver upstreams make, as an nft script: the same values the daemon sends over
netlink, in one transaction. It needs no privileges and changes nothing. Review it, or
load it yourself with: patchgate gateway rules --config FILE | nft -c -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadValid(cmd, "gateway rules", path)
			if err != nil {
				return err
			}
			p, err := gateway.PolicyFrom(cfg.Gateway, cfg.GatewayRefs())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "#!/usr/sbin/nft -f\n# Patchgate gateway ruleset from %s.\n", path)
			if !cfg.Gateway.Enabled {
				fmt.Fprintln(w, "# gateway.enabled is false: the daemon does not apply this.")
			}
			if len(p.Hosts) > 0 {
				fmt.Fprintf(w, "# Egress host names resolved at run time into own_v4/own_v6: %v\n", p.Hosts)
			}
			fmt.Fprint(w, gateway.Build(p).Text())
			return nil
		},
	}
	configFlag(rules, &path, "")
	cmd.AddCommand(rules)
	return cmd
}
