package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/berth/berth/cli/formatter"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newContainerCommand is "berth container": the container management
// group. Most subcommands also exist at the top level (berth run, berth ps
// ...); each constructor is called once per place.
func newContainerCommand(c *CLI) *cobra.Command {
	return groupCommand(c, "container", "Manage containers",
		newAttachCommand(c),
		newCommitCommand(c),
		newCpCommand(c),
		newCreateCommand(c),
		newDiffCommand(c),
		newExecCommand(c),
		newExportCommand(c),
		newContainerInspectCommand(c),
		newKillCommand(c),
		newLogsCommand(c),
		newContainerListCommand(c),
		newPauseCommand(c),
		newPortCommand(c),
		newContainerPruneCommand(c),
		newRenameCommand(c),
		newRestartCommand(c),
		newContainerRemoveCommand(c),
		newRunCommand(c),
		newStartCommand(c),
		newStatsCommand(c),
		newStopCommand(c),
		newTopCommand(c),
		newUnpauseCommand(c),
		newUpdateCommand(c),
		newWaitCommand(c),
	)
}

// forEachContainer runs fn for every name, printing the name after each
// success; errors are collected and returned together, one per line, as
// docker's stop, kill, rm, pause ... do.
func forEachContainer(ctx context.Context, c *CLI, names []string, fn func(ctx context.Context, cl *client.Client, name string) error) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	var errs []string
	for _, name := range names {
		if err := fn(ctx, cl, name); err != nil {
			if ctx.Err() != nil {
				return interrupted(ctx, err)
			}
			errs = append(errs, err.Error())
			continue
		}
		fmt.Fprintln(c.Out, name)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

type stopOptions struct {
	signal  string
	timeout int
}

func addStopFlags(cmd *cobra.Command, o *stopOptions) {
	cmd.Flags().StringVarP(&o.signal, "signal", "s", "", "Signal to send to the container")
	cmd.Flags().IntVarP(&o.timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
}

func (o stopOptions) timeoutPtr(cmd *cobra.Command) *int {
	if !cmd.Flags().Changed("timeout") {
		return nil
	}
	t := o.timeout
	return &t
}

// newStopCommand is "berth stop".
func newStopCommand(c *CLI) *cobra.Command {
	var opts stopOptions
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  minArgs(1),
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		timeout := opts.timeoutPtr(cmd)
		return forEachContainer(cmd.Context(), c, args, func(ctx context.Context, cl *client.Client, name string) error {
			_, err := cl.ContainerStop(ctx, name, client.ContainerStopOptions{Signal: opts.signal, Timeout: timeout})
			return err
		})
	}
	aliases(cmd, "container stop", "stop")
	addStopFlags(cmd, &opts)
	return cmd
}

// newRestartCommand is "berth restart".
func newRestartCommand(c *CLI) *cobra.Command {
	var opts stopOptions
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  minArgs(1),
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		timeout := opts.timeoutPtr(cmd)
		return forEachContainer(cmd.Context(), c, args, func(ctx context.Context, cl *client.Client, name string) error {
			_, err := cl.ContainerRestart(ctx, name, client.ContainerRestartOptions{Signal: opts.signal, Timeout: timeout})
			return err
		})
	}
	aliases(cmd, "container restart", "restart")
	addStopFlags(cmd, &opts)
	return cmd
}

// newKillCommand is "berth kill".
func newKillCommand(c *CLI) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEachContainer(cmd.Context(), c, args, func(ctx context.Context, cl *client.Client, name string) error {
				_, err := cl.ContainerKill(ctx, name, client.ContainerKillOptions{Signal: signal})
				return err
			})
		},
	}
	aliases(cmd, "container kill", "kill")
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

type rmOptions struct {
	force, volumes, link bool
}

// newRmCommand is "berth rm".
func newRmCommand(c *CLI) *cobra.Command {
	return containerRemoveCommand(c, "rm [OPTIONS] CONTAINER [CONTAINER...]")
}

