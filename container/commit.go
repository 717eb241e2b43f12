package container

// docker commit: a new image from a container's writable layer.

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/archive"
	"github.com/berth/berth/image"
)

// CommitOptions are POST /commit's parameters.
type CommitOptions struct {
	Repo    string
	Tag     string
	Comment string
	Author  string
	// Changes are Dockerfile instructions applied to the config (CMD,
	// ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME,
	// WORKDIR, HEALTHCHECK).
	Changes []string
	// Pause freezes a running container while its layer is read.
	Pause bool
	// Config, from the request body, replaces the container's config;
	// what it leaves unset is taken from the container's.
	Config *container.Config
}

// Commit creates an image from the container's changes on top of its
// image and returns the image ID.
func (s *Service) Commit(ctx context.Context, name string, o CommitOptions) (string, error) {
	c, err := s.Get(name)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	removing := c.removed || c.State.Status == container.StateRemoving
	dead := c.State.Dead
	ctrCfg := cloneConfig(c.Config)
	imageID := c.Image
	c.mu.Unlock()
	if dead {
		return "", cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("You cannot commit container %s which is Dead", c.ID))
	}
	if removing {
		return "", cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("You cannot commit container %s which is being removed", c.ID))
	}
	tag, err := commitReference(o.Repo, o.Tag)
	if err != nil {
		return "", err
	}
	newCfg := cloneConfig(ctrCfg)
	if o.Config != nil {
		newCfg = cloneConfig(o.Config)
	}
	if err := applyChanges(newCfg, o.Changes); err != nil {
		return "", err
	}
	mergeCommitConfig(newCfg, ctrCfg)
	parent, err := s.cfg.Images.Resolve(ctx, imageID.String())
	if err != nil {
		return "", err
	}

	unlock := s.lockRootfs(c.ID, false)
	defer unlock()
	if o.Pause {
		defer s.pauseForCommit(ctx, c)()
	}
	u, err := s.scanUpper(ctx, c)
	if err != nil {
		return "", err
	}
	drop := u.drop
	u.close()
	upper, _, err := s.layerDirs(ctx, c.ID)
	if err != nil {
		return "", err
	}
	// The placeholders of mounts are left out as the tar is made.
	layer, err := archive.TarDir(ctx, upper, archive.WriterOptions{Layer: true, Exclude: drop})
	if err != nil {
		return "", err
	}
	defer layer.Close()

	now := time.Now().UTC()
	id, err := s.cfg.Images.Commit(ctx, image.CommitRequest{
		Parent: parent,
		Layer:  layer,
		Config: &image.ImageConfig{Config: toImageConfig(newCfg)},
		History: ocispec.History{
			Created:   &now,
			Author:    o.Author,
			CreatedBy: strings.Join(ctrCfg.Cmd, " "),
			Comment:   o.Comment,
		},
		Tag:             tag,
		Container:       c.ID,
		ContainerConfig: ctrCfg,
	})
	if err != nil {
		return "", err
	}
	ref := ""
	if tag != "" {
		if n, err := reference.ParseNormalizedNamed(tag); err == nil {
			ref = reference.FamiliarString(n)
		}
	}
	s.emit(c, "commit", map[string]string{"comment": o.Comment, "imageID": id.String(), "imageRef": ref})
	return id.String(), nil
}

