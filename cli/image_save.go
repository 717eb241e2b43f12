package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth/berth/internal/osutil"
)

// newSaveCommand is "berth save" and "berth image save".
func newSaveCommand(c *CLI) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSave(cmd.Context(), c, args, output)
		},
	}
	aliases(cmd, "image save", "save")
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func runSave(ctx context.Context, c *CLI, names []string, output string) error {
	if output == "" && c.Out.IsTerminal() {
		return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
	}
	if output != "" {
		if err := checkOutputDir(output); err != nil {
			return fmt.Errorf("failed to save image: %w", err)
		}
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	body, err := cl.ImageSave(ctx, names)
	if err != nil {
		return interrupted(ctx, err)
	}
	defer body.Close()
	if output == "" {
		_, err := io.Copy(c.Out, body)
		return interrupted(ctx, err)
	}
	return interrupted(ctx, writeFileAtomic(output, body))
}

// checkOutputDir verifies that the directory output goes to exists.
func checkOutputDir(output string) error {
	dir := filepath.Dir(filepath.Clean(output))
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("invalid output path: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("invalid output path: %q is not a directory", dir)
	}
	return nil
}

// writeFileAtomic writes the -o file of save and commit: path gets all of r
// or, when the save is interrupted, keeps what it had.
func writeFileAtomic(path string, r io.Reader) error { return osutil.WriteAtomic(path, r) }

type loadOptions struct {
	input string
	quiet bool
}

// newLoadCommand is "berth load" and "berth image load".
func newLoadCommand(c *CLI) *cobra.Command {
	var opts loadOptions
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLoad(cmd.Context(), c, opts)
		},
	}
	aliases(cmd, "image load", "load")
	flags := cmd.Flags()
	flags.StringVarP(&opts.input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Suppress the load output")
	return cmd
}

func runLoad(ctx context.Context, c *CLI, opts loadOptions) error {
	var input io.Reader = c.In
	if opts.input != "" {
		f, err := os.Open(opts.input)
		if err != nil {
			return err
		}
		defer f.Close()
		input = f
	} else if c.In.IsTerminal() {
		return errors.New("requested load from stdin, but stdin is empty")
	}
	// Progress bars only make sense on a terminal.
	quiet := opts.quiet || !c.Out.IsTerminal()
	cl, err := c.Client()
	if err != nil {
		return err
	}
	resp, err := cl.ImageLoad(ctx, input, client.ImageLoadWithQuiet(quiet))
	if err != nil {
		return interrupted(ctx, err)
	}
	defer resp.Close()

	// The daemon answers with a JSON message stream; anything else is
	// copied through as it came.
	br := bufio.NewReader(resp)
	if isJSONStream(br) {
		return interrupted(ctx, c.displayStream(br, false))
	}
	_, err = io.Copy(c.Out, br)
	return interrupted(ctx, err)
}

// isJSONStream peeks at the first non-blank byte of r.
func isJSONStream(r *bufio.Reader) bool {
	for n := 1; ; n++ {
		b, err := r.Peek(n)
		if len(b) < n {
			return err == nil
		}
		switch ch := b[n-1]; {
		case bytes.IndexByte([]byte(" \t\r\n"), ch) >= 0:
			continue
		default:
			return ch == '{'
		}
	}
}
