package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/platforms"
	"github.com/docker/cli/cli/config/types"
	"github.com/docker/go-units"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
	"github.com/moby/buildkit/session/upload/uploadprovider"
	solvererrdefs "github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/util/entitlements"
	"github.com/moby/buildkit/util/grpcerrors"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/spf13/cobra"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
)

// buildOptions are `berth build`'s flags: docker build's with BuildKit
// (buildx build on buildx's docker driver).
type buildOptions struct {
	tags       []string
	file       string
	buildArgs  []string
	target     string
	noCache    bool
	pull       bool
	quiet      bool
	labels     []string
	iidfile    string
	platforms  []string
	network    string
	addHosts   []string
	progress   string
	secrets    []string
	ssh        []string
	outputs    []string
	cacheFrom  []string
	cacheTo    []string
	shmSize    string
	load, push bool
}

// newBuildCommand is "berth build", "berth image build" and "berth
// builder build": a build on the daemon's BuildKit (POST /grpc and
// /session, as buildx's docker driver), the image loaded into the
// daemon's store.
func newBuildCommand(c *CLI) *cobra.Command {
	var opts buildOptions
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | URL | -",
		Short: "Build an image from a Dockerfile",
		Long: "Build an image from a Dockerfile with the daemon's BuildKit.\n\n" +
			"The context is a directory, a URL (Git repository, tarball) or \"-\": a tar\n" +
			"archive or a Dockerfile (then with an empty context) read from stdin.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd.Context(), c, args[0], opts)
		},
	}
	aliases(cmd, "image build", "build", "builder build")
	common(cmd, 4)
	flags := cmd.Flags()
	flags.StringSliceVar(&opts.addHosts, "add-host", nil, `Add a custom host-to-IP mapping (format: "host:ip")`)
	flags.StringArrayVar(&opts.buildArgs, "build-arg", nil, "Set build-time variables")
	flags.StringArrayVar(&opts.cacheFrom, "cache-from", nil, `External cache sources (e.g., "user/app:cache", "type=local,src=path/to/dir")`)
	flags.StringArrayVar(&opts.cacheTo, "cache-to", nil, `Cache export destinations (e.g., "user/app:cache", "type=local,dest=path/to/dir")`)
	flags.StringVarP(&opts.file, "file", "f", "", `Name of the Dockerfile (default: "PATH/Dockerfile")`)
	flags.StringVar(&opts.iidfile, "iidfile", "", "Write the image ID to a file")
	flags.StringArrayVar(&opts.labels, "label", nil, "Set metadata for an image")
	flags.BoolVar(&opts.load, "load", false, `Shorthand for "--output=type=docker"`)
	flags.StringVar(&opts.network, "network", "default", `Set the networking mode for the "RUN" instructions during build`)
	flags.BoolVar(&opts.noCache, "no-cache", false, "Do not use cache when building the image")
	flags.StringArrayVarP(&opts.outputs, "output", "o", nil, `Output destination (format: "type=local,dest=path")`)
	flags.StringArrayVar(&opts.platforms, "platform", nil, "Set target platform for build")
	flags.StringVar(&opts.progress, "progress", "auto", `Set type of progress output ("auto", "none", "plain", "quiet", "rawjson", "tty"). Use plain to show container output`)
	flags.BoolVar(&opts.pull, "pull", false, "Always attempt to pull all referenced images")
	flags.BoolVar(&opts.push, "push", false, `Shorthand for "--output=type=registry"`)
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Suppress the build output and print image ID on success")
	flags.StringArrayVar(&opts.secrets, "secret", nil, `Secret to expose to the build (format: "id=mysecret[,src=/local/secret]")`)
	flags.StringVar(&opts.shmSize, "shm-size", "", `Shared memory size for build containers`)
	flags.StringArrayVar(&opts.ssh, "ssh", nil, `SSH agent socket or keys to expose to the build (format: "default|<id>[=<socket>|<key>[,<key>]]")`)
	flags.StringArrayVarP(&opts.tags, "tag", "t", nil, `Image identifier (format: "[registry/]repository[:tag]")`)
	flags.StringVar(&opts.target, "target", "", "Set the target build stage to build")
	// Accepted and ignored, as docker build with BuildKit does.
	var ignoreBool bool
	var ignore string
	for _, name := range []string{"rm", "force-rm", "compress", "squash"} {
		flags.BoolVar(&ignoreBool, name, name == "rm", "")
		_ = flags.MarkHidden(name)
	}
	flags.StringVar(&ignore, "isolation", "", "")
	_ = flags.MarkHidden("isolation")
	return cmd
}