// commitReference combines repo and tag as Docker does ("" for none).
func commitReference(repo, tag string) (string, error) {
	if repo == "" {
		return "", nil
	}
	ref, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return "", cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	if _, ok := ref.(reference.Digested); ok {
		return "", cerrdefs.ErrInvalidArgument.WithMessage("cannot import digest reference")
	}
	if tag != "" {
		tagged, err := reference.WithTag(reference.TrimNamed(ref), tag)
		if err != nil {
			return "", cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		return tagged.String(), nil
	}
	return reference.TagNameOnly(ref).String(), nil
}

func cloneConfig(c *container.Config) *container.Config {
	out := &container.Config{}
	if c == nil {
		return out
	}
	b, _ := json.Marshal(c)
	_ = json.Unmarshal(b, out)
	return out
}

// validCommitCommands are the instructions commit --change accepts.
var validCommitCommands = map[string]bool{
	"cmd": true, "entrypoint": true, "healthcheck": true, "env": true, "expose": true,
	"label": true, "onbuild": true, "stopsignal": true, "user": true, "volume": true, "workdir": true,
}

// applyChanges applies Dockerfile instructions to cfg, as Docker's commit
// and import --change do. Each change is one instruction (a line ending in
// a backslash continues on the next); variables ($X, ${X}) are expanded
// from cfg's environment.
func applyChanges(cfg *container.Config, changes []string) error {
	var lines []string
	for _, ch := range changes {
		for _, l := range strings.Split(strings.ReplaceAll(ch, "\\\n", " "), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
	}
	type inst struct{ cmd, rest string }
	var insts []inst
	for _, l := range lines {
		var cmd, rest string
		if i := strings.IndexAny(l, " \t"); i >= 0 {
			cmd, rest = l[:i], strings.TrimSpace(l[i+1:])
		} else {
			cmd, rest = l, ""
		}
		cmd = strings.ToLower(cmd)
		if !validCommitCommands[cmd] {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s is not a valid change command", cmd))
		}
		insts = append(insts, inst{cmd, rest})
	}
	cmdSet := false
	for _, in := range insts {
		if in.rest == "" && in.cmd != "cmd" && in.cmd != "entrypoint" {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s requires at least one argument", strings.ToUpper(in.cmd)))
		}
		switch in.cmd {
		case "env", "label":
			kvs, err := parseKeyValues(in.cmd, in.rest, cfg.Env)
			if err != nil {
				return err
			}
			for _, kv := range kvs {
				if in.cmd == "env" {
					cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
					continue
				}
				if cfg.Labels == nil {
					cfg.Labels = map[string]string{}
				}
				cfg.Labels[kv[0]] = kv[1]
			}
		case "cmd":
			cfg.Cmd = commandForm(cfg, in.rest)
			cfg.ArgsEscaped = false
			cmdSet = true
		case "entrypoint":
			cfg.Entrypoint = commandForm(cfg, in.rest)
			if !cmdSet {
				cfg.Cmd = nil
			}
		case "expose":
			words, err := shellWords(in.rest, cfg.Env)
			if err != nil {
				return err
			}
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = network.PortSet{}
			}
			for _, f := range words {
				pr, err := network.ParsePortRange(f)
				if err != nil {
					return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid containerPort: %s", f))
				}
				for p := range pr.All() {
					cfg.ExposedPorts[p] = struct{}{}
				}
			}
		case "user", "workdir", "stopsignal":
			words, err := shellWords(in.rest, cfg.Env)
			if err != nil {
				return err
			}
			v := strings.Join(words, " ")
			switch in.cmd {
			case "user":
				cfg.User = v
			case "workdir":
				if !path.IsAbs(v) {
					base := cfg.WorkingDir
					if base == "" {
						base = "/"
					}
					v = path.Join(base, v)
				}
				cfg.WorkingDir = path.Clean(v)
			case "stopsignal":
				if _, err := signalByName(v); err != nil {
					return err
				}
				cfg.StopSignal = v
			}
		case "volume":
			vols, ok := jsonArray(in.rest)
			if !ok {
				var err error
				if vols, err = shellWords(in.rest, cfg.Env); err != nil {
					return err
				}
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			for _, v := range vols {
				if v = strings.TrimSpace(v); v == "" {
					return cerrdefs.ErrInvalidArgument.WithMessage("VOLUME specified can not be an empty string")
				}
				cfg.Volumes[v] = struct{}{}
			}
		case "healthcheck":
			h, err := parseHealthcheck(cfg, in.rest)
			if err != nil {
				return err
			}
			cfg.Healthcheck = h
		case "onbuild":
			cfg.OnBuild = append(cfg.OnBuild, in.rest)
		}
	}
	return nil
}

// jsonArray parses the exec form ["a", "b"].
func jsonArray(s string) ([]string, bool) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") {
		return nil, false
	}
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, false
	}
	return out, true
}

// commandForm is a CMD or ENTRYPOINT's argv: the exec form as written,
// the shell form run by the config's shell.
func commandForm(cfg *container.Config, rest string) []string {
	if args, ok := jsonArray(rest); ok {
		return args
	}
	if rest == "" {
		return nil
	}
	sh := cfg.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(append([]string{}, sh...), rest)
}

