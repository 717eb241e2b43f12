package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/berth/berth/cli/formatter"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newSystemDfCommand is "berth system df".
func newSystemDfCommand(c *CLI) *cobra.Command {
	var (
		verbose bool
		format  string
	)
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show berth disk usage",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, err := c.Client()
			if err != nil {
				return err
			}
			du, err := cl.DiskUsage(ctx, client.DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true, Verbose: verbose})
			if err != nil {
				return interrupted(ctx, err)
			}
			if verbose {
				return c.writeDfVerbose(du)
			}
			f := format
			if f == "" || f == formatter.TableFormatKey {
				f = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
			}
			imgReclaimable := du.Images.Reclaimable
			if len(du.Images.Items) > 0 {
				// What removing every unused image frees: all but the unique
				// part of the images containers use.
				used := int64(0)
				for _, img := range du.Images.Items {
					if img.Containers > 0 && img.SharedSize >= 0 {
						used += img.Size - img.SharedSize
					}
				}
				imgReclaimable = du.Images.TotalSize - used
			}
			rows := []dfRow{
				newDfRow("Images", du.Images.TotalCount, du.Images.ActiveCount, du.Images.TotalSize, imgReclaimable),
				newDfRow("Containers", du.Containers.TotalCount, du.Containers.ActiveCount, du.Containers.TotalSize, du.Containers.Reclaimable),
				newDfRow("Local Volumes", du.Volumes.TotalCount, du.Volumes.ActiveCount, du.Volumes.TotalSize, du.Volumes.Reclaimable),
				newDfRow("Build Cache", du.BuildCache.TotalCount, du.BuildCache.ActiveCount, du.BuildCache.TotalSize, du.BuildCache.Reclaimable),
			}
			return formatter.Write(c.Out, formatter.Format(f), dfHeader, rows)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&verbose, "verbose", "v", false, "Show detailed information on space usage")
	flags.StringVar(&format, "format", "", formatHelpTable)
	return cmd
}

type dfRow struct {
	Active      string
	Reclaimable string
	Size        string
	TotalCount  string
	Type        string
}

// MarshalJSON escapes HTML characters like docker's JSON output.
func (r dfRow) MarshalJSON() ([]byte, error) {
	type plain dfRow
	return json.Marshal(plain(r))
}

var dfHeader = map[string]string{
	"Active": "ACTIVE", "Reclaimable": "RECLAIMABLE", "Size": "SIZE", "TotalCount": "TOTAL", "Type": "TYPE",
}

func newDfRow(typ string, total, active, size, reclaimable int64) dfRow {
	r := dfRow{
		Type: typ, TotalCount: strconv.FormatInt(total, 10), Active: strconv.FormatInt(active, 10),
		Size: units.HumanSize(float64(size)),
	}
	r.Reclaimable = units.HumanSize(float64(reclaimable))
	// docker's table gives no share for the build cache.
	if size > 0 && typ != "Build Cache" {
		r.Reclaimable = fmt.Sprintf("%s (%d%%)", r.Reclaimable, int(100*float64(reclaimable)/float64(size)))
	}
	return r
}

func (c *CLI) writeDfVerbose(du client.DiskUsageResult) error {
	now := c.Now()
	fmt.Fprint(c.Out, "Images space usage:\n\n")
	var imgRows []string
	tw := formatter.NewTableWriter(c.Out)
	fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS")
	for _, img := range du.Images.Items {
		repo, tag := none, none
		if len(img.RepoTags) > 0 {
			r, t, ok := strings.Cut(img.RepoTags[0], ":")
			if i := strings.LastIndex(img.RepoTags[0], ":"); i > 0 {
				r, t, ok = img.RepoTags[0][:i], img.RepoTags[0][i+1:], true
			}
			if ok {
				repo, tag = r, t
			}
		}
		shared := "N/A"
		unique := "N/A"
		if img.SharedSize >= 0 {
			shared = units.HumanSize(float64(img.SharedSize))
			unique = units.HumanSize(float64(img.Size - img.SharedSize))
		}
		imgRows = append(imgRows, fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d", repo, tag, formatter.ShortID(img.ID),
			formatter.Since(unixTime(img.Created), now), formatter.Size(img.Size), shared, unique, img.Containers))
	}
	for _, r := range imgRows {
		fmt.Fprintln(tw, r)
	}
	_ = tw.Flush()

	fmt.Fprint(c.Out, "\nContainers space usage:\n\n")
	tw = formatter.NewTableWriter(c.Out)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES")
	for _, s := range du.Containers.Items {
		r := newContainerRow(s, true, now)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Image, r.Command, r.LocalVolumes,
			units.HumanSizeWithPrecision(float64(s.SizeRw), 3), r.RunningFor, r.Status, r.Names)
	}
	_ = tw.Flush()

	fmt.Fprint(c.Out, "\nLocal Volumes space usage:\n\n")
	tw = formatter.NewTableWriter(c.Out)
	fmt.Fprintln(tw, "VOLUME NAME\tLINKS\tSIZE")
	for _, v := range du.Volumes.Items {
		r := newVolumeRow(v)
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.Links, r.Size)
	}
	_ = tw.Flush()

	fmt.Fprintf(c.Out, "\nBuild cache usage: %s\n\n", units.HumanSize(float64(du.BuildCache.TotalSize)))
	tw = formatter.NewTableWriter(c.Out)
	fmt.Fprintln(tw, "CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED")
	for _, b := range du.BuildCache.Items {
		last := ""
		if b.LastUsedAt != nil {
			last = formatter.Since(*b.LastUsedAt, now)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%t\n", formatter.ShortID(b.ID), b.Type, units.HumanSize(float64(b.Size)),
			formatter.Since(b.CreatedAt, now), last, b.UsageCount, b.Shared)
	}
	return tw.Flush()
}