// buildDisplayMode is the progress display for opts (buildx's rules:
// --progress=quiet is -q, "none" shows nothing and prints no ID).
func buildDisplayMode(opts *buildOptions) (progressui.DisplayMode, error) {
	mode := opts.progress
	if mode == "quiet" {
		opts.quiet = true
	}
	if mode == "none" {
		mode = "quiet"
	}
	if opts.quiet {
		if mode != "auto" && mode != "quiet" {
			return "", fmt.Errorf("progress=%s and quiet cannot be used together", opts.progress)
		}
		return progressui.QuietMode, nil
	}
	switch progressui.DisplayMode(mode) {
	case progressui.AutoMode, progressui.TtyMode, progressui.PlainMode, progressui.RawJSONMode, progressui.QuietMode:
		return progressui.DisplayMode(mode), nil
	}
	return "", fmt.Errorf("invalid progress mode %s", opts.progress)
}

// runBuild runs the build; like docker build (buildx) it prints any error
// as "ERROR: ...", those of the build itself as "ERROR: failed to build:
// ...".
func runBuild(ctx context.Context, c *CLI, contextPath string, opts buildOptions) error {
	mode, err := buildDisplayMode(&opts)
	if err != nil {
		return StatusError{Status: "ERROR: " + err.Error(), StatusCode: 1, Cause: err}
	}
	// No stale ID file if the build fails.
	if opts.iidfile != "" {
		if err := os.Remove(opts.iidfile); err != nil && !errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("removing image ID file: %w", err)
			return StatusError{Status: "ERROR: " + err.Error(), StatusCode: 1, Cause: err}
		}
	}
	so, cleanup, err := c.buildSolveOpt(contextPath, &opts)
	defer cleanup()
	if err != nil {
		return buildError(ctx, err)
	}
	bk, err := c.buildkit(ctx)
	if err != nil {
		return err
	}
	defer bk.Close()

	var out io.Writer = c.Err
	if f, ok := c.Err.Writer.(*os.File); ok {
		out = f // the tty display needs the file
	}
	display, err := progressui.NewDisplay(out, mode, progressui.WithDesc(
		`building with "default" instance using docker driver`, "docker:default"))
	if err != nil {
		return err
	}
	ch := make(chan *bkclient.SolveStatus)
	var (
		resp     *bkclient.SolveResponse
		warnings []bkclient.VertexWarning
	)
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		var err error
		resp, err = bk.Solve(ectx, nil, *so, ch)
		return err
	})
	eg.Go(func() error {
		// Not ectx: the display shows how a failed build ended.
		var err error
		warnings, err = display.UpdateFrom(context.WithoutCancel(ctx), ch)
		return err
	})
	err = eg.Wait()
	if mode != progressui.QuietMode && mode != progressui.RawJSONMode {
		printBuildWarnings(c.Err, warnings)
	}
	if err != nil {
		return buildError(ctx, err)
	}
	id := resp.ExporterResponse["containerimage.digest"]
	if v, ok := resp.ExporterResponse["containerimage.config.digest"]; ok {
		id = v
	}
	if opts.quiet {
		fmt.Fprintln(c.Out, id)
	}
	if opts.iidfile != "" {
		if err := os.WriteFile(opts.iidfile, []byte(id), 0o644); err != nil {
			err = fmt.Errorf("writing image ID file: %w", err)
			return StatusError{Status: "ERROR: " + err.Error(), StatusCode: 1, Cause: err}
		}
	}
	return nil
}

// buildkit returns a client of the daemon's BuildKit: its control API
// over POST /grpc (h2c) and sessions over POST /session, as buildx's
// docker driver dials them.
func (c *CLI) buildkit(ctx context.Context) (*bkclient.Client, error) {
	cl, err := c.Client()
	if err != nil {
		return nil, err
	}
	return bkclient.New(ctx, "",
		bkclient.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return cl.DialHijack(ctx, "/grpc", "h2c", nil)
		}),
		bkclient.WithSessionDialer(func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
			return cl.DialHijack(ctx, "/session", proto, meta)
		}))
}

