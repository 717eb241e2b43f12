package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type runOptions struct {
	createOptions
	detach     bool
	sigProxy   bool
	detachKeys string
}

// newRunCommand is "berth run" and "berth container run".
func newRunCommand(c *CLI) *cobra.Command {
	var (
		opts  runOptions
		copts *containerOptions
	)
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			copts.Image = args[0]
			copts.Args = args[1:]
			return runRun(cmd.Context(), c, cmd.Flags(), opts, copts)
		},
	}
	aliases(cmd, "container run", "run")
	common(cmd, 1)
	flags := cmd.Flags()
	flags.BoolVarP(&opts.detach, "detach", "d", false, "Run container in background and print container ID")
	flags.BoolVar(&opts.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	flags.StringVar(&opts.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	copts = opts.addFlags(c, flags, `Pull image before running ("always", "missing", "never")`)
	return cmd
}

func runRun(ctx context.Context, c *CLI, flags *pflag.FlagSet, opts runOptions, copts *containerOptions) error {
	cfg, err := opts.parse(c, flags, copts, "run")
	if err != nil {
		return err
	}
	config, hostConfig := cfg.Config, cfg.HostConfig
	hostConfig.ConsoleSize = c.initialConsoleSize()

	if opts.detach {
		if copts.attach.Len() > 0 {
			return errors.New("conflicting options: cannot specify both --attach and --detach")
		}
		config.AttachStdin, config.AttachStdout, config.AttachStderr = false, false, false
		config.StdinOnce = false
	} else {
		if copts.attach.Len() == 0 {
			config.AttachStdout, config.AttachStderr = true, true
		}
		if config.AttachStdin {
			config.StdinOnce = true
		}
	}
	if config.AttachStdin && config.Tty && !c.In.IsTerminal() {
		return errors.New("the input device is not a TTY")
	}
	detachKeys := opts.detachKeys
	if detachKeys == "" {
		detachKeys = c.ConfigFile().DetachKeys
	}

	id, err := c.createContainer(ctx, cfg, opts.createOptions)
	if err != nil {
		return withHelp(interrupted(ctx, err), "run")
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}

	// Signals go to the container when there is no terminal to carry
	// them as keystrokes.
	sigCtx, stopSignals := context.WithCancel(ctx)
	defer stopSignals()
	if !opts.detach {
		defer c.keepSignals()()
		if opts.sigProxy && !config.Tty {
			c.forwardSignals(sigCtx, cl, id)
		}
	}

	attached := config.AttachStdin || config.AttachStdout || config.AttachStderr
	var (
		streamDone   chan error
		cancelStream context.CancelFunc = func() {}
	)
	if attached {
		resp, err := cl.ContainerAttach(ctx, id, client.ContainerAttachOptions{
			Stream:     true,
			Stdin:      config.AttachStdin,
			Stdout:     config.AttachStdout,
			Stderr:     config.AttachStderr,
			DetachKeys: detachKeys,
		})
		if err != nil {
			return interrupted(ctx, err)
		}
		streamCtx, cancel := context.WithCancel(ctx)
		cancelStream = cancel
		so := streamOptions{tty: config.Tty, detachKeys: detachKeys}
		if config.AttachStdin {
			so.in = c.In
		}
		if config.AttachStdout {
			so.out = c.Out
		}
		if config.AttachStderr {
			so.err = c.Err
			if config.Tty {
				so.err = c.Out
			}
		}
		streamDone = make(chan error, 1)
		go func() {
			defer resp.Close()
			streamDone <- c.holdHijackedConnection(streamCtx, resp.HijackedResponse, so)
		}()
	}
	defer cancelStream()

	status, err := c.waitExitOrRemoved(ctx, cl, id, hostConfig.AutoRemove)
	if err != nil {
		return interrupted(ctx, err)
	}

	if _, err := cl.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		if attached {
			cancelStream()
			<-streamDone
		}
		if hostConfig.AutoRemove {
			<-status
		}
		if ctx.Err() != nil {
			return errCanceled
		}
		return startErrorStatus(err, "run")
	}

	if config.Tty && c.Out.IsTerminal() {
		c.monitorTTYSize(sigCtx, func(h, w uint) error {
			_, err := cl.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
			return err
		})
	}

	if opts.detach {
		fmt.Fprintln(c.Out, id)
		return nil
	}

	if attached {
		select {
		case err := <-streamDone:
			if errors.Is(err, errDetached) {
				return nil
			}
			if err != nil {
				if ctx.Err() != nil {
					return errCanceled
				}
				return err
			}
		case <-ctx.Done():
			return errCanceled
		}
	}

	select {
	case code := <-status:
		if code != 0 {
			return StatusError{StatusCode: code}
		}
		return nil
	case <-ctx.Done():
		return errCanceled
	}
}

// waitExitOrRemoved posts the wait request (condition next-exit, or
// removed for --rm containers) and returns a channel that yields the exit
// status. The request is sent before this returns, so that a container
// started afterwards cannot exit unnoticed.
func (c *CLI) waitExitOrRemoved(ctx context.Context, cl *client.Client, id string, autoRemove bool) (<-chan int, error) {
	cond := container.WaitConditionNextExit
	if autoRemove {
		cond = container.WaitConditionRemoved
	}
	res := cl.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: cond})
	// A request that failed outright reports through Error right away.
	select {
	case err := <-res.Error:
		return nil, err
	default:
	}
	status := make(chan int, 1)
	go func() {
		select {
		case r := <-res.Result:
			if r.Error != nil {
				c.logError("Error waiting for container: " + r.Error.Message)
				status <- 125
				return
			}
			status <- int(r.StatusCode)
		case err := <-res.Error:
			if ctx.Err() == nil {
				c.logError("error waiting for container: " + err.Error())
			}
			status <- 125
		}
	}()
	return status, nil
}

// logError prints an error the way docker's logger does, in logfmt:
// time="2026-11-27T11:42:14Z" level=error msg="...".
func (c *CLI) logError(msg string) {
	fmt.Fprintf(c.Err, "time=%q level=error msg=%q\n", c.Now().UTC().Format(time.RFC3339), msg)
}

// displayJSONStream renders a progress stream to out (nil discards it).
func displayJSONStream(r io.Reader, out io.Writer, fd uintptr, isTerm bool) error {
	if out == nil {
		out, isTerm = io.Discard, false
	}
	return jsonmessage.DisplayJSONMessagesStream(r, out, fd, isTerm, nil)
}
