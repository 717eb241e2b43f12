package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type startOptions struct {
	attach     bool
	openStdin  bool
	detachKeys string
	checkpoint string
	ckptDir    string
}

// newStartCommand is "berth start".
func newStartCommand(c *CLI) *cobra.Command {
	var opts startOptions
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStart(cmd.Context(), c, opts, args)
		},
	}
	aliases(cmd, "container start", "start")
	flags := cmd.Flags()
	flags.BoolVarP(&opts.attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	flags.StringVar(&opts.checkpoint, "checkpoint", "", "Restore from this checkpoint")
	flags.StringVar(&opts.ckptDir, "checkpoint-dir", "", "Use a custom checkpoint storage directory")
	// Checkpoints are experimental; docker hides them without experimental.
	_ = flags.MarkHidden("checkpoint")
	_ = flags.MarkHidden("checkpoint-dir")
	flags.StringVar(&opts.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	flags.BoolVarP(&opts.openStdin, "interactive", "i", false, "Attach container's STDIN")
	return cmd
}

func runStart(ctx context.Context, c *CLI, opts startOptions, names []string) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	if !opts.attach && !opts.openStdin {
		var failed []string
		for _, name := range names {
			if _, err := cl.ContainerStart(ctx, name, client.ContainerStartOptions{
				CheckpointID: opts.checkpoint, CheckpointDir: opts.ckptDir,
			}); err != nil {
				if ctx.Err() != nil {
					return errCanceled
				}
				fmt.Fprintln(c.Err, err)
				failed = append(failed, name)
				continue
			}
			fmt.Fprintln(c.Out, name)
		}
		if len(failed) > 0 {
			return fmt.Errorf("Error: failed to start containers: %s", strings.Join(failed, ", "))
		}
		return nil
	}
	if len(names) > 1 {
		return errors.New("you cannot start and attach multiple containers at once")
	}

	res, err := cl.ContainerInspect(ctx, names[0], client.ContainerInspectOptions{})
	if err != nil {
		return interrupted(ctx, err)
	}
	ctr := res.Container
	tty := ctr.Config.Tty
	detachKeys := opts.detachKeys
	if detachKeys == "" {
		detachKeys = c.ConfigFile().DetachKeys
	}
	stdin := opts.openStdin && ctr.Config.OpenStdin
	if stdin && tty && !c.In.IsTerminal() {
		return errors.New("the input device is not a TTY")
	}

	sigCtx, stopSignals := context.WithCancel(ctx)
	defer stopSignals()
	defer c.keepSignals()()
	if !tty {
		c.forwardSignals(sigCtx, cl, ctr.ID)
	}

	resp, err := cl.ContainerAttach(ctx, ctr.ID, client.ContainerAttachOptions{
		Stream: true, Stdin: stdin, Stdout: true, Stderr: true, DetachKeys: detachKeys,
	})
	if err != nil {
		return interrupted(ctx, err)
	}
	streamCtx, cancelStream := context.WithCancel(ctx)
	defer cancelStream()
	so := streamOptions{tty: tty, out: c.Out, err: c.Err, detachKeys: detachKeys}
	if tty {
		so.err = c.Out
	}
	if stdin {
		so.in = c.In
	}
	streamDone := make(chan error, 1)
	go func() {
		defer resp.Close()
		streamDone <- c.holdHijackedConnection(streamCtx, resp.HijackedResponse, so)
	}()

	status, err := c.waitExitOrRemoved(ctx, cl, ctr.ID, ctr.HostConfig != nil && ctr.HostConfig.AutoRemove)
	if err != nil {
		return interrupted(ctx, err)
	}
	if _, err := cl.ContainerStart(ctx, ctr.ID, client.ContainerStartOptions{
		CheckpointID: opts.checkpoint, CheckpointDir: opts.ckptDir,
	}); err != nil {
		cancelStream()
		<-streamDone
		return interrupted(ctx, err)
	}
	if tty && c.Out.IsTerminal() {
		c.monitorTTYSize(sigCtx, func(h, w uint) error {
			_, err := cl.ContainerResize(ctx, ctr.ID, client.ContainerResizeOptions{Height: h, Width: w})
			return err
		})
	}
	select {
	case err := <-streamDone:
		if errors.Is(err, errDetached) {
			return nil
		}
		if err != nil {
			return interrupted(ctx, err)
		}
	case <-ctx.Done():
		return errCanceled
	}
	select {
	case code := <-status:
		if code != 0 {
			return StatusError{StatusCode: code}
		}
	case <-ctx.Done():
		return errCanceled
	}
	return nil
}

