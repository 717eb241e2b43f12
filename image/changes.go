package image

import (
	"fmt"
	"path"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-connections/nat"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// changeCommands are the Dockerfile instructions `import --change` and
// `commit --change` accept, as dockerd's (which refuses STOPSIGNAL there).
var changeCommands = map[string]bool{
	"cmd": true, "entrypoint": true, "env": true, "expose": true, "healthcheck": true, "label": true,
	"onbuild": true, "user": true, "volume": true, "workdir": true,
}

// ApplyChanges applies Dockerfile instructions (CMD, ENTRYPOINT, ENV,
// EXPOSE, HEALTHCHECK, LABEL, ONBUILD, USER, VOLUME, WORKDIR)
// to cfg, as a build's metadata steps would: variables expand against the
// config's environment. Each change is one instruction; a bad one is an
// invalid-argument error and cfg may then be partly changed.
func ApplyChanges(cfg *dockerspec.DockerOCIImageConfig, changes []string) error {
	for _, change := range changes {
		if strings.TrimSpace(change) == "" {
			continue
		}
		res, err := parser.Parse(strings.NewReader(change))
		if err != nil {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid change %q: %v", change, err))
		}
		for _, node := range res.AST.Children {
			cmd := strings.ToLower(node.Value)
			if !changeCommands[cmd] {
				return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s is not a valid change command", cmd))
			}
			ins, err := instructions.ParseInstruction(node)
			if err != nil {
				return cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
			}
			if err := applyInstruction(cfg, ins); err != nil {
				return cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
			}
		}
	}
	return nil
}

// envGetter lets the Dockerfile lexer read a config's Env.
type envGetter []string

func (e envGetter) Get(key string) (string, bool) {
	for i := len(e) - 1; i >= 0; i-- {
		if k, v, _ := strings.Cut(e[i], "="); k == key {
			return v, true
		}
	}
	return "", false
}

func (e envGetter) Keys() []string {
	keys := make([]string, 0, len(e))
	for _, kv := range e {
		k, _, _ := strings.Cut(kv, "=")
		keys = append(keys, k)
	}
	return keys
}

func applyInstruction(cfg *dockerspec.DockerOCIImageConfig, ins any) error {
	lex := shell.NewLex(parser.DefaultEscapeToken)
	if ex, ok := ins.(instructions.SupportsSingleWordExpansion); ok {
		err := ex.Expand(func(word string) (string, error) {
			out, _, err := lex.ProcessWord(word, envGetter(cfg.Env))
			return out, err
		})
		if err != nil {
			return err
		}
	}
	shellCmd := func(c instructions.ShellDependantCmdLine) []string {
		if !c.PrependShell {
			return c.CmdLine
		}
		sh := cfg.Shell
		if len(sh) == 0 {
			sh = []string{"/bin/sh", "-c"}
		}
		return append(append([]string{}, sh...), strings.Join(c.CmdLine, " "))
	}
	switch c := ins.(type) {
	case *instructions.CmdCommand:
		cfg.Cmd = shellCmd(c.ShellDependantCmdLine)
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = shellCmd(c.ShellDependantCmdLine)
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.ExposeCommand:
		ports, _, err := nat.ParsePortSpecs(c.Ports)
		if err != nil {
			return err
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for p := range ports {
			cfg.ExposedPorts[string(p)] = struct{}{}
		}
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.WorkdirCommand:
		wd := c.Path
		if !path.IsAbs(wd) {
			wd = path.Join("/", cfg.WorkingDir, wd)
		}
		cfg.WorkingDir = path.Clean(wd)
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v = strings.TrimSpace(v); v == "" {
				return fmt.Errorf("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
	case *instructions.HealthCheckCommand:
		hc := c.Health
		cfg.Healthcheck = &dockerspec.HealthcheckConfig{
			Test: hc.Test, Interval: hc.Interval, Timeout: hc.Timeout, StartPeriod: hc.StartPeriod,
			StartInterval: hc.StartInterval, Retries: hc.Retries,
		}
	default:
		return fmt.Errorf("%T is not a valid change command", ins)
	}
	return nil
}

func setEnv(env []string, key, value string) []string {
	for i, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}