// newSystemPruneCommand is "berth system prune".
func newSystemPruneCommand(c *CLI) *cobra.Command {
	var (
		all, force, volumes bool
		filter              = newFilterValue()
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if !force {
				var b strings.Builder
				b.WriteString("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n")
				if volumes {
					b.WriteString("  - all anonymous volumes not used by at least one container\n")
				}
				if all {
					b.WriteString("  - all images without at least one container associated to them\n  - all build cache\n")
				} else {
					b.WriteString("  - all dangling images\n  - unused build cache\n")
				}
				ok, err := c.confirm(ctx, b.String())
				if err != nil || !ok {
					return err
				}
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			var reclaimed uint64
			section := func(title string, items []string) { printPruned(c.Out, title, items) }
			cres, err := cl.ContainerPrune(ctx, client.ContainerPruneOptions{Filters: filter.Filters()})
			if err != nil {
				return interrupted(ctx, err)
			}
			section("Deleted Containers:", cres.Report.ContainersDeleted)
			reclaimed += cres.Report.SpaceReclaimed

			nres, err := cl.NetworkPrune(ctx, client.NetworkPruneOptions{Filters: filter.Filters()})
			if err != nil {
				return interrupted(ctx, err)
			}
			section("Deleted Networks:", nres.Report.NetworksDeleted)

			if volumes {
				vres, err := cl.VolumePrune(ctx, client.VolumePruneOptions{Filters: filter.Filters()})
				if err != nil {
					return interrupted(ctx, err)
				}
				section("Deleted Volumes:", vres.Report.VolumesDeleted)
				reclaimed += vres.Report.SpaceReclaimed
			}

			imgFilters := filter.Filters()
			imgFilters.Add("dangling", strconv.FormatBool(!all))
			ires, err := cl.ImagePrune(ctx, client.ImagePruneOptions{Filters: imgFilters})
			if err != nil {
				return interrupted(ctx, err)
			}
			var imgs []string
			for _, d := range ires.Report.ImagesDeleted {
				if d.Untagged != "" {
					imgs = append(imgs, "untagged: "+d.Untagged)
				} else {
					imgs = append(imgs, "deleted: "+d.Deleted)
				}
			}
			section("Deleted Images:", imgs)
			reclaimed += ires.Report.SpaceReclaimed

			bres, err := cl.BuildCachePrune(ctx, client.BuildCachePruneOptions{All: all, Filters: filter.Filters()})
			if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsNotImplemented(err) {
				return interrupted(ctx, err)
			}
			if err == nil {
				section("Deleted build cache objects:", bres.Report.CachesDeleted)
				reclaimed += bres.Report.SpaceReclaimed
			}
			fmt.Fprintf(c.Out, "Total reclaimed space: %s\n", formatter.SizeFull(int64(reclaimed)))
			return nil
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&all, "all", "a", false, "Remove all unused images not just dangling ones")
	flags.Var(filter, "filter", `Provide filter values (e.g. "label=<key>=<value>")`)
	flags.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	flags.BoolVar(&volumes, "volumes", false, "Prune anonymous volumes")
	return cmd
}

var _ = context.Background

func unixTime(sec int64) time.Time { return time.Unix(sec, 0) }
