package cli

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth/berth/cli/formatter"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type imagesOptions struct {
	match   string
	all     bool
	quiet   bool
	noTrunc bool
	digests bool
	format  string
	filter  *filterValue
}

// newImagesCommand is "berth images".
func newImagesCommand(c *CLI) *cobra.Command {
	cmd := imageListCommand(c, "images [OPTIONS] [REPOSITORY[:TAG]]")
	return common(cmd, 7)
}

// newImageListCommand is "berth image ls" (alias "list").
func newImageListCommand(c *CLI) *cobra.Command {
	cmd := imageListCommand(c, "ls [OPTIONS] [REPOSITORY[:TAG]]")
	cmd.Aliases = []string{"list"}
	return cmd
}

func imageListCommand(c *CLI, use string) *cobra.Command {
	opts := imagesOptions{filter: newFilterValue()}
	cmd := &cobra.Command{
		Use:   use,
		Short: "List images",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				opts.match = args[0]
			}
			return runImages(cmd.Context(), c, opts)
		},
	}
	aliases(cmd, "image ls", "image list", "images")
	flags := cmd.Flags()
	flags.BoolVarP(&opts.all, "all", "a", false, "Show all images (default hides intermediate images)")
	flags.BoolVar(&opts.digests, "digests", false, "Show digests")
	flags.VarP(opts.filter, "filter", "f", "Filter output based on conditions provided")
	flags.StringVar(&opts.format, "format", "", formatHelpTable)
	flags.BoolVar(&opts.noTrunc, "no-trunc", false, "Don't truncate output")
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Only show image IDs")
	return cmd
}

func runImages(ctx context.Context, c *CLI, opts imagesOptions) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	filters := opts.filter.Filters()
	if opts.match != "" {
		filters.Add("reference", opts.match)
	}
	res, err := cl.ImageList(ctx, client.ImageListOptions{All: opts.all, Filters: filters})
	if err != nil {
		return err
	}

	format := opts.format
	if format == "" {
		if f := c.ConfigFile().ImagesFormat; f != "" && !opts.quiet {
			format = f
		} else {
			format = formatter.TableFormatKey
		}
	}
	return writeImages(c.Out, format, opts, res.Items, c.Now())
}

// writeImages renders an image list with the given --format value.
func writeImages(out *OutStream, format string, opts imagesOptions, images []image.Summary, now time.Time) error {
	if format == formatter.TableFormatKey {
		switch {
		case opts.quiet:
			format = "{{.ID}}"
		case opts.digests:
			format = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
		default:
			format = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
		}
	}
	sorted := append([]image.Summary(nil), images...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Created > sorted[j].Created })
	// A template that shows digests gets the rows of --digests.
	showDigests := opts.digests || strings.Contains(format, ".Digest")
	rows := imageRows(sorted, showDigests, !opts.noTrunc, now)
	return formatter.Write(out, formatter.Format(format), imageHeader, rows)
}

// imageRow is one line of `images`. Fields are in alphabetical order, which
// is the key order of docker's JSON output.
type imageRow struct {
	Containers   string
	CreatedAt    string
	CreatedSince string
	Digest       string
	ID           string
	Repository   string
	SharedSize   string
	Size         string
	Tag          string
	UniqueSize   string
	VirtualSize  string
}

// MarshalJSON escapes HTML characters ("<none>" → "\u003cnone\u003e"), as
// docker's output does.
func (r imageRow) MarshalJSON() ([]byte, error) {
	type plain imageRow
	return json.Marshal(plain(r))
}

var imageHeader = map[string]string{
	"Containers":   "CONTAINERS",
	"CreatedAt":    "CREATED AT",
	"CreatedSince": "CREATED",
	"Digest":       "DIGEST",
	"ID":           "IMAGE ID",
	"Repository":   "REPOSITORY",
	"SharedSize":   "SHARED SIZE",
	"Size":         "SIZE",
	"Tag":          "TAG",
	"UniqueSize":   "UNIQUE SIZE",
	"VirtualSize":  "VIRTUAL SIZE",
}

const none = "<none>"

// imageRows expands images into rows: one per repository:tag (digest
// "<none>"); with showDigests one per tag and digest of the repository; a
// repository known only by digest gets a "<none>" tag; an image without any
// name a single <none> row.
func imageRows(images []image.Summary, showDigests, trunc bool, now time.Time) []imageRow {
	var rows []imageRow
	for _, img := range images {
		type repo struct {
			name    string
			tags    []string
			digests []string
		}
		var repos []*repo
		byName := map[string]*repo{}
		get := func(name string) *repo {
			if r, ok := byName[name]; ok {
				return r
			}
			r := &repo{name: name}
			byName[name] = r
			repos = append(repos, r)
			return r
		}
		for _, s := range img.RepoTags {
			ref, err := reference.ParseNormalizedNamed(s)
			if err != nil {
				continue
			}
			if t, ok := ref.(reference.NamedTagged); ok {
				r := get(reference.FamiliarName(ref))
				r.tags = append(r.tags, t.Tag())
			}
		}
		for _, s := range img.RepoDigests {
			ref, err := reference.ParseNormalizedNamed(s)
			if err != nil {
				continue
			}
			if d, ok := ref.(reference.Canonical); ok {
				r := get(reference.FamiliarName(ref))
				r.digests = append(r.digests, d.Digest().String())
			}
		}

		base := imageRow{
			Containers:   "N/A",
			CreatedAt:    time.Unix(img.Created, 0).String(),
			CreatedSince: formatter.Since(time.Unix(img.Created, 0), now),
			ID:           img.ID,
			SharedSize:   "N/A",
			Size:         formatter.Size(img.Size),
			UniqueSize:   "N/A",
			VirtualSize:  formatter.SizeFull(img.Size),
		}
		if trunc {
			base.ID = formatter.ShortID(img.ID)
		}
		if img.Containers != -1 {
			base.Containers = strconv.FormatInt(img.Containers, 10)
		}
		if img.SharedSize != -1 {
			base.SharedSize = formatter.Size(img.SharedSize)
			if img.Size != -1 {
				base.UniqueSize = formatter.Size(img.Size - img.SharedSize)
			}
		}
		add := func(repo, tag, digest string) {
			r := base
			r.Repository, r.Tag, r.Digest = repo, tag, digest
			if r.Digest == "" {
				r.Digest = none
			}
			rows = append(rows, r)
		}

		n := len(rows)
		for _, r := range repos {
			switch {
			case len(r.tags) == 0 && showDigests:
				for _, d := range r.digests {
					add(r.name, none, d)
				}
			case len(r.tags) == 0:
				add(r.name, none, "")
			case !showDigests || len(r.digests) == 0:
				for _, t := range r.tags {
					add(r.name, t, none)
				}
			default:
				for _, t := range r.tags {
					for _, d := range r.digests {
						add(r.name, t, d)
					}
				}
			}
		}
		if len(rows) == n {
			add(none, none, none)
		}
	}
	return rows
}
