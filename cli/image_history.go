package cli

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/berth/berth/cli/formatter"
	"github.com/moby/moby/api/types/image"
	"github.com/spf13/cobra"
)

type historyOptions struct {
	human   bool
	quiet   bool
	noTrunc bool
	format  string
}

// newHistoryCommand is "berth history" and "berth image history".
func newHistoryCommand(c *CLI) *cobra.Command {
	var opts historyOptions
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runHistory(cmd.Context(), c, args[0], opts)
		},
	}
	aliases(cmd, "image history", "history")
	flags := cmd.Flags()
	flags.StringVar(&opts.format, "format", "", formatHelpTable)
	flags.BoolVarP(&opts.human, "human", "H", true, "Print sizes and dates in human readable format")
	flags.BoolVar(&opts.noTrunc, "no-trunc", false, "Don't truncate output")
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Only show image IDs")
	return cmd
}

func runHistory(ctx context.Context, c *CLI, name string, opts historyOptions) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.ImageHistory(ctx, name)
	if err != nil {
		return err
	}
	return writeHistory(c.Out, opts, res.Items, c.Now())
}

// historyRow is one line of `history`; fields in JSON key order.
type historyRow struct {
	Comment      string
	CreatedAt    string
	CreatedBy    string
	CreatedSince string
	ID           string
	Size         string
}

// MarshalJSON escapes HTML characters, as docker's output does.
func (r historyRow) MarshalJSON() ([]byte, error) {
	type plain historyRow
	return json.Marshal(plain(r))
}

// createdByWidth is where docker cuts CREATED BY unless --no-trunc.
const createdByWidth = 45

func writeHistory(out *OutStream, opts historyOptions, items []image.HistoryResponseItem, now time.Time) error {
	format := opts.format
	if format == "" || format == formatter.TableFormatKey {
		if opts.quiet {
			format = "{{.ID}}"
		} else {
			format = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
		}
	}
	header := map[string]string{
		"ID":           "IMAGE",
		"CreatedSince": "CREATED",
		"CreatedAt":    "CREATED AT",
		"CreatedBy":    "CREATED BY",
		"Size":         "SIZE",
		"Comment":      "COMMENT",
	}
	if !opts.human {
		header["CreatedSince"] = "CREATED AT"
	}
	rows := make([]historyRow, 0, len(items))
	for _, h := range items {
		created := time.Unix(h.Created, 0)
		r := historyRow{
			Comment:   h.Comment,
			CreatedAt: created.Format(time.RFC3339),
			CreatedBy: strings.ReplaceAll(h.CreatedBy, "\t", " "),
			ID:        h.ID,
		}
		if !opts.noTrunc {
			r.ID = formatter.ShortID(h.ID)
			r.CreatedBy = formatter.Ellipsis(r.CreatedBy, createdByWidth)
		}
		if opts.human {
			r.CreatedSince = formatter.Since(created, now)
			r.Size = formatter.Size(h.Size)
		} else {
			r.CreatedSince = r.CreatedAt
			r.Size = strconv.FormatInt(h.Size, 10)
		}
		rows = append(rows, r)
	}
	return formatter.Write(out, formatter.Format(format), header, rows)
}
