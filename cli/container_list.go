package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth/berth/cli/formatter"
	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type psOptions struct {
	quiet   bool
	size    bool
	all     bool
	noTrunc bool
	latest  bool
	last    int
	format  string
	filter  *filterValue
}

// newPsCommand is "berth ps".
func newPsCommand(c *CLI) *cobra.Command {
	return common(containerListCommand(c, "ps [OPTIONS]"), 3)
}

// newContainerListCommand is "berth container ls" (aliases list, ps).
func newContainerListCommand(c *CLI) *cobra.Command {
	cmd := containerListCommand(c, "ls [OPTIONS]")
	cmd.Aliases = []string{"list", "ps"}
	return cmd
}

func containerListCommand(c *CLI, use string) *cobra.Command {
	opts := psOptions{filter: newFilterValue()}
	cmd := &cobra.Command{
		Use:   use,
		Short: "List containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPs(cmd.Context(), c, opts)
		},
	}
	aliases(cmd, "container ls", "container list", "container ps", "ps")
	flags := cmd.Flags()
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Only display container IDs")
	flags.BoolVarP(&opts.size, "size", "s", false, "Display total file sizes")
	flags.BoolVarP(&opts.all, "all", "a", false, "Show all containers (default shows just running)")
	flags.BoolVar(&opts.noTrunc, "no-trunc", false, "Don't truncate output")
	flags.BoolVarP(&opts.latest, "latest", "l", false, "Show the latest created container (includes all states)")
	flags.IntVarP(&opts.last, "last", "n", -1, "Show n last created containers (includes all states)")
	flags.StringVar(&opts.format, "format", "", formatHelpTable)
	flags.VarP(opts.filter, "filter", "f", "Filter output based on conditions provided")
	return cmd
}

func runPs(ctx context.Context, c *CLI, opts psOptions) error {
	format := opts.format
	if opts.quiet && format != "" {
		fmt.Fprintln(c.Err, "WARNING: Ignoring custom format, because both --format and --quiet are set.")
		format = ""
	}
	if format == "" && !opts.quiet {
		format = c.ConfigFile().PsFormat
	}
	if opts.quiet && format == "" {
		format = "{{.ID}}"
	}
	if format == "" || format == formatter.TableFormatKey {
		format = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
		if opts.size {
			format += "\t{{.Size}}"
		}
	}
	if opts.quiet {
		format = "{{.ID}}"
	}
	last := opts.last
	if opts.latest && last == -1 {
		last = 1
	}
	listOpts := client.ContainerListOptions{
		All:     opts.all,
		Limit:   last,
		Size:    opts.size,
		Filters: opts.filter.Filters(),
	}
	if !opts.quiet && !listOpts.Size && (strings.Contains(format, ".Size") || formatter.Format(format).IsJSON()) {
		listOpts.Size = strings.Contains(format, ".Size")
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.ContainerList(ctx, listOpts)
	if err != nil {
		return interrupted(ctx, err)
	}
	rows := make([]containerRow, 0, len(res.Items))
	for _, s := range res.Items {
		rows = append(rows, newContainerRow(s, !opts.noTrunc, c.Now()))
	}
	err = formatter.Write(c.Out, formatter.Format(format), containerHeader, rows)
	var te *formatter.TemplateError
	if errors.As(err, &te) {
		if te.Parse {
			return fmt.Errorf("failed to parse template: %w", te.Err)
		}
		return fmt.Errorf("failed to execute template: %w", te.Err)
	}
	return err
}

// containerRow is one line of `ps`. Its exported fields and methods are
// what --format templates may use; the JSON form has docker's keys.
type containerRow struct {
	Command      string
	CreatedAt    string
	ID           string
	Image        string
	Labels       string
	LocalVolumes string
	Mounts       string
	Names        string
	Networks     string
	Platform     *string
	Ports        string
	RunningFor   string
	Size         string
	State        string
	Status       string

	labels map[string]string
}

// Label returns the value of one label ({{.Label "com.example.x"}}).
func (r containerRow) Label(name string) string { return r.labels[name] }

// MarshalJSON writes the row with HTML characters escaped, as docker does.
func (r containerRow) MarshalJSON() ([]byte, error) {
	type plain containerRow
	return json.Marshal(plain(r))
}

var containerHeader = map[string]string{
	"Command":      "COMMAND",
	"CreatedAt":    "CREATED AT",
	"ID":           "CONTAINER ID",
	"Image":        "IMAGE",
	"Labels":       "LABELS",
	"LocalVolumes": "LOCAL VOLUMES",
	"Mounts":       "MOUNTS",
	"Names":        "NAMES",
	"Networks":     "NETWORKS",
	"Platform":     "PLATFORM",
	"Ports":        "PORTS",
	"RunningFor":   "CREATED",
	"Size":         "SIZE",
	"State":        "STATE",
	"Status":       "STATUS",
}

func newContainerRow(s container.Summary, trunc bool, now time.Time) containerRow {
	r := containerRow{
		CreatedAt:  time.Unix(s.Created, 0).String(),
		RunningFor: formatter.Since(time.Unix(s.Created, 0), now),
		State:      string(s.State),
		Status:     s.Status,
		labels:     s.Labels,
	}
	r.ID = s.ID
	if trunc {
		r.ID = formatter.ShortID(s.ID)
	}
	r.Image = psImage(s, trunc)
	if r.Image == "" {
		r.Image = "<no image>"
	}
	cmd := s.Command
	if trunc {
		cmd = formatter.Ellipsis(cmd, 20)
	}
	r.Command = strconv.Quote(cmd)

	names := make([]string, 0, len(s.Names))
	for _, n := range s.Names {
		names = append(names, strings.TrimPrefix(n, "/"))
	}
	if trunc {
		for _, n := range names {
			if !strings.Contains(n, "/") {
				names = []string{n}
				break
			}
		}
	}
	r.Names = strings.Join(names, ",")

	var labels []string
	for k, v := range s.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	r.Labels = strings.Join(labels, ",")

	var mounts []string
	local := 0
	for _, m := range s.Mounts {
		name := m.Name
		if name == "" {
			name = m.Source
		}
		if trunc {
			name = formatter.Ellipsis(name, 15)
		}
		mounts = append(mounts, name)
		if m.Driver == "local" {
			local++
		}
	}
	r.Mounts = strings.Join(mounts, ",")
	r.LocalVolumes = strconv.Itoa(local)

	var nets []string
	if s.NetworkSettings != nil {
		for n := range s.NetworkSettings.Networks {
			nets = append(nets, n)
		}
	}
	sort.Strings(nets)
	r.Networks = strings.Join(nets, ",")

	r.Ports = displayablePorts(s.Ports)

	r.Size = units.HumanSizeWithPrecision(float64(s.SizeRw), 3)
	if s.SizeRootFs > 0 {
		r.Size = fmt.Sprintf("%s (virtual %s)", r.Size, units.HumanSizeWithPrecision(float64(s.SizeRootFs), 3))
	}
	return r
}

// psImage is the IMAGE column: an image given by ID is shortened, and a
// digest is dropped from a name unless --no-trunc.
func psImage(s container.Summary, trunc bool) string {
	img := s.Image
	if !trunc {
		return img
	}
	if s.ImageID != "" && formatter.ShortID(s.ImageID) == formatter.ShortID(img) {
		return formatter.ShortID(img)
	}
	ref, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		return img
	}
	if tagged, ok := ref.(reference.NamedTagged); ok {
		if t, err := reference.WithTag(reference.TrimNamed(tagged), tagged.Tag()); err == nil {
			return reference.FamiliarString(t)
		}
		return img
	}
	return reference.FamiliarString(reference.TrimNamed(ref))
}

