package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newCommitCommand is "berth commit".
func newCommitCommand(c *CLI) *cobra.Command {
	var (
		author, message string
		pause           bool
		changes         = newListOpts(nil)
	)
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) > 1 {
				ref = args[1]
				if _, err := reference.ParseNormalizedNamed(ref); err != nil {
					return err
				}
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.ContainerCommit(cmd.Context(), args[0], client.ContainerCommitOptions{
				Reference: ref,
				Comment:   message,
				Author:    author,
				Changes:   changes.GetAll(),
				NoPause:   !pause,
			})
			if err != nil {
				return interrupted(cmd.Context(), err)
			}
			fmt.Fprintln(c.Out, res.ID)
			return nil
		},
	}
	aliases(cmd, "container commit", "commit")
	flags := cmd.Flags()
	flags.SetInterspersed(false)
	flags.BoolVarP(&pause, "pause", "p", true, "Pause container during commit")
	flags.StringVarP(&message, "message", "m", "", "Commit message")
	flags.StringVarP(&author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	flags.VarP(changes, "change", "c", "Apply Dockerfile instruction to the created image")
	return cmd
}

// newExportCommand is "berth export".
func newExportCommand(c *CLI) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if output == "" && c.Out.IsTerminal() {
				return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			if output != "" {
				if err := checkOutputDir(output); err != nil {
					return fmt.Errorf("failed to export container: %w", err)
				}
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			body, err := cl.ContainerExport(ctx, args[0], client.ContainerExportOptions{})
			if err != nil {
				return interrupted(ctx, err)
			}
			defer body.Close()
			if output == "" {
				_, err := io.Copy(c.Out, body)
				return interrupted(ctx, err)
			}
			return interrupted(ctx, writeFileAtomic(output, body))
		},
	}
	aliases(cmd, "container export", "export")
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}
