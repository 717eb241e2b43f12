package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// createOptions are the flags of create and run that are not part of the
// container's configuration.
type createOptions struct {
	name     string
	platform string
	pull     string
	quiet    bool
}

const (
	pullMissing = "missing"
	pullAlways  = "always"
	pullNever   = "never"
)

// newCreateCommand is "berth create" and "berth container create".
func newCreateCommand(c *CLI) *cobra.Command {
	var (
		opts  createOptions
		copts *containerOptions
	)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			copts.Image = args[0]
			copts.Args = args[1:]
			return runCreate(cmd.Context(), c, cmd.Flags(), opts, copts)
		},
	}
	aliases(cmd, "container create", "create")
	// The docker CLI's wording, "|missing" included.
	copts = opts.addFlags(c, cmd.Flags(), `Pull image before creating ("always", "|missing", "never")`)
	return cmd
}

// addFlags adds the flags create and run share: the container's
// configuration and o's. pullHelp is each command's own wording of --pull.
func (o *createOptions) addFlags(c *CLI, flags *pflag.FlagSet, pullHelp string) *containerOptions {
	flags.SetInterspersed(false)
	flags.Bool("help", false, "Print usage")
	flags.StringVar(&o.name, "name", "", "Assign a name to the container")
	flags.StringVar(&o.pull, "pull", pullMissing, pullHelp)
	flags.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the pull output")
	flags.StringVar(&o.platform, "platform", c.Getenv("BERTH_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	flags.Bool("disable-content-trust", true, "Skip image verification")
	return addContainerFlags(flags, c.lookupEnv)
}

// parse turns the flags of create or run (cmd) into the container's
// configuration; a bad flag is reported with cmd's help hint.
func (o *createOptions) parse(c *CLI, flags *pflag.FlagSet, copts *containerOptions, cmd string) (*containerConfig, error) {
	cfg, err := parseContainerOptions(flags, copts, c.lookupEnv)
	if err != nil {
		return nil, withHelp(err, cmd)
	}
	if err := validatePullOpt(o.pull); err != nil {
		return nil, withHelp(err, cmd)
	}
	return cfg, nil
}

func runCreate(ctx context.Context, c *CLI, flags *pflag.FlagSet, opts createOptions, copts *containerOptions) error {
	cfg, err := opts.parse(c, flags, copts, "create")
	if err != nil {
		return err
	}
	// Unlike run, create reports what happens past the flags as is, with
	// status 1.
	id, err := c.createContainer(ctx, cfg, opts)
	if err != nil {
		return interrupted(ctx, err)
	}
	fmt.Fprintln(c.Out, id)
	return nil
}

// withHelp turns an error of run or create into docker's
// "berth: <error>\n\nRun 'berth run --help' ..." with exit status 125.
func withHelp(err error, cmd string) error {
	if err == nil {
		return nil
	}
	var se StatusError
	if errors.As(err, &se) || errors.Is(err, errCanceled) {
		return err
	}
	return StatusError{
		Status:     fmt.Sprintf("%s: %s\n\nRun '%s %s --help' for more information", binaryName, err, binaryName, cmd),
		StatusCode: 125,
		Cause:      err,
	}
}

func validatePullOpt(p string) error {
	switch p {
	case pullAlways, pullMissing, pullNever, "":
		return nil
	}
	return fmt.Errorf("invalid pull option: '%s': must be one of %q, %q or %q", p, pullAlways, pullMissing, pullNever)
}

// createContainer creates the container, pulling its image first with
// --pull always, or when the daemon does not have it with --pull missing.
// Pull progress goes to stderr. It returns the new container's ID.
func (c *CLI) createContainer(ctx context.Context, cfg *containerConfig, opts createOptions) (string, error) {
	cl, err := c.Client()
	if err != nil {
		return "", err
	}

	var platform *ocispec.Platform
	if opts.platform != "" {
		p, err := parseRunPlatform(opts.platform)
		if err != nil {
			return "", err
		}
		platform = &p
	}

	// The image reference as docker normalizes it for messages and pulls.
	var named reference.Named
	if ref, err := reference.ParseAnyReference(cfg.Config.Image); err != nil {
		return "", err
	} else if n, ok := ref.(reference.Named); ok {
		named = reference.TagNameOnly(n)
	}

	if cfg.HostConfig.ContainerIDFile != "" {
		if _, err := os.Stat(cfg.HostConfig.ContainerIDFile); err == nil {
			// Reported as is, with status 1, as docker does.
			return "", StatusError{Status: fmt.Sprintf("container ID file found, make sure the other container isn't running or delete %s", cfg.HostConfig.ContainerIDFile), StatusCode: 1}
		}
	}

	pull := func() error {
		if named == nil {
			return fmt.Errorf("No such image: %s", cfg.Config.Image)
		}
		return c.pullImageForRun(ctx, named, platform, opts.quiet)
	}

	if opts.pull == pullAlways {
		if err := pull(); err != nil {
			return "", err
		}
	}

	create := func() (client.ContainerCreateResult, error) {
		return cl.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config:           cfg.Config,
			HostConfig:       cfg.HostConfig,
			NetworkingConfig: cfg.NetworkingConfig,
			Platform:         platform,
			Name:             opts.name,
		})
	}
	res, err := create()
	if err != nil {
		// As the docker CLI: any 404 of create pulls (a missing network
		// or --volumes-from container then fails again after the pull).
		if !cerrdefs.IsNotFound(err) || named == nil || opts.pull != pullMissing && opts.pull != "" {
			return "", err
		}
		if !opts.quiet {
			fmt.Fprintf(c.Err, "Unable to find image '%s' locally\n", reference.FamiliarString(named))
		}
		if err := pull(); err != nil {
			return "", err
		}
		if res, err = create(); err != nil {
			return "", err
		}
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(c.Err, "WARNING: %s\n", w)
	}
	if f := cfg.HostConfig.ContainerIDFile; f != "" {
		if err := os.WriteFile(f, []byte(res.ID), 0o644); err != nil {
			return "", fmt.Errorf("failed to write the container ID to the file: %w", err)
		}
	}
	return res.ID, nil
}

