package cli

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"text/template"
	"time"

	"github.com/berth/berth/cli/formatter"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// clientVersionInfo is the "Client" half of `version` (and of its --format
// data).
type clientVersionInfo struct {
	Platform          *platformInfo `json:",omitempty"`
	Version           string
	APIVersion        string `json:"ApiVersion"`
	DefaultAPIVersion string `json:"DefaultAPIVersion,omitempty"`
	GitCommit         string
	GoVersion         string
	Os                string
	Arch              string
	BuildTime         string `json:",omitempty"`
	Context           string
}

type platformInfo struct{ Name string }

// versionInfo is what `version --format` templates see.
type versionInfo struct {
	Client clientVersionInfo
	Server *system.VersionResponse
}

// newVersionCommand is "berth version".
func newVersionCommand(c *CLI) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the Berth version information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(cmd.Context(), c, format)
		},
	}
	common(cmd, 11)
	cmd.Flags().StringVarP(&format, "format", "f", "", formatHelpPlain)
	return cmd
}

// The default output, laid out like the docker CLI's.
const versionTemplate = `Client:{{with .Client.Platform}}{{if .Name}} {{.Name}}{{end}}{{end}}
 Version:           {{.Client.Version}}
 API version:       {{.Client.APIVersion}}{{if ne .Client.APIVersion .Client.DefaultAPIVersion}} (downgraded from {{.Client.DefaultAPIVersion}}){{end}}
 Go version:        {{.Client.GoVersion}}
 Git commit:        {{.Client.GitCommit}}
 Built:             {{.Client.BuildTime}}
 OS/Arch:           {{.Client.Os}}/{{.Client.Arch}}
 Context:           {{.Client.Context}}
{{- with .Server}}

Server:{{if .Platform.Name}} {{.Platform.Name}}{{end}}
{{- range .Components}}
 {{.Name}}:
{{- if eq .Name "Engine"}}
  Version:          {{.Version}}
  API version:      {{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:       {{index .Details "GoVersion"}}
  Git commit:       {{index .Details "GitCommit"}}
  Built:            {{index .Details "BuildTime"}}
  OS/Arch:          {{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:     {{index .Details "Experimental"}}
{{- else}}
  Version:          {{.Version}}
{{- range $k, $v := .Details}}
  {{detail $k $v}}
{{- end}}
{{- end}}
{{- end}}
{{- end}}`

func runVersion(ctx context.Context, c *CLI, format string) error {
	info := versionInfo{Client: clientVersionInfo{
		Version:           clientVersion(),
		DefaultAPIVersion: client.MaxAPIVersion,
		GitCommit:         clientGitCommit(),
		GoVersion:         runtime.Version(),
		Os:                runtime.GOOS,
		Arch:              runtime.GOARCH,
		BuildTime:         clientBuildTime(),
		Context:           "default",
	}}
	if format == "" {
		format = versionTemplate
	}
	tmpl, err := template.New("version").Funcs(formatter.Funcs).Funcs(template.FuncMap{"detail": versionDetail}).
		Parse(formatter.Format(format).Template())
	if err != nil {
		return templateParseError(err)
	}

	var serverErr error
	cl, err := c.Client()
	if err != nil {
		return err
	}
	if sv, err := cl.ServerVersion(ctx, client.ServerVersionOptions{}); err != nil {
		serverErr = err
	} else {
		info.Server = serverVersion(sv)
	}
	info.Client.APIVersion = cl.ClientVersion()
	if pinned := c.Getenv(EnvAPIVersion); pinned != "" {
		info.Client.DefaultAPIVersion = pinned
	}

	if err := executeTemplate(c.Out, tmpl, info); err != nil {
		return err
	}
	return interrupted(ctx, serverErr)
}

// versionDetail renders one detail line of a component, the key padded so
// that values line up with "Version:".
func versionDetail(k, v string) string {
	return fmt.Sprintf("%-18s%s", k+":", v)
}

// serverVersion converts the client's result back into the API's shape (so
// that --format sees docker's field names), taking the fields the client
// does not carry over from the Engine component. An Engine component is
// made up when the daemon did not list one.
func serverVersion(sv client.ServerVersionResult) *system.VersionResponse {
	v := &system.VersionResponse{
		Platform:      system.PlatformInfo{Name: sv.Platform.Name},
		Version:       sv.Version,
		APIVersion:    sv.APIVersion,
		MinAPIVersion: sv.MinAPIVersion,
		Os:            sv.Os,
		Arch:          sv.Arch,
		Experimental:  sv.Experimental, //lint:ignore SA1019 docker version still prints it
		Components:    slices.Clone(sv.Components),
	}
	hasEngine := false
	for _, comp := range sv.Components {
		if comp.Name != "Engine" {
			continue
		}
		hasEngine = true
		v.GitCommit = comp.Details["GitCommit"]
		v.GoVersion = comp.Details["GoVersion"]
		v.KernelVersion = comp.Details["KernelVersion"]
		v.BuildTime = comp.Details["BuildTime"]
	}
	// Like docker, show component build times as "Thu May  7 21:09:36 2026".
	for i, comp := range v.Components {
		bt, ok := comp.Details["BuildTime"]
		if !ok {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, bt); err == nil {
			details := maps.Clone(comp.Details)
			details["BuildTime"] = t.Format(time.ANSIC)
			v.Components[i].Details = details
		}
	}
	if !hasEngine {
		engine := system.ComponentVersion{Name: "Engine", Version: sv.Version, Details: map[string]string{
			"ApiVersion":    sv.APIVersion,
			"MinAPIVersion": sv.MinAPIVersion,
			"Os":            sv.Os,
			"Arch":          sv.Arch,
			"Experimental":  fmt.Sprint(sv.Experimental), //lint:ignore SA1019 docker version still prints it
		}}
		v.Components = append([]system.ComponentVersion{engine}, v.Components...)
	}
	return v
}

// newSystemCommand is "berth system".
func newSystemCommand(c *CLI) *cobra.Command {
	return groupCommand(c, "system", "Manage Berth",
		newSystemDfCommand(c),
		newEventsCommand(c),
		newInfoCommand(c),
		newSystemPruneCommand(c),
	)
}
