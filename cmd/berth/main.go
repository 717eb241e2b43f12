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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	c := cli.NewStd()
	defer c.Close()

	// SIGINT and SIGTERM cancel the command, unless it is forwarding them
	// to a container (run, attach, start -a); three of them end the CLI
	// whatever it is doing, as docker's does.
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	go func() {
		n := 0
		for range sigc {
			n++
			if n >= 3 {
				fmt.Fprintln(c.Err, "\ngot 3 SIGTERM/SIGINTs, forcefully exiting")
				os.Exit(1)
			}
			if !c.ProxyingSignals() {
				cancel()
			}
		}
	}()

	root := cli.NewRootCommand(c)
	root.SetArgs(os.Args[1:])
	err := root.ExecuteContext(ctx)
	if msg := c.ErrorMessage(err); msg != "" {
		fmt.Fprintln(c.Err, msg)
	}
	return cli.ExitCode(err)
}
