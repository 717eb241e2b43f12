package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/berth/berth/cli/formatter"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newEventsCommand is "berth events" and "berth system events".
func newEventsCommand(c *CLI) *cobra.Command {
	var (
		since, until, format string
		filter               = newFilterValue()
	)
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var tmpl *template.Template
			if format != "" {
				t, err := formatter.Parse(formatter.Format(format).Template())
				if err != nil {
					return templateParseError(err)
				}
				tmpl = t
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res := cl.Events(ctx, client.EventsListOptions{Since: since, Until: until, Filters: filter.Filters()})
			for {
				select {
				case m := <-res.Messages:
					if err := writeEvent(c.Out, tmpl, m); err != nil {
						return err
					}
				case err := <-res.Err:
					if err == nil || errors.Is(err, io.EOF) {
						return nil
					}
					return interrupted(ctx, err)
				}
			}
		},
	}
	aliases(cmd, "system events", "events")
	flags := cmd.Flags()
	flags.VarP(filter, "filter", "f", "Filter output based on conditions provided")
	flags.StringVar(&format, "format", "", formatHelpPlain)
	flags.StringVar(&since, "since", "", "Show all events created since timestamp")
	flags.StringVar(&until, "until", "", "Stream events until this timestamp")
	return cmd
}

// writeEvent prints one event: with a template, or as docker's line
// "TIME TYPE ACTION ID (k=v, ...)".
func writeEvent(out io.Writer, tmpl *template.Template, m events.Message) error {
	if tmpl != nil {
		return executeTemplate(out, tmpl, m)
	}
	var b strings.Builder
	if m.TimeNano != 0 {
		b.WriteString(time.Unix(0, m.TimeNano).UTC().Format("2006-01-02T15:04:05.000000000Z07:00"))
	} else if m.Time != 0 {
		b.WriteString(time.Unix(m.Time, 0).UTC().Format("2006-01-02T15:04:05.000000000Z07:00"))
	}
	fmt.Fprintf(&b, " %s %s %s", m.Type, m.Action, m.Actor.ID)
	if len(m.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(m.Actor.Attributes))
		for k := range m.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		attrs := make([]string, len(keys))
		for i, k := range keys {
			attrs[i] = k + "=" + m.Actor.Attributes[k]
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(attrs, ", "))
	}
	b.WriteByte('\n')
	_, err := io.WriteString(out, b.String())
	return err
}

var _ = context.Background
