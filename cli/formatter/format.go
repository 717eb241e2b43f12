// Package formatter renders command output the way the docker CLI does:
// aligned tables, `--format` Go templates (with the `table` prefix and the
// `json` shorthand), and the small value conversions (sizes, ages, truncated
// IDs and commands) that appear in those tables.
//
// A command describes its rows as plain structs whose exported fields are
// what a template may reference ({{.ID}}, {{.Size}} ...), and a header map
// from field name to column title. Write then takes care of the rest.
package formatter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
)

const (
	// TableFormatKey starts a format that is rendered as a table with headers.
	TableFormatKey = "table"
	// JSONFormatKey prints every row as one JSON object per line.
	JSONFormatKey = "json"
)

// Format is the value of a --format flag.
type Format string

// IsTable reports whether the format asks for a table with column headers.
func (f Format) IsTable() bool {
	return strings.HasPrefix(string(f), TableFormatKey)
}

// IsJSON reports whether the format is the "json" shorthand.
func (f Format) IsJSON() bool {
	return strings.TrimSpace(string(f)) == JSONFormatKey
}

// Template returns the Go template text the format stands for: the table
// prefix removed, "json" expanded, and the escapes \t and \n typed on a
// command line turned into real tabs and newlines (as docker does).
func (f Format) Template() string {
	s := string(f)
	switch {
	case f.IsJSON():
		s = "{{json .}}"
	case f.IsTable():
		s = s[len(TableFormatKey):]
	}
	s = strings.Trim(s, " ")
	return strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(s)
}

// Parse parses a template with the functions docker offers in --format.
func Parse(text string) (*template.Template, error) {
	return template.New("").Funcs(Funcs).Parse(text)
}

// Funcs are the functions available to --format templates.
var Funcs = template.FuncMap{
	"json":     jsonString,
	"split":    strings.Split,
	"join":     strings.Join,
	"title":    titleCase,
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"pad":      pad,
	"truncate": truncateString,
	"println":  fmt.Sprintln,
}

// headerFuncs replace Funcs when a table header is rendered: every function
// hands the column title through untouched, so `{{upper .Name}}` still gets
// the header "NAME" and `{{json .Labels}}` the header "LABELS".
var headerFuncs = template.FuncMap{
	"json":     func(v any) any { return v },
	"split":    func(v any, _ string) any { return v },
	"join":     func(v any, _ string) any { return v },
	"title":    func(v any) any { return v },
	"lower":    func(v any) any { return v },
	"upper":    func(v any) any { return v },
	"pad":      func(v any, _, _ int) any { return v },
	"truncate": func(v any, _ int) any { return v },
	"println":  func(v ...any) string { return fmt.Sprint(v...) },
}

func jsonString(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSpace(buf.String()), nil
}

func titleCase(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

func pad(s string, before, after int) string {
	return strings.Repeat(" ", max(before, 0)) + s + strings.Repeat(" ", max(after, 0))
}

func truncateString(s string, n int) string {
	r := []rune(s)
	if n < 0 || len(r) <= n {
		return s
	}
	return string(r[:n])
}

// NewTableWriter returns a tabwriter with docker's table settings: columns at
// least 10 wide, separated by 3 spaces.
func NewTableWriter(out io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
}

// TemplateError is a --format template that does not parse (Parse true) or
// fails on a row. It reads "template parsing error: ..." for both, as most
// docker list commands say; ps words them differently.
type TemplateError struct {
	Parse bool
	Err   error
}

func (e *TemplateError) Error() string { return "template parsing error: " + e.Err.Error() }
func (e *TemplateError) Unwrap() error { return e.Err }

// Write renders rows with format. header maps the field names used in the
// template to column titles; it is only used for table formats. Every row is
// followed by a newline. Rows are typically structs (their exported fields
// are the template's vocabulary), but any value works.
func Write[T any](out io.Writer, format Format, header map[string]string, rows []T) error {
	text := format.Template()
	tmpl, err := Parse(text)
	if err != nil {
		return &TemplateError{Parse: true, Err: err}
	}
	var buf bytes.Buffer
	for _, r := range rows {
		if err := tmpl.Execute(&buf, r); err != nil {
			return &TemplateError{Err: err}
		}
		buf.WriteByte('\n')
	}
	if !format.IsTable() {
		_, err := out.Write(buf.Bytes())
		return err
	}
	htmpl, err := template.New("").Funcs(headerFuncs).Parse(text)
	if err != nil {
		return &TemplateError{Parse: true, Err: err}
	}
	tw := NewTableWriter(out)
	if err := htmpl.Execute(tw, header); err != nil {
		return err
	}
	if _, err := tw.Write([]byte{'\n'}); err != nil {
		return err
	}
	if _, err := tw.Write(buf.Bytes()); err != nil {
		return err
	}
	return tw.Flush()
}