// buildError is what a failed build prints, as docker build (buildx):
// the Dockerfile lines the error points at, "ERROR: failed to build: ...",
// and buildx's exit codes (100 internal, 102 exhausted, 130 canceled).
func buildError(ctx context.Context, err error) error {
	var b strings.Builder
	for _, s := range solvererrdefs.Sources(err) {
		s.Print(&b)
	}
	code := 1
	switch grpcerrors.Code(err) {
	case codes.Internal:
		code = 100
	case codes.ResourceExhausted:
		code = 102
	case codes.Canceled:
		code = 130
	default:
		if errors.Is(err, context.Canceled) || ctx.Err() != nil {
			code = 130
		}
	}
	return StatusError{Status: b.String() + "ERROR: failed to build: " + err.Error(), StatusCode: code, Cause: err}
}

// printBuildWarnings prints the build checks' warnings after the display,
// as docker build does.
func printBuildWarnings(w io.Writer, warnings []bkclient.VertexWarning) {
	if len(warnings) == 0 {
		return
	}
	n := "1 warning found"
	if len(warnings) > 1 {
		n = fmt.Sprintf("%d warnings found", len(warnings))
	}
	fmt.Fprintf(w, "\n \x1b[33m%s (use docker --debug to expand):\n\x1b[0m", n)
	for _, warn := range warnings {
		fmt.Fprintf(w, " - %s\n", warn.Short)
	}
}

// buildSolveOpt turns the build's context, Dockerfile and flags into a
// BuildKit solve, as buildx does for its docker driver. cleanup removes
// temporary directories (a Dockerfile read from stdin).
func (c *CLI) buildSolveOpt(contextPath string, opts *buildOptions) (_ *bkclient.SolveOpt, cleanup func(), _ error) {
	var temps []string
	cleanup = func() {
		for _, d := range temps {
			os.RemoveAll(d)
		}
	}
	so := &bkclient.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: map[string]string{},
		LocalMounts:   map[string]fsutil.FS{},
	}
	local := func(name, dir string) error {
		fs, err := fsutil.NewFS(dir)
		if err != nil {
			return err
		}
		so.LocalMounts[name] = fs
		return nil
	}
	var (
		dfReader      io.Reader
		dockerfileDir string
		dockerfile    = opts.file
	)
	switch {
	case contextPath == "-":
		if opts.file == "-" {
			return nil, cleanup, errors.New("invalid argument: can't use stdin for both build context and dockerfile")
		}
		in := bufio.NewReaderSize(c.In, 64<<10)
		magic, err := in.Peek(512)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, cleanup, fmt.Errorf("failed to peek context header from STDIN: %w", err)
		}
		if isArchive(magic) {
			up := uploadprovider.New()
			so.FrontendAttrs["context"] = up.Add(io.NopCloser(in))
			so.Session = append(so.Session, up)
			break
		}
		if opts.file != "" {
			return nil, cleanup, errors.New("ambiguous Dockerfile source: both stdin and flag correspond to Dockerfiles")
		}
		dfReader = in
		empty, err := os.MkdirTemp("", "empty-dir")
		if err != nil {
			return nil, cleanup, err
		}
		temps = append(temps, empty)
		if err := local("context", empty); err != nil {
			return nil, cleanup, err
		}
	case isLocalDir(contextPath):
		if err := local("context", contextPath); err != nil {
			return nil, cleanup, err
		}
		if abs, err := filepath.Abs(contextPath); err == nil {
			so.SharedKey = filepath.Base(abs)
		}
		switch opts.file {
		case "-":
			dfReader = c.In
		case "":
			dockerfileDir = contextPath
		default:
			dockerfileDir, dockerfile = filepath.Dir(opts.file), filepath.Base(opts.file)
		}
	case isRemoteURL(contextPath):
		so.FrontendAttrs["context"] = contextPath
		switch {
		case opts.file == "-":
			dfReader = c.In
		case filepath.IsAbs(opts.file):
			dockerfileDir, dockerfile = filepath.Dir(opts.file), filepath.Base(opts.file)
			so.FrontendAttrs["dockerfilekey"] = "dockerfile"
		}
	default:
		return nil, cleanup, fmt.Errorf("unable to prepare context: path %q not found", contextPath)
	}
	if dfReader != nil {
		dir, err := os.MkdirTemp("", "dockerfile")
		if err != nil {
			return nil, cleanup, err
		}
		temps = append(temps, dir)
		f, err := os.Create(filepath.Join(dir, "Dockerfile"))
		if err != nil {
			return nil, cleanup, err
		}
		_, err = io.Copy(f, dfReader)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, cleanup, err
		}
		dockerfileDir, dockerfile = dir, "Dockerfile"
		so.FrontendAttrs["dockerfilekey"] = "dockerfile"
	}
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if dockerfileDir != "" {
		if err := local("dockerfile", dockerfileDir); err != nil {
			return nil, cleanup, err
		}
		// A lower-case "dockerfile" when there is no "Dockerfile", as docker.
		if dockerfile == "Dockerfile" {
			if _, err := os.Lstat(filepath.Join(dockerfileDir, dockerfile)); errors.Is(err, os.ErrNotExist) {
				if _, err := os.Lstat(filepath.Join(dockerfileDir, "dockerfile")); err == nil {
					dockerfile = "dockerfile"
				}
			}
		}
	}
	so.FrontendAttrs["filename"] = dockerfile

	if err := c.buildFlagsToSolveOpt(so, opts); err != nil {
		return nil, cleanup, err
	}
	return so, cleanup, nil
}

