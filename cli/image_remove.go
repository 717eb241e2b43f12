package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth/berth/cli/formatter"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type rmiOptions struct {
	force   bool
	noPrune bool
}

// newRmiCommand is "berth rmi".
func newRmiCommand(c *CLI) *cobra.Command {
	return imageRemoveCommand(c, "rmi [OPTIONS] IMAGE [IMAGE...]")
}

// newImageRemoveCommand is "berth image rm" (alias "remove").
func newImageRemoveCommand(c *CLI) *cobra.Command {
	cmd := imageRemoveCommand(c, "rm [OPTIONS] IMAGE [IMAGE...]")
	cmd.Aliases = []string{"remove"}
	return cmd
}

func imageRemoveCommand(c *CLI, use string) *cobra.Command {
	var opts rmiOptions
	cmd := &cobra.Command{
		Use:   use,
		Short: "Remove one or more images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRmi(cmd.Context(), c, args, opts)
		},
	}
	aliases(cmd, "image rm", "image remove", "rmi")
	flags := cmd.Flags()
	flags.BoolVarP(&opts.force, "force", "f", false, "Force removal of the image")
	flags.BoolVar(&opts.noPrune, "no-prune", false, "Do not delete untagged parents")
	return cmd
}

// runRmi removes each image in turn, printing what was untagged and
// deleted; failures are reported together at the end.
func runRmi(ctx context.Context, c *CLI, names []string, opts rmiOptions) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	var errs []string
	for _, name := range names {
		res, err := cl.ImageRemove(ctx, name, client.ImageRemoveOptions{Force: opts.force, PruneChildren: !opts.noPrune})
		if err != nil {
			if ctx.Err() != nil {
				return interrupted(ctx, err)
			}
			errs = append(errs, err.Error())
			continue
		}
		for _, d := range res.Items {
			if d.Untagged != "" {
				fmt.Fprintf(c.Out, "Untagged: %s\n", d.Untagged)
			}
			if d.Deleted != "" {
				fmt.Fprintf(c.Out, "Deleted: %s\n", d.Deleted)
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

type imagePruneOptions struct {
	all    bool
	force  bool
	filter *filterValue
}

const (
	pruneDanglingWarning = "WARNING! This will remove all dangling images."
	pruneAllWarning      = "WARNING! This will remove all images without at least one container associated to them."
)

// newImagePruneCommand is "berth image prune".
func newImagePruneCommand(c *CLI) *cobra.Command {
	opts := imagePruneOptions{filter: newFilterValue()}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runImagePrune(cmd.Context(), c, opts)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&opts.all, "all", "a", false, "Remove all unused images, not just dangling ones")
	flags.Var(opts.filter, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	flags.BoolVarP(&opts.force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

func runImagePrune(ctx context.Context, c *CLI, opts imagePruneOptions) error {
	filters := opts.filter.Filters()
	filters.Add("dangling", strconv.FormatBool(!opts.all))
	warning := pruneDanglingWarning
	if opts.all {
		warning = pruneAllWarning
	}
	if !opts.force {
		ok, err := c.confirm(ctx, warning)
		if err != nil || !ok {
			return err
		}
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.ImagePrune(ctx, client.ImagePruneOptions{Filters: filters})
	if err != nil {
		return err
	}
	if len(res.Report.ImagesDeleted) > 0 {
		var b strings.Builder
		b.WriteString("Deleted Images:\n")
		for _, d := range res.Report.ImagesDeleted {
			if d.Untagged != "" {
				fmt.Fprintf(&b, "untagged: %s\n", d.Untagged)
			} else {
				fmt.Fprintf(&b, "deleted: %s\n", d.Deleted)
			}
		}
		fmt.Fprintln(c.Out, b.String())
	}
	fmt.Fprintf(c.Out, "Total reclaimed space: %s\n", formatter.SizeFull(int64(res.Report.SpaceReclaimed)))
	return nil
}
