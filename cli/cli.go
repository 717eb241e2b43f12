// Package cli implements the berth command line: a drop-in for the docker
// CLI's commands, talking to the daemon through the Engine API with the
// official Go client (github.com/moby/moby/client).
//
// The command tree is built by NewRootCommand; each command group lives in
// its own files (image_*.go, system_*.go, registry_*.go ...) and only needs
// the *CLI handed to its constructor: the streams, the API client, and the
// configuration file.
//
// Adding a command group (container, network, volume, build ...):
//
//   - write newXxxCommand(c *CLI) *cobra.Command constructors, one per
//     command, with docker's Use/Short texts and flags; use exactArgs,
//     minArgs, maxArgs or noArgs so wrong arguments give docker's message;
//   - call the constructor once per place the command appears: inside its
//     group (groupCommand) and, for shortcuts like `berth ps`, at the top
//     level, marking the invocations with aliases() and Common Commands
//     with common();
//   - list rows with formatter.Write: a row struct (fields in alphabetical
//     order, a MarshalJSON that escapes HTML) and a header map;
//   - register the group in addCommands.
package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/berth/berth/cli/config"
	"github.com/berth/berth/version"
	"github.com/moby/moby/client"
)

const (
	// DefaultHost is where berthd listens unless told otherwise.
	DefaultHost = "unix:///run/berth/berth.sock"
	// EnvHost names the environment variable that overrides DefaultHost.
	EnvHost = "BERTH_HOST"
	// EnvAPIVersion pins the API version instead of negotiating it.
	EnvAPIVersion = "BERTH_API_VERSION"
	// binaryName is how the CLI names itself in messages.
	binaryName = "berth"
)

// CLI carries what every command needs: the standard streams, the global
// options, a lazily created API client and the configuration file.
type CLI struct {
	In  *InStream
	Out *OutStream
	Err *OutStream

	opts   globalOptions
	client *client.Client
	config *config.File
	// Now returns the current time; tests replace it.
	Now func() time.Time
	// Getenv reads the environment; tests replace it.
	Getenv func(string) string
	// LookupEnv reads the environment telling unset from empty; when nil,
	// Getenv is used and empty counts as unset.
	LookupEnv func(string) (string, bool)

	// proxying counts the commands currently forwarding signals to a
	// container (run, attach, start -a without a TTY).
	proxying atomic.Int32
}

// ProxyingSignals reports whether SIGINT and SIGTERM are being forwarded to
// a container; main then leaves them alone instead of canceling the
// command.
func (c *CLI) ProxyingSignals() bool { return c.proxying.Load() > 0 }

// lookupEnv looks a variable up in the CLI's environment (for -e NAME and
// env files), telling unset from empty.
func (c *CLI) lookupEnv(k string) (string, bool) {
	if c.LookupEnv != nil {
		return c.LookupEnv(k)
	}
	v := c.Getenv(k)
	return v, v != ""
}

type globalOptions struct {
	hosts     []string
	configDir string
	debug     bool
	logLevel  string
	tls       bool
	tlsVerify bool
	tlsCACert string
	tlsCert   string
	tlsKey    string
}

// New returns a CLI bound to the given streams. Files are inspected for
// terminals; other readers and writers count as plain streams.
func New(in io.Reader, out, errOut io.Writer) *CLI {
	return &CLI{
		In:     NewInStream(in),
		Out:    NewOutStream(out),
		Err:    NewOutStream(errOut),
		Now:    time.Now,
		Getenv: os.Getenv,
	}
}

// NewStd returns a CLI bound to the process's standard streams.
func NewStd() *CLI {
	in, out, errOut := stdStreams()
	return &CLI{In: in, Out: out, Err: errOut, Now: time.Now, Getenv: os.Getenv, LookupEnv: os.LookupEnv}
}

