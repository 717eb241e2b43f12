package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newTagCommand is "berth tag" and "berth image tag".
func newTagCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTag(cmd.Context(), c, args[0], args[1])
		},
	}
	return aliases(cmd, "image tag", "tag")
}

func runTag(ctx context.Context, c *CLI, source, target string) error {
	if _, err := reference.ParseAnyReference(source); err != nil {
		return fmt.Errorf("Error parsing reference: %q is not a valid repository/tag: %w", source, err)
	}
	ref, err := reference.ParseNormalizedNamed(target)
	if err != nil {
		return fmt.Errorf("Error parsing reference: %q is not a valid repository/tag: %w", target, err)
	}
	if _, ok := ref.(reference.Digested); ok {
		return errors.New("refusing to create a tag with a digest reference")
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	_, err = cl.ImageTag(ctx, client.ImageTagOptions{Source: source, Target: target})
	return err
}
