package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/berth/berth/cli/formatter"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newVolumeCommand is "berth volume".
func newVolumeCommand(c *CLI) *cobra.Command {
	return groupCommand(c, "volume", "Manage volumes",
		newVolumeCreateCommand(c),
		newVolumeInspectCommand(c),
		newVolumeListCommand(c),
		newVolumePruneCommand(c),
		newVolumeRemoveCommand(c),
	)
}

func newVolumeCreateCommand(c *CLI) *cobra.Command {
	var (
		name, driver string
		opts         = newMapOpts(nil)
		labels       = newListOpts(validateLabel)
	)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" {
					return errors.New("conflicting options: cannot specify a volume-name through both --name and as a positional arg")
				}
				name = args[0]
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.VolumeCreate(cmd.Context(), client.VolumeCreateOptions{
				Name: name, Driver: driver, DriverOpts: opts.values, Labels: labelMap(labels.GetAll()),
			})
			if err != nil {
				return interrupted(cmd.Context(), err)
			}
			fmt.Fprintln(c.Out, res.Volume.Name)
			return nil
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	flags.StringVar(&name, "name", "", "Specify volume name")
	_ = flags.MarkHidden("name")
	flags.VarP(opts, "opt", "o", "Set driver specific options")
	flags.Var(labels, "label", "Set metadata for a volume")
	return cmd
}

func labelMap(list []string) map[string]string {
	m := map[string]string{}
	for _, l := range list {
		k, v, _ := strings.Cut(l, "=")
		m[k] = v
	}
	return m
}

func newVolumeInspectCommand(c *CLI) *cobra.Command {
	cmd, _ := inspectCommand(c, "volume", "VOLUME", "volumes")
	return cmd
}

type volumeRow struct {
	Availability string
	Driver       string
	Group        string
	Labels       string
	Links        string
	Mountpoint   string
	Name         string
	Scope        string
	Size         string
	Status       string

	labels map[string]string
}

// Label returns one label's value ({{.Label "x"}}).
func (r volumeRow) Label(name string) string { return r.labels[name] }

// MarshalJSON escapes HTML characters like docker's JSON output.
func (r volumeRow) MarshalJSON() ([]byte, error) {
	type plain volumeRow
	return json.Marshal(plain(r))
}

var volumeHeader = map[string]string{
	"Availability": "AVAILABILITY",
	"Driver":       "DRIVER",
	"Group":        "GROUP",
	"Labels":       "LABELS",
	"Links":        "LINKS",
	"Mountpoint":   "MOUNTPOINT",
	"Name":         "VOLUME NAME",
	"Scope":        "SCOPE",
	"Size":         "SIZE",
	"Status":       "STATUS",
}

func newVolumeRow(v volume.Volume) volumeRow {
	r := volumeRow{
		Availability: "N/A", Group: "N/A", Links: "N/A", Size: "N/A", Status: "N/A",
		Driver: v.Driver, Mountpoint: v.Mountpoint, Name: v.Name, Scope: v.Scope, labels: v.Labels,
	}
	r.Labels = joinLabels(v.Labels)
	if v.UsageData != nil {
		if v.UsageData.RefCount >= 0 {
			r.Links = strconv.FormatInt(v.UsageData.RefCount, 10)
		}
		if v.UsageData.Size >= 0 {
			r.Size = units.HumanSize(float64(v.UsageData.Size))
		}
	}
	return r
}

func joinLabels(m map[string]string) string {
	var l []string
	for k, v := range m {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return strings.Join(l, ",")
}

func newVolumeListCommand(c *CLI) *cobra.Command {
	var (
		quiet   bool
		cluster bool
		format  string
		filter  = newFilterValue()
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.VolumeList(cmd.Context(), client.VolumeListOptions{Filters: filter.Filters()})
			if err != nil {
				return interrupted(cmd.Context(), err)
			}
			f := format
			if f == "" && !quiet {
				f = c.ConfigFile().VolumesFormat
			}
			if quiet {
				f = "{{.Name}}"
			} else if f == "" || f == formatter.TableFormatKey {
				f = "table {{.Driver}}\t{{.Name}}"
			}
			vols := append([]volume.Volume(nil), res.Items...)
			sort.SliceStable(vols, func(i, j int) bool { return naturalLess(vols[i].Name, vols[j].Name) })
			rows := make([]volumeRow, 0, len(vols))
			for _, v := range vols {
				rows = append(rows, newVolumeRow(v))
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(c.Err, w)
			}
			return formatter.Write(c.Out, formatter.Format(f), volumeHeader, rows)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	flags.StringVar(&format, "format", "", formatHelpTable)
	flags.VarP(filter, "filter", "f", `Provide filter values (e.g. "dangling=true")`)
	flags.BoolVar(&cluster, "cluster", false, "Display only cluster volumes, and use cluster volume list formatting")
	_ = flags.MarkHidden("cluster")
	return cmd
}

func newVolumeRemoveCommand(c *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Long:    "Remove one or more volumes. You cannot remove a volume that is in use by a container.",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEachContainer(cmd.Context(), c, args, func(ctx context.Context, cl *client.Client, name string) error {
				_, err := cl.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: force})
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

func newVolumePruneCommand(c *CLI) *cobra.Command {
	var (
		force, all bool
		filter     = newFilterValue()
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, err := c.Client()
			if err != nil {
				return err
			}
			if all {
				if _, err := cl.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
					return interrupted(ctx, err)
				}
				if v := cl.ClientVersion(); versionLess(v, "1.42") {
					return fmt.Errorf(`"--all" requires API version 1.42, but the berth daemon API version is %s`, v)
				}
			}
			if !force {
				msg := "WARNING! This will remove anonymous local volumes not used by at least one container."
				if all {
					msg = "WARNING! This will remove all local volumes not used by at least one container."
				}
				ok, err := c.confirm(ctx, msg)
				if err != nil || !ok {
					return err
				}
			}
			res, err := cl.VolumePrune(ctx, client.VolumePruneOptions{All: all, Filters: filter.Filters()})
			if err != nil {
				return interrupted(ctx, err)
			}
			printPruned(c.Out, "Deleted Volumes:", res.Report.VolumesDeleted)
			fmt.Fprintf(c.Out, "Total reclaimed space: %s\n", formatter.SizeFull(int64(res.Report.SpaceReclaimed)))
			return nil
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	flags.Var(filter, "filter", `Provide filter values (e.g. "label=<label>")`)
	flags.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

// versionLess compares API versions ("1.41" < "1.42").
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// naturalLess orders strings with their digit runs compared as numbers
// ("v2" < "v10"), as docker sorts volume and network names.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		ad, bd := isDigit(a[0]), isDigit(b[0])
		if ad && bd {
			na, ra := splitDigits(a)
			nb, rb := splitDigits(b)
			ta, tb := strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if len(ta) != len(tb) {
				return len(ta) < len(tb)
			}
			if ta != tb {
				return ta < tb
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func splitDigits(s string) (string, string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}