// parseHealthcheck reads HEALTHCHECK [--flags] CMD ... or NONE.
func parseHealthcheck(cfg *container.Config, rest string) (*container.HealthConfig, error) {
	if strings.EqualFold(strings.TrimSpace(rest), "none") {
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	h := &container.HealthConfig{}
	for strings.HasPrefix(rest, "--") {
		flag, after, _ := strings.Cut(rest, " ")
		rest = strings.TrimSpace(after)
		k, v, ok := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		if !ok {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage("HEALTHCHECK flag needs a value: " + flag)
		}
		var d time.Duration
		var err error
		switch k {
		case "interval", "timeout", "start-period", "start-interval":
			d, err = time.ParseDuration(v)
		case "retries":
			var n int
			if _, err = fmt.Sscanf(v, "%d", &n); err == nil {
				h.Retries = n
			}
		default:
			return nil, cerrdefs.ErrInvalidArgument.WithMessage("Unknown flag: " + k)
		}
		if err != nil {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid value for --%s: %s", k, v))
		}
		switch k {
		case "interval":
			h.Interval = d
		case "timeout":
			h.Timeout = d
		case "start-period":
			h.StartPeriod = d
		case "start-interval":
			h.StartInterval = d
		}
	}
	kw, cmd, _ := strings.Cut(rest, " ")
	if !strings.EqualFold(kw, "cmd") {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("Unknown type " + kw + " in HEALTHCHECK (try CMD)")
	}
	cmd = strings.TrimSpace(cmd)
	if args, ok := jsonArray(cmd); ok {
		h.Test = append([]string{"CMD"}, args...)
	} else {
		h.Test = []string{"CMD-SHELL", cmd}
	}
	return h, nil
}

// parseKeyValues reads ENV and LABEL arguments: k=v pairs (quoted as in a
// shell), or the legacy "ENV key value with spaces".
func parseKeyValues(cmd, rest string, env []string) ([][2]string, error) {
	words, err := shellWords(rest, env)
	if err != nil {
		return nil, err
	}
	if len(words) > 0 && !strings.Contains(words[0], "=") {
		// Legacy form: the first word is the key, the rest the value.
		key, value, _ := strings.Cut(rest, " ")
		vw, err := shellWords(strings.TrimSpace(value), env)
		if err != nil {
			return nil, err
		}
		if len(vw) == 0 {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(strings.ToUpper(cmd) + " must have two arguments")
		}
		return [][2]string{{key, strings.Join(vw, " ")}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Syntax error - can't find = in %q. Must be of the form: name=value", w))
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// shellWords splits s into words as a Dockerfile does: quotes group,
// backslash escapes, and $VAR / ${VAR} / ${VAR:-default} are expanded
// from env except inside single quotes.
func shellWords(s string, env []string) ([]string, error) {
	lookup := func(name string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if k, v, _ := strings.Cut(env[i], "="); k == name {
				return v
			}
		}
		return ""
	}
	var words []string
	var cur strings.Builder
	inWord := false
	rs := []rune(s)
	expand := func(i int) (string, int) {
		// rs[i] == '$'
		if i+1 < len(rs) && rs[i+1] == '{' {
			end := strings.IndexRune(string(rs[i+2:]), '}')
			if end < 0 {
				return "$", i + 1
			}
			body := string(rs[i+2 : i+2+end])
			next := i + 2 + len([]rune(body)) + 1
			name, def, hasDef := strings.Cut(body, ":-")
			if v := lookup(name); v != "" || !hasDef {
				return v, next
			}
			return def, next
		}
		j := i + 1
		for j < len(rs) && (rs[j] == '_' || rs[j] >= 'a' && rs[j] <= 'z' || rs[j] >= 'A' && rs[j] <= 'Z' || j > i+1 && rs[j] >= '0' && rs[j] <= '9') {
			j++
		}
		if j == i+1 {
			return "$", j
		}
		return lookup(string(rs[i+1 : j])), j
	}
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
		case r == '\\' && i+1 < len(rs):
			cur.WriteRune(rs[i+1])
			inWord = true
			i += 2
		case r == '\'':
			end := strings.IndexRune(string(rs[i+1:]), '\'')
			if end < 0 {
				return nil, cerrdefs.ErrInvalidArgument.WithMessage("unexpected end of statement while looking for matching single-quote")
			}
			cur.WriteString(string(rs[i+1 : i+1+end]))
			inWord = true
			i += end + 2
		case r == '"':
			inWord = true
			i++
			closed := false
			for i < len(rs) {
				if rs[i] == '"' {
					closed = true
					i++
					break
				}
				if rs[i] == '\\' && i+1 < len(rs) && strings.ContainsRune("$\"\\", rs[i+1]) {
					cur.WriteRune(rs[i+1])
					i += 2
					continue
				}
				if rs[i] == '$' {
					v, next := expand(i)
					cur.WriteString(v)
					i = next
					continue
				}
				cur.WriteRune(rs[i])
				i++
			}
			if !closed {
				return nil, cerrdefs.ErrInvalidArgument.WithMessage("unexpected end of statement while looking for matching double-quote")
			}
		case r == '$':
			v, next := expand(i)
			cur.WriteString(v)
			inWord = true
			i = next
		default:
			cur.WriteRune(r)
			inWord = true
			i++
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func setEnv(env []string, key, value string) []string {
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}

// mergeCommitConfig fills what user leaves unset from the container's
// config, as Docker's commit does.
func mergeCommitConfig(user, ctr *container.Config) {
	if user.User == "" {
		user.User = ctr.User
	}
	if len(user.ExposedPorts) == 0 {
		user.ExposedPorts = ctr.ExposedPorts
	} else {
		for p := range ctr.ExposedPorts {
			user.ExposedPorts[p] = struct{}{}
		}
	}
	if len(user.Env) == 0 {
		user.Env = ctr.Env
	} else {
		for _, e := range ctr.Env {
			k, _, _ := strings.Cut(e, "=")
			found := false
			for _, u := range user.Env {
				if uk, _, _ := strings.Cut(u, "="); uk == k {
					found = true
					break
				}
			}
			if !found {
				user.Env = append(user.Env, e)
			}
		}
	}
	if user.Labels == nil {
		user.Labels = map[string]string{}
	}
	for k, v := range ctr.Labels {
		if _, ok := user.Labels[k]; !ok {
			user.Labels[k] = v
		}
	}
	if len(user.Entrypoint) == 0 {
		if len(user.Cmd) == 0 {
			user.Cmd = ctr.Cmd
			user.ArgsEscaped = ctr.ArgsEscaped
		}
		if user.Entrypoint == nil {
			user.Entrypoint = ctr.Entrypoint
		}
	}
	if ctr.Healthcheck != nil {
		if user.Healthcheck == nil {
			user.Healthcheck = ctr.Healthcheck
		} else {
			if len(user.Healthcheck.Test) == 0 {
				user.Healthcheck.Test = ctr.Healthcheck.Test
			}
			if user.Healthcheck.Interval == 0 {
				user.Healthcheck.Interval = ctr.Healthcheck.Interval
			}
			if user.Healthcheck.Timeout == 0 {
				user.Healthcheck.Timeout = ctr.Healthcheck.Timeout
			}
			if user.Healthcheck.StartPeriod == 0 {
				user.Healthcheck.StartPeriod = ctr.Healthcheck.StartPeriod
			}
			if user.Healthcheck.StartInterval == 0 {
				user.Healthcheck.StartInterval = ctr.Healthcheck.StartInterval
			}
			if user.Healthcheck.Retries == 0 {
				user.Healthcheck.Retries = ctr.Healthcheck.Retries
			}
		}
	}
	if user.WorkingDir == "" {
		user.WorkingDir = ctr.WorkingDir
	}
	if len(user.Volumes) == 0 {
		user.Volumes = ctr.Volumes
	} else {
		for k, v := range ctr.Volumes {
			user.Volumes[k] = v
		}
	}
	if user.StopSignal == "" {
		user.StopSignal = ctr.StopSignal
	}
}

// toImageConfig keeps the parts of a container config an image carries.
func toImageConfig(c *container.Config) dockerspec.DockerOCIImageConfig {
	var ic dockerspec.DockerOCIImageConfig
	ic.User = c.User
	ic.Env = c.Env
	ic.Entrypoint = c.Entrypoint
	ic.Cmd = c.Cmd
	ic.WorkingDir = c.WorkingDir
	ic.Labels = c.Labels
	ic.StopSignal = c.StopSignal
	ic.ArgsEscaped = c.ArgsEscaped //lint:ignore SA1019 carried over as Docker does
	if len(c.ExposedPorts) > 0 {
		ic.ExposedPorts = map[string]struct{}{}
		for p := range c.ExposedPorts {
			ic.ExposedPorts[p.String()] = struct{}{}
		}
	}
	if len(c.Volumes) > 0 {
		ic.Volumes = c.Volumes
	}
	ic.Healthcheck = c.Healthcheck
	ic.OnBuild = c.OnBuild
	ic.Shell = c.Shell
	return ic
}
