package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/berth/berth/builder"
	"github.com/berth/berth/container/logger"
)

// Config is berthd's configuration: flags over /etc/berth/daemon.json,
// with Docker's daemon.json key names where the two overlap.
type Config struct {
	DataRoot           string              `json:"data-root"`
	ExecRoot           string              `json:"exec-root"`
	Hosts              []string            `json:"hosts"`
	Pidfile            string              `json:"pidfile"`
	RegistryMirrors    []string            `json:"registry-mirrors"`
	HostMirrors        map[string][]string `json:"registry-host-mirrors"`
	InsecureRegistries []string            `json:"insecure-registries"`
	LogLevel           string              `json:"log-level"`
	Debug              bool                `json:"debug"`
	Runtime            string              `json:"runtime"`
	TLS                bool                `json:"tls"`
	TLSVerify          bool                `json:"tlsverify"`
	TLSCACert          string              `json:"tlscacert"`
	TLSCert            string              `json:"tlscert"`
	TLSKey             string              `json:"tlskey"`
	Group              string              `json:"group"`
	// LogDriver and LogOpts are the containers' default log configuration.
	LogDriver string            `json:"log-driver"`
	LogOpts   map[string]string `json:"log-opts"`
	// IPv6 and FixedCIDRv6 give the default bridge IPv6 (dockerd's
	// --ipv6 and --fixed-cidr-v6).
	IPv6        bool   `json:"ipv6"`
	FixedCIDRv6 string `json:"fixed-cidr-v6"`
	// Builder is the embedded BuildKit's configuration (dockerd's
	// "builder" key): its cache's garbage collection policy.
	Builder BuilderConfig `json:"builder"`
	// NoClientVerify says tlsverify was set to false explicitly (flag or
	// file): the operator's stated intent to serve TCP with TLS but
	// without client certificates. Without it, berthd refuses to.
	NoClientVerify bool `json:"-"`
}

// BuilderConfig is daemon.json's "builder" section.
type BuilderConfig struct {
	GC builder.GCConfig `json:"gc"`
}

func defaultConfig() Config {
	return Config{
		DataRoot:  "/var/lib/berth",
		ExecRoot:  "/run/berth",
		Hosts:     []string{"unix:///run/berth/berth.sock"},
		Pidfile:   "/run/berth/berthd.pid",
		LogLevel:  "info",
		Runtime:   "runc",
		Group:     "berth",
		LogDriver: "json-file",
	}
}

// flagKeys maps flag names to the daemon.json keys they set.
var flagKeys = map[string]string{
	"data-root": "data-root", "exec-root": "exec-root", "host": "hosts", "pidfile": "pidfile",
	"registry-mirror": "registry-mirrors", "insecure-registry": "insecure-registries",
	"log-level": "log-level", "debug": "debug", "runtime": "runtime", "tls": "tls",
	"tlsverify": "tlsverify", "tlscacert": "tlscacert", "tlscert": "tlscert", "tlskey": "tlskey", "group": "group",
	"log-driver": "log-driver", "log-opt": "log-opts", "ipv6": "ipv6", "fixed-cidr-v6": "fixed-cidr-v6",
}