type attachOptions struct {
	noStdin    bool
	sigProxy   bool
	detachKeys string
}

// newAttachCommand is "berth attach".
func newAttachCommand(c *CLI) *cobra.Command {
	var opts attachOptions
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAttach(cmd.Context(), c, opts, args[0])
		},
	}
	aliases(cmd, "container attach", "attach")
	flags := cmd.Flags()
	flags.StringVar(&opts.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	flags.BoolVar(&opts.noStdin, "no-stdin", false, "Do not attach STDIN")
	flags.BoolVar(&opts.sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	return cmd
}

func runAttach(ctx context.Context, c *CLI, opts attachOptions, name string) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return interrupted(ctx, err)
	}
	ctr := res.Container
	if ctr.State == nil || !ctr.State.Running {
		return errors.New("You cannot attach to a stopped container, start it first")
	}
	if ctr.State.Paused {
		return errors.New("You cannot attach to a paused container, unpause it first")
	}
	if ctr.State.Restarting {
		return errors.New("You cannot attach to a restarting container, wait until it is running")
	}
	tty := ctr.Config.Tty
	stdin := !opts.noStdin && ctr.Config.OpenStdin
	if stdin && tty && !c.In.IsTerminal() {
		return errors.New("the input device is not a TTY")
	}
	detachKeys := opts.detachKeys
	if detachKeys == "" {
		detachKeys = c.ConfigFile().DetachKeys
	}

	sigCtx, stopSignals := context.WithCancel(ctx)
	defer stopSignals()
	defer c.keepSignals()()
	if opts.sigProxy && !tty {
		c.forwardSignals(sigCtx, cl, ctr.ID)
	}

	resp, err := cl.ContainerAttach(ctx, ctr.ID, client.ContainerAttachOptions{
		Stream: true, Stdin: stdin, Stdout: true, Stderr: true, DetachKeys: detachKeys,
	})
	if err != nil {
		return interrupted(ctx, err)
	}
	defer resp.Close()

	// The exit status comes from a wait posted once attached.
	wait := cl.ContainerWait(ctx, ctr.ID, client.ContainerWaitOptions{})

	if tty && c.Out.IsTerminal() {
		c.monitorTTYSize(sigCtx, func(h, w uint) error {
			_, err := cl.ContainerResize(ctx, ctr.ID, client.ContainerResizeOptions{Height: h, Width: w})
			return err
		})
	}
	so := streamOptions{tty: tty, out: c.Out, err: c.Err, detachKeys: detachKeys}
	if tty {
		so.err = c.Out
	}
	if stdin {
		so.in = c.In
	}
	if err := c.holdHijackedConnection(ctx, resp.HijackedResponse, so); err != nil {
		return interrupted(ctx, err)
	}
	select {
	case r := <-wait.Result:
		if r.StatusCode != 0 {
			return StatusError{StatusCode: int(r.StatusCode)}
		}
	case err := <-wait.Error:
		if ctx.Err() != nil {
			return errCanceled
		}
		return err
	}
	return nil
}

// newTopTableWriter is the tabwriter of `top`: columns 20 wide.
func newTopTableWriter(out io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(out, 20, 1, 3, ' ', 0)
}