// displayablePorts renders the PORTS column: "0.0.0.0:8080->80/tcp",
// ranges of consecutive ports folded ("8000-8002/tcp"), exposed ports
// without a binding as "80/tcp".
func displayablePorts(ports []container.PortSummary) string {
	type group struct{ first, last uint16 }
	sorted := append([]container.PortSummary(nil), ports...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.PrivatePort != b.PrivatePort {
			return a.PrivatePort < b.PrivatePort
		}
		if a.IP != b.IP {
			return a.IP.Less(b.IP)
		}
		if a.PublicPort != b.PublicPort {
			return a.PublicPort < b.PublicPort
		}
		return a.Type < b.Type
	})
	groups := map[string]*group{}
	var (
		keys, result, hostMappings []string
	)
	form := func(key string, g *group) string {
		ip, typ, hasIP := strings.Cut(key, "/")
		if !hasIP {
			typ, ip = ip, ""
		}
		s := strconv.Itoa(int(g.first))
		if g.first != g.last {
			s += "-" + strconv.Itoa(int(g.last))
		}
		if ip != "" {
			s = net.JoinHostPort(ip, s) + "->" + s
		}
		return s + "/" + typ
	}
	for _, p := range sorted {
		key := p.Type
		if p.IP.IsValid() {
			if p.PublicPort != p.PrivatePort {
				hostMappings = append(hostMappings, fmt.Sprintf("%s->%d/%s",
					net.JoinHostPort(p.IP.String(), strconv.Itoa(int(p.PublicPort))), p.PrivatePort, p.Type))
				continue
			}
			key = p.IP.String() + "/" + p.Type
		}
		g, ok := groups[key]
		if !ok {
			groups[key] = &group{p.PrivatePort, p.PrivatePort}
			keys = append(keys, key)
			continue
		}
		if p.PrivatePort == g.last+1 {
			g.last = p.PrivatePort
			continue
		}
		result = append(result, form(key, g))
		groups[key] = &group{p.PrivatePort, p.PrivatePort}
	}
	for _, k := range keys {
		result = append(result, form(k, groups[k]))
	}
	result = append(result, hostMappings...)
	return strings.Join(result, ", ")
}
