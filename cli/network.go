package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/berth/berth/cli/formatter"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newNetworkCommand is "berth network".
func newNetworkCommand(c *CLI) *cobra.Command {
	return groupCommand(c, "network", "Manage networks",
		newNetworkConnectCommand(c),
		newNetworkCreateCommand(c),
		newNetworkDisconnectCommand(c),
		newNetworkInspectCommand(c),
		newNetworkListCommand(c),
		newNetworkPruneCommand(c),
		newNetworkRemoveCommand(c),
	)
}

type networkCreateOptions struct {
	driver     string
	driverOpts *mapOpts
	labels     *listOpts
	internal   bool
	ipv4       bool
	ipv6       bool
	attachable bool
	ingress    bool
	configOnly bool
	configFrom string
	scope      string
	ipamDriver string
	ipamOpts   *mapOpts
	subnets    []string
	ipRanges   []string
	gateways   []string
	auxAddrs   *mapOpts
}

func newNetworkCreateCommand(c *CLI) *cobra.Command {
	opts := networkCreateOptions{
		driverOpts: newMapOpts(nil), labels: newListOpts(validateLabel),
		ipamOpts: newMapOpts(nil), auxAddrs: newMapOpts(nil),
	}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ipam, err := networkIPAM(opts)
			if err != nil {
				return err
			}
			create := client.NetworkCreateOptions{
				Driver:     opts.driver,
				Options:    opts.driverOpts.values,
				IPAM:       &network.IPAM{Driver: opts.ipamDriver, Config: ipam, Options: opts.ipamOpts.values},
				Internal:   opts.internal,
				Attachable: opts.attachable,
				Ingress:    opts.ingress,
				Scope:      opts.scope,
				ConfigOnly: opts.configOnly,
				Labels:     labelMap(opts.labels.GetAll()),
			}
			if opts.configFrom != "" {
				create.ConfigFrom = opts.configFrom
			}
			if cmd.Flags().Changed("ipv4") {
				v := opts.ipv4
				create.EnableIPv4 = &v
			}
			if cmd.Flags().Changed("ipv6") {
				v := opts.ipv6
				create.EnableIPv6 = &v
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			// Daemons older than API 1.44 create duplicates unless asked
			// to check, which this client can no longer ask: check here.
			if existing, lerr := cl.NetworkList(cmd.Context(), client.NetworkListOptions{Filters: make(client.Filters).Add("name", args[0])}); lerr == nil {
				for _, n := range existing.Items {
					if n.Name == args[0] {
						return fmt.Errorf("Error response from daemon: network with name %s already exists", args[0])
					}
				}
			}
			res, err := cl.NetworkCreate(cmd.Context(), args[0], create)
			if err != nil {
				return interrupted(cmd.Context(), err)
			}
			for _, w := range res.Warning {
				fmt.Fprintln(c.Err, w)
			}
			fmt.Fprintln(c.Out, res.ID)
			return nil
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&opts.driver, "driver", "d", "bridge", "Driver to manage the Network")
	flags.VarP(opts.driverOpts, "opt", "o", "Set driver specific options")
	flags.Var(opts.labels, "label", "Set metadata on a network")
	flags.BoolVar(&opts.internal, "internal", false, "Restrict external access to the network")
	flags.BoolVar(&opts.ipv4, "ipv4", true, "Enable or disable IPv4 address assignment")
	flags.BoolVar(&opts.ipv6, "ipv6", false, "Enable or disable IPv6 address assignment")
	flags.BoolVar(&opts.attachable, "attachable", false, "Enable manual container attachment")
	flags.BoolVar(&opts.ingress, "ingress", false, "Create swarm routing-mesh network")
	flags.StringVar(&opts.scope, "scope", "", "Control the network's scope")
	flags.BoolVar(&opts.configOnly, "config-only", false, "Create a configuration only network")
	flags.StringVar(&opts.configFrom, "config-from", "", "The network from which to copy the configuration")
	flags.StringVar(&opts.ipamDriver, "ipam-driver", "default", "IP Address Management Driver")
	flags.StringSliceVar(&opts.subnets, "subnet", nil, "Subnet in CIDR format that represents a network segment")
	flags.StringSliceVar(&opts.ipRanges, "ip-range", nil, "Allocate container ip from a sub-range")
	flags.StringSliceVar(&opts.gateways, "gateway", nil, "IPv4 or IPv6 Gateway for the master subnet")
	flags.Var(opts.auxAddrs, "aux-address", "Auxiliary IPv4 or IPv6 addresses used by Network driver")
	flags.Var(opts.ipamOpts, "ipam-opt", "Set IPAM driver specific options")
	return cmd
}