// pullImageForRun pulls named with its progress on stderr, as run and
// create do.
func (c *CLI) pullImageForRun(ctx context.Context, named reference.Named, platform *ocispec.Platform, quiet bool) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	opts := client.ImagePullOptions{RegistryAuth: c.registryAuth(named)}
	if platform != nil {
		opts.Platforms = []ocispec.Platform{*platform}
	}
	resp, err := cl.ImagePull(ctx, named.String(), opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	if quiet {
		return displayJSONStream(resp, nil, 0, false)
	}
	return displayJSONStream(resp, c.Err, c.Err.FD(), c.Err.IsTerminal())
}

// startErrorStatus maps a failed start to docker's exit status: 127 when
// the command was not found, 126 when it could not be executed, 125
// otherwise. The Engine API answers every failed start with 400 and words
// (dockerd's and berthd's alike), so, as the docker CLI, this reads the
// daemon's message: the one place the CLI decides by an error's text,
// because the wire carries nothing else.
func startErrorStatus(err error, cmd string) error {
	msg := err.Error()
	code := 125
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory") ||
		strings.Contains(msg, "system cannot find the file specified"):
		code = 127
	case strings.Contains(msg, syscall.EACCES.Error()) || strings.Contains(msg, syscall.EISDIR.Error()):
		code = 126
	}
	return StatusError{
		Status:     fmt.Sprintf("%s: %s\n\nRun '%s %s --help' for more information", binaryName, err, binaryName, cmd),
		StatusCode: code,
		Cause:      err,
	}
}

var platformComponent = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// parseRunPlatform reads --platform of run and create (os[/arch[/variant]]),
// with docker's messages for malformed values. Architectures are
// normalized (x86_64 → amd64, aarch64 → arm64).
func parseRunPlatform(s string) (ocispec.Platform, error) {
	wrap := func(msg string) error {
		return fmt.Errorf("error parsing specified platform: %s: invalid argument", msg)
	}
	parts := strings.Split(s, "/")
	if len(parts) > 3 {
		return ocispec.Platform{}, wrap(fmt.Sprintf("%q: cannot parse platform specifier", s))
	}
	if parts[0] == "" {
		return ocispec.Platform{}, wrap(fmt.Sprintf(`"" is an invalid OS component of %q: OSAndVersion specifier component must match "^([A-Za-z0-9_-]+)(?:\\(([A-Za-z0-9_.-]*)\\))?$"`, s))
	}
	for _, p := range parts {
		if !platformComponent.MatchString(p) {
			return ocispec.Platform{}, wrap(fmt.Sprintf(`%q is an invalid component of %q: platform specifier component must match "^[A-Za-z0-9_.-]+$"`, p, s))
		}
	}
	p := ocispec.Platform{OS: strings.ToLower(parts[0])}
	if p.OS == "macos" {
		p.OS = "darwin"
	}
	if len(parts) > 1 {
		p.Architecture = strings.ToLower(parts[1])
		switch p.Architecture {
		case "x86_64", "x86-64":
			p.Architecture = "amd64"
		case "aarch64":
			p.Architecture = "arm64"
		case "i386":
			p.Architecture = "386"
		case "armhf":
			p.Architecture, p.Variant = "arm", "v7"
		case "armel":
			p.Architecture, p.Variant = "arm", "v6"
		}
	}
	if len(parts) > 2 {
		p.Variant = strings.ToLower(parts[2])
	}
	return p, nil
}