// newContainerRemoveCommand is "berth container rm" (alias "remove").
func newContainerRemoveCommand(c *CLI) *cobra.Command {
	cmd := containerRemoveCommand(c, "rm [OPTIONS] CONTAINER [CONTAINER...]")
	cmd.Aliases = []string{"remove"}
	return cmd
}

func containerRemoveCommand(c *CLI, use string) *cobra.Command {
	var opts rmOptions
	cmd := &cobra.Command{
		Use:   use,
		Short: "Remove one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEachContainer(cmd.Context(), c, args, func(ctx context.Context, cl *client.Client, name string) error {
				name = strings.Trim(name, "/")
				if name == "" {
					return errors.New("Container name cannot be empty")
				}
				_, err := cl.ContainerRemove(ctx, name, client.ContainerRemoveOptions{
					RemoveVolumes: opts.volumes, RemoveLinks: opts.link, Force: opts.force,
				})
				return err
			})
		},
	}
	aliases(cmd, "container rm", "container remove", "rm")
	flags := cmd.Flags()
	flags.BoolVarP(&opts.force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	flags.BoolVarP(&opts.link, "link", "l", false, "Remove the specified link")
	flags.BoolVarP(&opts.volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	return cmd
}

// newPauseCommand is "berth pause".
func newPauseCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEachContainer(cmd.Context(), c, args, func(ctx context.Context, cl *client.Client, name string) error {
				_, err := cl.ContainerPause(ctx, name, client.ContainerPauseOptions{})
				return err
			})
		},
	}
	return aliases(cmd, "container pause", "pause")
}

// newUnpauseCommand is "berth unpause".
func newUnpauseCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEachContainer(cmd.Context(), c, args, func(ctx context.Context, cl *client.Client, name string) error {
				_, err := cl.ContainerUnpause(ctx, name, client.ContainerUnpauseOptions{})
				return err
			})
		},
	}
	return aliases(cmd, "container unpause", "unpause")
}

// newWaitCommand is "berth wait": one exit code per line.
func newWaitCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, err := c.Client()
			if err != nil {
				return err
			}
			var errs []string
			for _, name := range args {
				res := cl.ContainerWait(ctx, name, client.ContainerWaitOptions{})
				select {
				case r := <-res.Result:
					fmt.Fprintf(c.Out, "%d\n", r.StatusCode)
				case err := <-res.Error:
					if ctx.Err() != nil {
						return errCanceled
					}
					errs = append(errs, err.Error())
				}
			}
			if len(errs) > 0 {
				return errors.New(strings.Join(errs, "\n"))
			}
			return nil
		},
	}
	return aliases(cmd, "container wait", "wait")
}

// newRenameCommand is "berth rename".
func newRenameCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			oldName, newName := strings.TrimSpace(args[0]), strings.TrimSpace(args[1])
			if oldName == "" || newName == "" {
				return errors.New("Error: Neither old nor new names may be empty")
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			if _, err := cl.ContainerRename(cmd.Context(), oldName, client.ContainerRenameOptions{NewName: newName}); err != nil {
				return fmt.Errorf("%w\nError: failed to rename container named %s", interrupted(cmd.Context(), err), oldName)
			}
			return nil
		},
	}
	return aliases(cmd, "container rename", "rename")
}

// newPortCommand is "berth port".
func newPortCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return interrupted(cmd.Context(), err)
			}
			var ports network.PortMap
			if res.Container.NetworkSettings != nil {
				ports = res.Container.NetworkSettings.Ports
			}
			var lines []string
			if len(args) == 2 {
				spec := args[1]
				port, proto, _ := strings.Cut(spec, "/")
				if proto == "" {
					proto = "tcp"
				}
				p, err := network.ParsePort(port + "/" + proto)
				if err != nil {
					return fmt.Errorf("Error: invalid port (%s): %w", spec, err)
				}
				bindings, ok := ports[p]
				if !ok || bindings == nil {
					return fmt.Errorf("Error: No public port '%s' published for %s", spec, args[0])
				}
				for _, b := range bindings {
					lines = append(lines, hostPortString(b))
				}
			} else {
				keys := make([]network.Port, 0, len(ports))
				for p := range ports {
					keys = append(keys, p)
				}
				sort.Slice(keys, func(i, j int) bool {
					if keys[i].Num() != keys[j].Num() {
						return keys[i].Num() < keys[j].Num()
					}
					return keys[i].Proto() < keys[j].Proto()
				})
				for _, p := range keys {
					for _, b := range ports[p] {
						lines = append(lines, fmt.Sprintf("%s -> %s", p, hostPortString(b)))
					}
				}
			}
			for _, l := range lines {
				fmt.Fprintln(c.Out, l)
			}
			return nil
		},
	}
	return aliases(cmd, "container port", "port")
}

