// Command berth is the berth command line: a drop-in for the docker CLI's
// commands, talking to berthd (or any Docker Engine API daemon).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth/berth/cli"
)

func main() {
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	c := cli.NewStd()
	defer c.Close()
	root := cli.NewRootCommand(c)
	root.SetArgs(os.Args[1:])
	err := root.ExecuteContext(ctx)
	if msg := c.ErrorMessage(err); msg != "" {
		fmt.Fprintln(c.Err, msg)
	}
	return cli.ExitCode(err)
}
