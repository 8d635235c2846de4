package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/patchgate/patchgate/netscan/active"
	"github.com/patchgate/patchgate/netscan/fingerprint"
	"github.com/patchgate/patchgate/netscan/survey"
)

func newScanCmd() *cobra.Command {
	var (
		iface, rules             string
		subnets, exclude, probes []string
		asJSON                   bool
		passiveSecs              int
		ports                    []uint
		hostRate, globalRate     float64
		timeout                  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "scan --iface IF --subnet CIDR [--json] [--passive-seconds N]",
		Short: "Find and classify the devices on a segment, once, and print what was found",
		Long: `scan listens on IF for N seconds (ARP, DHCP, mDNS, SSDP, LLDP, NetBIOS) and, for each
--subnet, sweeps it (ARP on IF's own subnets, TCP connect elsewhere) and probes every live
host gently: printer ports (515, 9100-9107, 9999) get no data, one connection at a time per
host, at most --host-rate packets/s to a host and --global-rate in all, --exclude'd hosts
never touched. It needs CAP_NET_RAW (run it as root) and stores nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if iface == "" {
				return errors.New("scan: --iface is required")
			}
			if len(subnets) == 0 && passiveSecs <= 0 {
				return errors.New("scan: give --subnet to scan and/or --passive-seconds to listen")
			}
			if passiveSecs < 0 || passiveSecs > 3600 {
				return fmt.Errorf("scan: --passive-seconds must be 0-3600, got %d", passiveSecs)
			}
			opts := survey.Options{
				Interface: iface,
				Passive:   time.Duration(passiveSecs) * time.Second,
				Log:       slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})),
			}
			if len(subnets) > 0 {
				ac := &active.Config{HostRate: hostRate, GlobalRate: globalRate, Timeout: timeout}
				for _, s := range subnets {
					p, err := parsePrefix(s)
					if err != nil {
						return fmt.Errorf("scan: --subnet: %w", err)
					}
					ac.Subnets = append(ac.Subnets, p)
				}
				for _, s := range exclude {
					p, err := parsePrefix(s)
					if err != nil {
						return fmt.Errorf("scan: --exclude: %w", err)
					}
					ac.ExcludeSubnets = append(ac.ExcludeSubnets, p)
				}
				for _, p := range probes {
					ac.Probes = append(ac.Probes, active.Probe(p))
				}
				for _, p := range ports {
					if p < 1 || p > 65535 {
						return fmt.Errorf("scan: --ports: %d is not a port", p)
					}
					ac.Ports = append(ac.Ports, uint16(p))
				}
				if err := ac.Validate(); err != nil {
					return fmt.Errorf("scan: %w", err)
				}
				opts.Active = ac
			}
			if rules != "" {
				c, err := loadClassifier(rules)
				if err != nil {
					return err
				}
				opts.Classifier = c
			}
			var bar *progressBar
			if f, ok := cmd.ErrOrStderr().(*os.File); ok && term.IsTerminal(int(f.Fd())) && !asJSON {
				bar = &progressBar{w: f}
				opts.Progress = bar.update
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := survey.Run(ctx, opts)
			bar.done()
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printTable(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&iface, "iface", "", "interface to listen and sweep on (required)")
	f.StringSliceVar(&subnets, "subnet", nil, "subnet to scan, CIDR or address (repeatable)")
	f.StringSliceVar(&exclude, "exclude", nil, "host or subnet never to touch (repeatable)")
	f.StringSliceVar(&probes, "probes", nil, "probes to run: arp,tcp,snmp,mdns,ssdp,http,ipp (default all)")
	f.UintSliceVar(&ports, "ports", nil, "TCP ports to connect to; none given: 22,80,139,443,445,554,631,3389,8080,8443,9100")
	f.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	f.IntVar(&passiveSecs, "passive-seconds", 10, "listen this long (0: do not listen)")
	f.Float64Var(&hostRate, "host-rate", active.DefaultHostRate, "packets per second to one host")
	f.Float64Var(&globalRate, "global-rate", active.DefaultGlobalRate, "packets per second in all")
	f.DurationVar(&timeout, "timeout", active.DefaultTimeout, "each probe's wait for an answer")
	f.StringVar(&rules, "rules", "", "extra fingerprint rules file (applied after the built-in rules)")
	return cmd
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("%s has host bits set, want %s", s, p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("want a CIDR prefix or an address, got %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// printTable prints one device a line.
func printTable(w io.Writer, rep survey.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tMAC\tTYPE\tVENDOR\tMODEL\tFIRMWARE/OS\tHOSTNAME\tSEEN BY")
	for _, d := range rep.Devices {
		addr := "-"
		if len(d.Addrs) > 0 {
			addr = d.Addrs[0].String()
		}
		mac := "-"
		if !d.MAC.IsZero() {
			mac = d.MAC.String()
			if d.Random {
				mac += " (random)"
			}
		}
		fwos := d.Class.Firmware.Value
		if d.Class.OS.Value != "" {
			fwos = strings.TrimSpace(fwos + " " + d.Class.OS.Value)
		}
		host := ""
		if len(d.Hostnames) > 0 {
			host = d.Hostnames[0]
		}
		var srcs []string
		for _, s := range d.Sources {
			srcs = append(srcs, string(s))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s (%.0f%%)\t%s\t%s\t%s\t%s\t%s\n", addr, mac, d.Class.Type, 100*d.Class.Confidence,
			dash(d.Class.Vendor.Value), dash(d.Class.Model.Value), dash(fwos), dash(host), strings.Join(srcs, ","))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d devices; %d observations", len(rep.Devices), rep.Observations)
	if rep.Active.Addresses > 0 {
		fmt.Fprintf(w, "; scan: %d addresses, %d live, %d excluded, %d packets in %s",
			rep.Active.Addresses, rep.Active.Live, rep.Active.Excluded, rep.Active.Packets, rep.Active.Duration.Round(time.Millisecond))
	}
	fmt.Fprintln(w)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// progressBar draws the scan's progress on a terminal, on one line.
type progressBar struct {
	w    io.Writer
	last string
}

func (b *progressBar) update(p active.Progress) {
	const width = 30
	filled := 0
	if p.Total > 0 {
		filled = width * p.Done / p.Total
	}
	line := fmt.Sprintf("\r%-8s [%s%s] %d/%d", p.Stage, strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.Done, p.Total)
	if line != b.last {
		b.last = line
		fmt.Fprint(b.w, line)
	}
}

// done clears the bar; a nil bar does nothing.
func (b *progressBar) done() {
	if b == nil || b.last == "" {
		return
	}
	fmt.Fprint(b.w, "\r"+strings.Repeat(" ", len(b.last))+"\r")
}

// loadClassifier reads a site rules file on top of the built-in rules.
func loadClassifier(path string) (*fingerprint.Classifier, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("scan: --rules: %w", err)
	}
	defer f.Close()
	site, err := fingerprint.ParseRules(path, f)
	if err != nil {
		return nil, fmt.Errorf("scan: --rules: %w", err)
	}
	rules, err := fingerprint.DefaultRules().With(site)
	if err != nil {
		return nil, fmt.Errorf("scan: --rules: %w", err)
	}
	return fingerprint.New(rules), nil
}