// networkIPAM pairs --subnet, --ip-range, --gateway and --aux-address into
// IPAM pools, with docker's checks and messages.
func networkIPAM(o networkCreateOptions) ([]network.IPAMConfig, error) {
	if len(o.subnets) < len(o.ipRanges) || len(o.subnets) < len(o.gateways) {
		return nil, errors.New("every ip-range or gateway must have a corresponding subnet")
	}
	type pool struct {
		cfg      network.IPAMConfig
		hasRange bool
		hasGw    bool
	}
	pools := make([]*pool, 0, len(o.subnets))
	for _, s := range o.subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("Invalid subnet %s : invalid CIDR address: %s", s, s)
		}
		for _, other := range pools {
			if other.cfg.Subnet.Overlaps(p) {
				return nil, errors.New("multiple overlapping subnet configuration is not supported")
			}
		}
		pools = append(pools, &pool{cfg: network.IPAMConfig{Subnet: p}})
	}
	for _, r := range o.ipRanges {
		rp, err := netip.ParsePrefix(r)
		match := false
		for _, p := range pools {
			if err == nil && p.cfg.Subnet.Contains(rp.Addr()) && rp.Bits() >= p.cfg.Subnet.Bits() {
				if p.hasRange {
					return nil, fmt.Errorf("cannot configure multiple ranges (%s, %s) on the same subnet (%s)", r, p.cfg.IPRange, p.cfg.Subnet)
				}
				p.cfg.IPRange, p.hasRange, match = rp, true, true
			}
		}
		if !match {
			return nil, fmt.Errorf("no matching subnet for range %s", r)
		}
	}
	for _, g := range o.gateways {
		ga, err := netip.ParseAddr(g)
		match := false
		for _, p := range pools {
			if err == nil && p.cfg.Subnet.Contains(ga) {
				if p.hasGw {
					return nil, fmt.Errorf("cannot configure multiple gateways (%s, %s) for the same subnet (%s)", g, p.cfg.Gateway, p.cfg.Subnet)
				}
				p.cfg.Gateway, p.hasGw, match = ga, true, true
			}
		}
		if !match {
			return nil, fmt.Errorf("no matching subnet for gateway %s", g)
		}
	}
	for k, v := range o.auxAddrs.values {
		a, err := netip.ParseAddr(v)
		match := false
		for _, p := range pools {
			if err == nil && p.cfg.Subnet.Contains(a) {
				if p.cfg.AuxAddress == nil {
					p.cfg.AuxAddress = map[string]netip.Addr{}
				}
				p.cfg.AuxAddress[k] = a
				match = true
			}
		}
		if !match {
			return nil, fmt.Errorf("no matching subnet for aux-address %s", v)
		}
	}
	out := make([]network.IPAMConfig, 0, len(pools))
	for _, p := range pools {
		out = append(out, p.cfg)
	}
	return out, nil
}

func newNetworkInspectCommand(c *CLI) *cobra.Command {
	cmd, _ := inspectCommand(c, "network", "NETWORK", "networks")
	var verbose bool
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Verbose output for diagnostics")
	return cmd
}

type networkRow struct {
	CreatedAt string
	Driver    string
	ID        string
	IPv4      string
	IPv6      string
	Internal  string
	Labels    string
	Name      string
	Scope     string

	labels map[string]string
}

// Label returns one label's value ({{.Label "x"}}).
func (r networkRow) Label(name string) string { return r.labels[name] }

// MarshalJSON escapes HTML characters like docker's JSON output.
func (r networkRow) MarshalJSON() ([]byte, error) {
	type plain networkRow
	return json.Marshal(plain(r))
}

var networkHeader = map[string]string{
	"CreatedAt": "CREATED",
	"Driver":    "DRIVER",
	"ID":        "NETWORK ID",
	"IPv4":      "IPV4",
	"IPv6":      "IPV6",
	"Internal":  "INTERNAL",
	"Labels":    "LABELS",
	"Name":      "NAME",
	"Scope":     "SCOPE",
}

