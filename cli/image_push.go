package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

type pushOptions struct {
	all      bool
	quiet    bool
	platform string
}

// newPushCommand is "berth push" and "berth image push".
func newPushCommand(c *CLI) *cobra.Command {
	var opts pushOptions
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPush(cmd.Context(), c, args[0], opts)
		},
	}
	aliases(cmd, "image push", "push")
	common(cmd, 6)
	flags := cmd.Flags()
	flags.BoolVarP(&opts.all, "all-tags", "a", false, "Push all tags of an image to the repository")
	flags.Bool("disable-content-trust", true, "Skip image signing")
	_ = flags.MarkHidden("disable-content-trust")
	flags.StringVar(&opts.platform, "platform", "", "Push a platform-specific manifest as a single-platform image to the registry.\n"+
		"Image index won't be pushed, meaning that other manifests, including attestations won't be preserved.\n"+
		"'os[/arch[/variant]]': Explicit platform (eg. linux/amd64)")
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Suppress verbose output")
	return cmd
}

func runPush(ctx context.Context, c *CLI, name string, opts pushOptions) error {
	var platform *ocispec.Platform
	if opts.platform != "" {
		p, err := parsePlatform(opts.platform)
		if err != nil {
			fmt.Fprintf(c.Err, "Invalid platform %s", opts.platform)
			return err
		}
		platform = &p
		c.printNote("Using --platform pushes only the specified platform manifest of a multi-platform image index.\n" +
			"Other components, like attestations, will not be included.\n" +
			"To push the complete multi-platform image, remove the --platform flag.\n")
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return err
	}
	switch {
	case opts.all && !reference.IsNameOnly(named):
		return errors.New("tag can't be used with --all-tags/-a")
	case !opts.all && reference.IsNameOnly(named):
		named = reference.TagNameOnly(named)
		if t, ok := named.(reference.Tagged); ok && !opts.quiet {
			fmt.Fprintf(c.Out, "Using default tag: %s\n", t.Tag())
		}
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	resp, err := cl.ImagePush(ctx, reference.FamiliarString(named), client.ImagePushOptions{
		All:          opts.all,
		RegistryAuth: c.registryAuth(named),
		Platform:     platform,
	})
	if err != nil {
		return interrupted(ctx, err)
	}
	defer resp.Close()
	if opts.quiet {
		if err := c.displayStream(resp, true); err != nil {
			return interrupted(ctx, err)
		}
		fmt.Fprintln(c.Out, named.String())
		return nil
	}
	if err := c.displayStream(resp, false); err != nil {
		return interrupted(ctx, err)
	}
	return nil
}
