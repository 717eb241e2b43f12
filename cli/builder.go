package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

// newBuilderCommand is "berth builder": build and prune, as docker
// builder is with BuildKit (buildx on its docker driver).
func newBuilderCommand(c *CLI) *cobra.Command {
	return groupCommand(c, "builder", "Manage builds",
		newBuildCommand(c),
		newBuilderPruneCommand(c),
	)
}

type builderPruneOptions struct {
	all           bool
	filter        *filterValue
	reservedSpace memBytes
	maxUsedSpace  memBytes
	minFreeSpace  memBytes
	force         bool
	verbose       bool
}

// newBuilderPruneCommand is "berth builder prune": BuildKit's prune over
// the daemon's /grpc, printing each record removed as it goes, as docker
// builder prune (buildx prune) does.
func newBuilderPruneCommand(c *CLI) *cobra.Command {
	opts := builderPruneOptions{filter: newFilterValue()}
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove build cache",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuilderPrune(cmd.Context(), c, opts)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&opts.all, "all", "a", false, "Include internal/frontend images")
	flags.Var(opts.filter, "filter", "Provide filter values")
	flags.Var(&opts.reservedSpace, "reserved-space", "Amount of disk space always allowed to keep for cache")
	flags.Var(&opts.minFreeSpace, "min-free-space", "Target amount of free disk space after pruning")
	flags.Var(&opts.maxUsedSpace, "max-used-space", "Maximum amount of disk space allowed to keep for cache")
	flags.BoolVar(&opts.verbose, "verbose", false, "Provide a more verbose output")
	flags.BoolVarP(&opts.force, "force", "f", false, "Do not prompt for confirmation")
	flags.Var(&opts.reservedSpace, "keep-storage", "Amount of disk space to keep for cache")
	_ = flags.MarkDeprecated("keep-storage", "keep-storage flag has been changed to reserved-space")
	return cmd
}

func runBuilderPrune(ctx context.Context, c *CLI, opts builderPruneOptions) error {
	keep, filter, err := builderPruneFilters(opts.filter.Filters())
	if err != nil {
		return err
	}
	if !opts.force {
		msg := "WARNING! This will remove all dangling build cache. Are you sure you want to continue?"
		if opts.all {
			msg = "WARNING! This will remove all build cache. Are you sure you want to continue?"
		}
		fmt.Fprintf(c.Out, "%s [y/N] ", msg)
		answer, err := c.readLine(ctx)
		if err != nil {
			if ctx.Err() != nil {
				fmt.Fprintln(c.Out)
				return errCanceled
			}
			return nil
		}
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return nil
		}
	}
	bk, err := c.buildkit(ctx)
	if err != nil {
		return err
	}
	defer bk.Close()

	ch := make(chan bkclient.UsageInfo)
	tw := tabwriter.NewWriter(c.Out, 1, 8, 1, '\t', 0)
	var total int64
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		first := true
		for du := range ch {
			total += du.Size
			if opts.verbose {
				printCacheVerbose(tw, &du)
				continue
			}
			if first {
				fmt.Fprintln(tw, "ID\tRECLAIMABLE\tSIZE\tLAST ACCESSED")
				first = false
			}
			id := du.ID
			if du.Mutable {
				id += "*"
			}
			size := units.HumanSize(float64(du.Size))
			if du.Shared {
				size += "*"
			}
			last := ""
			if du.LastUsedAt != nil {
				last = units.HumanDuration(time.Since(*du.LastUsedAt)) + " ago"
			}
			fmt.Fprintf(tw, "%-40s\t%-5v\t%-10s\t%s\n", id, !du.InUse, size, last)
			tw.Flush()
		}
		return nil
	})
	eg.Go(func() error {
		defer close(ch)
		popts := []bkclient.PruneOption{
			bkclient.WithKeepOpt(keep, int64(opts.reservedSpace), int64(opts.maxUsedSpace), int64(opts.minFreeSpace)),
			bkclient.WithFilter(filter),
		}
		if opts.all {
			popts = append(popts, bkclient.PruneAll)
		}
		return bk.Prune(ectx, ch, popts...)
	})
	if err := eg.Wait(); err != nil {
		return interrupted(ctx, err)
	}
	tw = tabwriter.NewWriter(c.Out, 1, 8, 1, '\t', 0)
	fmt.Fprintf(tw, "Total:\t%s\n", units.HumanSize(float64(total)))
	return tw.Flush()
}

// builderPruneFilters turns --filter into BuildKit's prune: until (or its
// old name unused-for) as a duration, the rest as filter expressions ("id"
// a prefix, others equal), as buildx prune.
func builderPruneFilters(f client.Filters) (time.Duration, []string, error) {
	if len(f["until"]) > 0 && len(f["unused-for"]) > 0 {
		return 0, nil, errors.New(`conflicting filters "until" and "unused-for"`)
	}
	key := "until"
	if len(f["unused-for"]) > 0 {
		key = "unused-for"
	}
	var until time.Duration
	switch vs := keys(f[key]); len(vs) {
	case 0:
	case 1:
		d, err := time.ParseDuration(vs[0])
		if err != nil {
			return 0, nil, fmt.Errorf("%q filter expects a duration (e.g., '24h'): %w", key, err)
		}
		until = d
	default:
		return 0, nil, fmt.Errorf("%q filter expects only one value", key)
	}
	var exprs []string
	for k, set := range f {
		if k == key {
			continue
		}
		switch vs := keys(set); len(vs) {
		case 0:
			exprs = append(exprs, k)
		case 1:
			switch {
			case k == "id":
				exprs = append(exprs, k+"~="+vs[0])
			case strings.HasSuffix(k, "!") || strings.HasSuffix(k, "~"):
				exprs = append(exprs, k+"="+vs[0])
			default:
				exprs = append(exprs, k+"=="+vs[0])
			}
		default:
			return 0, nil, fmt.Errorf("%q filter expects only one value", k)
		}
	}
	return until, []string{strings.Join(exprs, ",")}, nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func printCacheVerbose(tw *tabwriter.Writer, du *bkclient.UsageInfo) {
	kv := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	kv("ID", du.ID)
	if len(du.Parents) != 0 {
		kv("Parent", strings.Join(du.Parents, ","))
	}
	kv("Created at", du.CreatedAt)
	kv("Mutable", du.Mutable)
	kv("Reclaimable", !du.InUse)
	kv("Shared", du.Shared)
	kv("Size", units.HumanSize(float64(du.Size)))
	if du.Description != "" {
		kv("Description", du.Description)
	}
	kv("Usage count", du.UsageCount)
	if du.LastUsedAt != nil {
		kv("Last used", units.HumanDuration(time.Since(*du.LastUsedAt))+" ago")
	}
	if du.RecordType != "" {
		kv("Type", du.RecordType)
	}
	fmt.Fprintln(tw)
	tw.Flush()
}
