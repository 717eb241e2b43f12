package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type loginOptions struct {
	server        string
	user          string
	password      string
	passwordStdin bool
}

// newLoginCommand is "berth login".
func newLoginCommand(c *CLI) *cobra.Command {
	var opts loginOptions
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Long:  "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				opts.server = args[0]
			}
			return runLogin(cmd.Context(), c, opts)
		},
	}
	common(cmd, 8)
	flags := cmd.Flags()
	flags.StringVarP(&opts.password, "password", "p", "", "Password or Personal Access Token (PAT)")
	flags.BoolVar(&opts.passwordStdin, "password-stdin", false, "Take the Password or Personal Access Token (PAT) from stdin")
	flags.StringVarP(&opts.user, "username", "u", "", "Username")
	return cmd
}

func runLogin(ctx context.Context, c *CLI, opts loginOptions) error {
	if opts.password != "" && opts.passwordStdin {
		return errors.New("conflicting options: cannot specify both --password and --password-stdin")
	}
	if opts.password != "" {
		fmt.Fprintln(c.Err, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
	}
	if opts.passwordStdin {
		if opts.user == "" {
			return errors.New("the --password-stdin option requires --username to be set")
		}
		b, err := io.ReadAll(c.In)
		if err != nil {
			return err
		}
		opts.password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}

	server := normalizeServer(opts.server)
	cl, err := c.Client()
	if err != nil {
		return err
	}
	cfg := c.ConfigFile()

	// Without any credentials on the command line, try the stored ones.
	if opts.user == "" && opts.password == "" {
		if stored, ok := cfg.GetAuth(server); ok && stored.Username != "" {
			fmt.Fprintf(c.Err, "Authenticating with existing credentials... [Username: %s]\n", stored.Username)
			if _, err := login(ctx, cl, stored, server); err == nil {
				fmt.Fprintf(c.Err, "\n Info -> To login with a different account, run '%s logout' followed by '%s login'\n\n\n", binaryName, binaryName)
				fmt.Fprintln(c.Out, "Login Succeeded")
				return nil
			}
			if ctx.Err() != nil {
				return interrupted(ctx, err)
			}
			fmt.Fprintf(c.Err, "Login did not succeed, error: %s\n", err)
			opts.user = stored.Username
		}
	}

	if opts.user == "" || opts.password == "" {
		if err := c.promptCredentials(ctx, server, &opts); err != nil {
			return err
		}
	}
	ac := registry.AuthConfig{Username: opts.user, Password: opts.password, ServerAddress: server}
	res, err := login(ctx, cl, ac, server)
	if err != nil {
		return interrupted(ctx, err)
	}
	return c.loginSucceeded(server, ac, res)
}

func login(ctx context.Context, cl *client.Client, ac registry.AuthConfig, server string) (registry.AuthResponse, error) {
	res, err := cl.RegistryLogin(ctx, client.RegistryLoginOptions{
		Username:      ac.Username,
		Password:      ac.Password,
		ServerAddress: server,
		IdentityToken: ac.IdentityToken,
	})
	return res.Auth, err
}

// loginSucceeded stores the credentials (the identity token instead of the
// password when the daemon returned one) and reports success. The warning
// about unencrypted storage is shown when a password goes into the file
// and the stored credentials change, which is when docker 28 shows it.
func (c *CLI) loginSucceeded(server string, ac registry.AuthConfig, res registry.AuthResponse) error {
	if res.IdentityToken != "" {
		ac.Password = ""
		ac.IdentityToken = res.IdentityToken
	}
	cfg := c.ConfigFile()
	before, had := cfg.GetAuth(server)
	changed := !had || before.Username != ac.Username || before.Password != ac.Password || before.IdentityToken != ac.IdentityToken
	plaintext, err := cfg.StoreAuth(server, ac)
	if err != nil {
		return fmt.Errorf("error saving credentials: %w", err)
	}
	if plaintext && changed && ac.Password != "" {
		fmt.Fprintf(c.Err, "\nWARNING! Your credentials are stored unencrypted in '%s'.\n"+
			"Configure a credential helper to remove this warning. See\n"+
			"https://docs.docker.com/go/credential-store/\n\n", cfg.Path())
	}
	fmt.Fprintln(c.Out, "Login Succeeded")
	return nil
}

// promptCredentials asks for whatever of username and password is missing,
// on the terminal; the password is not echoed.
func (c *CLI) promptCredentials(ctx context.Context, server string, opts *loginOptions) error {
	if !c.In.IsTerminal() {
		return errors.New("Error: Cannot perform an interactive login from a non TTY device")
	}
	if server == IndexServer && opts.user == "" {
		fmt.Fprintln(c.Out, "Log in with your Docker ID or email address to push and pull images from Docker Hub. "+
			"If you don't have a Docker ID, head over to https://hub.docker.com/ to create one.")
		fmt.Fprintln(c.Out)
	}
	if opts.user == "" {
		fmt.Fprint(c.Out, "Username: ")
		user, err := c.readLine(ctx)
		if err != nil {
			return interrupted(ctx, err)
		}
		opts.user = strings.TrimSpace(user)
		if opts.user == "" {
			return errors.New("Error: Non-null Username Required")
		}
	}
	if opts.password == "" {
		fmt.Fprint(c.Out, "Password: ")
		pass, err := c.readPassword()
		if err != nil {
			return err
		}
		opts.password = pass
		if opts.password == "" {
			return errors.New("Error: Password Required")
		}
	}
	return nil
}

// newLogoutCommand is "berth logout".
func newLogoutCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Long:  "Log out from a registry.\nIf no server is specified, the default is defined by the daemon.",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) > 0 {
				server = args[0]
			}
			return runLogout(c, server)
		},
	}
	return common(cmd, 9)
}

func runLogout(c *CLI, server string) error {
	server = normalizeServer(server)
	fmt.Fprintf(c.Out, "Removing login credentials for %s\n", server)
	if _, err := c.ConfigFile().EraseAuth(server); err != nil {
		fmt.Fprintf(c.Err, "WARNING: could not erase credentials:\n%s: %s\n", server, err)
	}
	return nil
}
