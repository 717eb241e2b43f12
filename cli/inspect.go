package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/template"

	"github.com/berth/berth/cli/formatter"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// inspected is one object found by an inspect command: the daemon's JSON as
// it came, and the decoded value when the client knows the type.
type inspected struct {
	raw   []byte
	typed any
}

// inspectFunc looks up one object by name or ID.
type inspectFunc func(ctx context.Context, cl *client.Client, name string, size bool) (inspected, error)

// inspectTypes are the object types `berth inspect` knows, in the order it
// tries them when --type is not given.
var inspectTypes = []struct {
	name string
	fn   inspectFunc
}{
	{"container", inspectContainer},
	{"image", inspectImage},
	{"network", inspectNetwork},
	{"volume", inspectVolume},
}

func inspectContainer(ctx context.Context, cl *client.Client, name string, size bool) (inspected, error) {
	res, err := cl.ContainerInspect(ctx, name, client.ContainerInspectOptions{Size: size})
	if err != nil {
		return inspected{}, err
	}
	return inspected{raw: res.Raw, typed: res.Container}, nil
}

func inspectImage(ctx context.Context, cl *client.Client, name string, _ bool) (inspected, error) {
	var raw bytes.Buffer
	res, err := cl.ImageInspect(ctx, name, client.ImageInspectWithRawResponse(&raw))
	if err != nil {
		return inspected{}, err
	}
	return inspected{raw: raw.Bytes(), typed: res.InspectResponse}, nil
}

func inspectNetwork(ctx context.Context, cl *client.Client, name string, _ bool) (inspected, error) {
	res, err := cl.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err != nil {
		return inspected{}, err
	}
	return inspected{raw: res.Raw, typed: res.Network}, nil
}

func inspectVolume(ctx context.Context, cl *client.Client, name string, _ bool) (inspected, error) {
	res, err := cl.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	if err != nil {
		return inspected{}, err
	}
	return inspected{raw: res.Raw, typed: res.Volume}, nil
}

type inspectOptions struct {
	format string
	typ    string
	size   bool
}

// newInspectCommand is "berth inspect": any object by name or ID.
func newInspectCommand(c *CLI) *cobra.Command {
	var opts inspectOptions
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on Docker objects",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInspect(cmd.Context(), c, opts, args)
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&opts.format, "format", "f", "", formatHelpPlain)
	flags.BoolVarP(&opts.size, "size", "s", false, "Display total file sizes if the type is container")
	flags.StringVar(&opts.typ, "type", "", "Only inspect objects of the given type")
	return cmd
}

// newImageInspectCommand is "berth image inspect".
func newImageInspectCommand(c *CLI) *cobra.Command {
	cmd, _ := inspectCommand(c, "image", "IMAGE", "images")
	return cmd
}

func runInspect(ctx context.Context, c *CLI, opts inspectOptions, names []string) error {
	var fns []inspectFunc
	if opts.typ != "" {
		var known []string
		for _, t := range inspectTypes {
			known = append(known, fmt.Sprintf("%q", t.name))
			if t.name == opts.typ {
				fns = []inspectFunc{t.fn}
			}
		}
		if fns == nil {
			return fmt.Errorf("unknown type: %q: must be one of %s", opts.typ, strings.Join(known, ", "))
		}
	} else {
		for _, t := range inspectTypes {
			fns = append(fns, t.fn)
		}
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}

	var (
		found []inspected
		errs  []string
	)
	for _, name := range names {
		obj, err := inspectOne(ctx, cl, fns, name, opts.size)
		if err != nil {
			if ctx.Err() != nil {
				return interrupted(ctx, err)
			}
			errs = append(errs, err.Error())
			continue
		}
		found = append(found, obj)
	}
	if err := writeInspect(c.Out, opts.format, found); err != nil {
		return err
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

// inspectOne tries each lookup in turn. With a single lookup its error is
// returned as is; with several, "not found" answers move on to the next
// type and "Error: No such object" is reported when none matched.
func inspectOne(ctx context.Context, cl *client.Client, fns []inspectFunc, name string, size bool) (inspected, error) {
	if len(fns) == 1 {
		return fns[0](ctx, cl, name, size)
	}
	for _, fn := range fns {
		obj, err := fn(ctx, cl, name, size)
		if err == nil {
			return obj, nil
		}
		if !cerrdefs.IsNotFound(err) && !cerrdefs.IsNotImplemented(err) {
			return inspected{}, err
		}
	}
	return inspected{}, fmt.Errorf("Error: No such object: %s", name)
}

// writeInspect prints inspect results: an indented JSON array of the raw
// objects by default, a compact one for "json", or a Go template executed
// once per object.
func writeInspect(out io.Writer, format string, objs []inspected) error {
	switch strings.TrimSpace(format) {
	case "":
		return writeIndentedJSON(out, objs)
	case formatter.JSONFormatKey:
		var b bytes.Buffer
		b.WriteByte('[')
		for i, o := range objs {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := json.Compact(&b, o.raw); err != nil {
				return err
			}
		}
		b.WriteString("]\n")
		_, err := out.Write(b.Bytes())
		return err
	}
	text := formatter.Format(format).Template()
	tmpl, err := formatter.Parse(text)
	if err != nil {
		return templateParseError(err)
	}
	var b bytes.Buffer
	for _, o := range objs {
		if err := executeInspectTemplate(&b, tmpl, o); err != nil {
			b.WriteByte('\n')
			_, _ = out.Write(b.Bytes())
			return fmt.Errorf("template parsing error: %w", err)
		}
		b.WriteByte('\n')
	}
	_, err = out.Write(b.Bytes())
	return err
}

// executeInspectTemplate runs tmpl on the typed object first; if that fails
// (a field the client type lacks, a function that wants another type) it
// runs it on the raw JSON decoded into maps, where a missing key is an
// error.
func executeInspectTemplate(w *bytes.Buffer, tmpl *template.Template, o inspected) error {
	if o.typed != nil {
		var b bytes.Buffer
		if err := tmpl.Execute(&b, o.typed); err == nil {
			w.Write(b.Bytes())
			return nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(o.raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return err
	}
	strict, err := tmpl.Clone()
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := strict.Option("missingkey=error").Execute(&b, generic); err != nil {
		return err
	}
	w.Write(b.Bytes())
	return nil
}

// writeIndentedJSON prints objs as a JSON array indented with four spaces,
// keeping each object's fields exactly as the daemon sent them.
func writeIndentedJSON(out io.Writer, objs []inspected) error {
	if len(objs) == 0 {
		_, err := io.WriteString(out, "[]\n")
		return err
	}
	var b bytes.Buffer
	b.WriteString("[\n")
	for i, o := range objs {
		b.WriteString("    ")
		if err := json.Indent(&b, bytes.TrimSpace(o.raw), "    ", "    "); err != nil {
			return err
		}
		if i < len(objs)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]\n")
	_, err := out.Write(b.Bytes())
	return err
}