func hostPortString(b network.PortBinding) string {
	ip := "0.0.0.0"
	if b.HostIP.IsValid() {
		ip = b.HostIP.String()
	}
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:" + b.HostPort
	}
	return ip + ":" + b.HostPort
}

// newTopCommand is "berth top".
func newTopCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.ContainerTop(cmd.Context(), args[0], client.ContainerTopOptions{Arguments: args[1:]})
			if err != nil {
				return interrupted(cmd.Context(), err)
			}
			tw := newTopTableWriter(c.Out)
			fmt.Fprintln(tw, strings.Join(res.Titles, "\t"))
			for _, p := range res.Processes {
				fmt.Fprintln(tw, strings.Join(p, "\t"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().SetInterspersed(false)
	return aliases(cmd, "container top", "top")
}

// newDiffCommand is "berth diff".
func newDiffCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.ContainerDiff(cmd.Context(), args[0], client.ContainerDiffOptions{})
			if err != nil {
				return interrupted(cmd.Context(), err)
			}
			for _, ch := range res.Changes {
				kind := "C"
				switch ch.Kind {
				case container.ChangeAdd:
					kind = "A"
				case container.ChangeDelete:
					kind = "D"
				}
				fmt.Fprintf(c.Out, "%s %s\n", kind, ch.Path)
			}
			return nil
		},
	}
	return aliases(cmd, "container diff", "diff")
}

// newContainerInspectCommand is "berth container inspect".
func newContainerInspectCommand(c *CLI) *cobra.Command {
	cmd, opts := inspectCommand(c, "container", "CONTAINER", "containers")
	cmd.Flags().BoolVarP(&opts.size, "size", "s", false, "Display total file sizes")
	return cmd
}

// inspectCommand is "berth <typ> inspect" for objects of type typ, named
// NOUN on the command line and nouns in its help; callers add their own
// flags to the returned options.
func inspectCommand(c *CLI, typ, noun, nouns string) (*cobra.Command, *inspectOptions) {
	opts := &inspectOptions{typ: typ}
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] " + noun + " [" + noun + "...]",
		Short: "Display detailed information on one or more " + nouns,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInspect(cmd.Context(), c, *opts, args)
		},
	}
	cmd.Flags().StringVarP(&opts.format, "format", "f", "", formatHelpPlain)
	return cmd, opts
}

// printPruned prints what a prune removed as docker does: a title, one
// item a line and a blank line; nothing when nothing was removed.
func printPruned(w io.Writer, title string, items []string) {
	if len(items) == 0 {
		return
	}
	fmt.Fprintln(w, title)
	for _, i := range items {
		fmt.Fprintln(w, i)
	}
	fmt.Fprintln(w)
}

type pruneOptions struct {
	force  bool
	filter *filterValue
}