// bindFlags registers berthd's flags, dockerd's names, on fs.
func bindFlags(fs *pflag.FlagSet, c *Config, configFile *string) {
	fs.StringVar(configFile, "config-file", "/etc/berth/daemon.json", "Daemon configuration file")
	fs.StringVar(&c.DataRoot, "data-root", c.DataRoot, "Root directory of persistent berth state")
	fs.StringVar(&c.ExecRoot, "exec-root", c.ExecRoot, "Root directory for execution state files")
	fs.StringArrayVarP(&c.Hosts, "host", "H", c.Hosts, "Daemon socket(s) to connect to (unix:// or tcp:// with TLS)")
	fs.StringVarP(&c.Pidfile, "pidfile", "p", c.Pidfile, "Path to use for daemon PID file")
	fs.StringArrayVar(&c.RegistryMirrors, "registry-mirror", nil, "Preferred registry mirror; HOST=URL mirrors another registry than Docker Hub")
	fs.StringArrayVar(&c.InsecureRegistries, "insecure-registry", nil, "Enable insecure registry communication")
	fs.StringVarP(&c.LogLevel, "log-level", "l", c.LogLevel, `Set the logging level ("debug"|"info"|"warn"|"error")`)
	fs.BoolVarP(&c.Debug, "debug", "D", false, "Enable debug mode")
	fs.StringVar(&c.Runtime, "runtime", c.Runtime, "Path of the OCI runtime binary")
	fs.BoolVar(&c.TLS, "tls", false, "Use TLS; implied by --tlsverify")
	fs.BoolVar(&c.TLSVerify, "tlsverify", false, "Use TLS and accept only clients with a certificate from --tlscacert (needed for tcp://; =false serves it unauthenticated on purpose)")
	fs.StringVar(&c.TLSCACert, "tlscacert", "", "Trust certs signed only by this CA")
	fs.StringVar(&c.TLSCert, "tlscert", "", "Path to TLS certificate file")
	fs.StringVar(&c.TLSKey, "tlskey", "", "Path to TLS key file")
	fs.StringVarP(&c.Group, "group", "G", c.Group, "Group for the unix socket")
	fs.StringVar(&c.LogDriver, "log-driver", c.LogDriver, "Default driver for container logs")
	fs.StringToStringVar(&c.LogOpts, "log-opt", nil, "Default log driver options for containers")
	fs.BoolVar(&c.IPv6, "ipv6", false, "Enable IPv6 networking on the default bridge (needs --fixed-cidr-v6)")
	fs.StringVar(&c.FixedCIDRv6, "fixed-cidr-v6", "", "IPv6 subnet for the default bridge's containers")
}

// loadConfigFile merges the JSON file at path into c. Keys also given as
// flags are a conflict, as in dockerd. A missing file is fine unless it
// was named explicitly.
func loadConfigFile(path string, explicit bool, fs *pflag.FlagSet, c *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !explicit {
			return nil
		}
		return fmt.Errorf("unable to configure the daemon with file %s: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("unable to configure the daemon with file %s: %w", path, err)
	}
	known := map[string]bool{}
	for _, k := range flagKeys {
		known[k] = true
	}
	known["registry-host-mirrors"] = true
	known["builder"] = true
	var unknown, conflicts []string
	for k := range raw {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if fs != nil {
		fs.Visit(func(f *pflag.Flag) {
			if k, ok := flagKeys[f.Name]; ok {
				if _, inFile := raw[k]; inFile {
					conflicts = append(conflicts, fmt.Sprintf("%s: (from flag: %s, from file: %s)", k, f.Value.String(), strings.TrimSpace(string(raw[k]))))
				}
			}
		})
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("the following directives don't match any configuration option: %s", strings.Join(unknown, ", "))
	}
	if len(conflicts) > 0 {
		sort.Strings(conflicts)
		return fmt.Errorf("the following directives are specified both as a flag and in the configuration file: %s", strings.Join(conflicts, ", "))
	}
	if err := json.Unmarshal(b, c); err != nil {
		return err
	}
	if v, ok := raw["tlsverify"]; ok && strings.TrimSpace(string(v)) == "false" {
		c.NoClientVerify = true
	}
	return nil
}

// applyFlagIntents records what the flags say on purpose beyond their
// values (see Config.NoClientVerify).
func applyFlagIntents(fs *pflag.FlagSet, c *Config) {
	if fs.Changed("tlsverify") && !c.TLSVerify {
		c.NoClientVerify = true
	}
}

// checkLogConfig checks the default log configuration as dockerd does at
// start: its options, when there are any, must suit its driver.
func checkLogConfig(c Config) error {
	if len(c.LogOpts) == 0 {
		return nil
	}
	if err := logger.Validate(c.LogDriver, c.LogOpts); err != nil {
		return fmt.Errorf("failed to set log opts: %w", err)
	}
	return nil
}

// splitMirrors separates Docker Hub mirrors from "host=url" mirrors of
// other registries.
func splitMirrors(in []string, byHost map[string][]string) (hub []string, hosts map[string][]string) {
	hosts = map[string][]string{}
	for k, v := range byHost {
		hosts[k] = append(hosts[k], v...)
	}
	for _, m := range in {
		if host, url, ok := strings.Cut(m, "="); ok && !strings.Contains(host, "/") {
			hosts[host] = append(hosts[host], url)
			continue
		}
		hub = append(hub, m)
	}
	return hub, hosts
}
