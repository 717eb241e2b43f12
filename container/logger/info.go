package logger

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"text/template"
	"time"
)

// Info is what a log driver knows of its container: what the tag
// template (log-opt tag) and the labels/env options read. Its field and
// method names are dockerd's logger.Info's, which users' tag templates
// name ({{.Name}}, {{.ImageName}}, {{.ContainerLabels}} ...).
type Info struct {
	Config              map[string]string
	ContainerID         string
	ContainerName       string
	ContainerEntrypoint string
	ContainerArgs       []string
	ContainerImageID    string
	ContainerImageName  string
	ContainerCreated    time.Time
	ContainerEnv        []string
	ContainerLabels     map[string]string
	LogPath             string
	DaemonName          string
}

// ExtraAttributes are the labels and environment variables the log
// options name (labels, labels-regex, env, env-regex), keyed by name as
// keyMod (if any) rewrites it.
func (info *Info) ExtraAttributes(keyMod func(string) string) (map[string]string, error) {
	extra := map[string]string{}
	put := func(k, v string) {
		if keyMod != nil {
			k = keyMod(k)
		}
		extra[k] = v
	}
	if labels := info.Config["labels"]; labels != "" {
		for _, l := range strings.Split(labels, ",") {
			if v, ok := info.ContainerLabels[l]; ok {
				put(l, v)
			}
		}
	}
	if expr := info.Config["labels-regex"]; expr != "" {
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, err
		}
		for k, v := range info.ContainerLabels {
			if re.MatchString(k) {
				put(k, v)
			}
		}
	}
	env := map[string]string{}
	for _, e := range info.ContainerEnv {
		if k, v, ok := strings.Cut(e, "="); ok {
			env[k] = v
		}
	}
	if names := info.Config["env"]; names != "" {
		for _, k := range strings.Split(names, ",") {
			if v, ok := env[k]; ok {
				put(k, v)
			}
		}
	}
	if expr := info.Config["env-regex"]; expr != "" {
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, err
		}
		for k, v := range env {
			if re.MatchString(k) {
				put(k, v)
			}
		}
	}
	return extra, nil
}

// Hostname is the host's name.
func (info *Info) Hostname() (string, error) { return os.Hostname() }

// Command is the container's entrypoint and arguments, space-separated.
func (info *Info) Command() string {
	return strings.Join(append([]string{info.ContainerEntrypoint}, info.ContainerArgs...), " ")
}

// ID is the container's ID shortened to 12 characters.
func (info *Info) ID() string { return short(info.ContainerID) }

// FullID is the container's ID.
func (info *Info) FullID() string { return info.ContainerID }

// Name is the container's name without its leading '/'.
func (info *Info) Name() string { return strings.TrimPrefix(info.ContainerName, "/") }

// ImageID is the image's ID cut to 12 characters, algorithm included
// ("sha256:8a3f1"), as dockerd cuts it.
func (info *Info) ImageID() string { return short(info.ContainerImageID) }

// ImageFullID is the image's ID.
func (info *Info) ImageFullID() string { return info.ContainerImageID }

// ImageName is the image's name as the container was created from it.
func (info *Info) ImageName() string { return info.ContainerImageName }

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// DefaultTag is the tag template of drivers that always tag (syslog,
// journald, fluentd): the short container ID.
const DefaultTag = "{{.ID}}"

// Tag renders the tag option's template (or def when it is unset) with
// dockerd's template functions.
func (info *Info) Tag(def string) (string, error) {
	text := info.Config["tag"]
	if text == "" {
		text = def
	}
	tmpl, err := template.New("log-tag").Funcs(tagFuncs).Parse(text)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, info); err != nil {
		return "", err
	}
	return b.String(), nil
}

// tagFuncs are dockerd's basic template functions.
var tagFuncs = template.FuncMap{
	"json": func(v any) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		return strings.TrimSpace(b.String())
	},
	"split": strings.Split,
	"join":  strings.Join,
	"title": func(s string) string {
		// strings.Title, which dockerd uses: each word's first letter up.
		prev := ' '
		return strings.Map(func(r rune) rune {
			up := prev == ' ' || prev == '\t' || prev == '\n' || prev == '-' || prev == '_'
			prev = r
			if up {
				return []rune(strings.ToUpper(string(r)))[0]
			}
			return r
		}, s)
	},
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(s string, prefix, suffix int) string {
		if s == "" {
			return s
		}
		return strings.Repeat(" ", prefix) + s + strings.Repeat(" ", suffix)
	},
	"truncate": func(s string, n int) string {
		if len(s) < n {
			return s
		}
		return s[:n]
	},
}
