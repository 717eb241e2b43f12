package cli

import (
	"io"
	"os"
	"strings"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newImportCommand is "berth import" and "berth image import".
func newImportCommand(c *CLI) *cobra.Command {
	var (
		message, platform string
		changes           = newListOpts(nil)
	)
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src := client.ImageImportSource{SourceName: args[0]}
			switch {
			case args[0] == "-":
				src.Source = c.In
			case strings.HasPrefix(args[0], "http://") || strings.HasPrefix(args[0], "https://"):
				// The daemon fetches it.
			default:
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				src = client.ImageImportSource{SourceName: "-", Source: f}
			}
			ref := ""
			if len(args) > 1 {
				ref = args[1]
			}
			opts := client.ImageImportOptions{Message: message, Changes: changes.GetAll()}
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platform = p
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			resp, err := cl.ImageImport(ctx, src, ref, opts)
			if err != nil {
				return interrupted(ctx, err)
			}
			defer resp.Close()
			return c.displayStream(io.Reader(resp), false)
		},
	}
	aliases(cmd, "image import", "import")
	flags := cmd.Flags()
	flags.VarP(changes, "change", "c", "Apply Dockerfile instruction to the created image")
	flags.StringVarP(&message, "message", "m", "", "Set commit message for imported image")
	flags.StringVar(&platform, "platform", c.Getenv("BERTH_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	return cmd
}
