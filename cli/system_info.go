package cli

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"

	"github.com/berth/berth/cli/formatter"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// infoView is what `info --format` templates see: the daemon's answer plus
// the client's own details.
type infoView struct {
	system.Info
	ClientInfo *clientInfo `json:",omitempty"`
}

type clientInfo struct {
	Debug     bool
	Version   string
	GitCommit string
	GoVersion string
	Os        string
	Arch      string
	BuildTime string `json:",omitempty"`
	Context   string
	Plugins   []string
	Warnings  []string
}

// newInfoCommand is "berth info" and "berth system info".
func newInfoCommand(c *CLI) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInfo(cmd.Context(), c, format)
		},
	}
	aliases(cmd, "system info", "info")
	common(cmd, 12)
	cmd.Flags().StringVarP(&format, "format", "f", "", formatHelpPlain)
	return cmd
}

func runInfo(ctx context.Context, c *CLI, format string) error {
	ci := &clientInfo{
		Debug:     c.opts.debug,
		Version:   clientVersion(),
		GitCommit: clientGitCommit(),
		GoVersion: runtime.Version(),
		Os:        runtime.GOOS,
		Arch:      runtime.GOARCH,
		BuildTime: clientBuildTime(),
		Context:   "default",
		Plugins:   []string{},
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, serverErr := cl.Info(ctx, client.InfoOptions{})
	if format != "" {
		if serverErr != nil {
			return interrupted(ctx, serverErr)
		}
		return executeFormat(c.Out, "", format, infoView{Info: res.Info, ClientInfo: ci})
	}

	fmt.Fprintf(c.Out, "Client:\n Version:    %s\n Context:    %s\n Debug Mode: %v\n\nServer:\n", ci.Version, ci.Context, ci.Debug)
	if serverErr != nil {
		return interrupted(ctx, serverErr)
	}
	username := ""
	if ac, ok := c.ConfigFile().GetAuth(indexServerOrDefault(res.Info.IndexServerAddress)); ok {
		username = ac.Username
	}
	printServerInfo(c.Out, res.Info, username)
	for _, w := range res.Info.Warnings {
		fmt.Fprintln(c.Err, w)
	}
	return nil
}

func indexServerOrDefault(s string) string {
	if s == "" {
		return IndexServer
	}
	return s
}

// printServerInfo writes the "Server:" section of `info` (without its
// title), in the docker CLI's layout. Lines whose value the daemon left
// empty are skipped, as docker does.
func printServerInfo(w io.Writer, info system.Info, username string) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	nonEmpty := func(label, value string) {
		if value != "" {
			p(" %s %s\n", label, value)
		}
	}
	p(" Containers: %d\n  Running: %d\n  Paused: %d\n  Stopped: %d\n", info.Containers, info.ContainersRunning, info.ContainersPaused, info.ContainersStopped)
	p(" Images: %d\n", info.Images)
	nonEmpty("Server Version:", info.ServerVersion)
	nonEmpty("Storage Driver:", info.Driver)
	for _, kv := range info.DriverStatus {
		p("  %s: %s\n", kv[0], kv[1])
	}
	nonEmpty("Logging Driver:", info.LoggingDriver)
	nonEmpty("Cgroup Driver:", info.CgroupDriver)
	nonEmpty("Cgroup Version:", info.CgroupVersion)
	p(" Plugins:\n")
	p("  Volume: %s\n", strings.Join(info.Plugins.Volume, " "))
	p("  Network: %s\n", strings.Join(info.Plugins.Network, " "))
	if len(info.Plugins.Authorization) > 0 {
		p("  Authorization: %s\n", strings.Join(info.Plugins.Authorization, " "))
	}
	p("  Log: %s\n", strings.Join(info.Plugins.Log, " "))
	if len(info.CDISpecDirs) > 0 {
		p(" CDI spec directories:\n")
		for _, d := range info.CDISpecDirs {
			p("  %s\n", d)
		}
	}
	swarm := string(info.Swarm.LocalNodeState)
	if swarm == "" {
		swarm = "inactive"
	}
	p(" Swarm: %s\n", swarm)
	if len(info.Runtimes) > 0 {
		names := make([]string, 0, len(info.Runtimes))
		for n := range info.Runtimes {
			names = append(names, n)
		}
		sort.Strings(names)
		p(" Runtimes: %s\n", strings.Join(names, " "))
		p(" Default Runtime: %s\n", info.DefaultRuntime)
	}
	if info.OSType == "linux" {
		p(" Init Binary: %s\n", info.InitBinary)
		p(" containerd version: %s\n", info.ContainerdCommit.ID)
		p(" runc version: %s\n", info.RuncCommit.ID)
		p(" init version: %s\n", info.InitCommit.ID)
	}
	if len(info.SecurityOptions) > 0 {
		p(" Security Options:\n")
		for _, opt := range info.SecurityOptions {
			name, rest := "", []string{}
			for _, kv := range strings.Split(opt, ",") {
				k, v, _ := strings.Cut(kv, "=")
				if k == "name" {
					name = v
				} else {
					rest = append(rest, fmt.Sprintf("   %s: %s\n", capitalize(k), v))
				}
			}
			if name == "" {
				name = opt
			}
			p("  %s\n", name)
			for _, r := range rest {
				p("%s", r)
			}
		}
	}
	nonEmpty("Kernel Version:", info.KernelVersion)
	nonEmpty("Operating System:", info.OperatingSystem)
	nonEmpty("OSType:", info.OSType)
	nonEmpty("Architecture:", info.Architecture)
	p(" CPUs: %d\n", info.NCPU)
	p(" Total Memory: %s\n", formatter.BinarySize(info.MemTotal))
	nonEmpty("Name:", info.Name)
	nonEmpty("ID:", info.ID)
	p(" Docker Root Dir: %s\n", info.DockerRootDir)
	p(" Debug Mode: %v\n", info.Debug)
	if info.Debug {
		p("  File Descriptors: %d\n  Goroutines: %d\n  System Time: %s\n  EventsListeners: %d\n",
			info.NFd, info.NGoroutines, info.SystemTime, info.NEventsListener)
	}
	nonEmpty("HTTP Proxy:", info.HTTPProxy)
	nonEmpty("HTTPS Proxy:", info.HTTPSProxy)
	nonEmpty("No Proxy:", info.NoProxy)
	nonEmpty("Username:", username)
	if len(info.Labels) > 0 {
		p(" Labels:\n")
		for _, l := range info.Labels {
			p("  %s\n", l)
		}
	}
	p(" Experimental: %v\n", info.ExperimentalBuild)
	if rc := info.RegistryConfig; rc != nil {
		var insecure []string
		for _, idx := range rc.IndexConfigs {
			if idx != nil && !idx.Secure {
				insecure = append(insecure, idx.Name)
			}
		}
		sort.Strings(insecure)
		for _, cidr := range rc.InsecureRegistryCIDRs {
			insecure = append(insecure, cidr.String())
		}
		if len(insecure) > 0 {
			p(" Insecure Registries:\n")
			for _, r := range insecure {
				p("  %s\n", r)
			}
		}
		if len(rc.Mirrors) > 0 {
			p(" Registry Mirrors:\n")
			for _, m := range rc.Mirrors {
				p("  %s\n", m)
			}
		}
	}
	p(" Live Restore Enabled: %v\n", info.LiveRestoreEnabled)
	nonEmpty("Product License:", info.ProductLicense)
	if len(info.DefaultAddressPools) > 0 {
		p(" Default Address Pools:\n")
		for _, pool := range info.DefaultAddressPools {
			p("   Base: %s, Size: %d\n", pool.Base, pool.Size)
		}
	}
	if fw := info.FirewallBackend; fw != nil {
		p(" Firewall Backend: %s\n", fw.Driver)
		for _, kv := range fw.Info {
			p("  %s: %s\n", kv[0], kv[1])
		}
	}
	p("\n")
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