// newContainerPruneCommand is "berth container prune".
func newContainerPruneCommand(c *CLI) *cobra.Command {
	opts := pruneOptions{filter: newFilterValue()}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if !opts.force {
				ok, err := c.confirm(ctx, "WARNING! This will remove all stopped containers.")
				if err != nil || !ok {
					return err
				}
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.ContainerPrune(ctx, client.ContainerPruneOptions{Filters: opts.filter.Filters()})
			if err != nil {
				return interrupted(ctx, err)
			}
			printPruned(c.Out, "Deleted Containers:", res.Report.ContainersDeleted)
			fmt.Fprintf(c.Out, "Total reclaimed space: %s\n", formatter.SizeFull(int64(res.Report.SpaceReclaimed)))
			return nil
		},
	}
	flags := cmd.Flags()
	flags.Var(opts.filter, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	flags.BoolVarP(&opts.force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

// newUpdateCommand is "berth update".
func newUpdateCommand(c *CLI) *cobra.Command {
	var (
		blkioWeight       uint16Value
		cpuPeriod         int64
		cpuQuota          int64
		cpuRtPeriod       int64
		cpuRtRuntime      int64
		cpuShares         int64
		cpus              nanoCPUs
		cpusetCpus        string
		cpusetMems        string
		memory            memBytes
		memoryReservation memBytes
		memorySwap        memSwapBytes
		kernelMemory      memBytes
		pidsLimit         int64
		restart           string
	)
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  minArgs(1),
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		flags := cmd.Flags()
		if flags.NFlag() == 0 {
			return errors.New("you must provide one or more flags when using this command")
		}
		res := container.Resources{
			BlkioWeight:        uint16(blkioWeight),
			CPUPeriod:          cpuPeriod,
			CPUQuota:           cpuQuota,
			CPURealtimePeriod:  cpuRtPeriod,
			CPURealtimeRuntime: cpuRtRuntime,
			CPUShares:          cpuShares,
			NanoCPUs:           int64(cpus),
			CpusetCpus:         cpusetCpus,
			CpusetMems:         cpusetMems,
			Memory:             int64(memory),
			MemoryReservation:  int64(memoryReservation),
			MemorySwap:         int64(memorySwap),
		}
		if flags.Changed("pids-limit") {
			pl := pidsLimit
			res.PidsLimit = &pl
		}
		var policy *container.RestartPolicy
		if flags.Changed("restart") {
			p, err := parseRestartPolicy(restart)
			if err != nil {
				return err
			}
			policy = &p
		}
		cl, err := c.Client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		var (
			warns []string
			errs  []string
		)
		for _, name := range args {
			r, err := cl.ContainerUpdate(ctx, name, client.ContainerUpdateOptions{Resources: &res, RestartPolicy: policy})
			if err != nil {
				if ctx.Err() != nil {
					return errCanceled
				}
				errs = append(errs, err.Error())
				continue
			}
			warns = append(warns, r.Warnings...)
			fmt.Fprintln(c.Out, name)
		}
		for _, w := range warns {
			fmt.Fprintln(c.Err, w)
		}
		if len(errs) > 0 {
			return errors.New(strings.Join(errs, "\n"))
		}
		return nil
	}
	aliases(cmd, "container update", "update")
	flags := cmd.Flags()
	flags.Var(&blkioWeight, "blkio-weight", "Block IO (relative weight), between 10 and 1000, or 0 to disable")
	withDefaultNote(flags, "blkio-weight", "0")
	flags.Int64Var(&cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	flags.Int64Var(&cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	flags.Int64Var(&cpuRtPeriod, "cpu-rt-period", 0, "Limit the CPU real-time period in microseconds")
	flags.Int64Var(&cpuRtRuntime, "cpu-rt-runtime", 0, "Limit the CPU real-time runtime in microseconds")
	flags.Int64VarP(&cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	flags.Var(&cpus, "cpus", "Number of CPUs")
	flags.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	flags.StringVar(&cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	flags.Var(&kernelMemory, "kernel-memory", "Kernel memory limit (deprecated)")
	_ = flags.MarkHidden("kernel-memory")
	flags.VarP(&memory, "memory", "m", "Memory limit")
	flags.Var(&memoryReservation, "memory-reservation", "Memory soft limit")
	flags.Var(&memorySwap, "memory-swap", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	flags.Int64Var(&pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	flags.StringVar(&restart, "restart", "", "Restart policy to apply when a container exits")
	return cmd
}

var _ = strconv.Itoa
