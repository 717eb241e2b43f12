package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

type pullOptions struct {
	all      bool
	quiet    bool
	platform string
}

// newPullCommand is "berth pull" and "berth image pull".
func newPullCommand(c *CLI) *cobra.Command {
	var opts pullOptions
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPull(cmd.Context(), c, args[0], opts)
		},
	}
	aliases(cmd, "image pull", "pull")
	common(cmd, 5)
	flags := cmd.Flags()
	flags.BoolVarP(&opts.all, "all-tags", "a", false, "Download all tagged images in the repository")
	flags.Bool("disable-content-trust", true, "Skip image verification")
	_ = flags.MarkHidden("disable-content-trust")
	flags.StringVar(&opts.platform, "platform", c.Getenv("BERTH_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Suppress verbose output")
	return cmd
}

func runPull(ctx context.Context, c *CLI, name string, opts pullOptions) error {
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
	pullOpts := client.ImagePullOptions{
		All:          opts.all,
		RegistryAuth: c.registryAuth(named),
	}
	if opts.platform != "" {
		p, err := parsePlatform(opts.platform)
		if err != nil {
			return err
		}
		pullOpts.Platforms = []ocispec.Platform{p}
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	resp, err := cl.ImagePull(ctx, named.String(), pullOpts)
	if err != nil {
		return interrupted(ctx, err)
	}
	defer resp.Close()

	if err := c.displayStream(resp, opts.quiet); err != nil {
		return interrupted(ctx, err)
	}
	fmt.Fprintln(c.Out, named.String())
	return nil
}

// displayStream renders a JSON progress stream (pull, push, load) on
// stdout: redrawn per-layer progress bars on a terminal, plain status lines
// otherwise. quiet consumes the stream, still reporting its errors.
func (c *CLI) displayStream(r io.Reader, quiet bool) error {
	if quiet {
		return jsonmessage.DisplayJSONMessagesStream(r, io.Discard, 0, false, nil)
	}
	return jsonmessage.DisplayJSONMessagesStream(r, c.Out, c.Out.FD(), c.Out.IsTerminal(), nil)
}

// parsePlatform reads "os[/arch[/variant]]".
func parsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || parts[0] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: expected os[/arch[/variant]]", s)
	}
	p := ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}
