package cli

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type execOptions struct {
	interactive bool
	tty         bool
	detach      bool
	privileged  bool
	user        string
	workdir     string
	detachKeys  string
	env         *listOpts
	envFile     *listOpts
}

// newExecCommand is "berth exec".
func newExecCommand(c *CLI) *cobra.Command {
	opts := execOptions{env: newListOpts(validateEnv(c.lookupEnv)), envFile: newListOpts(nil)}
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExec(cmd.Context(), c, opts, args[0], args[1:])
		},
	}
	aliases(cmd, "container exec", "exec")
	common(cmd, 2)
	flags := cmd.Flags()
	flags.SetInterspersed(false)
	flags.StringVar(&opts.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	flags.BoolVarP(&opts.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	flags.BoolVarP(&opts.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	flags.BoolVarP(&opts.detach, "detach", "d", false, "Detached mode: run command in the background")
	flags.StringVarP(&opts.user, "user", "u", "", `Username or UID (format: "<name|uid>[:<group|gid>]")`)
	flags.BoolVar(&opts.privileged, "privileged", false, "Give extended privileges to the command")
	flags.VarP(opts.env, "env", "e", "Set environment variables")
	flags.Var(opts.envFile, "env-file", "Read in a file of environment variables")
	flags.StringVarP(&opts.workdir, "workdir", "w", "", "Working directory inside the container")
	return cmd
}

func runExec(ctx context.Context, c *CLI, opts execOptions, name string, command []string) error {
	var env []string
	for _, f := range opts.envFile.GetAll() {
		lines, err := readKVFile(f, c.lookupEnv)
		if err != nil {
			return err
		}
		env = append(env, lines...)
	}
	env = append(env, opts.env.GetAll()...)

	detachKeys := opts.detachKeys
	if detachKeys == "" {
		detachKeys = c.ConfigFile().DetachKeys
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	// Like docker, check the container first: a missing one is reported
	// before anything is created.
	if _, err := cl.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); err != nil {
		return interrupted(ctx, err)
	}
	if opts.interactive && opts.tty && !opts.detach && !c.In.IsTerminal() {
		return errors.New("the input device is not a TTY")
	}

	createOpts := client.ExecCreateOptions{
		User:         opts.user,
		Privileged:   opts.privileged,
		TTY:          opts.tty,
		AttachStdin:  opts.interactive && !opts.detach,
		AttachStdout: !opts.detach,
		AttachStderr: !opts.detach,
		DetachKeys:   detachKeys,
		Env:          env,
		WorkingDir:   opts.workdir,
		Cmd:          command,
	}
	if opts.tty {
		if sz := c.initialConsoleSize(); sz[0] != 0 {
			createOpts.ConsoleSize = client.ConsoleSize{Height: sz[0], Width: sz[1]}
		}
	}
	created, err := cl.ExecCreate(ctx, name, createOpts)
	if err != nil {
		return interrupted(ctx, err)
	}
	if created.ID == "" {
		return errors.New("exec ID empty")
	}

	if opts.detach {
		_, err := cl.ExecStart(ctx, created.ID, client.ExecStartOptions{Detach: true, TTY: opts.tty, ConsoleSize: createOpts.ConsoleSize})
		return interrupted(ctx, err)
	}

	resp, err := cl.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: opts.tty, ConsoleSize: createOpts.ConsoleSize})
	if err != nil {
		return interrupted(ctx, err)
	}
	defer resp.Close()

	resizeCtx, stopResize := context.WithCancel(ctx)
	defer stopResize()
	if opts.tty && c.Out.IsTerminal() {
		c.monitorTTYSize(resizeCtx, func(h, w uint) error {
			_, err := cl.ExecResize(ctx, created.ID, client.ExecResizeOptions{Height: h, Width: w})
			return err
		})
	}

	so := streamOptions{tty: opts.tty, out: c.Out, err: c.Err, detachKeys: detachKeys}
	if opts.tty {
		so.err = c.Out
	}
	if opts.interactive {
		so.in = c.In
	}
	if err := c.holdHijackedConnection(ctx, resp.HijackedResponse, so); err != nil {
		if errors.Is(err, errDetached) {
			return nil
		}
		return interrupted(ctx, err)
	}
	stopResize()

	res, err := execExitCode(ctx, cl, created.ID)
	if err != nil {
		return interrupted(ctx, err)
	}
	if res != 0 {
		return StatusError{StatusCode: res}
	}
	return nil
}

// execExitCode reads the exit code of a finished exec. The daemon may
// close the stream a moment before it records the exit, so a still
// running exec is asked again briefly.
func execExitCode(ctx context.Context, cl *client.Client, id string) (int, error) {
	for i := 0; ; i++ {
		res, err := cl.ExecInspect(ctx, id, client.ExecInspectOptions{})
		if err != nil {
			return 0, err
		}
		if !res.Running || i >= 50 {
			return res.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

type logsOptions struct {
	follow     bool
	since      string
	until      string
	timestamps bool
	details    bool
	tail       string
}

// newLogsCommand is "berth logs".
func newLogsCommand(c *CLI) *cobra.Command {
	var opts logsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogs(cmd.Context(), c, opts, args[0])
		},
	}
	aliases(cmd, "container logs", "logs")
	flags := cmd.Flags()
	flags.BoolVarP(&opts.follow, "follow", "f", false, "Follow log output")
	flags.StringVar(&opts.since, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	flags.StringVar(&opts.until, "until", "", `Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	flags.BoolVarP(&opts.timestamps, "timestamps", "t", false, "Show timestamps")
	flags.BoolVar(&opts.details, "details", false, "Show extra details provided to logs")
	flags.StringVarP(&opts.tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	return cmd
}

func runLogs(ctx context.Context, c *CLI, opts logsOptions, name string) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return interrupted(ctx, err)
	}
	body, err := cl.ContainerLogs(ctx, res.Container.ID, client.ContainerLogsOptions{
		ShowStdout: true,
		ShowStderr: true,
		Since:      opts.since,
		Until:      opts.until,
		Timestamps: opts.timestamps,
		Follow:     opts.follow,
		Tail:       opts.tail,
		Details:    opts.details,
	})
	if err != nil {
		return interrupted(ctx, err)
	}
	defer body.Close()
	if res.Container.Config != nil && res.Container.Config.Tty {
		_, err = io.Copy(c.Out, body)
	} else {
		_, err = stdcopy.StdCopy(c.Out, c.Err, body)
	}
	if err != nil && ctx.Err() != nil {
		return errCanceled
	}
	return err
}