// buildFlagsToSolveOpt sets the frontend's attributes, the exports, the
// cache and the session's attachables (credentials, secrets, SSH) from
// the flags.
func (c *CLI) buildFlagsToSolveOpt(so *bkclient.SolveOpt, opts *buildOptions) error {
	fa := so.FrontendAttrs
	for _, kv := range opts.buildArgs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			// --build-arg NAME takes NAME from the environment, if set.
			if v, ok = c.lookupEnv(k); !ok {
				continue
			}
		}
		fa["build-arg:"+k] = v
	}
	for _, kv := range opts.labels {
		k, v, _ := strings.Cut(kv, "=")
		fa["label:"+k] = v
	}
	// The daemon's images first, as docker build on dockerd.
	fa["image-resolve-mode"] = "default"
	if opts.pull {
		fa["image-resolve-mode"] = "pull"
	}
	// buildx's default on a daemon that takes attestations: a minimal
	// provenance, inlined in the image's index.
	if v, ok := c.lookupEnv("BUILDX_NO_DEFAULT_ATTESTATIONS"); !ok || !isTrue(v) {
		fa["attest:provenance"] = "mode=min,inline-only=true"
	}
	if opts.target != "" {
		fa["target"] = opts.target
	}
	if opts.noCache {
		fa["no-cache"] = ""
	}
	multiPlatform := false
	if len(opts.platforms) > 0 {
		var pp []string
		for _, list := range opts.platforms {
			for p := range strings.SplitSeq(list, ",") {
				if p = strings.TrimSpace(p); p == "" {
					continue
				}
				parsed, err := platforms.Parse(p)
				if err != nil {
					return err
				}
				pp = append(pp, platforms.FormatAll(platforms.Normalize(parsed)))
			}
		}
		fa["platform"] = strings.Join(pp, ",")
		multiPlatform = len(pp) > 1
	}
	switch opts.network {
	case "host":
		fa["force-network-mode"] = opts.network
		so.AllowedEntitlements = append(so.AllowedEntitlements, entitlements.EntitlementNetworkHost.String())
	case "none":
		fa["force-network-mode"] = opts.network
	case "", "default":
	default:
		return fmt.Errorf("network mode %q not supported by buildkit", opts.network)
	}
	if len(opts.addHosts) > 0 {
		hosts := make([]string, 0, len(opts.addHosts))
		for _, h := range opts.addHosts {
			host, ip, ok := strings.Cut(h, "=")
			if !ok {
				host, ip, ok = strings.Cut(h, ":")
			}
			if !ok || host == "" || net.ParseIP(strings.Trim(ip, "[]")) == nil && ip != "host-gateway" {
				return fmt.Errorf("invalid host %s", h)
			}
			hosts = append(hosts, host+"="+strings.Trim(ip, "[]"))
		}
		fa["add-hosts"] = strings.Join(hosts, ",")
	}
	if opts.shmSize != "" {
		n, err := units.RAMInBytes(opts.shmSize)
		if err != nil {
			return err
		}
		fa["shm-size"] = strconv.FormatInt(n, 10)
	}

	exports, err := buildExports(opts)
	if err != nil {
		return err
	}
	if multiPlatform && slices.ContainsFunc(exports, func(e bkclient.ExportEntry) bool { return e.Type == "moby" }) {
		// buildx's words for a daemon whose images hold one platform
		// each (berthd answers so too: builder.ErrMultiPlatformLoad).
		return errors.New(errMultiPlatformLoad)
	}
	so.Exports = exports
	if so.CacheImports, err = buildCacheEntries(opts.cacheFrom, "src"); err != nil {
		return err
	}
	if so.CacheExports, err = buildCacheEntries(opts.cacheTo, "dest"); err != nil {
		return err
	}

	so.Session = append(so.Session, authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: c.buildAuthConfig,
	}))
	if len(opts.secrets) > 0 {
		var srcs []secretsprovider.Source
		for _, s := range opts.secrets {
			src, err := parseSecret(s)
			if err != nil {
				return err
			}
			srcs = append(srcs, src)
		}
		store, err := secretsprovider.NewStore(srcs)
		if err != nil {
			return err
		}
		so.Session = append(so.Session, secretsprovider.NewSecretProvider(store))
	}
	if len(opts.ssh) > 0 {
		var cfgs []sshprovider.AgentConfig
		for _, s := range opts.ssh {
			id, paths, _ := strings.Cut(s, "=")
			cfg := sshprovider.AgentConfig{ID: id}
			if paths != "" {
				cfg.Paths = strings.Split(paths, ",")
			}
			cfgs = append(cfgs, cfg)
		}
		sp, err := sshprovider.NewSSHAgentProvider(cfgs)
		if err != nil {
			return err
		}
		so.Session = append(so.Session, sp)
	}
	return nil
}

