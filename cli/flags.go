package cli

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"text/template"

	"github.com/berth/berth/cli/formatter"

	"github.com/moby/moby/client"
	"github.com/spf13/pflag"
)

// Help texts of --format, as the docker CLI words them.
const (
	formatHelpTable = `Format output using a custom template:
'table':            Print output in table format with column headers (default)
'table TEMPLATE':   Print output in table format using the given Go template
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates`

	formatHelpPlain = `Format output using a custom template:
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates`
)

// filterValue collects repeated --filter name=value flags.
type filterValue struct {
	args client.Filters
}

func newFilterValue() *filterValue { return &filterValue{args: client.Filters{}} }

func (f *filterValue) String() string {
	var parts []string
	for name, values := range f.args {
		for v := range values {
			parts = append(parts, name+"="+v)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func (f *filterValue) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return errors.New("bad format of filter (expected name=value)")
	}
	name = strings.ToLower(strings.TrimSpace(name))
	value = strings.TrimSpace(value)
	f.args.Add(name, value)
	return nil
}

func (f *filterValue) Type() string { return "filter" }

// Filters returns the collected filters (a copy the caller may extend).
func (f *filterValue) Filters() client.Filters { return f.args.Clone() }

var _ pflag.Value = (*filterValue)(nil)

// executeFormat renders data once with a --format template named name.
func executeFormat(out io.Writer, name, format string, data any) error {
	tmpl, err := template.New(name).Funcs(formatter.Funcs).Parse(formatter.Format(format).Template())
	if err != nil {
		return templateParseError(err)
	}
	return executeTemplate(out, tmpl, data)
}

// executeTemplate renders data followed by a newline. On failure the
// output so far and the newline are still written, as docker does.
func executeTemplate(out io.Writer, tmpl *template.Template, data any) error {
	var b bytes.Buffer
	err := tmpl.Execute(&b, data)
	b.WriteByte('\n')
	if _, werr := out.Write(b.Bytes()); werr != nil && err == nil {
		err = werr
	}
	return err
}
