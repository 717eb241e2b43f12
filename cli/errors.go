package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// StatusError is an error that carries the process exit status. Status is
// printed to stderr (nothing when empty).
type StatusError struct {
	Status     string
	StatusCode int
	// Cause is the underlying error, if any.
	Cause error
}

func (e StatusError) Error() string {
	if e.Status == "" && e.Cause != nil {
		return e.Cause.Error()
	}
	return e.Status
}

func (e StatusError) Unwrap() error { return e.Cause }

// errCanceled is returned when the user interrupted the command (Ctrl-C).
var errCanceled = errors.New("canceled")

// ExitCode is the process status for err: 0 for nil, the code of a
// StatusError, 130 for an interrupt, and 1 otherwise.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var se StatusError
	if errors.As(err, &se) {
		if se.StatusCode == 0 {
			return 1
		}
		return se.StatusCode
	}
	if errors.Is(err, errCanceled) {
		return 130
	}
	return 1
}

// ErrorMessage is what gets printed to stderr for err; empty means print
// nothing. Connection failures are rewritten to name the host, like the
// docker CLI's "Cannot connect to the Docker daemon" message.
func (c *CLI) ErrorMessage(err error) string {
	if err == nil || errors.Is(err, errCanceled) {
		return ""
	}
	if client.IsErrConnectionFailed(err) {
		host, _ := c.Host()
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || nothingListens(host) {
			return fmt.Sprintf("Cannot connect to the berth daemon at %s. Is the berth daemon running?", host)
		}
	}
	return err.Error()
}

// interrupted turns a context cancellation caused by the user into
// errCanceled, so that it exits quietly with 130.
func interrupted(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return errCanceled
	}
	return err
}

// flagErrorFunc turns flag parsing errors into docker's message and exit
// status 125.
func flagErrorFunc(cmd *cobra.Command, err error) error {
	return StatusError{
		Status:     fmt.Sprintf("%s\n\nUsage:  %s\n\nRun '%s --help' for more information", err, cmd.UseLine(), cmd.CommandPath()),
		StatusCode: 125,
	}
}

// argsError builds docker's message for a wrong number of arguments.
func argsError(cmd *cobra.Command, what, hint string) error {
	return fmt.Errorf("%s: '%s' %s\n\nUsage:  %s\n\n%s '%s --help' for more information",
		binaryName, cmd.CommandPath(), what, cmd.UseLine(), hint, cmd.CommandPath())
}

func plural(n int) string {
	if n == 1 {
		return "argument"
	}
	return "arguments"
}

// noArgs accepts no arguments; on a command group an argument is an unknown
// subcommand.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return fmt.Errorf("%s: unknown command: %s %s\n\nUsage:  %s\n\nRun '%s --help' for more information",
			binaryName, cmd.CommandPath(), args[0], cmd.UseLine(), cmd.CommandPath())
	}
	return argsError(cmd, "accepts no arguments", "Run")
}

// exactArgs requires exactly n arguments.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return argsError(cmd, fmt.Sprintf("requires %d %s", n, plural(n)), "Run")
	}
}

// minArgs requires at least n arguments.
func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return argsError(cmd, fmt.Sprintf("requires at least %d %s", n, plural(n)), "See")
	}
}

// maxArgs accepts at most n arguments.
func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) <= n {
			return nil
		}
		return argsError(cmd, fmt.Sprintf("requires at most %d %s", n, plural(n)), "Run")
	}
}

// templateParseError reports a --format template that does not parse; like
// docker, inspect, version and info exit with status 64 (usage error) then.
func templateParseError(err error) error {
	return StatusError{Status: "template parsing error: " + err.Error(), StatusCode: 64, Cause: err}
}

// rangeArgs requires between min and max arguments.
func rangeArgs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= min && len(args) <= max {
			return nil
		}
		return argsError(cmd, fmt.Sprintf("requires at least %d and at most %d %s", min, max, plural(max)), "Run")
	}
}

// nothingListens reports whether no daemon answers at host: its socket is
// missing or refuses connections, or a TCP dial times out. The client's
// error does not always carry the cause (it words a refused connection as
// "Cannot connect to the Docker daemon"), so the system is asked again,
// with one dial.
func nothingListens(host string) bool {
	proto, addr, ok := strings.Cut(host, "://")
	if !ok || proto != "unix" && proto != "tcp" {
		return false
	}
	conn, err := net.DialTimeout(proto, addr, 2*time.Second)
	if err == nil {
		conn.Close()
		return false
	}
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrDeadlineExceeded)
}