// buildAuthConfig gives BuildKit the credentials the CLI holds for a
// registry host (docker.io's under Docker Hub's key).
func (c *CLI) buildAuthConfig(_ context.Context, host string, _ []string, _ authprovider.ExpireCachedAuthCheck) (types.AuthConfig, error) {
	key := indexServerFor(host)
	ac, ok := c.ConfigFile().GetAuth(key)
	if !ok {
		return types.AuthConfig{}, nil
	}
	return types.AuthConfig{
		Username: ac.Username, Password: ac.Password, IdentityToken: ac.IdentityToken,
		RegistryToken: ac.RegistryToken, ServerAddress: host,
	}, nil
}

// errMultiPlatformLoad is buildx's refusal to load a build of several
// platforms into a daemon's image store that keeps one per image.
const errMultiPlatformLoad = "Multi-platform build is not supported for the docker driver.\n" +
	"Switch to a different driver, or turn on the containerd image store, and try again.\n" +
	"Learn more at https://docs.docker.com/go/build-multi-platform/"

// buildExports turns -o/--load/--push and -t into BuildKit's exports: the
// image into the daemon's store ("moby", by default), a directory
// (type=local) or a tar (type=tar, "-" for stdout).
func buildExports(opts *buildOptions) ([]bkclient.ExportEntry, error) {
	outs := append([]string{}, opts.outputs...)
	if opts.load {
		outs = append(outs, "type=docker")
	}
	if opts.push {
		outs = append(outs, "type=registry")
	}
	if len(outs) == 0 {
		outs = []string{"type=docker"}
	}
	var exps []bkclient.ExportEntry
	moby := -1
	for _, o := range outs {
		attrs, err := parseCSVAttrs(o)
		if err != nil {
			return nil, err
		}
		typ := attrs["type"]
		if typ == "" {
			if len(attrs) == 1 && !strings.Contains(o, "=") {
				// -o path: a local directory ("-": a tar on stdout).
				typ, attrs = "local", map[string]string{"dest": o}
				if o == "-" {
					typ = "tar"
				}
			} else {
				return nil, fmt.Errorf("type is required for output")
			}
		}
		delete(attrs, "type")
		switch typ {
		case "docker", "image", "moby", "registry":
			if typ == "registry" {
				attrs["push"] = "true"
			}
			if moby >= 0 {
				// --load --push: one image export that also pushes.
				for k, v := range attrs {
					exps[moby].Attrs[k] = v
				}
				continue
			}
			if len(opts.tags) > 0 && attrs["name"] == "" {
				attrs["name"] = strings.Join(opts.tags, ",")
			}
			moby = len(exps)
			exps = append(exps, bkclient.ExportEntry{Type: "moby", Attrs: attrs})
		case "local":
			dest := attrs["dest"]
			if dest == "" {
				return nil, errors.New("dest is required for local output")
			}
			delete(attrs, "dest")
			exps = append(exps, bkclient.ExportEntry{Type: bkclient.ExporterLocal, Attrs: attrs, OutputDir: dest})
		case "tar":
			dest := attrs["dest"]
			delete(attrs, "dest")
			exps = append(exps, bkclient.ExportEntry{Type: bkclient.ExporterTar, Attrs: attrs, Output: fileOutput(dest)})
		default:
			return nil, fmt.Errorf("output type %q is not supported by berth build", typ)
		}
	}
	if len(exps) > 1 {
		return nil, errors.New("multiple outputs are not supported by the docker driver")
	}
	return exps, nil
}

