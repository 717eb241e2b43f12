package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/spf13/pflag"
)

func parse(t *testing.T, args []string, file string) (Config, error) {
	t.Helper()
	cfg := defaultConfig()
	var configFile string
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	bindFlags(fs, &cfg, &configFile)
	if file != "" {
		p := filepath.Join(t.TempDir(), "daemon.json")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config-file", p)
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	err := loadConfigFile(configFile, fs.Changed("config-file"), fs, &cfg)
	applyFlagIntents(fs, &cfg)
	return cfg, err
}

func TestConfigFileAndFlags(t *testing.T) {
	cfg, err := parse(t, []string{"--data-root", "/x"}, `{"registry-mirrors":["http://127.0.0.1:5000"],"insecure-registries":["10.0.0.0/8"],"debug":true}`)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataRoot != "/x" || cfg.RegistryMirrors[0] != "http://127.0.0.1:5000" || !cfg.Debug || cfg.InsecureRegistries[0] != "10.0.0.0/8" {
		t.Fatalf("cfg = %+v", cfg)
	}
	if cfg.ExecRoot != "/run/berth" || cfg.Hosts[0] != "unix:///run/berth/berth.sock" {
		t.Fatalf("defaults lost: %+v", cfg)
	}
}

func TestConfigConflictAndUnknown(t *testing.T) {
	_, err := parse(t, []string{"--data-root", "/x"}, `{"data-root":"/y"}`)
	if err == nil || !strings.Contains(err.Error(), "specified both as a flag and in the configuration file") {
		t.Fatalf("conflict: %v", err)
	}
	_, err = parse(t, nil, `{"no-such-key":1}`)
	if err == nil || !strings.Contains(err.Error(), "don't match any configuration option: no-such-key") {
		t.Fatalf("unknown: %v", err)
	}
	_, err = parse(t, nil, `{bad json`)
	if err == nil {
		t.Fatal("bad JSON accepted")
	}
}

func TestMissingDefaultFileIsFine(t *testing.T) {
	cfg := defaultConfig()
	if err := loadConfigFile(filepath.Join(t.TempDir(), "none.json"), false, nil, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := loadConfigFile(filepath.Join(t.TempDir(), "none.json"), true, nil, &cfg); err == nil {
		t.Fatal("a named missing file must be an error")
	}
}

func TestSplitMirrors(t *testing.T) {
	hub, hosts := splitMirrors([]string{"http://127.0.0.1:5000", "ghcr.io=http://127.0.0.1:5002"}, map[string][]string{"quay.io": {"https://m"}})
	if len(hub) != 1 || hub[0] != "http://127.0.0.1:5000" {
		t.Fatalf("hub = %v", hub)
	}
	if hosts["ghcr.io"][0] != "http://127.0.0.1:5002" || hosts["quay.io"][0] != "https://m" {
		t.Fatalf("hosts = %v", hosts)
	}
}

func TestTCPWithoutTLSRefused(t *testing.T) {
	d := &daemon{cfg: defaultConfig()}
	if _, err := d.listen("tcp://127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "without TLS") {
		t.Fatalf("err = %v", err)
	}
	if _, err := d.listen("bogus"); err == nil {
		t.Fatal("bogus host accepted")
	}
}

func TestLockDataRoot(t *testing.T) {
	dir := t.TempDir()
	f, err := lockDataRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := lockDataRoot(dir); err == nil || !strings.Contains(err.Error(), "in use by another berthd") {
		t.Fatalf("second lock: %v", err)
	}
}

func TestNoClientVerifyIsExplicit(t *testing.T) {
	for _, tc := range []struct {
		args []string
		file string
		want bool
	}{
		{[]string{"--tls"}, "", false},
		{[]string{"--tls", "--tlsverify=false"}, "", true},
		{[]string{"--tlsverify"}, "", false},
		{nil, `{"tls": true}`, false},
		{nil, `{"tls": true, "tlsverify": false}`, true},
		{nil, `{"tlsverify": true}`, false},
	} {
		cfg, err := parse(t, tc.args, tc.file)
		if err != nil {
			t.Fatalf("%v %s: %v", tc.args, tc.file, err)
		}
		if cfg.NoClientVerify != tc.want {
			t.Errorf("%v %s: NoClientVerify = %v, want %v", tc.args, tc.file, cfg.NoClientVerify, tc.want)
		}
	}
}

func TestAPIWarnings(t *testing.T) {
	cfg := defaultConfig()
	cfg.Hosts = []string{"unix:///run/x.sock", "tcp://127.0.0.1:2376"}
	cfg.TLS = true
	w := apiWarnings(cfg)
	if len(w) != 1 || !strings.HasPrefix(w[0], "WARNING: API is accessible on https://127.0.0.1:2376 without TLS client verification.") {
		t.Errorf("--tls without --tlsverify: warnings %q", w)
	}
	cfg.TLSVerify = true
	if w := apiWarnings(cfg); len(w) != 0 {
		t.Errorf("--tlsverify: warnings %q", w)
	}
}

// TestCheckLogConfig: default log options are checked against the default
// driver at start, in dockerd's words; no options, nothing to check.
func TestCheckLogConfig(t *testing.T) {
	if err := checkLogConfig(Config{LogDriver: "json-file", LogOpts: map[string]string{"max-size": "10m"}}); err != nil {
		t.Errorf("good options: %v", err)
	}
	if err := checkLogConfig(Config{LogDriver: "bogus"}); err != nil {
		t.Errorf("no options: %v", err)
	}
	err := checkLogConfig(Config{LogDriver: "json-file", LogOpts: map[string]string{"foo": "bar"}})
	if err == nil || err.Error() != "failed to set log opts: unknown log opt 'foo' for json-file log driver" {
		t.Errorf("unknown option: %v", err)
	}
}

// TestBuilderGCConfig: daemon.json's builder.gc with dockerd's keys,
// the deprecated ones included, becomes BuildKit's prune rules.
func TestBuilderGCConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.json")
	os.WriteFile(path, []byte(`{"builder": {"gc": {"enabled": true, "defaultKeepStorage": "20GB",
		"policy": [{"keepStorage": "512MB", "filter": ["unused-for=48h", "type=exec.cachemount"]},
		           {"reservedSpace": "1GB", "maxUsedSpace": "2GB", "minFreeSpace": "3GB", "all": true}]}}}`), 0o644)
	c := defaultConfig()
	if err := loadConfigFile(path, true, nil, &c); err != nil {
		t.Fatal(err)
	}
	if c.Builder.GC.DefaultReservedSpace != "20GB" {
		t.Errorf("defaultKeepStorage read as %q", c.Builder.GC.DefaultReservedSpace)
	}
	rules, err := c.Builder.GC.Rules(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 {
		t.Fatalf("rules %+v", rules)
	}
	if r := rules[0]; r.ReservedSpace != 512*1024*1024 || r.KeepDuration != 48*time.Hour || r.All ||
		len(r.Filter) != 1 || r.Filter[0] != "type==exec.cachemount" {
		t.Errorf("rule 0: %+v", r)
	}
	if r := rules[1]; r.ReservedSpace != 1<<30 || r.MaxUsedSpace != 2<<30 || r.MinFreeSpace != 3<<30 || !r.All || r.Filter != nil {
		t.Errorf("rule 1: %+v", r)
	}

	// No policy: dockerd's four default rules with the default limits.
	c = defaultConfig()
	os.WriteFile(path, []byte(`{"builder": {"gc": {"defaultReservedSpace": "5GB"}}}`), 0o644)
	if err := loadConfigFile(path, true, nil, &c); err != nil {
		t.Fatal(err)
	}
	rules, err = c.Builder.GC.Rules(t.TempDir())
	if err != nil || len(rules) != 4 || rules[3].ReservedSpace != 5<<30 || !rules[3].All {
		t.Fatalf("default rules %+v %v", rules, err)
	}
	// Disabled: none. Bad sizes and filters are refused.
	for cfg, want := range map[string]string{
		`{"enabled": false, "defaultKeepStorage": "1GB"}`:         "",
		`{"defaultReservedSpace": "lots"}`:                        "failed to parse defaultReservedSpace",
		`{"policy": [{"maxUsedSpace": "x"}]}`:                     "failed to parse maxUsedSpace",
		`{"policy": [{"filter": ["until=1h", "unused-for=2h"]}]}`: "conflicting filters",
		`{"policy": [{"filter": ["color=blue"]}]}`:                "Invalid filter 'color'",
	} {
		c = defaultConfig()
		os.WriteFile(path, []byte(`{"builder": {"gc": `+cfg+`}}`), 0o644)
		if err := loadConfigFile(path, true, nil, &c); err != nil {
			t.Fatal(err)
		}
		rules, err := c.Builder.GC.Rules(t.TempDir())
		if want == "" {
			if err != nil || rules != nil {
				t.Errorf("%s: rules %+v, err %v; want none", cfg, rules, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) || !cerrdefs.IsInvalidArgument(err) {
			t.Errorf("%s: err %v, want an invalid argument %q", cfg, err, want)
		}
	}
}