func newNetworkListCommand(c *CLI) *cobra.Command {
	var (
		quiet, noTrunc bool
		format         string
		filter         = newFilterValue()
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.NetworkList(cmd.Context(), client.NetworkListOptions{Filters: filter.Filters()})
			if err != nil {
				return interrupted(cmd.Context(), err)
			}
			f := format
			if f == "" && !quiet {
				f = c.ConfigFile().NetworksFormat
			}
			if quiet {
				f = "{{.ID}}"
			} else if f == "" || f == formatter.TableFormatKey {
				f = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
			}
			nets := append([]network.Summary(nil), res.Items...)
			sort.SliceStable(nets, func(i, j int) bool { return naturalLess(nets[i].Name, nets[j].Name) })
			rows := make([]networkRow, 0, len(nets))
			for _, n := range nets {
				id := n.ID
				if !noTrunc {
					id = formatter.ShortID(id)
				}
				rows = append(rows, networkRow{
					CreatedAt: n.Created.String(), Driver: n.Driver, ID: id,
					IPv4: strconv.FormatBool(n.EnableIPv4), IPv6: strconv.FormatBool(n.EnableIPv6),
					Internal: strconv.FormatBool(n.Internal), Labels: joinLabels(n.Labels),
					Name: n.Name, Scope: n.Scope, labels: n.Labels,
				})
			}
			return formatter.Write(c.Out, formatter.Format(f), networkHeader, rows)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	flags.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	flags.StringVar(&format, "format", "", formatHelpTable)
	flags.VarP(filter, "filter", "f", `Provide filter values (e.g. "driver=bridge")`)
	return cmd
}

func newNetworkRemoveCommand(c *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, err := c.Client()
			if err != nil {
				return err
			}
			failed := false
			for _, name := range args {
				if _, err := cl.NetworkRemove(ctx, name, client.NetworkRemoveOptions{}); err != nil {
					if ctx.Err() != nil {
						return errCanceled
					}
					if force && cerrdefs.IsNotFound(err) {
						continue
					}
					fmt.Fprintln(c.Err, err)
					failed = true
					continue
				}
				fmt.Fprintln(c.Out, name)
			}
			if failed {
				return StatusError{Status: "exit status 1", StatusCode: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return cmd
}

func newNetworkPruneCommand(c *CLI) *cobra.Command {
	var (
		force  bool
		filter = newFilterValue()
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if !force {
				ok, err := c.confirm(ctx, "WARNING! This will remove all custom networks not used by at least one container.")
				if err != nil || !ok {
					return err
				}
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.NetworkPrune(ctx, client.NetworkPruneOptions{Filters: filter.Filters()})
			if err != nil {
				return interrupted(ctx, err)
			}
			printPruned(c.Out, "Deleted Networks:", res.Report.NetworksDeleted)
			return nil
		},
	}
	flags := cmd.Flags()
	flags.Var(filter, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	flags.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

func newNetworkConnectCommand(c *CLI) *cobra.Command {
	var (
		ipv4, ipv6   string
		aliases      []string
		driverOpts   []string
		linkLocalIPs []string
		links        = newListOpts(nil)
		gwPriority   int
	)
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ep := &network.EndpointSettings{Aliases: aliases, Links: links.GetAll(), GwPriority: gwPriority}
			ipam := &network.EndpointIPAMConfig{}
			if ipv4 != "" {
				a, err := netip.ParseAddr(ipv4)
				if err != nil {
					return fmt.Errorf("invalid IPv4 address: %s", ipv4)
				}
				ipam.IPv4Address = a
			}
			if ipv6 != "" {
				a, err := netip.ParseAddr(ipv6)
				if err != nil {
					return fmt.Errorf("invalid IPv6 address: %s", ipv6)
				}
				ipam.IPv6Address = a
			}
			for _, l := range linkLocalIPs {
				a, err := netip.ParseAddr(l)
				if err != nil {
					return fmt.Errorf("invalid link-local IP address: %s", l)
				}
				ipam.LinkLocalIPs = append(ipam.LinkLocalIPs, a)
			}
			if ipam.IPv4Address.IsValid() || ipam.IPv6Address.IsValid() || len(ipam.LinkLocalIPs) > 0 {
				ep.IPAMConfig = ipam
			}
			for _, o := range driverOpts {
				k, v, ok := strings.Cut(o, "=")
				if !ok {
					return fmt.Errorf("invalid key/value pair format in driver options")
				}
				if ep.DriverOpts == nil {
					ep.DriverOpts = map[string]string{}
				}
				ep.DriverOpts[k] = v
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			_, err = cl.NetworkConnect(cmd.Context(), args[0], client.NetworkConnectOptions{Container: args[1], EndpointConfig: ep})
			return interrupted(cmd.Context(), err)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&ipv4, "ip", "", `IPv4 address (e.g., "172.30.100.104")`)
	flags.StringVar(&ipv6, "ip6", "", `IPv6 address (e.g., "2001:db8::33")`)
	flags.Var(links, "link", "Add link to another container")
	flags.StringSliceVar(&aliases, "alias", nil, "Add network-scoped alias for the container")
	flags.StringSliceVar(&linkLocalIPs, "link-local-ip", nil, "Add a link-local address for the container")
	flags.StringSliceVar(&driverOpts, "driver-opt", nil, "driver options for the network")
	flags.IntVar(&gwPriority, "gw-priority", 0, "Highest gw-priority provides the default gateway. Accepts positive and negative values.")
	return cmd
}

func newNetworkDisconnectCommand(c *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			_, err = cl.NetworkDisconnect(cmd.Context(), args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
			return interrupted(cmd.Context(), err)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}

var _ = context.Background