// Host returns the daemon address in use: -H, then $BERTH_HOST, then the
// default socket.
func (c *CLI) Host() (string, error) {
	switch len(c.opts.hosts) {
	case 0:
	case 1:
		return c.opts.hosts[0], nil
	default:
		return "", errors.New("Specify only one -H")
	}
	if h := c.Getenv(EnvHost); h != "" {
		return h, nil
	}
	return DefaultHost, nil
}

// Client returns the API client, creating it on first use. The API version
// is negotiated with the daemon on the first request unless
// $BERTH_API_VERSION pins it.
func (c *CLI) Client() (*client.Client, error) {
	if c.client != nil {
		return c.client, nil
	}
	host, err := c.Host()
	if err != nil {
		return nil, fmt.Errorf("Failed to initialize: unable to resolve %s endpoint: %w", binaryName, err)
	}
	opts := []client.Opt{}
	if tlsConf, err := c.tlsConfig(); err != nil {
		return nil, err
	} else if tlsConf != nil {
		opts = append(opts, client.WithHTTPClient(&http.Client{
			Transport:     &http.Transport{TLSClientConfig: tlsConf},
			CheckRedirect: client.CheckRedirect,
		}))
	}
	opts = append(opts,
		client.WithHost(host),
		client.WithUserAgent(fmt.Sprintf("Berth-Client/%s (%s)", clientVersion(), runtime.GOOS)),
	)
	// Without a fixed version the client negotiates one with the daemon.
	if v := c.Getenv(EnvAPIVersion); v != "" {
		opts = append(opts, client.WithAPIVersion(v))
	}
	cl, err := client.New(opts...)
	if err != nil {
		return nil, err
	}
	c.client = cl
	return cl, nil
}

// Close releases the API client.
func (c *CLI) Close() error {
	if c.client != nil {
		return c.client.Close()
	}
	return nil
}

// tlsConfig builds the TLS settings from --tls, --tlsverify and the
// certificate flags; nil means plain connections.
func (c *CLI) tlsConfig() (*tls.Config, error) {
	o := c.opts
	if !o.tls && !o.tlsVerify {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !o.tlsVerify} //nolint:gosec // --tls without --tlsverify, as docker
	if o.tlsVerify && o.tlsCACert != "" {
		pem, err := os.ReadFile(o.tlsCACert)
		if err != nil {
			return nil, fmt.Errorf("could not read CA certificate %q: %w", o.tlsCACert, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("failed to append certificates from PEM file: %q", o.tlsCACert)
		}
		conf.RootCAs = pool
	}
	if fileExists(o.tlsCert) && fileExists(o.tlsKey) {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("could not load X509 key pair: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

func fileExists(p string) bool {
	if p == "" {
		return false
	}
	_, err := os.Stat(p)
	return err == nil
}

// ConfigDir returns the directory of the configuration file.
func (c *CLI) ConfigDir() string {
	if c.opts.configDir != "" {
		return c.opts.configDir
	}
	return config.DirFrom(c.Getenv)
}

// ConfigFile returns the loaded configuration file. A file that cannot be
// read is reported as a warning and replaced by an empty configuration, as
// the docker CLI does.
func (c *CLI) ConfigFile() *config.File {
	if c.config != nil {
		return c.config
	}
	f, err := config.Load(c.ConfigDir())
	if err != nil {
		fmt.Fprintf(c.Err, "WARNING: Error loading config file: %v\n", err)
		f = config.New(c.ConfigDir())
	}
	c.config = f
	return f
}

// clientVersion is the CLI's version string (see package version).
func clientVersion() string {
	return version.Version
}

// clientGitCommit is the commit the CLI was built from, if known.
func clientGitCommit() string {
	return version.GitCommit
}

// clientBuildTime is when the CLI was built, in docker's format
// ("Fri May 30 12:07:14 2025"), if the toolchain recorded it.
func clientBuildTime() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.time" {
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					return t.Format(time.ANSIC)
				}
			}
		}
	}
	return ""
}