// fileOutput writes an exporter's stream to dest ("" or "-": stdout).
func fileOutput(dest string) func(map[string]string) (io.WriteCloser, error) {
	return func(map[string]string) (io.WriteCloser, error) {
		if dest == "" || dest == "-" {
			return nopWriteCloser{os.Stdout}, nil
		}
		return os.Create(dest)
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// buildCacheEntries parses --cache-from/--cache-to: "type=local,src=dir",
// "type=registry,ref=..." or a bare reference (registry).
func buildCacheEntries(specs []string, pathKey string) ([]bkclient.CacheOptionsEntry, error) {
	var out []bkclient.CacheOptionsEntry
	for _, s := range specs {
		if !strings.Contains(s, "=") {
			out = append(out, bkclient.CacheOptionsEntry{Type: "registry", Attrs: map[string]string{"ref": s}})
			continue
		}
		attrs, err := parseCSVAttrs(s)
		if err != nil {
			return nil, err
		}
		typ := attrs["type"]
		if typ == "" {
			return nil, fmt.Errorf("type required for %q", s)
		}
		delete(attrs, "type")
		if typ == "local" && attrs[pathKey] == "" {
			return nil, fmt.Errorf("%s is required for local cache", pathKey)
		}
		out = append(out, bkclient.CacheOptionsEntry{Type: typ, Attrs: attrs})
	}
	return out, nil
}

// parseSecret parses --secret: id=ID[,src=PATH|env=VAR][,type=file|env].
func parseSecret(s string) (secretsprovider.Source, error) {
	attrs, err := parseCSVAttrs(s)
	if err != nil {
		return secretsprovider.Source{}, err
	}
	src := secretsprovider.Source{ID: attrs["id"]}
	typ := attrs["type"]
	for k, v := range attrs {
		switch k {
		case "id", "type":
		case "src", "source":
			src.FilePath = v
		case "env":
			src.Env = v
		default:
			return src, fmt.Errorf("unexpected key '%s' in '%s'", k, s)
		}
	}
	if typ == "env" && src.Env == "" {
		src.Env, src.FilePath = src.FilePath, ""
	}
	if src.ID == "" {
		return src, fmt.Errorf("secret ID missing from '%s'", s)
	}
	if src.FilePath == "" && src.Env == "" {
		// id=NAME alone: the variable NAME, as buildx.
		src.Env = src.ID
	}
	return src, nil
}

// parseCSVAttrs parses "k=v,k=v" (CSV quoting allowed); a field with no
// "=" is kept with an empty value.
func parseCSVAttrs(s string) (map[string]string, error) {
	fields, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return nil, fmt.Errorf("failed to parse %q: %w", s, err)
	}
	attrs := map[string]string{}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		attrs[strings.ToLower(strings.TrimSpace(k))] = v
	}
	return attrs, nil
}

func isTrue(s string) bool {
	b, err := strconv.ParseBool(s)
	return err == nil && b
}

func isLocalDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// isRemoteURL reports a context BuildKit fetches itself: a Git repository
// or an http(s) URL.
func isRemoteURL(s string) bool {
	for _, p := range []string{"http://", "https://", "git://", "git@", "github.com/"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// isArchive reports whether b starts a tar archive, plain or compressed
// (gzip, bzip2, xz, zstd).
func isArchive(b []byte) bool {
	for _, m := range [][]byte{{0x1f, 0x8b}, []byte("BZh"), {0xfd, '7', 'z', 'X', 'Z', 0x00}, {0x28, 0xb5, 0x2f, 0xfd}} {
		if bytes.HasPrefix(b, m) {
			return true
		}
	}
	return len(b) >= 262 && bytes.Equal(b[257:262], []byte("ustar"))
}
